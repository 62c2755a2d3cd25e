package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

func init() {
	register(command{
		name:    "once",
		summary: "evaluate rules over one window and print the signals",
		run:     runOnce,
	})
}

func runOnce(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "once", "--store URL|file:DIR [--rules PATH] [--rule ID] [--at TIME] [--format table|json] [--incident-threshold N] [--explain [--explain-top N]]")
	ef := addEvalFlags(fs, "evaluate", "output: table or json (one incident or signal a line)")
	at := fs.String("at", "now", "end of the window: RFC 3339, a date (2024-03-05) or now[-DURATION] (now-7d)")
	threshold := addIncidentThreshold(fs)
	xf := addExplainFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ef.check(); err != nil {
		return err
	}
	if err := xf.check(); err != nil {
		return err
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
	if err := checkEvents(ctx, st, selected, end.Add(-maxLookback(selected)), end); err != nil {
		return err
	}

	det := detector.New(ef.detectorStore(env, st), env.log, xf.options()...)
	defer ef.report(env)
	book := newNearMissBook(xf.top, selected)
	runID := fmt.Sprintf("once-%d", time.Now().UnixNano())
	var signals []*detector.Signal
	for _, r := range selected {
		w := store.Window{From: end.Add(-r.Schedule.Lookback.Std()), To: end}
		res, err := det.Evaluate(ctx, r, w, runID)
		if err != nil {
			return err
		}
		env.log.Debug().Str("rule", r.ID).Int("candidates", res.Candidates).Int("signals", len(res.Signals)).Msg("evaluated")
		signals = append(signals, res.Signals...)
		book.add(res)
	}
	incs := detector.IncidentsOf(signals, detector.IncidentOptions{Threshold: *threshold})
	triageIncidents(ctx, env, st, selected, signals, incs)
	if ef.format == "json" {
		if err := writeIncidentsJSON(env.stdout, incs); err != nil {
			return err
		}
		if err := writeSignalsJSON(env.stdout, signals); err != nil {
			return err
		}
		if xf.on {
			return writeNearMissesJSON(env.stdout, book.finish())
		}
		return nil
	}
	writeIncidentsTable(env.stdout, incs, *threshold)
	fmt.Fprintln(env.stdout, "\nRule signals (the incidents' building blocks):")
	writeSignalsTable(env.stdout, signals)
	if xf.on {
		writeNearMissesText(env.stdout, book.finish())
	}
	return nil
}

// loadPack loads rules from path, or the built-in pack; invalid rules are an
// error naming every problem with file:line:col.
func loadPack(env *cliEnv, path string) (*rules.Pack, error) {
	var pack *rules.Pack
	var diags rules.Diagnostics
	if path == "" {
		pack, diags = rules.Builtin()
	} else {
		pack, diags = rules.LoadFiles(path)
	}
	for _, d := range diags.Warnings() {
		fmt.Fprintln(env.stderr, d.String())
	}
	if diags.HasErrors() {
		for _, d := range diags.Errors() {
			fmt.Fprintln(env.stderr, d.String())
		}
		return nil, &exitError{code: 1, err: fmt.Errorf("%d invalid rule(s)", len(diags.Errors()))}
	}
	return pack, nil
}

func selectRules(pack *rules.Pack, id string) ([]*rules.Rule, error) {
	if id == "" {
		return pack.Enabled(), nil
	}
	r, ok := pack.Get(id)
	if !ok {
		return nil, &exitError{code: 2, err: fmt.Errorf("no rule %q in the pack", id)}
	}
	return []*rules.Rule{r}, nil
}

func writeSignalsJSON(w io.Writer, signals []*detector.Signal) error {
	enc := json.NewEncoder(w)
	for _, s := range signals {
		// The same line format as the embedded store's signals.ndjson.
		if err := enc.Encode(map[string]any{"_id": s.ID, "_source": s.Document()}); err != nil {
			return err
		}
	}
	return nil
}

// writeSignalsTable prints signals for a person: rule, identity, what,
// score, confidence, reason.
func writeSignalsTable(w io.Writer, signals []*detector.Signal) {
	if len(signals) == 0 {
		fmt.Fprintln(w, "no signals")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tENTITY\tWHAT\tSCORE\tCONF\tSEVERITY\tREASON")
	for _, s := range signals {
		what := make([]string, len(s.Value))
		for i, f := range s.Value {
			what[i] = f.Value
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\t%s\n", s.RuleID, truncate(s.Label, 40), truncate(strings.Join(what, " / "), 40),
			s.Score, s.Confidence, s.Severity, s.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d signal(s)\n", len(signals))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
