package slack

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

func TestPayload(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		got, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	n, err := New(Config{WebhookURL: notify.Secret(srv.URL + "/services/T0/B0/xyz")}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.Suppressed = 7
	m.Identity = "<!channel> & co" // must not become a mention
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	notifytest.GoldenJSON(t, "payload.json", got)
}

func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		retry  bool
	}{
		{400, "invalid_payload", false},
		{403, "invalid_token", false},
		{404, "channel_not_found", false},
		{410, "channel_is_archived", false},
		{429, "rate_limited", true},
		{500, "rollup_error", true},
		{503, "", true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		}))
		secret := srv.URL + "/services/T0/B0/very-secret-token"
		n, err := New(Config{WebhookURL: notify.Secret(secret)}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		retry, err := n.Notify(context.Background(), notifytest.Message())
		srv.Close()
		if err == nil {
			t.Fatalf("%d: no error", tc.status)
		}
		if retry != tc.retry {
			t.Errorf("%d: retry = %v, want %v (%v)", tc.status, retry, tc.retry, err)
		}
		if strings.Contains(err.Error(), "very-secret-token") {
			t.Errorf("%d: error leaks the webhook URL: %v", tc.status, err)
		}
	}
}

func TestNetworkErrorRetriesWithoutLeakingURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T0/B0/very-secret-token"
	srv.Close() // nothing listens any more
	n, err := New(Config{WebhookURL: notify.Secret(url)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	retry, err := n.Notify(context.Background(), notifytest.Message())
	if err == nil || !retry {
		t.Fatalf("retry=%v err=%v, want a retryable error", retry, err)
	}
	if strings.Contains(err.Error(), "very-secret-token") {
		t.Errorf("error leaks the webhook URL: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{WebhookURL: "hooks.slack.invalid/x"},
		{WebhookURL: "https://x", WebhookURLFile: "/nonexistent"},
		{WebhookURLFile: "/nonexistent"},
	} {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}
