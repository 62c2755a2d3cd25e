package schedule

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// failOnce fails the n-th signal write (1-based) half-way, as a bulk
// request whose later items were rejected: the first half is written and
// reported created, with an error.
type failOnce struct {
	Store
	n     int64
	calls atomic.Int64
}

func (f *failOnce) WriteSignals(ctx context.Context, index string, docs []store.Doc) (store.WriteResult, error) {
	if f.calls.Add(1) != f.n {
		return f.Store.WriteSignals(ctx, index, docs)
	}
	wr, err := f.Store.WriteSignals(ctx, index, docs[:len(docs)/2])
	return wr, errors.Join(errInjected, err)
}

// Two replicas evaluate the same windows into one signals index (separate
// state indices, so both hold the rule's lease, as during a lease handover
// race); one write fails half-way through a window and is retried. Every
// signal written is announced exactly once, by whichever replica created it.
func TestOnCreatedOncePerSignal(t *testing.T) {
	st := fixtureStore(t)
	rs := testRules(t)
	var (
		mu        sync.Mutex
		announced = map[string][]string{} // signal id -> replicas
	)
	hook := func(replica string) func(*rules.Rule, []*detector.Signal) {
		return func(_ *rules.Rule, created []*detector.Signal) {
			mu.Lock()
			defer mu.Unlock()
			for _, s := range created {
				announced[s.ID] = append(announced[s.ID], replica)
			}
		}
	}
	start := ts("2024-03-05T09:10:00Z")
	clock := newClock(start)
	var managers []*Manager
	for _, id := range []string{"a", "b"} {
		var s Store = st
		if id == "b" {
			// b's 2nd write half-fails in a window of several new
			// signals (checked: without announcing a failed attempt's
			// partial write, those signals are never announced).
			s = &failOnce{Store: st, n: 2}
		}
		managers = append(managers, newTestManager(t, s, newDetector(t, st), clock, id, func(o *Options) {
			o.StateIndex = "offtrail-state-" + id
			o.OnCreated = hook(id)
		}))
	}
	for _, m := range managers {
		m.Reload(rs)
	}
	for step := 0; step < 6; step++ {
		// b goes first on odd steps, so each replica creates some.
		order := managers
		if step%2 == 1 {
			order = []*Manager{managers[1], managers[0]}
		}
		for _, m := range order {
			if err := m.SyncLeases(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if err := m.RunRule(t.Context(), r.ID); err != nil {
					t.Errorf("step %d %s on %s: %v", step, r.ID, m.ReplicaID(), err)
				}
			}
		}
		clock.Advance(time.Hour)
	}
	written := signalIDs(t, st, "logs-offtrail.alerts-test")
	if len(written) < 4 {
		t.Fatalf("only %d signals written; the test needs several", len(written))
	}
	var ids []string
	by := map[string]int{}
	for id, reps := range announced {
		ids = append(ids, id)
		if len(reps) != 1 {
			t.Errorf("signal %s announced %d times: %v", id, len(reps), reps)
		}
		by[reps[0]]++
	}
	slices.Sort(ids)
	if !slices.Equal(ids, written) {
		t.Errorf("announced %d signals, written %d:\n%v\n%v", len(ids), len(written), ids, written)
	}
	if by["a"] == 0 || by["b"] == 0 {
		t.Errorf("announcements by replica = %v; want both to have created some", by)
	}
	t.Logf("%d signals, announced once each (by replica: %v)", len(written), by)
}

// A window with signals writes no checkpoint of its own (the lease sync
// writes the rules' checkpoints once CheckpointEvery is due): a process
// that crashes evaluates those windows again once restarted, and the
// evaluation creates, announces and raises nothing twice.
func TestCrashAfterSignalsAnnouncesNothingTwice(t *testing.T) {
	st := fixtureStore(t)
	rs := testRules(t)
	clock := newClock(ts("2024-03-05T08:10:00Z"))
	rec := newRecorder(newDetector(t, st))
	found := &signalCount{Evaluator: rec}
	type tally struct{ created, incidents int }
	start := func(tl *tally) *Manager {
		m := newTestManager(t, st, found, clock, "a", func(o *Options) {
			o.CheckpointEvery = 4 * time.Hour
			o.OnCreated = func(_ *rules.Rule, s []*detector.Signal) { tl.created += len(s) }
			o.OnIncidents = func(_ *rules.Rule, incs []*detector.Incident) { tl.incidents += len(incs) }
		})
		m.Reload(rs)
		return m
	}
	step := func(m *Manager) {
		if err := m.SyncLeases(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if err := m.RunRule(t.Context(), r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	var first tally
	a := start(&first)
	for range 6 {
		clock.Advance(time.Hour)
		step(a)
	}
	written := signalIDs(t, st, "logs-offtrail.alerts-test")
	if first.created == 0 || first.created != len(written) {
		t.Fatalf("first process created %d signals, %d written; the test needs some", first.created, len(written))
	}
	// The crash: no release. At the same moment the same replica id takes
	// its leases back and evaluates again what followed each written
	// checkpoint, and nothing new.
	var again tally
	m := start(&again)
	for k := range rec.calls {
		delete(rec.calls, k)
	}
	found.n.Store(0)
	step(m)
	if found.n.Load() == 0 {
		t.Fatalf("the restart evaluated %d windows again, none with signals: the test proves nothing", len(rec.calls))
	}
	if again.created != 0 || again.incidents != 0 {
		t.Errorf("windows evaluated again created %d signals and announced %d incidents, want none", again.created, again.incidents)
	}
	if got := signalIDs(t, st, "logs-offtrail.alerts-test"); !slices.Equal(got, written) {
		t.Errorf("signals after the restart %d, before %d", len(got), len(written))
	}
	t.Logf("%d signals and %d incidents before the crash; %d windows evaluated again, %d signals found again", first.created, first.incidents, len(rec.calls), found.n.Load())
}

// signalCount counts the signals its evaluator finds.
type signalCount struct {
	Evaluator
	n atomic.Int64
}

func (c *signalCount) Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error) {
	res, err := c.Evaluator.Evaluate(ctx, r, w, runID)
	if res != nil {
		c.n.Add(int64(len(res.Signals)))
	}
	return res, err
}
