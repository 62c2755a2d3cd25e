package notify

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/offtrail/offtrail/detector"
)

// Notifier sends messages to one destination. retry reports whether a
// failure is transient (rate limit, server error, network) and worth trying
// again; it is meaningless when err is nil.
type Notifier interface {
	Notify(ctx context.Context, msgs ...*Message) (retry bool, err error)
}

// Field is one named value of a message.
type Field struct {
	Name  string `json:"field"`
	Value string `json:"value"`
}

// Message is what a person is told about one signal (or, built the same
// way, one incident). It carries plain values only, so integrations and the
// delivery queues need not know the detector's types.
type Message struct {
	// SignalID is the id of the alert document announced: a signal's, or an
	// incident's.
	SignalID   string    `json:"signal_id"`
	RuleID     string    `json:"rule_id"`
	RuleName   string    `json:"rule_name"`
	Identity   string    `json:"identity"` // readable entity label
	Entity     []Field   `json:"entity,omitempty"`
	Values     []Field   `json:"values,omitempty"`
	Score      float64   `json:"score"`
	Confidence string    `json:"confidence"`
	Severity   string    `json:"severity"`
	RiskScore  int       `json:"risk_score"`
	Reason     string    `json:"reason"`
	Events     int64     `json:"events"`
	FirstEvent time.Time `json:"first_event"`
	LastEvent  time.Time `json:"last_event"`
	Link       string    `json:"link,omitempty"`
	// Group names the incident the message belongs to: per channel, one
	// message per group is sent within the suppression window. Empty means
	// the rule and the identity (a rule signal's incident); an incident's
	// message sets its incident id.
	Group string `json:"group,omitempty"`
	// Suppressed counts the messages of the same group held back during the
	// previous suppression window on this channel.
	Suppressed int `json:"suppressed,omitempty"`
}

// GroupKey is the suppression key of the message: Group, or the rule and
// the identity.
func (m *Message) GroupKey() string {
	if m.Group != "" {
		return m.Group
	}
	return m.RuleID + "\x00" + m.Identity
}

// What is the value that made the signal, readable: "DeleteTrail" for one
// field, "service=iam, action=CreateUser" for a tuple.
func (m *Message) What() string {
	if len(m.Values) == 1 {
		return m.Values[0].Value
	}
	parts := make([]string, len(m.Values))
	for i, f := range m.Values {
		parts[i] = f.Name + "=" + f.Value
	}
	return strings.Join(parts, ", ")
}

// ScoreText is the score without trailing zeros.
func (m *Message) ScoreText() string { return strconv.FormatFloat(m.Score, 'f', -1, 64) }

// Title is a one-line summary: "[high] Unusual AWS Command for a User: alice — DeleteTrail (score 92.5)".
func (m *Message) Title() string {
	return fmt.Sprintf("[%s] %s: %s — %s (score %s)", m.Severity, m.RuleName, m.Identity, m.What(), m.ScoreText())
}

// LinkFuncs are the functions a link template may use besides text/template's
// own (urlquery, js, …).
var LinkFuncs = template.FuncMap{
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// shift moves a time, e.g. {{ .FirstEvent | shift "-15m" | rfc3339 }},
	// so a Discover link opens with some context around the events.
	"shift": func(d string, t time.Time) (time.Time, error) {
		dd, err := time.ParseDuration(d)
		return t.Add(dd), err
	},
}

// ParseLinkTemplate compiles a link_template. The template sees the Message
// (without Link): {{.SignalID}}, {{.RuleID}}, {{.FirstEvent}}, …
func ParseLinkTemplate(s string) (*template.Template, error) {
	t, err := template.New("link_template").Option("missingkey=error").Funcs(LinkFuncs).Parse(s)
	if err != nil {
		return nil, fmt.Errorf("link_template: %w", err)
	}
	return t, nil
}

// FromSignal builds the message for a signal; link, when not nil, renders
// the message's Link.
func FromSignal(sig *detector.Signal, link *template.Template) (*Message, error) {
	m := &Message{
		SignalID:   sig.ID,
		RuleID:     sig.RuleID,
		RuleName:   sig.RuleName,
		Identity:   sig.Label,
		Entity:     fields(sig.Entity),
		Values:     fields(sig.Value),
		Score:      sig.Score,
		Confidence: string(sig.Confidence),
		Severity:   sig.Severity,
		RiskScore:  sig.RiskScore,
		Reason:     sig.Reason,
		Events:     sig.Count,
	}
	if m.RuleName == "" {
		m.RuleName = m.RuleID
	}
	if n := len(sig.Events); n > 0 {
		m.FirstEvent, m.LastEvent = sig.Events[0].Time.UTC(), sig.Events[n-1].Time.UTC()
	} else {
		m.FirstEvent, m.LastEvent = sig.Window.From.UTC(), sig.Window.To.UTC()
	}
	if link != nil {
		var b bytes.Buffer
		if err := link.Execute(&b, m); err != nil {
			return nil, fmt.Errorf("signal %s: link_template: %w", sig.ID, err)
		}
		m.Link = strings.TrimSpace(b.String())
	}
	return m, nil
}

func fields(in []detector.Field) []Field {
	if len(in) == 0 {
		return nil
	}
	out := make([]Field, len(in))
	for i, f := range in {
		out[i] = Field{Name: f.Name, Value: f.Value}
	}
	return out
}

// Text is the message as plain text for ticketing systems (ServiceNow,
// Zendesk): title line, the numbers, the reason, the link and the ids.
func (m *Message) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s, risk score %d)\n\n", m.RuleName, m.Severity, m.RiskScore)
	fmt.Fprintf(&b, "Identity: %s\nWhat: %s\nScore: %s (confidence %s)\nEvents: %d between %s and %s\n\n",
		m.Identity, m.What(), m.ScoreText(), m.Confidence, m.Events,
		m.FirstEvent.UTC().Format(time.RFC3339), m.LastEvent.UTC().Format(time.RFC3339))
	if m.Reason != "" {
		b.WriteString(m.Reason + "\n\n")
	}
	if m.Link != "" {
		fmt.Fprintf(&b, "Open: %s\n", m.Link)
	}
	fmt.Fprintf(&b, "Rule: %s\nSignal: %s\n", m.RuleID, m.SignalID)
	if m.Suppressed > 0 {
		fmt.Fprintf(&b, "%d similar signal(s) were suppressed since the last message.\n", m.Suppressed)
	}
	return b.String()
}
