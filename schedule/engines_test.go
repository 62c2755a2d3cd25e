package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/elastic"
	ostore "github.com/offtrail/offtrail/detector/store/opensearch"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/internal/testenv"
)

// engine is an open real engine and its URL (for test cleanup).
type engine struct {
	store.Backend
	url string
}

// engines opens each real engine that is configured.
func engines() map[string]func(t *testing.T) engine {
	return map[string]func(t *testing.T) engine{
		"elasticsearch": func(t *testing.T) engine {
			u := testenv.ElasticsearchURL(t)
			s, err := elastic.New(elasticsearch.Config{Addresses: []string{u}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return engine{s, u}
		},
		"opensearch": func(t *testing.T) engine {
			u := testenv.OpenSearchURL(t)
			s, err := ostore.New(opensearch.Config{Addresses: []string{u}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return engine{s, u}
		},
	}
}

func randomName(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// engineEnv creates fresh index names, installs the shipped signal and
// state templates for exactly those names, and deletes the indices and
// templates when the test ends.
func engineEnv(t *testing.T, e engine) scenarioEnv {
	t.Helper()
	id := randomName(t)
	env := scenarioEnv{st: e.Backend, source: "offtrail-sched-test-" + id + "-cloudtrail",
		signals: "logs-offtrail.alerts-schedtest" + id, state: "offtrail-state-schedtest" + id}
	ctx := t.Context()
	for name, index := range map[string]string{"signals": env.signals, "state": env.state} {
		body, err := os.ReadFile("../mappings/templates/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var tpl map[string]any
		if err := json.Unmarshal(body, &tpl); err != nil {
			t.Fatal(err)
		}
		// The shipped patterns would overlap with other tests' templates
		// of the same priority; the body under test is the same.
		tpl["index_patterns"] = []string{index}
		tpl["priority"] = 500
		b, _ := json.Marshal(tpl)
		tname := "offtrail-schedtest-" + name + "-" + id
		if err := e.EnsureTemplate(ctx, tname, b); err != nil {
			t.Fatalf("template %s: %v", name, err)
		}
		t.Cleanup(func() { cleanup(t, e.url+"/_index_template/"+tname) })
	}
	t.Cleanup(func() {
		cleanup(t, e.url+"/"+strings.Join([]string{env.source, env.signals, env.state}, ",")+"?ignore_unavailable=true")
	})
	return env
}

// cleanup deletes what a test created.
func cleanup(t *testing.T, u string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("cleanup %s: %v", u, err)
		return
	}
	res.Body.Close()
}

func TestEngineLeasesTwoReplicas(t *testing.T) {
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) {
			e := open(t)
			env := engineEnv(t, e)
			runLeaseScenario(t, e, env.state)
		})
	}
}

func TestEngineFailureRetryAndCatchUp(t *testing.T) {
	// The memory store's ids are the reference: every engine must write
	// exactly the same signals.
	const steps = 6
	var want []string
	runFailureScenario(t, memoryEnv, steps, &want)
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) {
			runFailureScenario(t, func(t *testing.T) scenarioEnv {
				e := open(t)
				env := engineEnv(t, e)
				storetest.Load(t, e, env.source, storetest.FixtureN(1, 3000))
				if err := e.Refresh(t.Context(), env.source); err != nil {
					t.Fatal(err)
				}
				return env
			}, steps, &want)
		})
	}
}
