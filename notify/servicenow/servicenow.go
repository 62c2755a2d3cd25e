// Package servicenow opens ServiceNow incidents through the Table API, one
// per offtrail signal. The signal id is the incident's correlation_id: a
// signal sent again (a retry after a timeout, a second replica, a backtest
// written twice) adds a work note to the incident it already opened instead
// of opening another.
package servicenow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
)

// Field limits of the incident table; longer values are cut by ServiceNow
// anyway, here they are cut where the reader sees an ellipsis.
const (
	maxShortDescription = 160
	maxCorrelationID    = 100
)

// Config is a ServiceNow channel's settings.
type Config struct {
	// URL is the instance, https://<instance>.service-now.com.
	URL string `yaml:"url" json:"url"`
	// Username and Password authenticate with basic auth; Token (an OAuth
	// access token) with a bearer header instead. One of the two.
	Username     string        `yaml:"username,omitempty" json:"username,omitempty"`
	Password     notify.Secret `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordFile string        `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	Token        notify.Secret `yaml:"token,omitempty" json:"token,omitempty"`
	TokenFile    string        `yaml:"token_file,omitempty" json:"token_file,omitempty"`
	// AssignmentGroup, Category, Subcategory and CallerID are set on new
	// incidents as they are (names or sys_ids, as the instance accepts).
	AssignmentGroup string        `yaml:"assignment_group,omitempty" json:"assignment_group,omitempty"`
	Category        string        `yaml:"category,omitempty" json:"category,omitempty"`
	Subcategory     string        `yaml:"subcategory,omitempty" json:"subcategory,omitempty"`
	CallerID        string        `yaml:"caller_id,omitempty" json:"caller_id,omitempty"`
	Timeout         time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Notifier opens incidents on one instance.
type Notifier struct {
	cfg    Config
	table  string // …/api/now/table/incident
	auth   notify.Secret
	client *http.Client
	log    zerolog.Logger
}

// String names the notifier without its credential: fmt does not call a
// Secret's String for unexported fields, so %+v would show it.
func (n Notifier) String() string { return "servicenow(" + n.cfg.URL + ")" }

// GoString is String, for %#v.
func (n Notifier) GoString() string { return n.String() }

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	if !strings.HasPrefix(cfg.URL, "https://") && !strings.HasPrefix(cfg.URL, "http://") {
		return nil, fmt.Errorf("servicenow: url %q: want the instance's http(s) URL", cfg.URL)
	}
	auth, err := authorization(cfg)
	if err != nil {
		return nil, fmt.Errorf("servicenow: %w", err)
	}
	return &Notifier{
		cfg:    cfg,
		table:  strings.TrimSuffix(cfg.URL, "/") + "/api/now/table/incident",
		auth:   auth,
		client: notify.NewHTTPClient(cfg.Timeout),
		log:    log,
	}, nil
}

