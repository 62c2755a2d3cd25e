// Package config reads the configuration of `offtrail run`: a YAML file,
// decoded strictly (an unknown key is an error with its line), then
// overridden from the environment. Secrets are a type that never prints.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/notify/channels"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

// Secret is a string that never shows: String, JSON and YAML give
// "<secret>" (as Alertmanager's config.Secret). Reveal returns the value.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string { return redacted }

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return redacted }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return nil, nil
	}
	return redacted, nil
}

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// Defaults.
const (
	DefaultListen = "127.0.0.1:9464"
)

// Config is the file given to `offtrail run --config`.
type Config struct {
	Store Store `yaml:"store"`
	// EmbeddedDir runs on the embedded store (CloudTrail files on disk)
	// instead of a cluster.
	EmbeddedDir string `yaml:"embedded_dir"`
	// Rules are rule files or directories, relative to the config file;
	// empty means the built-in AWS pack.
	Rules            []string `yaml:"rules"`
	SkipInvalidRules bool     `yaml:"skip_invalid_rules"`
	// Exceptions are exception list files or directories (exceptions/*.yml),
	// relative to the config file; reloaded with the rules on SIGHUP.
	Exceptions   []string `yaml:"exceptions"`
	SignalsIndex string   `yaml:"signals_index"`
	// InstallTemplates (default true) makes run install the signals and
	// state index templates at start. Set it to false when the service runs
	// with the least-privilege runner role and an installer did it once.
	InstallTemplates *bool  `yaml:"install_templates"`
	StateIndex       string `yaml:"state_index"`
	// Timezone is the default zone of off-hours rules that set no
	// off_hours.timezone (rules that do keep theirs).
	Timezone      string         `yaml:"timezone"`
	Listen        string         `yaml:"listen"`
	MaxCatchup    int            `yaml:"max_catchup"`
	MaxGap        rules.Duration `yaml:"max_gap"`
	LeaseDuration rules.Duration `yaml:"lease_duration"`
	// Notifications are the channels rules name in their notify list
	// (notify/channels format, decoded as strictly as the rest: an unknown
	// key is an error with its line and column).
	Notifications channels.Config `yaml:"notifications"`
	// Incidents: what a person is alerted to (README, "Incidents").
	Incidents Incidents `yaml:"incidents"`

	// File is where the configuration was read from.
	File string `yaml:"-"`
	// Conn is the connection built from the store section, embedded_dir
	// and the environment (see Connect).
	Conn Connection `yaml:"-"`
}

// Incidents set the incident threshold and how sessions are bounded;
// zero values take the detector's defaults (75, 1h, 24h).
type Incidents struct {
	// Threshold is the incident score (0-100) at which a person is
	// alerted; 75 reads "1 in 32,000", like a rule's anomaly_threshold.
	Threshold float64        `yaml:"threshold"`
	Gap       rules.Duration `yaml:"gap"`
	MaxSpan   rules.Duration `yaml:"max_span"`
	// Links are URL templates (Go text/template over detector.LinkData:
	// From, To, Actor, ARN, Account, IncidentID) written into each
	// incident's triage block, by name: searches of the actor's events
	// around the incident in Kibana or OpenSearch Dashboards.
	Links map[string]string `yaml:"links"`
}

// LinkTemplates compiles incidents.links (validated at load).
func (i Incidents) LinkTemplates() (detector.Links, error) { return detector.ParseLinks(i.Links) }

// Store says how to reach Elasticsearch or OpenSearch.
type Store struct {
	URL                string    `yaml:"url"`
	URLs               []string  `yaml:"urls"`
	Username           string    `yaml:"username"`
	Password           Secret    `yaml:"password"`
	PasswordFile       string    `yaml:"password_file"`
	APIKey             Secret    `yaml:"api_key"`
	APIKeyFile         string    `yaml:"api_key_file"`
	CACert             string    `yaml:"ca_cert"`
	InsecureSkipVerify bool      `yaml:"insecure_skip_verify"`
	AWSSigV4           *AWSSigV4 `yaml:"aws_sigv4"`
	// Compression asks the cluster to gzip its answers (see
	// backends.Options.Compression).
	Compression bool `yaml:"compression"`
}

// AWSSigV4 signs requests for Amazon OpenSearch Service.
type AWSSigV4 struct {
	Region  string `yaml:"region"`
	Service string `yaml:"service"` // es (default) or aoss
}

// AllURLs returns url and urls together.
func (s Store) AllURLs() []string {
	var out []string
	if s.URL != "" {
		out = append(out, strings.Split(s.URL, ",")...)
	}
	return append(out, s.URLs...)
}

