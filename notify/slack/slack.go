// Package slack posts offtrail signals to a Slack incoming webhook, one
// message per signal with Block Kit layout and a plain-text fallback.
package slack

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

// Config is a Slack channel's settings.
type Config struct {
	// WebhookURL is the incoming webhook (it embeds its credential).
	WebhookURL     notify.Secret `yaml:"webhook_url,omitempty" json:"webhook_url,omitempty"`
	WebhookURLFile string        `yaml:"webhook_url_file,omitempty" json:"webhook_url_file,omitempty"`
	// LinkText labels the button that opens the signal (default "Open in Kibana").
	LinkText string        `yaml:"link_text,omitempty" json:"link_text,omitempty"`
	Timeout  time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Notifier posts to one webhook.
type Notifier struct {
	url      string
	linkText string
	client   *http.Client
	log      zerolog.Logger
}

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	u, err := notify.LoadSecret(cfg.WebhookURL, cfg.WebhookURLFile, "webhook_url")
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if u == "" {
		return nil, errors.New("slack: webhook_url or webhook_url_file is required")
	}
	if !strings.HasPrefix(u.Value(), "https://") && !strings.HasPrefix(u.Value(), "http://") {
		return nil, errors.New("slack: webhook_url must be an http(s) URL")
	}
	n := &Notifier{url: u.Value(), linkText: cfg.LinkText, client: notify.NewHTTPClient(cfg.Timeout), log: log}
	if n.linkText == "" {
		n.linkText = "Open in Kibana"
	}
	return n, nil
}

// Notify posts each message; it stops at the first failure.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	for _, m := range msgs {
		body, err := json.Marshal(Payload(m, n.linkText))
		if err != nil {
			return false, fmt.Errorf("slack: %w", err)
		}
		if retry, err := notify.Post(ctx, n.client, "slack", n.url, "application/json", body, nil); err != nil {
			return retry, err
		}
	}
	return false, nil
}

// Message is the webhook's JSON body.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is one Block Kit block (only the kinds offtrail uses).
type Block struct {
	Type     string    `json:"type"`
	Text     *Text     `json:"text,omitempty"`
	Fields   []Text    `json:"fields,omitempty"`
	Elements []Element `json:"elements,omitempty"`
}

// Text is a text object.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Element is a context text or an actions button.
type Element struct {
	Type  string `json:"type"`
	Text  any    `json:"text,omitempty"`
	URL   string `json:"url,omitempty"`
	Style string `json:"style,omitempty"`
}

// Payload lays out one message: a header with the rule and severity, the
// identity, what, score and confidence side by side, the reason, a context
// line and a button to the signal.
func Payload(m *notify.Message, linkText string) Message {
	header := truncate(fmt.Sprintf("%s · %s", m.RuleName, strings.ToUpper(m.Severity)), 150)
	blocks := []Block{
		{Type: "header", Text: &Text{Type: "plain_text", Text: header}},
		{Type: "section", Fields: []Text{
			mrkdwn("*Identity*\n" + escape(m.Identity)),
			mrkdwn("*What*\n" + escape(m.What())),
			mrkdwn("*Score*\n" + m.ScoreText()),
			mrkdwn("*Confidence*\n" + escape(m.Confidence)),
		}},
	}
	if m.Reason != "" {
		blocks = append(blocks, Block{Type: "section", Text: ptr(mrkdwn(truncate(escape(m.Reason), 3000)))})
	}
	ctxLine := fmt.Sprintf("rule `%s` · risk %d · %d event(s) %s – %s",
		escape(m.RuleID), m.RiskScore, m.Events, m.FirstEvent.UTC().Format(time.RFC3339), m.LastEvent.UTC().Format(time.RFC3339))
	if m.Suppressed > 0 {
		ctxLine += fmt.Sprintf(" · %d similar signal(s) suppressed since the last message", m.Suppressed)
	}
	blocks = append(blocks, Block{Type: "context", Elements: []Element{{Type: "mrkdwn", Text: ctxLine}}})
	if m.Link != "" {
		blocks = append(blocks, Block{Type: "actions", Elements: []Element{{
			Type: "button", Text: Text{Type: "plain_text", Text: linkText}, URL: m.Link, Style: "primary",
		}}})
	}
	return Message{Text: escape(m.Title()), Blocks: blocks}
}

func mrkdwn(s string) Text { return Text{Type: "mrkdwn", Text: s} }

func ptr[T any](v T) *T { return &v }

// escape makes text safe for Slack's mrkdwn, where &, < and > are control
// characters (an identity cannot inject a <!channel> mention).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
