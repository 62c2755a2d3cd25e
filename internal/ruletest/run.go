package ruletest

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/rules"
)

// CaseResult is one case's outcome: what fired and what did not match.
type CaseResult struct {
	Case *Case
	// Err is a case that could not run (an unknown rule, an event that
	// does not render): positioned like a rule error.
	Err       *rules.Diagnostic
	Signals   []*detector.Signal   // of the rules under test, best first
	Incidents []*detector.Incident // all of them, alerting or not
	Problems  []string             // the diff, one line each
}

// Passed reports whether the case ran and matched.
func (r *CaseResult) Passed() bool { return r.Err == nil && len(r.Problems) == 0 }

// FileResult is one test file's outcome.
type FileResult struct {
	Name  string
	Diags rules.Diagnostics // errors in the file or its rule pack
	Cases []*CaseResult
}

// Failed reports whether anything in the file failed or was invalid.
func (f *FileResult) Failed() bool { return f.Diags.HasErrors() || f.Passed() < len(f.Cases) }

// Passed counts the passed cases.
func (f *FileResult) Passed() int {
	n := 0
	for _, c := range f.Cases {
		if c.Passed() {
			n++
		}
	}
	return n
}

// Runner runs test files.
type Runner struct {
	Log zerolog.Logger
}

// RunFile decodes and runs one test file against pack, the rules beside
// it (packDiags are the pack's problems, reported with the file's).
func (rn *Runner) RunFile(ctx context.Context, name string, data []byte, pack *rules.Pack, packDiags rules.Diagnostics) *FileResult {
	f, diags := Decode(name, data)
	res := &FileResult{Name: name, Diags: append(packDiags.Errors(), diags...)}
	for _, c := range f.Cases {
		if err := ctx.Err(); err != nil {
			res.Diags = append(res.Diags, rules.Diagnostic{File: name, Message: err.Error()})
			return res
		}
		res.Cases = append(res.Cases, rn.runCase(ctx, name, c, pack))
	}
	return res
}

func (rn *Runner) runCase(ctx context.Context, file string, c *Case, pack *rules.Pack) *CaseResult {
	res := &CaseResult{Case: c}
	fail := func(line, col int, format string, a ...any) *CaseResult {
		res.Err = &rules.Diagnostic{File: file, Line: line, Column: col, Message: fmt.Sprintf(format, a...)}
		return res
	}
	selected := make([]*rules.Rule, 0, len(c.Rules))
	for i, id := range c.Rules {
		r, ok := pack.Get(id)
		if !ok {
			n := c.ruleNodes[i]
			return fail(n.Line, n.Column, "no rule %q in the rules beside this file", id)
		}
		selected = append(selected, r)
	}
	st := embedded.NewMemory()
	defer st.Close()
	indices, err := load(ctx, st, c, selected)
	if err != nil {
		if le, ok := err.(*eventError); ok {
			return fail(le.ev.Line, le.ev.Column, "%v", le.err)
		}
		return fail(c.Line, c.Column, "%v", err)
	}
	det := detector.New(st, rn.Log, detector.WithClock(func() time.Time { return c.At }))
	for _, r := range selected {
		rc := *r
		rc.Source.Index = []string{indices[r.Profile().Name]}
		w := store.Window{From: c.At.Add(-rc.Schedule.Lookback.Std()), To: c.At}
		out, err := det.Evaluate(ctx, &rc, w, "offtrail-test")
		if err != nil {
			return fail(c.Line, c.Column, "evaluate: %v", err)
		}
		res.Signals = append(res.Signals, out.Signals...)
	}
	res.Incidents = detector.IncidentsOf(res.Signals, detector.IncidentOptions{Threshold: c.Threshold})
	// Attached signals are below their rule's threshold: context for an
	// incident, not something the rule fired. Expectations are about what
	// fired.
	fired := res.Signals[:0:0]
	for _, s := range res.Signals {
		if !s.Attached {
			fired = append(fired, s)
		}
	}
	res.Signals = fired
	res.Problems = compare(c, res.Signals, res.Incidents)
	return res
}

// eventError is a problem with one event, positioned at it.
type eventError struct {
	ev  Event
	err error
}

func (e *eventError) Error() string { return e.err.Error() }

// load renders the case's events into one index per profile the rules
// read, named like the shipped pattern so the store treats it as any
// CloudTrail index.
func load(ctx context.Context, st *embedded.Store, c *Case, rs []*rules.Rule) (map[string]string, error) {
	indices := map[string]string{}
	for _, r := range rs {
		p := r.Profile().Name
		if _, done := indices[p]; done {
			continue
		}
		idx := "offtrail-test-" + p
		indices[p] = idx
		w, err := st.NewBulkWriter(ctx, idx, nil)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		for i, e := range c.Events {
			doc, err := document(e, uuidOf(c.Name, fmt.Sprint(c.Line), fmt.Sprint(i)), p)
			if err != nil {
				return nil, &eventError{e, err}
			}
			if err := w.Add(ctx, doc); err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
		}
		if _, failed, err := w.Close(ctx); err != nil || failed > 0 {
			return nil, fmt.Errorf("store: %d documents failed: %v", failed, err)
		}
	}
	return indices, st.Refresh(ctx)
}
