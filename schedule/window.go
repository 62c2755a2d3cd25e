// Package schedule runs offtrail's rules: every interval over the lookback,
// with checkpoints in a state index, bounded catch-up after downtime, leases
// so that several replicas share the rules without evaluating a window twice,
// and the same window planner for backtests.
//
// Windows are aligned to the interval from the Unix epoch: a run whose tick
// is at T evaluates [E-L, E) with E = floor((T-D)/I)*I. Every replica, every
// restart and every backtest therefore evaluates identical windows, which
// gives identical (deterministic) signal ids, and create-only writes make a
// repeated window harmless.
package schedule

import (
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// Timing is the part of a rule's schedule that decides its windows.
type Timing struct {
	Interval time.Duration
	Lookback time.Duration
	Delay    time.Duration // query delay, for late-arriving events
}

// End returns the end of the window a tick at t evaluates:
// floor((t - Delay) / Interval) * Interval, aligned to the Unix epoch.
func (tm Timing) End(t time.Time) time.Time {
	return floorTo(t.Add(-tm.Delay), tm.Interval)
}

// Window returns the window that ends at end: [end-Lookback, end).
func (tm Timing) Window(end time.Time) store.Window {
	return store.Window{From: end.Add(-tm.Lookback), To: end}
}

// floorTo rounds t down to a multiple of d since the Unix epoch (also for
// times before the epoch).
func floorTo(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return t.UTC()
	}
	ns := t.UnixNano()
	r := ns % int64(d)
	if r < 0 {
		r += int64(d)
	}
	return time.Unix(0, ns-r).UTC()
}

// ceilTo rounds t up to a multiple of d since the Unix epoch.
func ceilTo(t time.Time, d time.Duration) time.Time {
	f := floorTo(t, d)
	if f.Equal(t) {
		return f
	}
	return f.Add(d)
}

// Plan is what one tick of a rule should evaluate.
type Plan struct {
	// Ends are the window ends to evaluate, oldest first.
	Ends []time.Time
	// Deferred counts the missed ends left for later ticks (max_catchup).
	Deferred int
	// Skipped counts the missed ends given up because they are older than
	// max_gap; SkippedFrom and SkippedTo are the first and last of them.
	Skipped                int
	SkippedFrom, SkippedTo time.Time
}

// GapSeconds is the span of evaluation ends given up.
func (p Plan) GapSeconds(interval time.Duration) float64 {
	return (time.Duration(p.Skipped) * interval).Seconds()
}

// Limits bound the catch-up after downtime.
type Limits struct {
	MaxCatchup int           // most windows evaluated in one tick (default 96)
	MaxGap     time.Duration // missed ends older than this are given up (default 7d)
}

// Default catch-up limits.
const (
	DefaultMaxCatchup = 96
	DefaultMaxGap     = 7 * 24 * time.Hour
)

func (l Limits) withDefaults() Limits {
	if l.MaxCatchup <= 0 {
		l.MaxCatchup = DefaultMaxCatchup
	}
	if l.MaxGap <= 0 {
		l.MaxGap = DefaultMaxGap
	}
	return l
}

// PlanTick plans a tick at now for a rule whose last successfully evaluated
// end is last (zero: never run). A first run evaluates only the current
// window. After downtime the missed ends last+I, last+2I, … ≤ the current
// end are evaluated oldest first, at most MaxCatchup per tick; ends older
// than now's end minus MaxGap are given up.
func PlanTick(tm Timing, last, now time.Time, lim Limits) Plan {
	lim = lim.withDefaults()
	cur := tm.End(now)
	if last.IsZero() {
		return Plan{Ends: []time.Time{cur}}
	}
	// The next grid point after last; after a change of interval the old
	// checkpoint may be off the new grid.
	first := floorTo(last, tm.Interval).Add(tm.Interval)
	if first.After(cur) {
		return Plan{}
	}
	var p Plan
	if cutoff := cur.Add(-lim.MaxGap); first.Before(cutoff) {
		keep := ceilTo(cutoff, tm.Interval)
		p.Skipped = int(keep.Sub(first) / tm.Interval)
		p.SkippedFrom, p.SkippedTo = first, keep.Add(-tm.Interval)
		first = keep
	}
	total := int(cur.Sub(first)/tm.Interval) + 1
	n := min(total, lim.MaxCatchup)
	p.Ends = make([]time.Time, n)
	for i := range p.Ends {
		p.Ends[i] = first.Add(time.Duration(i) * tm.Interval)
	}
	p.Deferred = total - n
	return p
}

// BacktestEnds returns the ends a scheduler started at from and running
// until to would have evaluated: End(from), End(from)+I, …, End(to).
func BacktestEnds(tm Timing, from, to time.Time) []time.Time {
	if tm.Interval <= 0 {
		return nil
	}
	first, last := tm.End(from), tm.End(to)
	var out []time.Time
	for e := first; !e.After(last); e = e.Add(tm.Interval) {
		out = append(out, e)
	}
	return out
}
