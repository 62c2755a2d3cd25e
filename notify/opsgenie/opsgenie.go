// Package opsgenie creates Opsgenie alerts through the Alert API v2, one
// alert per signal, deduplicated by the signal's id.
package opsgenie

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
)

// DefaultURL is the API of Opsgenie's US region; accounts in the EU region
// set url to https://api.eu.opsgenie.com.
const DefaultURL = "https://api.opsgenie.com"

// Limits of the Alert API; longer values are rejected, so they are cut.
const (
	maxMessage     = 130
	maxDescription = 15000
	maxDetailValue = 8000
)

// Config is an Opsgenie channel's settings.
type Config struct {
	// APIKey is the key of an API integration ("GenieKey <key>").
	APIKey     notify.Secret `yaml:"api_key,omitempty" json:"api_key,omitempty"`
	APIKeyFile string        `yaml:"api_key_file,omitempty" json:"api_key_file,omitempty"`
	// URL overrides DefaultURL (EU region, a proxy, tests); /v2/alerts is
	// appended.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Responders are the teams, users, escalations or schedules notified;
	// without any, the integration's own routing applies.
	Responders []Responder `yaml:"responders,omitempty" json:"responders,omitempty"`
	// Tags are added to every alert, after "offtrail" and the rule id.
	Tags []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	// Source is the alert's source (default "offtrail").
	Source  string        `yaml:"source,omitempty" json:"source,omitempty"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Responder names a team, user, escalation or schedule, by id, name or (for
// users) username.
type Responder struct {
	Type     string `yaml:"type" json:"type"`
	ID       string `yaml:"id,omitempty" json:"id,omitempty"`
	Name     string `yaml:"name,omitempty" json:"name,omitempty"`
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
}

func (r Responder) check() error {
	switch r.Type {
	case "team", "user", "escalation", "schedule":
	default:
		return fmt.Errorf("responder type %q: want team, user, escalation or schedule", r.Type)
	}
	if r.ID == "" && r.Name == "" && r.Username == "" {
		return fmt.Errorf("%s responder: id, name or username is required", r.Type)
	}
	return nil
}

// Notifier creates alerts through one integration.
type Notifier struct {
	cfg    Config
	url    string
	key    notify.Secret
	client *http.Client
	log    zerolog.Logger
}

// String names the notifier without its key: fmt does not call a Secret's
// String for unexported fields, so a Notifier printed with %+v would show it.
func (n Notifier) String() string { return "opsgenie(" + n.url + ")" }

// GoString is String, for %#v.
func (n Notifier) GoString() string { return n.String() }

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	key, err := notify.LoadSecret(cfg.APIKey, cfg.APIKeyFile, "api_key")
	if err != nil {
		return nil, fmt.Errorf("opsgenie: %w", err)
	}
	if key == "" {
		return nil, errors.New("opsgenie: api_key or api_key_file is required")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if !strings.HasPrefix(cfg.URL, "https://") && !strings.HasPrefix(cfg.URL, "http://") {
		return nil, fmt.Errorf("opsgenie: url %q: want an http(s) URL", cfg.URL)
	}
	for _, r := range cfg.Responders {
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("opsgenie: %w", err)
		}
	}
	if cfg.Source == "" {
		cfg.Source = "offtrail"
	}
	return &Notifier{
		cfg:    cfg,
		url:    strings.TrimSuffix(cfg.URL, "/") + "/v2/alerts",
		key:    key,
		client: notify.NewHTTPClient(cfg.Timeout),
		log:    log,
	}, nil
}

// Alert is the body of POST /v2/alerts.
type Alert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Responders  []Responder       `json:"responders,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source,omitempty"`
	Priority    string            `json:"priority"`
}

// Priority maps offtrail's severities to Opsgenie's: critical→P1, high→P2,
// medium→P3, low→P4. P5 (informational) is left unused: every signal is
// something a person should look at.
func Priority(s string) string {
	switch s {
	case "critical":
		return "P1"
	case "high":
		return "P2"
	case "medium":
		return "P3"
	}
	return "P4"
}

// NewAlert builds the alert for m. The alias is the signal id: Opsgenie
// folds a re-sent signal (a retry, a second replica) into the open alert
// instead of paging again.
func (n *Notifier) NewAlert(m *notify.Message) Alert {
	return Alert{
		Message:     truncate(m.Title(), maxMessage),
		Alias:       m.SignalID,
		Description: truncate(description(m), maxDescription),
		Responders:  n.cfg.Responders,
		Tags:        append([]string{"offtrail", m.RuleID}, n.cfg.Tags...),
		Details:     details(m),
		Entity:      m.Identity,
		Source:      n.cfg.Source,
		Priority:    Priority(m.Severity),
	}
}

func description(m *notify.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nIdentity: %s\nWhat: %s\nScore: %s (confidence %s)\nEvents: %d between %s and %s\n",
		m.Reason, m.Identity, m.What(), m.ScoreText(), m.Confidence, m.Events,
		m.FirstEvent.UTC().Format(time.RFC3339), m.LastEvent.UTC().Format(time.RFC3339))
	if m.Link != "" {
		fmt.Fprintf(&b, "Open: %s\n", m.Link)
	}
	if m.Suppressed > 0 {
		fmt.Fprintf(&b, "%d similar signal(s) were suppressed since the last message.\n", m.Suppressed)
	}
	return b.String()
}

// details are the alert's extra properties; Opsgenie wants string values.
func details(m *notify.Message) map[string]string {
	d := map[string]string{
		"rule_id":     m.RuleID,
		"rule_name":   m.RuleName,
		"signal_id":   m.SignalID,
		"identity":    m.Identity,
		"what":        m.What(),
		"score":       m.ScoreText(),
		"confidence":  m.Confidence,
		"severity":    m.Severity,
		"risk_score":  strconv.Itoa(m.RiskScore),
		"events":      strconv.FormatInt(m.Events, 10),
		"first_event": m.FirstEvent.UTC().Format(time.RFC3339),
		"last_event":  m.LastEvent.UTC().Format(time.RFC3339),
	}
	if m.Link != "" {
		d["link"] = m.Link
	}
	for _, f := range m.Entity {
		d["entity."+f.Name] = f.Value
	}
	for k, v := range d {
		d[k] = truncate(v, maxDetailValue)
	}
	return d
}

// Notify creates one alert per message; it stops at the first failure. The
// API answers 202 (the alert is created asynchronously); 4xx but 429 mean
// the request is wrong (a bad key, a bad field) and are not retried.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	h := http.Header{"Authorization": {"GenieKey " + n.key.Value()}}
	for _, m := range msgs {
		body, err := json.Marshal(n.NewAlert(m))
		if err != nil {
			return false, fmt.Errorf("opsgenie: %w", err)
		}
		if retry, err := notify.Post(ctx, n.client, "opsgenie", n.url, "application/json", body, h); err != nil {
			return retry, err
		}
	}
	return false, nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
