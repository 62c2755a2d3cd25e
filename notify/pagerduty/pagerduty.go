// Package pagerduty triggers PagerDuty incidents through the Events API v2,
// one event per signal, deduplicated by the signal's id.
package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
)

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Config is a PagerDuty channel's settings.
type Config struct {
	// RoutingKey is the integration key of an Events API v2 integration.
	RoutingKey     notify.Secret `yaml:"routing_key,omitempty" json:"routing_key,omitempty"`
	RoutingKeyFile string        `yaml:"routing_key_file,omitempty" json:"routing_key_file,omitempty"`
	// URL overrides DefaultURL (EU service region, a proxy, tests).
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Source is payload.source (default "offtrail").
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	// Component and Group are passed as they are.
	Component string        `yaml:"component,omitempty" json:"component,omitempty"`
	Group     string        `yaml:"group,omitempty" json:"group,omitempty"`
	LinkText  string        `yaml:"link_text,omitempty" json:"link_text,omitempty"`
	Timeout   time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Notifier sends events to one integration.
type Notifier struct {
	cfg    Config
	key    string
	client *http.Client
	log    zerolog.Logger
}

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	key, err := notify.LoadSecret(cfg.RoutingKey, cfg.RoutingKeyFile, "routing_key")
	if err != nil {
		return nil, fmt.Errorf("pagerduty: %w", err)
	}
	if key == "" {
		return nil, errors.New("pagerduty: routing_key or routing_key_file is required")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if !strings.HasPrefix(cfg.URL, "https://") && !strings.HasPrefix(cfg.URL, "http://") {
		return nil, fmt.Errorf("pagerduty: url %q: want an http(s) URL", cfg.URL)
	}
	if cfg.Source == "" {
		cfg.Source = "offtrail"
	}
	if cfg.LinkText == "" {
		cfg.LinkText = "Open in Kibana"
	}
	return &Notifier{cfg: cfg, key: key.Value(), client: notify.NewHTTPClient(cfg.Timeout), log: log}, nil
}

// Event is an Events API v2 request body.
type Event struct {
	RoutingKey  string  `json:"routing_key"`
	EventAction string  `json:"event_action"`
	DedupKey    string  `json:"dedup_key"`
	Payload     Payload `json:"payload"`
	Client      string  `json:"client,omitempty"`
	ClientURL   string  `json:"client_url,omitempty"`
	Links       []Link  `json:"links,omitempty"`
}

// Payload is the event's payload object.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown on the incident.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Severity maps offtrail's severities to PagerDuty's: low→info,
// medium→warning, high→error, critical→critical.
func Severity(s string) string {
	switch s {
	case "critical":
		return "critical"
	case "high":
		return "error"
	case "medium":
		return "warning"
	}
	return "info"
}

// NewEvent builds the trigger event for m. The dedup key is the signal id:
// PagerDuty folds a re-sent signal (a retry, a second replica) into the
// incident it already opened.
func (n *Notifier) NewEvent(m *notify.Message) Event {
	details := map[string]any{
		"rule_id":     m.RuleID,
		"rule_name":   m.RuleName,
		"identity":    m.Identity,
		"what":        m.What(),
		"score":       m.Score,
		"confidence":  m.Confidence,
		"severity":    m.Severity,
		"risk_score":  m.RiskScore,
		"reason":      m.Reason,
		"events":      m.Events,
		"first_event": m.FirstEvent.UTC().Format(time.RFC3339),
		"last_event":  m.LastEvent.UTC().Format(time.RFC3339),
		"signal_id":   m.SignalID,
	}
	for _, f := range m.Entity {
		details["entity."+f.Name] = f.Value
	}
	if m.Suppressed > 0 {
		details["suppressed_since_last"] = m.Suppressed
	}
	ev := Event{
		RoutingKey:  n.key,
		EventAction: "trigger",
		DedupKey:    m.SignalID,
		Payload: Payload{
			Summary:       truncate(m.Title(), 1024), // the API's limit
			Source:        n.cfg.Source,
			Severity:      Severity(m.Severity),
			Timestamp:     m.FirstEvent.UTC().Format(time.RFC3339),
			Component:     n.cfg.Component,
			Group:         n.cfg.Group,
			Class:         m.RuleID,
			CustomDetails: details,
		},
		Client:    "offtrail",
		ClientURL: m.Link,
	}
	if m.Link != "" {
		ev.Links = []Link{{Href: m.Link, Text: n.cfg.LinkText}}
	}
	return ev
}

// Notify sends one event per message; it stops at the first failure. The
// API answers 202; 400 means a malformed event (not retried), 429 and 5xx
// are transient.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	for _, m := range msgs {
		body, err := json.Marshal(n.NewEvent(m))
		if err != nil {
			return false, fmt.Errorf("pagerduty: %w", err)
		}
		if retry, err := notify.Post(ctx, n.client, "pagerduty", n.cfg.URL, "application/json", body, nil); err != nil {
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