// Environment overrides, applied after the file (see also Connect's).
const (
	EnvStoreURL     = "OFFTRAIL_STORE_URL"
	EnvUsername     = "OFFTRAIL_USERNAME"
	EnvPassword     = "OFFTRAIL_PASSWORD"
	EnvAPIKey       = "OFFTRAIL_API_KEY"
	EnvSignalsIndex = "OFFTRAIL_SIGNALS_INDEX"
)

// Load reads path (empty: no file, defaults and environment only).
func Load(path string, getenv func(string) string) (*Config, error) {
	var cfg Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := decode(bytes.NewReader(b), &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		cfg.File = path
	}
	if err := cfg.finish(getenv); err != nil {
		if path != "" {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return &cfg, nil
}

// decode decodes strictly: unknown keys are errors naming their line.
func decode(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return didYouMean(err)
	}
	return nil
}

// keyTypes are the configuration's own types, by the name yaml.v3 gives
// them in "field X not found in type config.Store".
var keyTypes = map[string]reflect.Type{
	"config.Config":   reflect.TypeFor[Config](),
	"config.Store":    reflect.TypeFor[Store](),
	"config.AWSSigV4": reflect.TypeFor[AWSSigV4](),
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// didYouMean adds the closest known key to each unknown-key error, as
// the rule checker does.
func didYouMean(err error) error {
	msg := unknownField.ReplaceAllStringFunc(err.Error(), func(m string) string {
		sub := unknownField.FindStringSubmatch(m)
		t, ok := keyTypes[sub[2]]
		if !ok {
			return m
		}
		var keys []string
		for i := range t.NumField() {
			if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
				keys = append(keys, k)
			}
		}
		if s := rules.Suggest(sub[1], keys); s != "" {
			return m + fmt.Sprintf(" (did you mean %s?)", s)
		}
		return m
	})
	return errors.New(msg)
}

func (c *Config) finish(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvSignalsIndex); v != "" {
		c.SignalsIndex = v
	}
	if c.SignalsIndex == "" {
		c.SignalsIndex = schedule.DefaultSignalsIndex
	}
	if c.StateIndex == "" {
		c.StateIndex = schedule.DefaultStateIndex
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxCatchup == 0 {
		c.MaxCatchup = schedule.DefaultMaxCatchup
	}
	if c.MaxGap == 0 {
		c.MaxGap = rules.Duration(schedule.DefaultMaxGap)
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = rules.Duration(schedule.DefaultLeaseDuration)
	}
	base := "."
	if c.File != "" {
		base = filepath.Dir(c.File)
	}
	for i, p := range c.Rules {
		c.Rules[i] = resolve(base, p)
	}
	for i, p := range c.Exceptions {
		c.Exceptions[i] = resolve(base, p)
	}
	conn, err := Connect(Sources{File: &c.Store, EmbeddedDir: c.EmbeddedDir, Base: base, Getenv: getenv})
	if err != nil {
		return err
	}
	c.Conn = conn
	c.resolveChannelFiles(base)
	return c.validate()
}

// resolveChannelFiles makes the channels' *_file paths relative to the
// config file, like every other path in it.
func (c *Config) resolveChannelFiles(base string) {
	for _, ch := range c.Notifications.Channels {
		for _, f := range ch.Files() {
			*f = resolve(base, *f)
		}
	}
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// fromFile reads a secret from its _file companion; both set is an error.
func fromFile(v Secret, file, base, key string) (Secret, error) {
	if file == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("%s and %s_file are both set", key, key)
	}
	b, err := os.ReadFile(resolve(base, file))
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", key, err)
	}
	return Secret(strings.TrimSpace(string(b))), nil
}

func (c *Config) validate() error {
	if t := c.Incidents.Threshold; t < 0 || t > 100 {
		return fmt.Errorf("incidents.threshold: %v is not a score between 0 and 100", t)
	}
	if c.Incidents.Gap < 0 || c.Incidents.MaxSpan < 0 {
		return fmt.Errorf("incidents: gap and max_span must not be negative")
	}
	if _, err := c.Incidents.LinkTemplates(); err != nil {
		return fmt.Errorf("incidents.links: %w", err)
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			return fmt.Errorf("timezone: %w", err)
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if c.MaxCatchup < 0 {
		return fmt.Errorf("max_catchup %d: must be positive", c.MaxCatchup)
	}
	if c.LeaseDuration.Std() < 3*time.Second {
		return fmt.Errorf("lease_duration %s: must be at least 3s", c.LeaseDuration)
	}
	return nil
}

// TemplatesToInstall reports whether run should install index templates.
func (c *Config) TemplatesToInstall() bool { return c.InstallTemplates == nil || *c.InstallTemplates }
