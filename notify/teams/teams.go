// Package teams posts offtrail signals to Microsoft Teams through a
// Workflows (Power Automate) webhook, one Adaptive Card per signal.
//
// The body is the message envelope the "When a Teams webhook request is
// received" trigger expects: {"type":"message","attachments":[{"contentType":
// "application/vnd.microsoft.card.adaptive","content":<card>}]}. The retired
// Office 365 connectors' MessageCard format is not sent.
package teams

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

// Adaptive Card constants: version 1.4 is what Teams renders everywhere
// (desktop, web, mobile).
const (
	cardContentType = "application/vnd.microsoft.card.adaptive"
	cardSchema      = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardVersion     = "1.4"
	maxReason       = 3000
)

// Config is a Teams channel's settings.
type Config struct {
	// WebhookURL is the workflow's HTTP trigger URL; its sig parameter is
	// the credential.
	WebhookURL     notify.Secret `yaml:"webhook_url,omitempty" json:"webhook_url,omitempty"`
	WebhookURLFile string        `yaml:"webhook_url_file,omitempty" json:"webhook_url_file,omitempty"`
	// LinkText labels the button that opens the signal (default "Open in Kibana").
	LinkText string        `yaml:"link_text,omitempty" json:"link_text,omitempty"`
	Timeout  time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Notifier posts to one workflow.
type Notifier struct {
	url      notify.Secret
	linkText string
	client   *http.Client
	log      zerolog.Logger
}

// String hides the URL: fmt does not call a Secret's String for unexported
// fields, so a Notifier printed with %+v would show it.
func (n Notifier) String() string { return "teams(<secret>)" }

// GoString is String, for %#v.
func (n Notifier) GoString() string { return n.String() }

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	u, err := notify.LoadSecret(cfg.WebhookURL, cfg.WebhookURLFile, "webhook_url")
	if err != nil {
		return nil, fmt.Errorf("teams: %w", err)
	}
	if u == "" {
		return nil, errors.New("teams: webhook_url or webhook_url_file is required")
	}
	if !strings.HasPrefix(u.Value(), "https://") && !strings.HasPrefix(u.Value(), "http://") {
		return nil, errors.New("teams: webhook_url must be an http(s) URL")
	}
	n := &Notifier{url: u, linkText: cfg.LinkText, client: notify.NewHTTPClient(cfg.Timeout), log: log}
	if n.linkText == "" {
		n.linkText = "Open in Kibana"
	}
	return n, nil
}

// Notify posts each message; it stops at the first failure. A workflow
// answers 202 once the run is queued.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	for _, m := range msgs {
		body, err := json.Marshal(Payload(m, n.linkText))
		if err != nil {
			return false, fmt.Errorf("teams: %w", err)
		}
		if retry, err := notify.Post(ctx, n.client, "teams", n.url.Value(), "application/json", body, nil); err != nil {
			return retry, err
		}
	}
	return false, nil
}

// Message is the webhook's JSON body.
type Message struct {
	Type        string       `json:"type"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment carries one card.
type Attachment struct {
	ContentType string `json:"contentType"`
	ContentURL  any    `json:"contentUrl"` // null, as the trigger's schema has it
	Content     Card   `json:"content"`
}

// Card is an Adaptive Card (only what offtrail uses).
type Card struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
	MSTeams *MSTeams  `json:"msteams,omitempty"`
}

// Element is a TextBlock or a FactSet.
type Element struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	Size     string `json:"size,omitempty"`
	Weight   string `json:"weight,omitempty"`
	Color    string `json:"color,omitempty"`
	IsSubtle bool   `json:"isSubtle,omitempty"`
	Wrap     bool   `json:"wrap,omitempty"`
	Facts    []Fact `json:"facts,omitempty"`
}

// Fact is one title and value of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Action is an Action.OpenUrl button.
type Action struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// MSTeams holds Teams' card extensions.
type MSTeams struct {
	Width string `json:"width"`
}

// Payload lays out one message: a headline coloured by severity, the facts,
// the reason, a context line and a button to the signal.
func Payload(m *notify.Message, linkText string) Message {
	body := []Element{
		{Type: "TextBlock", Text: escape(fmt.Sprintf("%s · %s", m.RuleName, strings.ToUpper(m.Severity))),
			Size: "Large", Weight: "Bolder", Color: color(m.Severity), Wrap: true},
		{Type: "FactSet", Facts: []Fact{
			{"Identity", escape(m.Identity)},
			{"What", escape(m.What())},
			{"Score", m.ScoreText()},
			{"Confidence", escape(m.Confidence)},
			{"Risk score", fmt.Sprint(m.RiskScore)},
		}},
	}
	if m.Reason != "" {
		body = append(body, Element{Type: "TextBlock", Text: escape(truncate(m.Reason, maxReason)), Wrap: true})
	}
	body = append(body, Element{Type: "TextBlock", Text: escape(contextLine(m)), Size: "Small", IsSubtle: true, Wrap: true})
	card := Card{Schema: cardSchema, Type: "AdaptiveCard", Version: cardVersion, Body: body, MSTeams: &MSTeams{Width: "Full"}}
	if m.Link != "" {
		card.Actions = []Action{{Type: "Action.OpenUrl", Title: linkText, URL: m.Link}}
	}
	return Message{Type: "message", Attachments: []Attachment{{ContentType: cardContentType, Content: card}}}
}

func contextLine(m *notify.Message) string {
	s := fmt.Sprintf("rule %s · %d event(s) %s – %s · signal %s", m.RuleID, m.Events,
		m.FirstEvent.UTC().Format(time.RFC3339), m.LastEvent.UTC().Format(time.RFC3339), m.SignalID)
	if m.Suppressed > 0 {
		s += fmt.Sprintf(" · %d similar signal(s) suppressed since the last message", m.Suppressed)
	}
	return s
}

// color is the headline's colour: red for what pages, amber for medium.
func color(severity string) string {
	switch severity {
	case "critical", "high":
		return "Attention"
	case "medium":
		return "Warning"
	}
	return "Default"
}

// escape keeps values literal: TextBlocks and facts render a Markdown
// subset, so an identity like "[x](https://evil)" or "svc_a_b" would
// otherwise become a link or italics. Backslash escapes are what the
// Adaptive Card renderers honour.
func escape(s string) string { return markdown.Replace(s) }

var markdown = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, "`", "\\`")

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
