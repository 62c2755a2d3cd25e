package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/rules"
)

// BacktestStats is what replaying one rule produced.
type BacktestStats struct {
	Rule    string
	Windows int
	// Signals counts distinct signal ids; Duplicates the signals of
	// overlapping windows that a create-only write would have dropped,
	// those the detector skipped as repeats (Result.Repeats) included.
	Signals    int
	Duplicates int
	Elapsed    time.Duration
}

// Progress reports a backtest's progress after each window.
type Progress struct {
	Rule          string
	RuleIndex     int // 0-based
	Rules         int
	Window        int // windows done for this rule
	Windows       int // windows of this rule
	Done, Total   int // windows done and to do over all rules
	Signals       int // distinct signals so far, all rules
	CurrentWindow time.Time
}

// BacktestOptions are the callbacks of a backtest; both may be nil.
type BacktestOptions struct {
	// OnSignal receives each distinct signal once, in window order.
	OnSignal func(*detector.Signal) error
	// OnProgress is called after every window.
	OnProgress func(Progress)
	// RunIDPrefix prefixes run ids (default "backtest").
	RunIDPrefix string
}

// Backtest replays rules over [from, to] as the scheduler would have run
// them: the same window ends (BacktestEnds), oldest first, each signal
// kept once by id exactly as create-only writes would.
func Backtest(ctx context.Context, ev Evaluator, rs []*rules.Rule, from, to time.Time, opts BacktestOptions) ([]BacktestStats, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("backtest: --from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	prefix := opts.RunIDPrefix
	if prefix == "" {
		prefix = "backtest"
	}
	plans := make([][]time.Time, len(rs))
	total := 0
	for i, r := range rs {
		plans[i] = BacktestEnds(TimingOf(r), from, to)
		total += len(plans[i])
	}
	seen := map[string]bool{}
	done := 0
	out := make([]BacktestStats, 0, len(rs))
	for i, r := range rs {
		st := BacktestStats{Rule: r.ID}
		start := time.Now()
		tm := TimingOf(r)
		for j, end := range plans[i] {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			w := tm.Window(end)
			res, err := ev.Evaluate(ctx, r, w, RunID(prefix, r.ID, end))
			if err != nil {
				return out, err
			}
			st.Windows++
			st.Duplicates += res.Repeats
			for _, s := range res.Signals {
				if seen[s.ID] {
					st.Duplicates++
					continue
				}
				seen[s.ID] = true
				st.Signals++
				if opts.OnSignal != nil {
					if err := opts.OnSignal(s); err != nil {
						return out, err
					}
				}
			}
			if wt, ok := ev.(writtenTeller); ok {
				wt.Written(r, w, res.Signals) // every signal handed on: later windows may skip them
			}
			done++
			if opts.OnProgress != nil {
				opts.OnProgress(Progress{Rule: r.ID, RuleIndex: i, Rules: len(rs), Window: j + 1, Windows: len(plans[i]),
					Done: done, Total: total, Signals: len(seen), CurrentWindow: end})
			}
		}
		st.Elapsed = time.Since(start)
		out = append(out, st)
	}
	return out, nil
}
