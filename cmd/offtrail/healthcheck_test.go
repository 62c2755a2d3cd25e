package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"all.yml", "http://127.0.0.1:19464/healthz"},
		{"v6.yml", "http://[::1]:19465/healthz"},
		{"default.yml", "http://127.0.0.1:9464/healthz"},
	} {
		got, err := healthURL(filepath.Join("testdata", "healthcheck", tc.file))
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.file, got, err, tc.want)
		}
	}
}

// healthcheck --config probes the configuration's listen address.
func TestHealthcheckConfig(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { path = r.URL.Path }))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "offtrail.yml")
	listen := strings.TrimPrefix(srv.URL, "http://")
	if err := os.WriteFile(cfg, []byte("store: {url: http://127.0.0.1:1}\nlisten: "+listen+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"healthcheck", "--config", cfg}, &stdout, &stderr); code != 0 || path != "/healthz" {
		t.Errorf("exit %d, path %q: %s", code, path, stderr.String())
	}
}
