// Package channels reads offtrail's notification configuration (YAML) and
// builds the notify.Dispatcher with one notifier per named channel. It sits
// apart from package notify because it imports every integration, and the
// integrations import notify.
package channels

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/email"
	"github.com/offtrail/offtrail/notify/opsgenie"
	"github.com/offtrail/offtrail/notify/pagerduty"
	"github.com/offtrail/offtrail/notify/servicenow"
	"github.com/offtrail/offtrail/notify/slack"
	"github.com/offtrail/offtrail/notify/sns"
	"github.com/offtrail/offtrail/notify/teams"
	"github.com/offtrail/offtrail/notify/webhook"
	"github.com/offtrail/offtrail/notify/zendesk"
)

// Channel types.
const (
	TypeSlack      = "slack"
	TypePagerDuty  = "pagerduty"
	TypeWebhook    = "webhook"
	TypeEmail      = "email"
	TypeServiceNow = "servicenow"
	TypeZendesk    = "zendesk"
	TypeSNS        = "sns"
	TypeTeams      = "teams"
	TypeOpsgenie   = "opsgenie"
)

// typeList is the channel types for errors, in the order people meet them.
const typeList = "slack, pagerduty, webhook, email, servicenow, zendesk, sns, teams or opsgenie"

// Config is the notifications section of offtrail's configuration.
type Config struct {
	// LinkTemplate renders each message's link (text/template over
	// notify.Message), e.g. a Kibana Discover URL with {{.SignalID}}.
	LinkTemplate string `yaml:"link_template,omitempty" json:"link_template,omitempty"`
	// SuppressFor is the default suppression window of the channels
	// (default 1h).
	SuppressFor time.Duration `yaml:"suppress_for,omitempty" json:"suppress_for,omitempty"`
	Retry       notify.Retry  `yaml:"retry,omitempty" json:"retry,omitzero"`
	// DefaultChannels receive the signals of rules without a notify list.
	DefaultChannels []string                 `yaml:"default_channels,omitempty" json:"default_channels,omitempty"`
	Channels        map[string]ChannelConfig `yaml:"channels,omitempty" json:"channels,omitempty"`
}

// ChannelConfig is one channel: its type, the settings every channel has and
// the integration's own, all at the same level in YAML.
type ChannelConfig struct {
	Type string
	// SuppressFor overrides the default window; 0s turns suppression off.
	SuppressFor *time.Duration
	// MinSeverity drops signals below it (low, medium, high, critical).
	MinSeverity string

	Slack      *slack.Config
	PagerDuty  *pagerduty.Config
	Webhook    *webhook.Config
	Email      *email.Config
	ServiceNow *servicenow.Config
	Zendesk    *zendesk.Config
	SNS        *sns.Config
	Teams      *teams.Config
	Opsgenie   *opsgenie.Config
}

// Parse reads a notifications configuration strictly: unknown keys, at any
// level, are errors with their line and column.
func Parse(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return &c, nil
}

// UnmarshalYAML reads the common keys, then decodes the rest strictly into
// the type's settings. yaml.v3 does not pass KnownFields down to custom
// unmarshalers, hence the explicit check.
func (c *ChannelConfig) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d, column %d: a channel must be a mapping", node.Line, node.Column)
	}
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: node.Line, Column: node.Column}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		var err error
		switch k.Value {
		case "type":
			err = v.Decode(&c.Type)
		case "suppress_for":
			var d time.Duration
			if err = v.Decode(&d); err == nil {
				c.SuppressFor = &d
			}
		case "min_severity":
			if err = v.Decode(&c.MinSeverity); err == nil && !notify.ValidSeverity(c.MinSeverity) {
				err = fmt.Errorf("line %d, column %d: %q: want low, medium, high or critical", v.Line, v.Column, c.MinSeverity)
			}
		default:
			rest.Content = append(rest.Content, k, v)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k.Value, err)
		}
	}
	target, err := c.newSettings(node)
	if err != nil {
		return err
	}
	if err := knownFields(rest, reflect.TypeOf(target), c.Type+" channel"); err != nil {
		return err
	}
	return rest.Decode(target)
}

