// Package zendesk opens a Zendesk Support ticket per offtrail signal through
// the Tickets API, authenticated with an agent's API token.
package zendesk

import (
	"context"
	"encoding/base64"
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

// maxSubject keeps the subject readable in ticket lists; Zendesk itself
// accepts longer ones.
const maxSubject = 150

// Config is a Zendesk channel's settings.
type Config struct {
	// URL is the account, https://<subdomain>.zendesk.com; the API path is
	// appended.
	URL string `yaml:"url" json:"url"`
	// Email is the agent the token belongs to; requests authenticate as
	// "<email>/token:<api_token>".
	Email        string        `yaml:"email" json:"email"`
	APIToken     notify.Secret `yaml:"api_token,omitempty" json:"api_token,omitempty"`
	APITokenFile string        `yaml:"api_token_file,omitempty" json:"api_token_file,omitempty"`
	// GroupID assigns tickets to a group (0: Zendesk's routing).
	GroupID int64 `yaml:"group_id,omitempty" json:"group_id,omitempty"`
	// TicketType is problem, incident, question or task ("": none).
	TicketType string `yaml:"ticket_type,omitempty" json:"ticket_type,omitempty"`
	// Tags are added to every ticket, after "offtrail" and the rule id.
	Tags    []string      `yaml:"tags,omitempty" json:"tags,omitempty"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Notifier opens tickets in one account.
type Notifier struct {
	cfg    Config
	url    string
	token  notify.Secret
	client *http.Client
	log    zerolog.Logger
}

// String names the notifier without its token: fmt does not call a Secret's
// String for unexported fields, so a Notifier printed with %+v would show it.
func (n Notifier) String() string { return "zendesk(" + n.cfg.URL + ")" }

// GoString is String, for %#v.
func (n Notifier) GoString() string { return n.String() }

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	tok, err := notify.LoadSecret(cfg.APIToken, cfg.APITokenFile, "api_token")
	if err != nil {
		return nil, fmt.Errorf("zendesk: %w", err)
	}
	if tok == "" {
		return nil, errors.New("zendesk: api_token or api_token_file is required")
	}
	if !strings.HasPrefix(cfg.URL, "https://") && !strings.HasPrefix(cfg.URL, "http://") {
		return nil, fmt.Errorf("zendesk: url %q: want the account's http(s) URL", cfg.URL)
	}
	if !strings.Contains(cfg.Email, "@") {
		return nil, fmt.Errorf("zendesk: email %q: want the agent's address", cfg.Email)
	}
	switch cfg.TicketType {
	case "", "problem", "incident", "question", "task":
	default:
		return nil, fmt.Errorf("zendesk: ticket_type %q: want problem, incident, question or task", cfg.TicketType)
	}
	return &Notifier{
		cfg:    cfg,
		url:    strings.TrimSuffix(cfg.URL, "/") + "/api/v2/tickets.json",
		token:  tok,
		client: notify.NewHTTPClient(cfg.Timeout),
		log:    log,
	}, nil
}

// Request is the body of POST /api/v2/tickets.json.
type Request struct {
	Ticket Ticket `json:"ticket"`
}

// Ticket is the new ticket (only the fields offtrail sets).
type Ticket struct {
	Subject    string   `json:"subject"`
	Comment    Comment  `json:"comment"`
	Priority   string   `json:"priority"`
	Type       string   `json:"type,omitempty"`
	ExternalID string   `json:"external_id"`
	Tags       []string `json:"tags"`
	GroupID    int64    `json:"group_id,omitempty"`
}

// Comment is the ticket's first comment, its description.
type Comment struct {
	Body string `json:"body"`
}

// Priority maps offtrail's severities to Zendesk's: critical→urgent,
// high→high, medium→normal, low→low.
func Priority(s string) string {
	switch s {
	case "critical":
		return "urgent"
	case "high":
		return "high"
	case "medium":
		return "normal"
	}
	return "low"
}

// NewTicket builds the ticket for m. external_id is the signal id, so a
// ticket can be found from the signal (GET /api/v2/tickets?external_id=…)
// and the other way round.
func (n *Notifier) NewTicket(m *notify.Message) Request {
	tags := append([]string{"offtrail", tag(m.RuleID)}, n.cfg.Tags...)
	return Request{Ticket: Ticket{
		Subject:    truncate(m.Title(), maxSubject),
		Comment:    Comment{Body: m.Text()},
		Priority:   Priority(m.Severity),
		Type:       n.cfg.TicketType,
		ExternalID: m.SignalID,
		Tags:       tags,
		GroupID:    n.cfg.GroupID,
	}}
}

// tag makes a value a Zendesk tag, which cannot contain spaces.
func tag(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), "_")) }

// Notify opens one ticket per message; it stops at the first failure. The
// API answers 201; 401/403 (a bad token) and 422 (an invalid field) are not
// retried, 429 and 5xx are.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	h := http.Header{"Authorization": {n.authorization()}}
	for _, m := range msgs {
		body, err := json.Marshal(n.NewTicket(m))
		if err != nil {
			return false, fmt.Errorf("zendesk: %w", err)
		}
		if retry, err := notify.Post(ctx, n.client, "zendesk", n.url, "application/json", body, h); err != nil {
			return retry, err
		}
	}
	return false, nil
}

// authorization is the API token's basic credential.
func (n *Notifier) authorization() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(n.cfg.Email+"/token:"+n.token.Value()))
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
