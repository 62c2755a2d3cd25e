// Package webhook POSTs offtrail signals as JSON to any HTTP endpoint,
// signed with HMAC-SHA256 so the receiver can tell they came from offtrail.
//
// Receivers verify a request by computing HMAC-SHA256 over the raw body with
// the shared secret and comparing it, in constant time, with the hex digest
// in X-Offtrail-Signature ("sha256=<hex>"); Verify does exactly that. The
// body's "timestamp" (also sent as X-Offtrail-Timestamp) is covered by the
// signature, so a receiver can refuse stale replays.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
)

// Headers offtrail sets on each request.
const (
	SignatureHeader = "X-Offtrail-Signature"
	TimestampHeader = "X-Offtrail-Timestamp"
)

// Version of the body's schema; bumped on incompatible changes.
const Version = "1"

// Config is a webhook channel's settings.
type Config struct {
	// URL may embed a token, hence a Secret.
	URL     notify.Secret `yaml:"url,omitempty" json:"url,omitempty"`
	URLFile string        `yaml:"url_file,omitempty" json:"url_file,omitempty"`
	// Secret is the HMAC key; without one requests go unsigned.
	Secret     notify.Secret `yaml:"secret,omitempty" json:"secret,omitempty"`
	SecretFile string        `yaml:"secret_file,omitempty" json:"secret_file,omitempty"`
	// Headers are added to each request (e.g. Authorization); their values
	// are secrets.
	Headers map[string]notify.Secret `yaml:"headers,omitempty" json:"headers,omitempty"`
	Timeout time.Duration            `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Notifier posts to one endpoint.
type Notifier struct {
	url     string
	secret  []byte
	headers http.Header
	client  *http.Client
	now     func() time.Time
	log     zerolog.Logger
}

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	u, err := notify.LoadSecret(cfg.URL, cfg.URLFile, "url")
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if !strings.HasPrefix(u.Value(), "https://") && !strings.HasPrefix(u.Value(), "http://") {
		return nil, errors.New("webhook: url (or url_file) must be an http(s) URL")
	}
	sec, err := notify.LoadSecret(cfg.Secret, cfg.SecretFile, "secret")
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	h := http.Header{}
	for k, v := range cfg.Headers {
		switch http.CanonicalHeaderKey(k) {
		case SignatureHeader, TimestampHeader, "Content-Type":
			return nil, fmt.Errorf("webhook: header %s is set by offtrail", k)
		}
		h.Set(k, v.Value())
	}
	return &Notifier{url: u.Value(), secret: []byte(sec.Value()), headers: h, client: notify.NewHTTPClient(cfg.Timeout), now: time.Now, log: log}, nil
}

// Body is the JSON a webhook receives.
type Body struct {
	Version   string            `json:"version"`
	Sender    string            `json:"sender"`
	Timestamp string            `json:"timestamp"` // RFC 3339, when sent
	Messages  []*notify.Message `json:"messages"`
}

// Notify sends all messages in one request.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	now := n.now().UTC()
	body, err := json.Marshal(Body{Version: Version, Sender: "offtrail", Timestamp: now.Format(time.RFC3339), Messages: msgs})
	if err != nil {
		return false, fmt.Errorf("webhook: %w", err)
	}
	h := n.headers.Clone()
	h.Set(TimestampHeader, strconv.FormatInt(now.Unix(), 10))
	if len(n.secret) > 0 {
		h.Set(SignatureHeader, Sign(n.secret, body))
	}
	return notify.Post(ctx, n.client, "webhook", n.url, "application/json", body, h)
}

// Sign returns the signature header value for body: "sha256=<hex>".
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header is body's signature under secret.
func Verify(secret, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}
