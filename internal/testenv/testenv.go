// Package testenv hands integration tests the URLs of the real
// Elasticsearch and OpenSearch nodes started by scripts/engines.sh.
//
// A test that needs an engine asks for its URL. When the variable is unset
// the test is skipped on a developer's machine, so `go test ./...` works
// without engines, but it fails under CI=true: in CI a skipped integration
// test would be a test that cannot fail.
package testenv

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables read by this package. `scripts/engines.sh env`
// prints them; `make test` exports them.
const (
	EnvElasticsearch = "OFFTRAIL_TEST_ES_URL"
	EnvOpenSearch    = "OFFTRAIL_TEST_OS_URL"
)

// Engine names used as keys by Engines.
const (
	Elasticsearch = "elasticsearch"
	OpenSearch    = "opensearch"
)

// probeTimeout bounds the reachability check; a local node answers in
// milliseconds, so a few seconds only ever elapse when something is wrong.
const probeTimeout = 5 * time.Second

const howToStart = "start the engines with `make engines-up` and `eval \"$(scripts/engines.sh env)\"`, or run `make test`"

// ElasticsearchURL returns the URL of the test Elasticsearch node.
func ElasticsearchURL(t testing.TB) string {
	t.Helper()
	return engineURL(t, Elasticsearch, EnvElasticsearch)
}

// OpenSearchURL returns the URL of the test OpenSearch node.
func OpenSearchURL(t testing.TB) string {
	t.Helper()
	return engineURL(t, OpenSearch, EnvOpenSearch)
}

// Engines returns the configured engines by name, for tests that run the same
// cases against both. Outside CI an engine whose variable is unset is left out
// (and logged), and the test is skipped only when neither is set; under CI
// both are required.
func Engines(t testing.TB) map[string]string {
	t.Helper()
	out := make(map[string]string, 2)
	var missing []string
	for _, e := range []struct{ name, env string }{
		{Elasticsearch, EnvElasticsearch},
		{OpenSearch, EnvOpenSearch},
	} {
		if os.Getenv(e.env) == "" {
			missing = append(missing, e.env)
			continue
		}
		out[e.name] = engineURL(t, e.name, e.env)
	}
	if len(missing) > 0 {
		msg := strings.Join(missing, " and ") + " not set"
		switch {
		case InCI():
			t.Fatalf("testenv: %s under CI=true; %s", msg, howToStart)
		case len(out) == 0:
			t.Skipf("testenv: %s; %s", msg, howToStart)
		default:
			t.Logf("testenv: %s; running against %d engine(s) only", msg, len(out))
		}
	}
	return out
}

// InCI reports whether the CI variable is set to a true value.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

func engineURL(t testing.TB, name, env string) string {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		if InCI() {
			t.Fatalf("testenv: %s not set under CI=true; %s", env, howToStart)
		}
		t.Skipf("testenv: %s not set; %s", env, howToStart)
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Fatalf("testenv: %s=%q is not an http(s) URL", env, raw)
		return ""
	}
	base := strings.TrimRight(raw, "/")
	if err := probe(name, base); err != nil {
		t.Fatalf("testenv: %s=%s: %v; %s", env, raw, err, howToStart)
		return ""
	}
	return base
}

// reachable remembers engines that answered, so a package with many
// integration tests probes each engine once.
var reachable sync.Map // name+" "+url -> struct{}

// probe checks that base is a live node of the named engine. It asks for
// cluster health rather than GET /: the Elasticsearch integ-test build has no
// rest-root module, so GET / answers 405 there.
func probe(name, base string) error {
	key := name + " " + base
	if _, ok := reachable.Load(key); ok {
		return nil
	}
	client := &http.Client{Timeout: probeTimeout}
	resp, err := client.Get(base + "/_cluster/health")
	if err != nil {
		return fmt.Errorf("%s does not answer: %w", name, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered GET /_cluster/health with %s", name, resp.Status)
	}
	// Elasticsearch marks every response; OpenSearch never does. This catches
	// the two variables swapped, which would otherwise pass silently.
	isES := resp.Header.Get("X-Elastic-Product") == "Elasticsearch"
	switch {
	case name == Elasticsearch && !isES:
		return fmt.Errorf("the node is not Elasticsearch (no X-Elastic-Product header)")
	case name == OpenSearch && isES:
		return fmt.Errorf("the node is Elasticsearch, not OpenSearch")
	}
	reachable.Store(key, struct{}{})
	return nil
}
