package servicenow

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
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

const password = "sn-very-secret-password"

// instance is a fake incident table: incidents by correlation_id, and the
// bodies it received.
type instance struct {
	t         *testing.T
	wantAuth  string
	mu        sync.Mutex
	incidents map[string]string // correlation_id → sys_id
	created   [][]byte
	updated   map[string][][]byte // sys_id → bodies
}

func newInstance(t *testing.T, wantAuth string) (*instance, *httptest.Server) {
	in := &instance{t: t, wantAuth: wantAuth, incidents: map[string]string{}, updated: map[string][][]byte{}}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	return in, srv
}

func (in *instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if a := r.Header.Get("Authorization"); a != in.wantAuth {
		in.t.Errorf("Authorization %q, want %q", a, in.wantAuth)
	}
	if r.Header.Get("Accept") != "application/json" {
		in.t.Errorf("Accept %q", r.Header.Get("Accept"))
	}
	body, _ := io.ReadAll(r.Body)
	const table = "/api/now/table/incident"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == table:
		q := r.URL.Query()
		id, _ := strings.CutPrefix(q.Get("sysparm_query"), "correlation_id=")
		if q.Get("sysparm_fields") != "sys_id" || q.Get("sysparm_limit") != "1" {
			in.t.Errorf("query %q", r.URL.RawQuery)
		}
		res := []map[string]string{}
		if sys, ok := in.incidents[id]; ok {
			res = append(res, map[string]string{"sys_id": sys})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"result": res})
	case r.Method == http.MethodPost && r.URL.Path == table:
		var inc Incident
		_ = json.Unmarshal(body, &inc)
		sys := fmt.Sprintf("sys%03d", len(in.incidents)+1)
		in.incidents[inc.CorrelationID] = sys
		in.created = append(in.created, body)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"result": map[string]string{"sys_id": sys, "number": "INC0010001"}})
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, table+"/"):
		sys := strings.TrimPrefix(r.URL.Path, table+"/")
		in.updated[sys] = append(in.updated[sys], body)
		_ = json.NewEncoder(w).Encode(map[string]any{"result": map[string]string{"sys_id": sys}})
	default:
		in.t.Errorf("%s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusBadRequest)
	}
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestCreateThenUpdate(t *testing.T) {
	in, srv := newInstance(t, basic("offtrail", password))
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{
		URL: srv.URL + "/", Username: "offtrail", PasswordFile: file,
		AssignmentGroup: "SecOps", Category: "security", Subcategory: "aws",
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	m.Suppressed = 4 // the same signal again, e.g. from another replica
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(in.created) != 1 {
		t.Fatalf("%d incidents created, want 1", len(in.created))
	}
	notifytest.GoldenJSON(t, "incident.json", in.created[0])
	if len(in.updated["sys001"]) != 1 {
		t.Fatalf("updates %v, want one of sys001", in.updated)
	}
	notifytest.GoldenJSON(t, "update.json", in.updated["sys001"][0])

	other := notifytest.Message()
	other.SignalID = "0123456789abcdef0123456789abcdef"
	if _, err := n.Notify(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if len(in.created) != 2 {
		t.Errorf("a new signal opened %d incidents in all, want 2", len(in.created))
	}
}

func TestBearerToken(t *testing.T) {
	in, srv := newInstance(t, "Bearer oauth-token")
	n, err := New(Config{URL: srv.URL, Token: "oauth-token"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(context.Background(), notifytest.Message()); err != nil {
		t.Fatal(err)
	}
	if len(in.created) != 1 {
		t.Errorf("%d incidents created, want 1", len(in.created))
	}
}

func TestUnsafeIDIsNotLookedUp(t *testing.T) {
	in, srv := newInstance(t, "Bearer t")
	n, err := New(Config{URL: srv.URL, Token: "t"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.SignalID = "x^ORactive=true"
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(in.created) != 1 {
		t.Errorf("%d incidents created, want 1", len(in.created))
	}
}

func TestUrgencyImpact(t *testing.T) {
	for _, tc := range []struct{ in, urgency, impact string }{
		{"critical", "1", "1"}, {"high", "1", "2"}, {"medium", "2", "2"}, {"low", "2", "3"}, {"", "2", "3"},
	} {
		if u, i := UrgencyImpact(tc.in); u != tc.urgency || i != tc.impact {
			t.Errorf("UrgencyImpact(%q) = %s, %s, want %s, %s", tc.in, u, i, tc.urgency, tc.impact)
		}
	}
}

// TestRetryClassification fails the lookup, the creation and the update in
// turn.
func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		failing string // the method that fails
		status  int
		body    string
		retry   bool
	}{
		{http.MethodGet, 400, `{"error":{"message":"Invalid query"}}`, false},
		{http.MethodGet, 401, `{"error":{"message":"User Not Authenticated"}}`, false},
		{http.MethodGet, 200, `<html>login</html>`, true},
		{http.MethodGet, 429, ``, true},
		{http.MethodPost, 403, `{"error":{"message":"Operation Failed"}}`, false},
		{http.MethodPost, 500, ``, true},
		{http.MethodPatch, 404, `{"error":{"message":"No Record found"}}`, false},
		{http.MethodPatch, 503, ``, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == tc.failing:
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			case r.Method == http.MethodGet && tc.failing == http.MethodPatch:
				_, _ = io.WriteString(w, `{"result":[{"sys_id":"sys001"}]}`)
			case r.Method == http.MethodGet:
				_, _ = io.WriteString(w, `{"result":[]}`)
			default:
				w.WriteHeader(http.StatusCreated)
			}
		}))
		n, err := New(Config{URL: srv.URL, Token: "t"}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		r, err := n.Notify(context.Background(), notifytest.Message())
		srv.Close()
		if err == nil || r != tc.retry {
			t.Errorf("%s %d: retry=%v err=%v, want retry=%v", tc.failing, tc.status, r, err, tc.retry)
		}
	}
}

// TestSecretNeverPrints fails requests every way and prints the config and
// the notifier every way, looking for the password (plain and as sent).
func TestSecretNeverPrints(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	var logs bytes.Buffer
	var outs []string
	for _, cfg := range []Config{
		{URL: srv.URL, Username: "u", Password: password},
		{URL: down.URL, Username: "u", Password: password},
		{URL: srv.URL, Token: password},
		{URL: "http://[::1", Token: password},
	} {
		n, err := New(cfg, zerolog.New(&logs))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Notify(context.Background(), notifytest.Message()); err == nil {
			t.Fatalf("%s: no error", cfg.URL)
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
	encoded := strings.TrimPrefix(basic("u", password), "Basic ")
	for _, out := range outs {
		if strings.Contains(out, password) || strings.Contains(out, encoded) {
			t.Errorf("password printed: %s", out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{URL: "https://acme.service-now.example"},
		{URL: "acme.service-now.example", Token: "t"},
		{URL: "https://acme.service-now.example", Username: "u"},
		{URL: "https://acme.service-now.example", Password: "p"},
		{URL: "https://acme.service-now.example", Token: "t", Username: "u", Password: "p"},
		{URL: "https://acme.service-now.example", Username: "u", PasswordFile: "/nonexistent"},
		{URL: "https://acme.service-now.example", Token: "t", TokenFile: "/nonexistent"},
	} {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}
