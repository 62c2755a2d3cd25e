package zendesk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

const token = "zd-very-secret-api-token"

func TestTicket(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/tickets.json" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != "offtrail@example.com/token" || pass != token {
			t.Errorf("basic auth %q %q %v", user, pass, ok)
		}
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ticket":{"id":35436}}`)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{
		URL: srv.URL, Email: "offtrail@example.com", APITokenFile: file,
		GroupID: 360001234567, TicketType: "incident", Tags: []string{"aws"},
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.Suppressed = 3
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	notifytest.GoldenJSON(t, "ticket.json", got)

	var req Request
	if err := json.Unmarshal(got, &req); err != nil {
		t.Fatal(err)
	}
	if req.Ticket.ExternalID != m.SignalID {
		t.Errorf("external_id = %q, want the signal id %q", req.Ticket.ExternalID, m.SignalID)
	}
}

func TestPriority(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"critical", "urgent"}, {"high", "high"}, {"medium", "normal"}, {"low", "low"}, {"", "low"},
	} {
		if got := Priority(tc.in); got != tc.want {
			t.Errorf("Priority(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTag(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"aws-rare-method-for-user", "aws-rare-method-for-user"},
		{"My Rule  ID", "my_rule_id"},
	} {
		if got := tag(tc.in); got != tc.want {
			t.Errorf("tag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		status int
		retry  bool
	}{
		{400, false}, {401, false}, {403, false}, {404, false}, {422, false},
		{429, true}, {500, true}, {503, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, `{"error":"RecordInvalid","description":"Record validation errors"}`)
		}))
		n, err := New(Config{URL: srv.URL, Email: "a@example.com", APIToken: "t"}, zerolog.Nop())
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
// the notifier every way, looking for the token (plain and as sent).
func TestSecretNeverPrints(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"Couldn't authenticate you"}`)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	var logs bytes.Buffer
	var outs []string
	for _, u := range []string{srv.URL, down.URL} {
		cfg := Config{URL: u, Email: "a@example.com", APIToken: token}
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
	encoded := base64.StdEncoding.EncodeToString([]byte("a@example.com/token:" + token))
	for _, out := range outs {
		if strings.Contains(out, token) || strings.Contains(out, encoded) {
			t.Errorf("token printed: %s", out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{URL: "https://acme.zendesk.example", Email: "a@example.com", APIToken: "t"}
	for _, edit := range []func(*Config){
		func(c *Config) { c.APIToken = "" },
		func(c *Config) { c.APITokenFile = "/nonexistent" },
		func(c *Config) { c.URL = "" },
		func(c *Config) { c.URL = "acme.zendesk.example" },
		func(c *Config) { c.Email = "" },
		func(c *Config) { c.TicketType = "bug" },
	} {
		cfg := ok
		edit(&cfg)
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
	if _, err := New(ok, zerolog.Nop()); err != nil {
		t.Errorf("New(%+v): %v", ok, err)
	}
}
