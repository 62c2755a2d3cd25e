package schedule

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// tellingEvaluator is a detector the manager tells what each window wrote
// (detector.Detector.Written), counting the repeats it skipped.
type tellingEvaluator struct {
	*detector.Detector
	repeats, told atomic.Int64
}

func (e *tellingEvaluator) Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error) {
	res, err := e.Detector.Evaluate(ctx, r, w, runID)
	if res != nil {
		e.repeats.Add(int64(res.Repeats))
	}
	return res, err
}

func (e *tellingEvaluator) Written(r *rules.Rule, w store.Window, sigs []*detector.Signal) {
	e.told.Add(1)
	e.Detector.Written(r, w, sigs)
}

// untoldEvaluator hides Written: every window builds all its signals.
type untoldEvaluator struct{ d *detector.Detector }

func (e untoldEvaluator) Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error) {
	return e.d.Evaluate(ctx, r, w, runID)
}

// TestRepeatsSkippedOnlyOnceWritten: a manager that tells its detector
// what each window wrote writes the same signals as one that does not,
// with a signal write failing half-way through a window and retried: the
// detector skips only what a fully written window held.
func TestRepeatsSkippedOnlyOnceWritten(t *testing.T) {
	st := fixtureStore(t)
	rs := testRules(t)
	start := ts("2024-03-05T09:10:00Z")
	clock := newClock(start)
	telling := &tellingEvaluator{Detector: newDetector(t, st)}
	runs := []struct {
		index string
		m     *Manager
	}{
		{"logs-offtrail.alerts-told", newTestManager(t, &failOnce{Store: st, n: 2}, telling, clock, "told", func(o *Options) {
			o.StateIndex, o.SignalsIndex = "offtrail-state-told", "logs-offtrail.alerts-told"
		})},
		{"logs-offtrail.alerts-untold", newTestManager(t, st, untoldEvaluator{newDetector(t, st)}, clock, "untold", func(o *Options) {
			o.StateIndex, o.SignalsIndex = "offtrail-state-untold", "logs-offtrail.alerts-untold"
		})},
	}
	for _, run := range runs {
		run.m.Reload(rs)
	}
	for step := 0; step < 6; step++ {
		for _, run := range runs {
			if err := run.m.SyncLeases(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if err := run.m.RunRule(t.Context(), r.ID); err != nil {
					t.Errorf("step %d %s on %s: %v", step, r.ID, run.m.ReplicaID(), err)
				}
			}
		}
		clock.Advance(time.Hour)
	}
	told, untold := signalIDs(t, st, runs[0].index), signalIDs(t, st, runs[1].index)
	if len(untold) < 4 || !slices.Equal(told, untold) {
		t.Fatalf("told manager wrote %d signals, untold %d: want the same, several", len(told), len(untold))
	}
	if telling.repeats.Load() == 0 || telling.told.Load() == 0 {
		t.Fatalf("repeats %d, windows told %d: want overlapping windows' signals skipped", telling.repeats.Load(), telling.told.Load())
	}
	// The metric counts the repeats of windows that were written, not
	// those of the attempt that failed.
	counted := 0.0
	for _, r := range rs {
		counted += testutil.ToFloat64(runs[0].m.metrics.repeats.WithLabelValues(r.ID))
	}
	if counted == 0 || counted > float64(telling.repeats.Load()) {
		t.Fatalf("offtrail_signal_repeats_skipped_total %v, want between 1 and the %d skipped", counted, telling.repeats.Load())
	}
	t.Logf("%d signals; %d repeats skipped over %d windows told", len(told), telling.repeats.Load(), telling.told.Load())
}
