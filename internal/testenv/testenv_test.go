package testenv

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// fakeTB records what a helper did to its test. Like the real thing, Skipf
// and Fatalf end the calling goroutine, so run executes the helper in its own.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
	logs            []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func run[T any](fn func(testing.TB) T) (T, *fakeTB) {
	f := &fakeTB{}
	var res T
	done := make(chan struct{})
	go func() {
		defer close(done)
		res = fn(f)
	}()
	<-done
	return res, f
}

// node is a plain HTTP server standing in for "something listening at the
// URL"; it exercises the helper's probe, not any engine behaviour.
func node(t *testing.T, status int, product string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_cluster/health" {
			http.NotFound(w, r)
			return
		}
		if product != "" {
			w.Header().Set("X-Elastic-Product", product)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedURL returns a loopback URL on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

type outcome int

const (
	passed outcome = iota
	skipped
	failed
)

func (f *fakeTB) outcome() outcome {
	switch {
	case f.failed:
		return failed
	case f.skipped:
		return skipped
	}
	return passed
}

func TestEngineURL(t *testing.T) {
	esNode := node(t, http.StatusOK, "Elasticsearch")
	osNode := node(t, http.StatusOK, "")
	for _, tc := range []struct {
		name    string
		ci      string
		es, os  string
		get     func(testing.TB) string
		want    outcome
		wantURL string
		msg     string
	}{
		{name: "es unset skips", get: ElasticsearchURL, want: skipped, msg: EnvElasticsearch + " not set"},
		{name: "os unset skips", get: OpenSearchURL, want: skipped, msg: EnvOpenSearch + " not set"},
		{name: "CI=false still skips", ci: "false", get: ElasticsearchURL, want: skipped},
		{name: "unset fails under CI", ci: "true", get: ElasticsearchURL, want: failed, msg: "under CI=true"},
		{name: "CI=1 counts as CI", ci: "1", get: OpenSearchURL, want: failed, msg: "under CI=true"},
		{name: "not a URL", es: "localhost:9200", get: ElasticsearchURL, want: failed, msg: "not an http(s) URL"},
		{name: "nothing listening", es: closedURL(t), get: ElasticsearchURL, want: failed, msg: "does not answer"},
		{name: "unhealthy", es: node(t, http.StatusServiceUnavailable, "Elasticsearch"), get: ElasticsearchURL, want: failed, msg: "503"},
		{name: "swapped: es var on opensearch", es: osNode, get: ElasticsearchURL, want: failed, msg: "not Elasticsearch"},
		{name: "swapped: os var on elasticsearch", os: esNode, get: OpenSearchURL, want: failed, msg: "not OpenSearch"},
		{name: "es answers", ci: "true", es: esNode + "/", get: ElasticsearchURL, want: passed, wantURL: esNode},
		{name: "os answers", os: osNode, get: OpenSearchURL, want: passed, wantURL: osNode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(EnvElasticsearch, tc.es)
			t.Setenv(EnvOpenSearch, tc.os)
			got, f := run(tc.get)
			if f.outcome() != tc.want {
				t.Fatalf("outcome %d, want %d (message %q)", f.outcome(), tc.want, f.msg)
			}
			if !strings.Contains(f.msg, tc.msg) {
				t.Errorf("message %q does not mention %q", f.msg, tc.msg)
			}
			if got != tc.wantURL {
				t.Errorf("URL %q, want %q", got, tc.wantURL)
			}
		})
	}
}

func TestEngines(t *testing.T) {
	esNode := node(t, http.StatusOK, "Elasticsearch")
	osNode := node(t, http.StatusOK, "")
	for _, tc := range []struct {
		name   string
		ci     string
		es, os string
		want   outcome
		names  []string
	}{
		{name: "none set skips", want: skipped},
		{name: "none set fails under CI", ci: "true", want: failed},
		{name: "one set runs on it", es: esNode, want: passed, names: []string{Elasticsearch}},
		{name: "one set fails under CI", ci: "true", os: osNode, want: failed},
		{name: "both", ci: "true", es: esNode, os: osNode, want: passed, names: []string{Elasticsearch, OpenSearch}},
		{name: "one unreachable fails", es: esNode, os: closedURL(t), want: failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(EnvElasticsearch, tc.es)
			t.Setenv(EnvOpenSearch, tc.os)
			got, f := run(Engines)
			if f.outcome() != tc.want {
				t.Fatalf("outcome %d, want %d (message %q)", f.outcome(), tc.want, f.msg)
			}
			if tc.want != passed {
				return
			}
			if len(got) != len(tc.names) {
				t.Fatalf("engines %v, want %v", got, tc.names)
			}
			for _, n := range tc.names {
				if got[n] == "" {
					t.Errorf("engine %s missing from %v", n, got)
				}
			}
		})
	}
}

// TestRealEngines checks the engines `make test` started (or skips, or
// fails under CI, by the very rules under test above).
func TestRealEngines(t *testing.T) {
	for name, u := range Engines(t) {
		t.Logf("%s answers at %s", name, u)
	}
}
