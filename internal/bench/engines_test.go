package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/internal/testenv"
	"github.com/offtrail/offtrail/schedule"
)

// openEngine opens a cluster the way every command does (one connection
// builder: config.ForFlag, then backends.Open).
func openEngine(t *testing.T, url string) store.Backend {
	t.Helper()
	conn, err := config.ForFlag(url, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := backends.Open(context.Background(), conn.BackendOptions(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestEngineNodeStats reads node stats from the real engines: every node
// reports process CPU, fresh figures come after the time asked for, and
// a sample taken around some queries does not go backwards.
func TestEngineNodeStats(t *testing.T) {
	for name, url := range testenv.Engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := openEngine(t, url)
			if !HasEngine(st) {
				t.Fatalf("%s store has no engine", name)
			}
			asked := time.Now()
			ns, err := EngineCPUAfter(ctx, st, asked)
			if err != nil {
				t.Fatal(err)
			}
			if len(ns.CPU) == 0 || ns.CPU.Total() <= 0 {
				t.Fatalf("node stats %+v", ns)
			}
			if ns.Probed.Before(asked.Truncate(time.Millisecond)) || time.Since(ns.Probed) > time.Minute {
				t.Fatalf("probed at %v, asked at %v", ns.Probed, asked)
			}
			m := Meter{Store: st}
			a, err := m.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				if _, err := IndexCount(ctx, st, "offtrail-bench-no-such-index"); err != nil {
					t.Fatal(err)
				}
			}
			b, err := m.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			u, err := b.Since(a)
			if err != nil {
				t.Fatal(err)
			}
			if !u.HasEngine || u.Engine < 0 || u.Client < 0 || u.Wall <= 0 {
				t.Fatalf("used %+v", u)
			}
		})
	}
}

// TestMeasureWithWrites times two ticks of one rule with signals and
// incidents written, on every backend, on a small generated organisation:
// the engines report engine CPU, embedded reports none, and the
// measurement's own indices are gone afterwards.
func TestMeasureWithWrites(t *testing.T) {
	ctx := context.Background()
	ds, err := Generate(ctx, filepath.Join(t.TempDir(), "data"), 10_000, 24)
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]store.Backend{}
	if os.Getenv(testenv.EnvElasticsearch) != "" || os.Getenv(testenv.EnvOpenSearch) != "" || testenv.InCI() {
		for name, url := range testenv.Engines(t) {
			stores[name] = openEngine(t, url)
		}
	}
	emb, err := embedded.Open(filepath.Join(t.TempDir(), "embedded"), embedded.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	stores["embedded"] = emb
	index := fmt.Sprintf("offtrail-bench-test-%d", time.Now().UnixNano()%1e9)
	var targets []Target
	for _, st := range stores {
		targets = append(targets, Target{Store: st, Index: index})
	}
	if _, err := Load(ctx, targets, ds, nil, 0); err != nil {
		t.Fatal(err)
	}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			t.Cleanup(func() { _ = DropIndices(context.Background(), st, []string{index}, []string{templateName(index)}) })
			lat, err := Measure(ctx, st, index, Scope{Rule: "aws-rare-method-for-user", Writes: true}, ds.Labels.End, 2, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if lat.Ticks != 2 || lat.Rules != 1 || lat.Scope != "aws-rare-method-for-user" || lat.P95 <= 0 {
				t.Fatalf("latency %+v", lat)
			}
			if lat.Used.HasEngine != (name != "embedded") || (name == "embedded" && lat.Used.Engine != 0) {
				t.Fatalf("%s: used %+v", name, lat.Used)
			}
			if lat.Used.Client <= 0 || lat.PeakHeap == 0 || lat.PeakRSS == 0 {
				t.Fatalf("client CPU %v, heap %d, RSS %d", lat.Used.Client, lat.PeakHeap, lat.PeakRSS)
			}
			// Run as the service runs it: each tick checkpoints the rule's
			// lease, so state calls are counted beside the evaluation's.
			if lat.Requests.State < int64(lat.Ticks) {
				t.Fatalf("%s: %d state calls over %d ticks: the lease and checkpoint work is not counted", name, lat.Requests.State, lat.Ticks)
			}
			if HasEngine(st) {
				for _, ix := range []string{index + "-aws-rare-method-for-user-signals", index + "-aws-rare-method-for-user-state"} {
					if n, err := IndexCount(ctx, st, ix); err != nil || n != -1 {
						t.Errorf("%s left behind: count %d, %v", ix, n, err)
					}
				}
			}
		})
	}
}

// keepState is a store whose Delete keeps everything, as DropIndices was
// on the embedded store before a kept store outlived a run.
type keepState struct{ *embedded.Store }

func (keepState) Delete(indices, templates []string) error { return nil }

// TestMeasureAgainOnAKeptStore: a kept embedded store timed twice gives
// the same signals, each run's own indices gone after it. State another
// run left behind (a checkpoint past the ticks) makes the bench say that
// its ticks evaluated nothing, instead of timing them.
func TestMeasureAgainOnAKeptStore(t *testing.T) {
	ctx := context.Background()
	ds, err := Generate(ctx, filepath.Join(t.TempDir(), "data"), 10_000, 24)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := embedded.Open(filepath.Join(t.TempDir(), "embedded"), embedded.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	const index = "offtrail-bench-kept"
	if _, err := Load(ctx, []Target{{Store: emb, Index: index}}, ds, nil, 0); err != nil {
		t.Fatal(err)
	}
	sc := Scope{Rule: "aws-rare-method-for-user", Writes: true, Warmup: 4}
	stateIndex := index + "-" + sc.Name() + "-state"
	var signals []int
	for range 2 {
		lat, err := Measure(ctx, emb, index, sc, ds.Labels.End, 4, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		signals = append(signals, lat.Signals)
		for _, dir := range []string{filepath.Join(emb.Dir(), "_state", stateIndex), filepath.Join(emb.Dir(), index+"-"+sc.Name()+"-signals")} {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s left behind (%v)", dir, err)
			}
		}
	}
	if signals[0] != signals[1] || signals[0] == 0 {
		t.Errorf("signals %v: want the same, and some, on the kept store", signals)
	}
	past := schedule.Lease{Rule: sc.Rule, Checkpoint: &schedule.Checkpoint{Rule: sc.Rule, End: ds.Labels.End.Add(time.Hour)}}
	doc, err := json.Marshal(past)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emb.PutState(ctx, stateIndex, "lease:"+sc.Rule, doc, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Measure(ctx, keepState{emb}, index, sc, ds.Labels.End, 4, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "evaluated no window") {
		t.Fatalf("a run over a checkpoint past its ticks: %v, want a tick that evaluated no window", err)
	}
}