// authorization is the Authorization header value: bearer for a token,
// basic for a username and password.
func authorization(cfg Config) (notify.Secret, error) {
	pw, err := notify.LoadSecret(cfg.Password, cfg.PasswordFile, "password")
	if err != nil {
		return "", err
	}
	tok, err := notify.LoadSecret(cfg.Token, cfg.TokenFile, "token")
	if err != nil {
		return "", err
	}
	switch {
	case tok != "" && (cfg.Username != "" || pw != ""):
		return "", errors.New("token and username/password are mutually exclusive")
	case tok != "":
		return "Bearer " + tok, nil
	case cfg.Username == "" || pw == "":
		return "", errors.New("username and password (or password_file), or token (or token_file), are required")
	}
	return notify.Secret("Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+pw.Value()))), nil
}

// Incident is the body of a new incident (only the fields offtrail sets).
type Incident struct {
	ShortDescription   string `json:"short_description"`
	Description        string `json:"description"`
	Urgency            string `json:"urgency"`
	Impact             string `json:"impact"`
	CorrelationID      string `json:"correlation_id"`
	CorrelationDisplay string `json:"correlation_display"`
	AssignmentGroup    string `json:"assignment_group,omitempty"`
	Category           string `json:"category,omitempty"`
	Subcategory        string `json:"subcategory,omitempty"`
	CallerID           string `json:"caller_id,omitempty"`
}

// Update is the body that records a repeat on an existing incident. Only a
// work note: the analyst may have changed urgency or assignment since.
type Update struct {
	WorkNotes string `json:"work_notes"`
}

// UrgencyImpact maps offtrail's severities to ServiceNow's urgency and
// impact (1 high, 2 medium, 3 low), which the default priority matrix turns
// into critical→P1, high→P2, medium→P3, low→P4.
func UrgencyImpact(severity string) (urgency, impact string) {
	switch severity {
	case "critical":
		return "1", "1"
	case "high":
		return "1", "2"
	case "medium":
		return "2", "2"
	}
	return "2", "3"
}

// NewIncident builds the incident for m.
func (n *Notifier) NewIncident(m *notify.Message) Incident {
	u, i := UrgencyImpact(m.Severity)
	return Incident{
		ShortDescription:   truncate(m.Title(), maxShortDescription),
		Description:        m.Text(),
		Urgency:            u,
		Impact:             i,
		CorrelationID:      truncate(m.SignalID, maxCorrelationID),
		CorrelationDisplay: "offtrail",
		AssignmentGroup:    n.cfg.AssignmentGroup,
		Category:           n.cfg.Category,
		Subcategory:        n.cfg.Subcategory,
		CallerID:           n.cfg.CallerID,
	}
}

// NewUpdate builds the work note for a signal that already has an incident.
func NewUpdate(m *notify.Message) Update {
	note := "offtrail sent this signal again: " + m.Title()
	if m.Suppressed > 0 {
		note += fmt.Sprintf("\n%d similar signal(s) were suppressed since the last message.", m.Suppressed)
	}
	return Update{WorkNotes: note}
}

// Notify opens (or notes on) one incident per message; it stops at the
// first failure.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	for _, m := range msgs {
		if retry, err := n.notifyOne(ctx, m); err != nil {
			return retry, err
		}
	}
	return false, nil
}

func (n *Notifier) notifyOne(ctx context.Context, m *notify.Message) (bool, error) {
	sysID, retry, err := n.find(ctx, m.SignalID)
	if err != nil {
		return retry, fmt.Errorf("find incident: %w", err)
	}
	if sysID != "" {
		_, retry, err = n.do(ctx, http.MethodPatch, n.table+"/"+url.PathEscape(sysID), NewUpdate(m))
		if err != nil {
			return retry, fmt.Errorf("update incident: %w", err)
		}
		return false, nil
	}
	if _, retry, err = n.do(ctx, http.MethodPost, n.table, n.NewIncident(m)); err != nil {
		return retry, fmt.Errorf("create incident: %w", err)
	}
	return false, nil
}

// find returns the sys_id of the incident whose correlation_id is id, ""
// when there is none.
func (n *Notifier) find(ctx context.Context, id string) (sysID string, retry bool, err error) {
	// "^" separates conditions in an encoded query; an id carrying one
	// could widen the match, so it is not looked up (offtrail's are hex).
	if id == "" || strings.ContainsAny(id, "^\r\n") {
		return "", false, nil
	}
	q := url.Values{
		"sysparm_query":  {"correlation_id=" + truncate(id, maxCorrelationID)},
		"sysparm_fields": {"sys_id"},
		"sysparm_limit":  {"1"},
	}
	body, retry, err := n.do(ctx, http.MethodGet, n.table+"?"+q.Encode(), nil)
	if err != nil {
		return "", retry, err
	}
	var res struct {
		Result []struct {
			SysID string `json:"sys_id"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		// A proxy's HTML login page answers 200 too: worth another try later.
		return "", true, fmt.Errorf("servicenow: unexpected answer: %w", err)
	}
	if len(res.Result) == 0 {
		return "", false, nil
	}
	return res.Result[0].SysID, false, nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
