package main

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/offtrail/offtrail/mappings/dashboards"
	"github.com/offtrail/offtrail/mappings/kibana"
)

// importServer stands in for the saved objects import API (Kibana is a
// third-party UI, not an engine the tests run). It checks the request as
// Kibana and Dashboards do and records what it got.
type importServer struct {
	t        *testing.T
	xsrf     string
	path     string
	answer   string
	status   int
	failures int32 // answer 503 this many times first
	calls    atomic.Int32
	got      struct {
		file, name, auth, tenant string
	}
}

func (s *importServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.calls.Add(1)
	if n <= s.failures {
		http.Error(w, `{"statusCode":503,"error":"Service Unavailable","message":"Kibana server is not ready yet"}`, http.StatusServiceUnavailable)
		return
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != s.path:
		s.t.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, s.path)
	case r.URL.Query().Get("overwrite") != "true":
		s.t.Errorf("query %q lacks overwrite=true", r.URL.RawQuery)
	case r.Header.Get(s.xsrf) != "true":
		s.t.Errorf("no %s header: %v", s.xsrf, r.Header)
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		s.t.Errorf("multipart file: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(f)
	s.got.file, s.got.name = string(b), hdr.Filename
	s.got.auth = r.Header.Get("Authorization")
	s.got.tenant = r.Header.Get("securitytenant")
	if s.status != 0 {
		w.WriteHeader(s.status)
	}
	io.WriteString(w, s.answer)
}

const importOK = `{"success":true,"successCount":10,"successResults":[]}`

func TestDashboardsInstall(t *testing.T) {
	dir := t.TempDir()
	custom := filepath.Join(dir, "mine.ndjson")
	if err := os.WriteFile(custom, []byte(`{"id":"x","type":"index-pattern","attributes":{"title":"x-*"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		flag     string // --kibana or --dashboards
		extra    []string
		env      map[string]string
		srv      *importServer
		code     int
		wantFile string
		wantAuth string
		tenant   string
		out      string
	}{
		{
			name: "kibana basic auth", flag: "--kibana",
			env:      map[string]string{"OFFTRAIL_USERNAME": "elastic", "OFFTRAIL_PASSWORD": "changeme"},
			srv:      &importServer{xsrf: "kbn-xsrf", path: "/api/saved_objects/_import", answer: importOK},
			wantFile: string(kibana.SavedObjects), wantAuth: "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==",
			out: "Kibana: imported 10 saved object(s)",
		},
		{
			name: "kibana space and API key", flag: "--kibana", extra: []string{"--space", "security"},
			env:      map[string]string{"OFFTRAIL_API_KEY": "aWQ6a2V5"},
			srv:      &importServer{xsrf: "kbn-xsrf", path: "/s/security/api/saved_objects/_import", answer: importOK},
			wantFile: string(kibana.SavedObjects), wantAuth: "ApiKey aWQ6a2V5",
		},
		{
			name: "dashboards tenant and password file", flag: "--dashboards", extra: []string{"--tenant", "global"},
			env:      map[string]string{"OFFTRAIL_USERNAME": "admin", "OFFTRAIL_PASSWORD_FILE": pwFile},
			srv:      &importServer{xsrf: "osd-xsrf", path: "/api/saved_objects/_import", answer: importOK},
			wantFile: string(dashboards.SavedObjects), wantAuth: "Basic YWRtaW46czNjcmV0", tenant: "global",
			out: "OpenSearch Dashboards: imported 10",
		},
		{
			name: "custom file", flag: "--dashboards", extra: []string{"--file", custom},
			srv:      &importServer{xsrf: "osd-xsrf", path: "/api/saved_objects/_import", answer: `{"success":true,"successCount":1}`},
			wantFile: `{"id":"x","type":"index-pattern","attributes":{"title":"x-*"}}` + "\n",
		},
		{
			name: "waits while starting", flag: "--kibana", extra: []string{"--wait", "30s"},
			srv:      &importServer{xsrf: "kbn-xsrf", path: "/api/saved_objects/_import", answer: importOK, failures: 1},
			wantFile: string(kibana.SavedObjects),
		},
		{
			name: "not ready without wait", flag: "--kibana",
			srv:  &importServer{xsrf: "kbn-xsrf", path: "/api/saved_objects/_import", answer: importOK, failures: 1},
			code: 1,
		},
		{
			name: "object errors are reported", flag: "--kibana",
			srv: &importServer{xsrf: "kbn-xsrf", path: "/api/saved_objects/_import", answer: `{"success":false,"successCount":9,"errors":[` +
				`{"id":"offtrail-overview","type":"dashboard","title":"offtrail: AWS alerts","error":{"type":"missing_references","references":[{"type":"visualization","id":"gone"}]}}]}`},
			code: 1, wantFile: string(kibana.SavedObjects),
			out: "failed dashboard offtrail-overview (offtrail: AWS alerts): missing_references [missing visualization gone]",
		},
		{
			name: "unauthorized", flag: "--kibana",
			srv:  &importServer{xsrf: "kbn-xsrf", path: "/api/saved_objects/_import", status: 401, answer: `{"statusCode":401}`},
			code: 1, wantFile: string(kibana.SavedObjects),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OFFTRAIL_USERNAME", "OFFTRAIL_PASSWORD", "OFFTRAIL_PASSWORD_FILE", "OFFTRAIL_API_KEY", "OFFTRAIL_API_KEY_FILE", "OFFTRAIL_CA_CERT", "OFFTRAIL_TLS_INSECURE"} {
				t.Setenv(k, tc.env[k])
			}
			tc.srv.t = t
			srv := httptest.NewServer(tc.srv)
			defer srv.Close()
			args := append([]string{"dashboards", "install", tc.flag, srv.URL}, tc.extra...)
			var stdout, stderr bytes.Buffer
			if code := runMain(args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.wantFile != "" && tc.srv.got.file != tc.wantFile {
				t.Errorf("uploaded %d bytes, want the %d bytes of the objects", len(tc.srv.got.file), len(tc.wantFile))
			}
			// The built-in objects carry the incidents search and the
			// dashboard that shows it beside the rule signals.
			if tc.wantFile == string(kibana.SavedObjects) || tc.wantFile == string(dashboards.SavedObjects) {
				for _, id := range []string{`"id":"offtrail-incidents-table"`, `"id":"offtrail-alerts-table"`, `"id":"offtrail-overview"`} {
					if !strings.Contains(tc.srv.got.file, id) {
						t.Errorf("uploaded objects lack %s", id)
					}
				}
			}
			if tc.wantFile != "" && !strings.HasSuffix(tc.srv.got.name, ".ndjson") {
				t.Errorf("file name %q: the import API wants .ndjson", tc.srv.got.name)
			}
			if tc.srv.got.auth != tc.wantAuth {
				t.Errorf("Authorization %q, want %q", tc.srv.got.auth, tc.wantAuth)
			}
			if tc.srv.got.tenant != tc.tenant {
				t.Errorf("securitytenant %q, want %q", tc.srv.got.tenant, tc.tenant)
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, stdout.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), "changeme") || strings.Contains(stdout.String()+stderr.String(), "s3cret") {
				t.Error("a password was printed")
			}
		})
	}
}

func TestDashboardsInstallTLS(t *testing.T) {
	srv := httptest.NewTLSServer(&importServer{t: t, xsrf: "osd-xsrf", path: "/api/saved_objects/_import", answer: importOK})
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"OFFTRAIL_USERNAME", "OFFTRAIL_PASSWORD", "OFFTRAIL_API_KEY", "OFFTRAIL_TLS_INSECURE"} {
		t.Setenv(k, "")
	}
	var stdout, stderr bytes.Buffer
	t.Setenv("OFFTRAIL_CA_CERT", "")
	if code := runMain([]string{"dashboards", "install", "--dashboards", srv.URL}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "certificate") {
		t.Fatalf("untrusted certificate: exit %d, stderr %s", code, stderr.String())
	}
	t.Setenv("OFFTRAIL_CA_CERT", ca)
	stderr.Reset()
	if code := runMain([]string{"dashboards", "install", "--dashboards", srv.URL}, &stdout, &stderr); code != 0 {
		t.Fatalf("with the CA: exit %d, stderr %s", code, stderr.String())
	}
}

func TestDashboardsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"dashboards"},
		{"dashboards", "uninstall"},
		{"dashboards", "install"},
		{"dashboards", "install", "--kibana", "http://a", "--dashboards", "http://b"},
		{"dashboards", "install", "--kibana", "localhost:5601"},
		{"dashboards", "install", "--dashboards", "http://a", "--space", "x"},
		{"dashboards", "install", "--kibana", "http://a", "--tenant", "global"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

func TestHealthcheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "store: connection refused", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		url  string
		code int
		err  string
	}{
		{srv.URL + "/healthz", 0, ""},
		{srv.URL + "/readyz", 1, "status 503: store: connection refused"},
		{"http://127.0.0.1:1/healthz", 1, "connection refused"},
	} {
		var stdout, stderr bytes.Buffer
		code := runMain([]string{"healthcheck", "--url", tc.url, "--timeout", "5s"}, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q)", tc.url, code, tc.code, stderr.String(), tc.err)
		}
	}
}
