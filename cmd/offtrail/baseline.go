package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

func init() {
	register(command{
		name:    "baseline",
		summary: "baseline rebuild: recount the baseline days of the rules from the raw events (after late data or a reindex)",
		run:     runBaseline,
	})
}

// runBaseline rebuilds the day documents the rules' history counts read
// (detector/baseline). They are built as ticks need them and a changed rule
// gets new ones by itself; a rebuild is for data that changed under sealed
// days: a late delivery, a reindex, a corrected GeoIP enrichment.
func runBaseline(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return &exitError{code: 2, err: errors.New("usage: offtrail baseline rebuild --store URL|file:DIR [--rules PATH] [--rule ID] [--at TIME] [--state-index NAME]")}
	}
	fs := newFlagSet(env, "baseline rebuild", "--store URL|file:DIR [--rules PATH] [--rule ID] [--at TIME] [--state-index NAME]")
	ef := addEvalFlags(fs, "rebuild", "unused")
	at := fs.String("at", "now", "the tick whose history is rebuilt: RFC 3339, a date or now[-DURATION]")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := needStore(ef.store); err != nil {
		return err
	}
	if !ef.baselines.on || ef.baselines.stateIndex == "" {
		return &exitError{code: 2, err: errors.New("baseline rebuild needs the baselines on and a --state-index")}
	}
	end, err := parseWhen(*at, time.Now().UTC())
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--at: %w", err)}
	}
	selected, st, err := ef.open(ctx, env)
	if err != nil {
		return err
	}
	defer st.Close()
	return rebuildBaselines(ctx, env, st, ef, selected, end)
}

func rebuildBaselines(ctx context.Context, env *cliEnv, st store.Backend, ef *evalFlags, selected []*rules.Rule, end time.Time) error {
	days, groups := 0, 0
	cache, err := baseline.New(st, baseline.Options{StateIndex: ef.baselines.stateIndex, Rebuild: true, Log: env.log,
		OnBuild: func(_ string, _ time.Time, n int) { days++; groups += n }})
	if err != nil {
		return err
	}
	det := detector.New(cache, env.log)
	for i, r := range selected {
		d0, g0 := days, groups
		w := store.Window{From: end.Add(-r.Schedule.Lookback.Std()), To: end}
		if _, err := det.Evaluate(ctx, r, w, "baseline-rebuild"); err != nil {
			return fmt.Errorf("rebuild %s: %w", r.ID, err)
		}
		fmt.Fprintf(env.stderr, "[%d/%d] %s: %d days counted (%d groups)\n", i+1, len(selected), r.ID, days-d0, groups-g0)
	}
	s := cache.Stats()
	fmt.Fprintf(env.stdout, "rebuilt %d baseline days (%d groups) for %d rules in %s\n", days, groups, len(selected), ef.baselines.stateIndex)
	if days == 0 {
		// A rule asks for its history only for the entities active in its
		// window: an empty window reads no history.
		return fmt.Errorf("no baseline day was counted for the tick ending %s (%d history counts asked): no rule had events in its window, or no history spans a whole day sealed by now",
			end.Format(time.RFC3339), s.Requests)
	}
	if s.StateErrors > 0 {
		return fmt.Errorf("%d baseline days could not be written to %s (see the log)", s.StateErrors, ef.baselines.stateIndex)
	}
	return nil
}
