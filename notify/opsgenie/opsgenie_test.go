package opsgenie

import (
	"bytes"
	"context"
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

	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

const key = "0b1c2d3e-genie-secret-key"

func TestAlert(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/alerts" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if a := r.Header.Get("Authorization"); a != "GenieKey "+key {
			t.Errorf("Authorization %q", a)
		}
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"result":"Request will be processed","took":0.01,"requestId":"x"}`)
	}))
	defer srv.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{
		APIKeyFile: keyFile,
		URL:        srv.URL + "/", // a trailing slash is tolerated
		Responders: []Responder{{Type: "team", Name: "secops"}},
		Tags:       []string{"aws"},
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.Suppressed = 2
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	notifytest.GoldenJSON(t, "alert.json", got)

	var a Alert
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if a.Alias != m.SignalID {
		t.Errorf("alias = %q, want the signal id %q", a.Alias, m.SignalID)
	}
}

func TestMessageLimit(t *testing.T) {
	n, err := New(Config{APIKey: "k"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.RuleName = strings.Repeat("ä", 200)
	if got := n.NewAlert(m).Message; len([]rune(got)) != maxMessage {
		t.Errorf("message has %d runes, want %d", len([]rune(got)), maxMessage)
	}
}

func TestPriority(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"critical", "P1"}, {"high", "P2"}, {"medium", "P3"}, {"low", "P4"}, {"", "P4"},
	} {
		if got := Priority(tc.in); got != tc.want {
			t.Errorf("Priority(%q) = %q, want %q", tc.in, got, tc.want)
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
			_, _ = io.WriteString(w, `{"message":"Key format is not valid!","took":0.001,"requestId":"x"}`)
		}))
		n, err := New(Config{APIKey: "k", URL: srv.URL}, zerolog.Nop())
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
// the notifier every way, looking for the key.
func TestSecretNeverPrints(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	defer srv.Close()
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	var outs []string
	for _, u := range []string{srv.URL, down.URL} {
		cfg := Config{APIKey: key, URL: u}
		n, err := New(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Notify(context.Background(), notifytest.Message())
		if err == nil {
			t.Fatalf("%s: no error", u)
		}
		outs = append(outs, err.Error())
		for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
			outs = append(outs, fmt.Sprintf(f, cfg), fmt.Sprintf(f, n), fmt.Sprintf(f, *n))
		}
		j, _ := json.Marshal(cfg)
		outs = append(outs, string(j))
	}
	if _, err := New(Config{APIKey: notify.Secret(key), APIKeyFile: "/nonexistent"}, log); err != nil {
		outs = append(outs, err.Error())
	}
	outs = append(outs, logs.String())
	for _, out := range outs {
		if strings.Contains(out, key) {
			t.Errorf("key printed: %s", out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{APIKeyFile: "/nonexistent"},
		{APIKey: "k", APIKeyFile: "/nonexistent"},
		{APIKey: "k", URL: "api.opsgenie.invalid"},
		{APIKey: "k", Responders: []Responder{{Type: "group", Name: "x"}}},
		{APIKey: "k", Responders: []Responder{{Type: "team"}}},
	} {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
	n, err := New(Config{APIKey: "k"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if n.url != DefaultURL+"/v2/alerts" || n.cfg.Source != "offtrail" {
		t.Errorf("defaults: %v %+v", n.url, n.cfg)
	}
}
