package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

// maxBacktestWindows bounds a backtest without --yes: a mistyped --from
// (now-700d for now-7d) would otherwise run for days.
const maxBacktestWindows = 100_000

// backtestWindows counts the windows a backtest of rs over [from, to]
// evaluates, without listing them.
func backtestWindows(rs []*rules.Rule, from, to time.Time) int {
	n := 0
	for _, r := range rs {
		tm := schedule.TimingOf(r)
		if tm.Interval > 0 {
			n += int(tm.End(to).Sub(tm.End(from))/tm.Interval) + 1
		}
	}
	return n
}

// source is what a rule reads: index patterns and the time field.
type source struct {
	index     []string
	timeField string
}

func (s source) String() string { return strings.Join(s.index, ",") }

func sourcesOf(rs []*rules.Rule) []source {
	var out []source
	for _, r := range rs {
		s := source{index: r.Source.Index, timeField: r.Profile().Time}
		if !slices.ContainsFunc(out, func(o source) bool { return o.String() == s.String() && o.timeField == s.timeField }) {
			out = append(out, s)
		}
	}
	return out
}

// noEventsError says that the rules had nothing to read: zero signals
// from no data is not a finding, so the command fails and says why.
type noEventsError struct{ msg string }

func (e *noEventsError) Error() string { return e.msg }

// confirmWindows refuses a backtest of more than maxBacktestWindows
// windows without --yes, and says how many it will run.
func confirmWindows(env *cliEnv, rs []*rules.Rule, from, to time.Time, yes bool) error {
	n := backtestWindows(rs, from, to)
	if n > maxBacktestWindows && !yes {
		return &exitError{code: 2, err: fmt.Errorf("%d windows (%d rules, %s to %s) is more than %d: check --from/--to, or pass --yes",
			n, len(rs), stamp(from), stamp(to), maxBacktestWindows)}
	}
	fmt.Fprintf(env.stderr, "backtest: %d windows of %d rules, %s to %s\n", n, len(rs), stamp(from), stamp(to))
	return nil
}

// maxLookback is the longest lookback of rs: a window ending at t reads
// from t minus it.
func maxLookback(rs []*rules.Rule) time.Duration {
	var d time.Duration
	for _, r := range rs {
		d = max(d, r.Schedule.Lookback.Std())
	}
	return d
}

// checkEvents returns a *noEventsError when no source of rs has an event
// in [from, to), saying what the store holds instead.
func checkEvents(ctx context.Context, st store.Backend, rs []*rules.Rule, from, to time.Time) error {
	var msgs []string
	for _, src := range sourcesOf(rs) {
		n, err := firstEvent(ctx, st, src, from, to)
		if err != nil {
			return err
		}
		if n != nil {
			return nil
		}
		held, err := holds(ctx, st, src)
		if err != nil {
			return err
		}
		msgs = append(msgs, fmt.Sprintf("no events in %s between %s and %s; %s", src, stamp(from), stamp(to), held))
	}
	return &exitError{code: 1, err: &noEventsError{msg: strings.Join(msgs, "; ")}}
}

// Bounds of "any time" for the store's own span.
var (
	beginning = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func firstEvent(ctx context.Context, st store.Backend, src source, from, to time.Time) (*store.Event, error) {
	evs, err := st.Events(ctx, store.Query{Index: src.index, TimeField: src.timeField, Window: store.Window{From: from, To: to}}, 1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src, err)
	}
	if len(evs) == 0 {
		return nil, nil
	}
	return &evs[0], nil
}

// holds describes the span of src's events: the first event, then the
// last found by bisection with one-event queries (the backends have no
// "newest first"); this runs only when a span came back empty.
func holds(ctx context.Context, st store.Backend, src source) (string, error) {
	first, err := firstEvent(ctx, st, src, beginning, farFuture)
	if err != nil || first == nil {
		return "the store holds no events there", err
	}
	// last is the newest event found; none lies at or after hi.
	last, lo, hi := first.Time, first.Time, farFuture
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		ev, err := firstEvent(ctx, st, src, mid, farFuture)
		switch {
		case err != nil:
			return "", err
		case ev == nil:
			hi = mid
		default:
			last, lo = ev.Time, ev.Time.Add(time.Nanosecond)
		}
	}
	return fmt.Sprintf("the store holds %s to %s", stamp(first.Time), stamp(last)), nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
