package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// fakeClock is a settable clock shared by managers in a test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder wraps an evaluator and records every (rule, window end) it is
// asked for; without an inner evaluator it finds nothing.
type recorder struct {
	inner Evaluator
	mu    sync.Mutex
	calls map[string][]string // "rule@end" -> run ids
	fail  func(r *rules.Rule, w store.Window) error
}

func newRecorder(inner Evaluator) *recorder {
	return &recorder{inner: inner, calls: map[string][]string{}}
}

func (rc *recorder) Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error) {
	if rc.fail != nil {
		if err := rc.fail(r, w); err != nil {
			return nil, err
		}
	}
	rc.mu.Lock()
	k := r.ID + "@" + w.To.UTC().Format(time.RFC3339)
	rc.calls[k] = append(rc.calls[k], runID)
	rc.mu.Unlock()
	if rc.inner == nil {
		return &detector.Result{Rule: r.ID, Window: w, RunID: runID}, nil
	}
	return rc.inner.Evaluate(ctx, r, w, runID)
}

// evaluated returns the sorted "rule@end" keys, and fails t if any window
// was evaluated more than once.
func (rc *recorder) evaluated(t *testing.T) []string {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for k, runs := range rc.calls {
		if len(runs) > 1 {
			t.Errorf("window %s evaluated %d times: %v", k, len(runs), runs)
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var errInjected = errors.New("injected store failure")

// flakyStore fails the next n calls of the chosen operations.
type flakyStore struct {
	store.Backend
	mu    sync.Mutex
	fails map[string]int // op -> remaining failures
	calls map[string]int
}

func newFlaky(s store.Backend) *flakyStore {
	return &flakyStore{Backend: s, fails: map[string]int{}, calls: map[string]int{}}
}

func (f *flakyStore) failNext(op string, n int) {
	f.mu.Lock()
	f.fails[op] = n
	f.mu.Unlock()
}

func (f *flakyStore) check(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if f.fails[op] > 0 {
		f.fails[op]--
		return fmt.Errorf("%s: %w", op, errInjected)
	}
	return nil
}

func (f *flakyStore) WriteSignals(ctx context.Context, index string, docs []store.Doc) (store.WriteResult, error) {
	if err := f.check("write"); err != nil {
		return store.WriteResult{}, err
	}
	return f.Backend.WriteSignals(ctx, index, docs)
}

func (f *flakyStore) GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error) {
	op := "get"
	if strings.HasPrefix(id, "lease:") {
		op = "get-lease" // the lease document holds the checkpoint
	}
	if err := f.check(op); err != nil {
		return nil, store.Version{}, err
	}
	return f.Backend.GetState(ctx, index, id)
}

// testRules loads testdata/rules.
func testRules(t testing.TB) []*rules.Rule {
	t.Helper()
	pack, diags := rules.LoadFiles("testdata/rules")
	if diags.HasErrors() {
		t.Fatalf("test rules: %v", diags.Errors())
	}
	return pack.Rules
}

// cloneRule copies r under another id (several rules for lease tests).
func cloneRule(r *rules.Rule, id string) *rules.Rule {
	c := *r
	c.ID = id
	return &c
}

func newTestManager(t *testing.T, st Store, ev Evaluator, clock *fakeClock, id string, mod func(*Options)) *Manager {
	t.Helper()
	opts := Options{
		Store: st, Evaluator: ev, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		ReplicaID: id, Now: clock.Now, Backoff: time.Millisecond, LeaseDuration: time.Minute,
		CheckpointEvery: time.Nanosecond, // every window: the tests read checkpoints from the store
		StateIndex:      "offtrail-state-test", SignalsIndex: "logs-offtrail.alerts-test",
	}
	if mod != nil {
		mod(&opts)
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *flakyStore) CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	if err := f.check("count"); err != nil {
		return err
	}
	return f.Backend.CountGroups(ctx, req, fn)
}