// newSettings allocates the settings of c.Type and returns them, for
// decoding into.
func (c *ChannelConfig) newSettings(node *yaml.Node) (any, error) {
	switch c.Type {
	case TypeSlack:
		c.Slack = &slack.Config{}
		return c.Slack, nil
	case TypePagerDuty:
		c.PagerDuty = &pagerduty.Config{}
		return c.PagerDuty, nil
	case TypeWebhook:
		c.Webhook = &webhook.Config{}
		return c.Webhook, nil
	case TypeEmail:
		c.Email = &email.Config{}
		return c.Email, nil
	case TypeServiceNow:
		c.ServiceNow = &servicenow.Config{}
		return c.ServiceNow, nil
	case TypeZendesk:
		c.Zendesk = &zendesk.Config{}
		return c.Zendesk, nil
	case TypeSNS:
		c.SNS = &sns.Config{}
		return c.SNS, nil
	case TypeTeams:
		c.Teams = &teams.Config{}
		return c.Teams, nil
	case TypeOpsgenie:
		c.Opsgenie = &opsgenie.Config{}
		return c.Opsgenie, nil
	case "":
		return nil, fmt.Errorf("line %d, column %d: channel has no type (%s)", node.Line, node.Column, typeList)
	}
	return nil, fmt.Errorf("line %d, column %d: unknown channel type %q (want %s)", node.Line, node.Column, c.Type, typeList)
}

// knownFields reports the first key of node that t (a struct, or a pointer,
// map or slice of one) has no yaml field for.
func knownFields(node *yaml.Node, t reflect.Type, what string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && node.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k := node.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d, column %d: field %s not found in %s", k.Line, k.Column, k.Value, what)
			}
			if err := knownFields(node.Content[i+1], ft, what); err != nil {
				return err
			}
		}
	case (t.Kind() == reflect.Map && node.Kind == yaml.MappingNode):
		for i := 1; i < len(node.Content); i += 2 {
			if err := knownFields(node.Content[i], t.Elem(), what); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && node.Kind == yaml.SequenceNode:
		for _, n := range node.Content {
			if err := knownFields(n, t.Elem(), what); err != nil {
				return err
			}
		}
	}
	return nil
}

// settings returns the integration's settings.
func (c ChannelConfig) settings() any {
	switch {
	case c.Slack != nil:
		return c.Slack
	case c.PagerDuty != nil:
		return c.PagerDuty
	case c.Webhook != nil:
		return c.Webhook
	case c.Email != nil:
		return c.Email
	case c.ServiceNow != nil:
		return c.ServiceNow
	case c.Zendesk != nil:
		return c.Zendesk
	case c.SNS != nil:
		return c.SNS
	case c.Teams != nil:
		return c.Teams
	case c.Opsgenie != nil:
		return c.Opsgenie
	}
	return nil
}

// Files returns the channel's *_file settings (secrets, a CA), as pointers
// so that a caller can make them relative to the configuration file; empty
// ones are included.
func (c ChannelConfig) Files() []*string {
	switch {
	case c.Slack != nil:
		return []*string{&c.Slack.WebhookURLFile}
	case c.PagerDuty != nil:
		return []*string{&c.PagerDuty.RoutingKeyFile}
	case c.Webhook != nil:
		return []*string{&c.Webhook.URLFile, &c.Webhook.SecretFile}
	case c.Email != nil:
		return []*string{&c.Email.PasswordFile, &c.Email.TLS.CAFile}
	case c.ServiceNow != nil:
		return []*string{&c.ServiceNow.PasswordFile, &c.ServiceNow.TokenFile}
	case c.Zendesk != nil:
		return []*string{&c.Zendesk.APITokenFile}
	case c.SNS != nil:
		return []*string{&c.SNS.SecretAccessKeyFile}
	case c.Teams != nil:
		return []*string{&c.Teams.WebhookURLFile}
	case c.Opsgenie != nil:
		return []*string{&c.Opsgenie.APIKeyFile}
	}
	return nil
}

