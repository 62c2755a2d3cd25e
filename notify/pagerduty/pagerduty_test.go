package pagerduty

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

func TestEvent(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
	}))
	defer srv.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("R0UTINGKEY0000000000000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{RoutingKeyFile: keyFile, URL: srv.URL + "/v2/enqueue", Component: "cloudtrail", Group: "prod"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	notifytest.GoldenJSON(t, "event.json", got)

	var ev Event
	if err := json.Unmarshal(got, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DedupKey != m.SignalID {
		t.Errorf("dedup_key = %q, want the signal id %q", ev.DedupKey, m.SignalID)
	}
	if ev.RoutingKey != "R0UTINGKEY0000000000000000000000" {
		t.Errorf("routing_key = %q (from the file, newline dropped)", ev.RoutingKey)
	}
}

func TestSeverity(t *testing.T) {
	for in, want := range map[string]string{"low": "info", "medium": "warning", "high": "error", "critical": "critical", "": "info"} {
		if got := Severity(in); got != want {
			t.Errorf("Severity(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetryClassification(t *testing.T) {
	for status, retry := range map[int]bool{400: false, 403: false, 404: false, 429: true, 500: true, 502: true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"status":"invalid event","message":"Event object is invalid"}`)
		}))
		n, err := New(Config{RoutingKey: "k", URL: srv.URL}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		r, err := n.Notify(context.Background(), notifytest.Message())
		srv.Close()
		if err == nil || r != retry {
			t.Errorf("status %d: retry=%v err=%v, want retry=%v", status, r, err, retry)
		}
	}
}

func TestDefaults(t *testing.T) {
	if _, err := New(Config{}, zerolog.Nop()); err == nil {
		t.Error("no routing key: no error")
	}
	if _, err := New(Config{RoutingKey: "k", URL: "events.example/v2/enqueue"}, zerolog.Nop()); err == nil {
		t.Error("URL without scheme: no error")
	}
	n, err := New(Config{RoutingKey: "k"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if n.cfg.URL != DefaultURL || n.cfg.Source != "offtrail" {
		t.Errorf("defaults: %+v", n.cfg)
	}
}
