package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

// workflowPath looks like a Workflows trigger URL; sig is its credential.
const workflowPath = "/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=very-secret-sig"

func TestPayload(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if r.URL.Query().Get("sig") != "very-secret-sig" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	n, err := New(Config{WebhookURL: notify.Secret(srv.URL + workflowPath)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.Suppressed = 7
	m.Identity = "[svc_deploy](https://evil.example)" // must stay literal
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	notifytest.GoldenJSON(t, "payload.json", got)

	var p Message
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "message" || len(p.Attachments) != 1 || p.Attachments[0].ContentType != cardContentType {
		t.Errorf("envelope: %+v", p)
	}
}

func TestNoLinkNoButton(t *testing.T) {
	m := notifytest.Message()
	m.Link = ""
	if a := Payload(m, "Open").Attachments[0].Content.Actions; a != nil {
		t.Errorf("actions without a link: %+v", a)
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"svc_a_b", `svc\_a\_b`},
		{"[x](https://e)", `\[x\](https://e)`},
		{"**bold**", `\*\*bold\*\*`},
		{`a\b`, `a\\b`},
		{"`code`", "\\`code\\`"},
	} {
		if got := escape(tc.in); got != tc.want {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		status int
		retry  bool
	}{
		{400, false}, {401, false}, {404, false}, {413, false},
		{429, true}, {500, true}, {502, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, `{"error":{"code":"TriggerInputSchemaMismatch"}}`)
		}))
		n, err := New(Config{WebhookURL: notify.Secret(srv.URL + workflowPath)}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		r, err := n.Notify(context.Background(), notifytest.Message())
		srv.Close()
		if err == nil || r != tc.retry {
			t.Errorf("status %d: retry=%v err=%v, want retry=%v", tc.status, r, err, tc.retry)
		}
	}
}

// TestSecretNeverPrints fails requests every way and prints the config and
// the notifier every way, looking for the URL's credential.
func TestSecretNeverPrints(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	var logs bytes.Buffer
	var outs []string
	for _, u := range []string{srv.URL, down.URL, "http://[::1" /* unparsable */} {
		cfg := Config{WebhookURL: notify.Secret(u + workflowPath)}
		n, err := New(cfg, zerolog.New(&logs))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Notify(context.Background(), notifytest.Message()); err == nil {
			t.Fatalf("%s: no error", u)
		} else {
			outs = append(outs, err.Error())
		}
		for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
			outs = append(outs, fmt.Sprintf(f, cfg), fmt.Sprintf(f, n), fmt.Sprintf(f, *n))
		}
		j, _ := json.Marshal(cfg)
		outs = append(outs, string(j))
	}
	outs = append(outs, logs.String())
	for _, out := range outs {
		if strings.Contains(out, "very-secret-sig") {
			t.Errorf("credential printed: %s", out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{WebhookURL: "prod-00.westeurope.logic.invalid/workflows"},
		{WebhookURL: "https://x", WebhookURLFile: "/nonexistent"},
		{WebhookURLFile: "/nonexistent"},
	} {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}
