package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// explainFlags are --explain and --explain-top of once and backtest.
type explainFlags struct {
	on  bool
	top int
}

func addExplainFlags(fs *flag.FlagSet) *explainFlags {
	f := &explainFlags{}
	fs.BoolVar(&f.on, "explain", false, "also print, per rule, the best candidates below the threshold and what lowered them")
	fs.IntVar(&f.top, "explain-top", detector.DefaultNearMisses, "near misses per rule with --explain")
	return f
}

func (f *explainFlags) check() error {
	if f.top < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--explain-top must be at least 1")}
	}
	return nil
}

// options returns the detector options --explain asks for.
func (f *explainFlags) options() []detector.Option {
	if !f.on {
		return nil
	}
	return []detector.Option{detector.WithNearMisses(f.top)}
}

// ruleMisses are one rule's near misses over one or more windows.
type ruleMisses struct {
	Rule       string              `json:"rule"`
	Threshold  float64             `json:"threshold"`
	Windows    int                 `json:"windows"`
	Candidates int                 `json:"candidates"`
	Above      int                 `json:"above"`
	Note       string              `json:"note,omitempty"` // why the list is empty
	Items      []detector.NearMiss `json:"items"`
	seen       map[string]int      // label and value -> index in Items
}

// nearMissBook gathers near misses per rule, in rule order; over many
// windows (backtest) one (rule, entity, value) is kept once, at its best.
type nearMissBook struct {
	top   int
	order []string
	rules map[string]*ruleMisses
}

func newNearMissBook(top int, rs []*rules.Rule) *nearMissBook {
	b := &nearMissBook{top: top, rules: map[string]*ruleMisses{}}
	for _, r := range rs {
		b.order = append(b.order, r.ID)
		b.rules[r.ID] = &ruleMisses{Rule: r.ID, Threshold: r.AnomalyThreshold, Items: []detector.NearMiss{}, seen: map[string]int{}}
	}
	return b
}

func (b *nearMissBook) add(res *detector.Result) {
	rm := b.rules[res.Rule]
	if rm == nil {
		return
	}
	rm.Windows++
	rm.Candidates += res.Candidates
	rm.Above += res.Above
	for _, nm := range res.NearMisses {
		k := nm.Label + "\x1f" + valueText(nm.Value)
		if i, ok := rm.seen[k]; ok {
			if nm.Score > rm.Items[i].Score {
				rm.Items[i] = nm
			}
			continue
		}
		rm.seen[k] = len(rm.Items)
		rm.Items = append(rm.Items, nm)
	}
}

// finish sorts, cuts to top and says why empty lists are empty.
func (b *nearMissBook) finish() []*ruleMisses {
	out := make([]*ruleMisses, 0, len(b.order))
	for _, id := range b.order {
		rm := b.rules[id]
		detector.SortNearMisses(rm.Items)
		if len(rm.Items) > b.top {
			rm.Items = rm.Items[:b.top]
		}
		if len(rm.Items) == 0 {
			rm.Note = detector.NoNearMissReason(rm.Candidates, rm.Above)
			if rm.Note == "" {
				rm.Note = "every candidate below the threshold was dropped before scoring ended"
			}
		}
		out = append(out, rm)
	}
	return out
}

// writeNearMissesJSON prints one line under its own key, never mixed with
// the signal and incident lines.
func writeNearMissesJSON(w io.Writer, rms []*ruleMisses) error {
	return json.NewEncoder(w).Encode(map[string]any{"near_misses": rms})
}

// writeNearMissesText prints a section per rule.
func writeNearMissesText(w io.Writer, rms []*ruleMisses) {
	fmt.Fprintln(w, "\nNear misses (the best candidates below each rule's threshold, and what lowered them):")
	for _, rm := range rms {
		fmt.Fprintf(w, "\n%s (threshold %.0f): %d candidate(s), %d at or above", rm.Rule, rm.Threshold, rm.Candidates, rm.Above)
		if rm.Windows > 1 {
			fmt.Fprintf(w, " over %d windows", rm.Windows)
		}
		if len(rm.Items) == 0 {
			fmt.Fprintf(w, "; no near misses: %s\n", rm.Note)
			continue
		}
		fmt.Fprintln(w)
		common := commonLowerings(rm.Items)
		for _, l := range common {
			fmt.Fprintf(w, "  every one - %s: %s\n", l.Kind, l.Text)
		}
		for _, nm := range rm.Items {
			fmt.Fprintf(w, "  %5.1f  %s  %s  (%d event(s), window to %s, confidence %s",
				nm.Score, nm.Label, valueText(nm.Value), nm.Count, nm.WindowEnd.Format("2006-01-02 15:04"), nm.Confidence)
			if nm.RawScore != nm.Score {
				fmt.Fprintf(w, ", %.1f before %s", nm.RawScore, nm.Stage)
			}
			fmt.Fprintln(w, ")")
			for _, l := range nm.LoweredBy {
				if slices.Contains(common, l) {
					continue
				}
				fmt.Fprintf(w, "         - %s: %s\n", l.Kind, l.Text)
			}
			if len(nm.Exceptions) > 0 {
				fmt.Fprintf(w, "         - exceptions: %s\n", strings.Join(nm.Exceptions, ", "))
			}
		}
	}
}

// commonLowerings are the reasons every near miss of a rule shares (the
// rule's context not judged below the threshold), printed once.
func commonLowerings(items []detector.NearMiss) []detector.Lowering {
	if len(items) < 2 {
		return nil
	}
	var out []detector.Lowering
	for _, l := range items[0].LoweredBy {
		all := true
		for _, nm := range items[1:] {
			all = all && slices.Contains(nm.LoweredBy, l)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

func valueText(v []detector.Field) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = f.Value
	}
	return strings.Join(parts, " / ")
}

// recordingEvaluator hands every result to a near-miss book (backtest).
type recordingEvaluator struct {
	det  *detector.Detector
	book *nearMissBook
}

// Written passes on what a window handed on (schedule.Backtest), so
// overlapping windows skip its signals.
func (e recordingEvaluator) Written(r *rules.Rule, w store.Window, sigs []*detector.Signal) {
	e.det.Written(r, w, sigs)
}

func (e recordingEvaluator) Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error) {
	res, err := e.det.Evaluate(ctx, r, w, runID)
	if err == nil && e.book != nil {
		e.book.add(res)
	}
	return res, err
}