// MarshalYAML gives the flat form it was read from; secrets print as
// <secret>.
func (c ChannelConfig) MarshalYAML() (any, error) {
	var n yaml.Node
	if s := c.settings(); s != nil {
		if err := n.Encode(s); err != nil {
			return nil, err
		}
	} else {
		n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	var head []*yaml.Node
	add := func(k, v string) {
		head = append(head, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
	}
	add("type", c.Type)
	if c.SuppressFor != nil {
		add("suppress_for", c.SuppressFor.String())
	}
	if c.MinSeverity != "" {
		add("min_severity", c.MinSeverity)
	}
	n.Content = append(head, n.Content...)
	return &n, nil
}

// MarshalJSON gives the same flat form as MarshalYAML.
func (c ChannelConfig) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	if s := c.settings(); s != nil {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
	}
	out["type"] = c.Type
	if c.SuppressFor != nil {
		out["suppress_for"] = c.SuppressFor.String()
	}
	if c.MinSeverity != "" {
		out["min_severity"] = c.MinSeverity
	}
	return json.Marshal(out)
}

// String is the channel as YAML, secrets hidden.
func (c ChannelConfig) String() string { return yamlString(c) }

// String is the configuration as YAML, secrets hidden (safe to log).
func (c Config) String() string { return yamlString(c) }

func yamlString(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// Build makes the dispatcher: one notifier per channel, the link template
// compiled, default channels checked. Nothing is sent.
func Build(cfg *Config, log zerolog.Logger, reg prometheus.Registerer) (*notify.Dispatcher, error) {
	opts := notify.Options{Logger: log, DefaultChannels: cfg.DefaultChannels, Retry: cfg.Retry, Registerer: reg}
	if cfg.LinkTemplate != "" {
		t, err := notify.ParseLinkTemplate(cfg.LinkTemplate)
		if err != nil {
			return nil, fmt.Errorf("notifications: %w", err)
		}
		opts.LinkTemplate = t
	}
	names := make([]string, 0, len(cfg.Channels))
	for n := range cfg.Channels {
		names = append(names, n)
	}
	slices.Sort(names)
	chans := make(map[string]notify.Channel, len(names))
	var errs []error
	for _, name := range names {
		cc := cfg.Channels[name]
		n, err := newNotifier(cc, log.With().Str("channel", name).Logger())
		if err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", name, err))
			continue
		}
		ch := notify.Channel{Notifier: n, SuppressFor: cfg.SuppressFor, MinSeverity: cc.MinSeverity}
		if cc.SuppressFor != nil {
			ch.SuppressFor = *cc.SuppressFor
			if ch.SuppressFor == 0 {
				ch.SuppressFor = -1 // explicitly off
			}
		}
		chans[name] = ch
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	d, err := notify.NewDispatcher(chans, opts)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return d, nil
}

func newNotifier(c ChannelConfig, log zerolog.Logger) (notify.Notifier, error) {
	switch {
	case c.Slack != nil:
		return slack.New(*c.Slack, log)
	case c.PagerDuty != nil:
		return pagerduty.New(*c.PagerDuty, log)
	case c.Webhook != nil:
		return webhook.New(*c.Webhook, log)
	case c.Email != nil:
		return email.New(*c.Email, log)
	case c.ServiceNow != nil:
		return servicenow.New(*c.ServiceNow, log)
	case c.Zendesk != nil:
		return zendesk.New(*c.Zendesk, log)
	case c.SNS != nil:
		return sns.New(*c.SNS, log)
	case c.Teams != nil:
		return teams.New(*c.Teams, log)
	case c.Opsgenie != nil:
		return opsgenie.New(*c.Opsgenie, log)
	}
	return nil, fmt.Errorf("no settings for type %q", c.Type)
}
