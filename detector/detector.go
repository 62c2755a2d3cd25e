// Package detector runs offtrail's anomaly jobs (rare, first-seen,
// off-hours) over a log store, scores what it finds and builds explained
// signal documents. The store does the counting: the detector only asks for
// grouped counts over windows, restricted to the entities active in the
// window, and for a few contributing events per signal.
package detector

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/rules"
)

// Store is what the detector needs of a backend: grouped counts over a
// window, and the events behind a signal.
type Store interface {
	CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error
	Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error)
}

// Detector evaluates rules over windows.
type Detector struct {
	store           Store
	log             zerolog.Logger
	highRisk        map[string]string
	highImpact      map[string]string // action -> severity of its floor
	eventsPerSignal int
	now             func() time.Time
	nearMisses      int // near misses kept per evaluation (WithNearMisses)
	repeats         repeats
}

// Option configures a Detector.
type Option func(*Detector)

// WithHighRiskActions sets the actions (name -> category) whose signals get
// their severity and risk score raised (default: the shipped list).
func WithHighRiskActions(m map[string]string) Option { return func(d *Detector) { d.highRisk = m } }

// WithHighImpactActions sets the actions (name -> severity) that alert
// whatever the history (default: the shipped list): see FloorScore.
func WithHighImpactActions(m map[string]string) Option {
	return func(d *Detector) { d.highImpact = m }
}

// WithEventsPerSignal sets how many contributing events a signal carries.
func WithEventsPerSignal(n int) Option { return func(d *Detector) { d.eventsPerSignal = n } }

// WithClock sets the wall clock used for event.created.
func WithClock(now func() time.Time) Option { return func(d *Detector) { d.now = now } }

// New returns a detector over s.
func New(s Store, log zerolog.Logger, opts ...Option) *Detector {
	d := &Detector{store: s, log: log, eventsPerSignal: 10, now: time.Now,
		highRisk: rules.HighRiskActions(), highImpact: rules.HighImpactActions()}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Result is what one evaluation of a rule over a window produced.
type Result struct {
	Rule    string
	Window  store.Window
	RunID   string
	Signals []*Signal // at most the rule's max_signals, highest scores first
	// Candidates is the number of (entity, value) pairs scored; Above the
	// number at or above the threshold before max_signals applied.
	Candidates int
	Above      int
	Queries    int
	// Repeats are candidates whose signal an earlier window wrote, still
	// holding its first event: not built again (Written).
	Repeats int
	// NearMisses are the best candidates below the threshold, with what
	// lowered them; only with WithNearMisses (see nearmiss.go).
	NearMisses []NearMiss
}

// Evaluate runs rule r over window w.
func (d *Detector) Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*Result, error) {
	prof := r.Profile()
	if prof == nil {
		return nil, fmt.Errorf("rule %s: unknown profile %q", r.ID, r.Source.Profile)
	}
	ev := &evaluation{d: d, rule: r, prof: prof, window: w, res: &Result{Rule: r.ID, Window: w, RunID: runID}}
	var cands []*candidate
	var err error
	switch r.Type {
	case rules.TypeRare:
		cands, err = ev.rare(ctx)
	case rules.TypeOffHours:
		cands, err = ev.offHours(ctx)
	case rules.TypeBurst:
		cands, err = ev.burst(ctx)
	default:
		err = fmt.Errorf("unknown rule type %q", r.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("rule %s window %s: %w", r.ID, w, err)
	}
	ev.res.Candidates = len(cands)
	ev.res.Above = countAbove(cands, r.AnomalyThreshold)
	ev.startExplain(cands)
	sigs, err := ev.signals(ctx, selectCandidates(cands, attachThreshold(r.AnomalyThreshold), 0))
	if err != nil {
		return nil, fmt.Errorf("rule %s window %s: %w", r.ID, w, err)
	}
	ev.res.Signals = sigs
	ev.res.NearMisses = ev.nearMisses(cands)
	return ev.res, nil
}

// signals builds signals from the selected candidates, best first, until
// max_signals of them survive the context check. Candidates are built in
// batches of max_signals so the context lookup stays one count per field
// per batch, and a rule with nothing familiar costs what it did before.
func (ev *evaluation) signals(ctx context.Context, selected []*candidate) ([]*Signal, error) {
	r := ev.rule
	max := r.MaxSignals
	if max <= 0 {
		max = len(selected)
	}
	var out, attached []*Signal
	alerted := 0 // repeats that alerted: they count against max_signals
	for start := 0; start < len(selected) && len(out)+alerted < max; start += max {
		batch := selected[start:min(start+max, len(selected))]
		var built []*Signal
		var from []*candidate
		for _, c := range batch {
			if ok, wasAttached := ev.d.repeated(r, c, ev.window); ok {
				ev.res.Repeats++
				if !wasAttached {
					alerted++
				}
				continue
			}
			sig, err := ev.buildSignal(ctx, c)
			if err != nil {
				return nil, err
			}
			if sig != nil {
				built, from = append(built, sig), append(from, c)
			} else {
				ev.dropped(c)
			}
		}
		if err := ev.applyContext(ctx, built); err != nil {
			return nil, err
		}
		for i, sig := range built {
			switch {
			case sig.Score >= r.AnomalyThreshold:
				ev.finish(sig, from[i])
				out = append(out, sig)
			case from[i].est.Novel && sig.Score >= attachThreshold(r.AnomalyThreshold) && len(attached) < maxAttached:
				// Too weak to alert on, worth showing in an incident
				// that alerts for other reasons.
				sig.Attached = true
				ev.finish(sig, from[i])
				attached = append(attached, sig)
			default:
				ev.missed(sig, from[i])
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	keep := max - alerted
	if keep < 0 {
		keep = 0
	}
	if len(out) > keep {
		out = out[:keep]
	}
	return append(out, attached...), nil
}

// Attached signals: a value new to its actor that scores at least 35% of
// the rule's threshold is written as an attached building block. It never
// raises an incident's score nor opens one; it joins the session of an
// incident its actor has anyway, so the incident shows every first-time
// call of the session (a chained intrusion's quieter steps, made from the
// victim's own device, sit beside its loud ones).
const (
	attachFraction = 0.35
	maxAttached    = 20 // per rule and window, beside max_signals
)

func attachThreshold(threshold float64) float64 { return threshold * attachFraction }

func countAbove(cands []*candidate, threshold float64) int {
	n := 0
	for _, c := range cands {
		if c.est.Score >= threshold {
			n++
		}
	}
	return n
}

// selectCandidates keeps those at or above the threshold, highest score
// first (ties by entity and value, for determinism), at most max.
func selectCandidates(cands []*candidate, threshold float64, max int) []*candidate {
	var out []*candidate
	for _, c := range cands {
		if c.est.Score >= threshold {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.est.Score != b.est.Score {
			return a.est.Score > b.est.Score
		}
		if a.entityKey != b.entityKey {
			return a.entityKey < b.entityKey
		}
		return a.valueKey < b.valueKey
	})
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// evaluation is the state of one Evaluate call.
type evaluation struct {
	d      *Detector
	rule   *rules.Rule
	prof   *mappings.Profile
	window store.Window
	res    *Result
	miss   *missLog // near misses, when asked for
	keys   keyJoiner
}

func (ev *evaluation) physical(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = ev.prof.Physical(f)
	}
	return out
}

// filter is the rule's where clause in physical names.
func (ev *evaluation) filter() store.Filter {
	f := store.Filter{Terms: map[string][]string{}, Not: map[string][]string{}}
	for k, v := range ev.rule.Source.Where.Terms {
		f.Terms[ev.prof.Physical(k)] = append(f.Terms[ev.prof.Physical(k)], v...)
	}
	for k, v := range ev.rule.Source.Where.Not {
		f.Not[ev.prof.Physical(k)] = append(f.Not[ev.prof.Physical(k)], v...)
	}
	return f
}

// windowQuery selects the rule's events in the evaluated window, on event
// time or, for rules windowed on ingest time, on event.ingested.
func (ev *evaluation) windowQuery() store.Query {
	tf := ev.prof.Time
	if ev.rule.Schedule.Window == "ingested" && ev.prof.Ingested != "" {
		tf = ev.prof.Ingested
	}
	f := ev.filter()
	f.Exclude = ev.exclusions()
	return store.Query{Index: ev.rule.Source.Index, TimeField: tf, Window: ev.window, Filter: f}
}

// exclusions are the rule's exception entries in force at the window's
// end, one clause each, for the window query only: exceptions suppress
// alerts, they do not change what the baselines learn is normal.
func (ev *evaluation) exclusions() []store.Clause {
	applied := ev.rule.ExceptionsAt(ev.window.To)
	out := make([]store.Clause, 0, len(applied))
	for _, a := range applied {
		cl := make(store.Clause, 0, len(a.Entry.Conditions))
		for _, c := range a.Entry.Conditions {
			op := store.OpTerms
			switch {
			case c.Op == rules.OpMatches:
				op = store.OpWildcard
			case c.Address():
				op = store.OpCIDR
			}
			cl = append(cl, store.Cond{Field: c.PhysicalField(ev.prof), Op: op, Values: c.Values})
		}
		out = append(out, cl)
	}
	return out
}

// exceptionNames lists the entries evaluated for the window, "list/entry".
func (ev *evaluation) exceptionNames() []string {
	var out []string
	for _, a := range ev.rule.ExceptionsAt(ev.window.To) {
		out = append(out, a.Name())
	}
	return out
}

// historyQuery selects the baseline: the span before the window, on event
// time, from the hour (historyStart). Conditions of the where clause on the judged value fields select
// which values are candidates in the window, not the entity's habits: "first
// use of a high-risk action" judges a new high-risk action against all of
// the identity's actions, not against the (usually empty) set of high-risk
// ones it used before.
func (ev *evaluation) historyQuery(span time.Duration) store.Query {
	f := ev.filter()
	if ev.rule.Rare != nil {
		for _, v := range ev.physical(ev.rule.Rare.Field) {
			delete(f.Terms, v)
			delete(f.Not, v)
		}
	}
	return store.Query{
		Index:     ev.rule.Source.Index,
		TimeField: ev.prof.Time,
		Window:    store.Window{From: historyStart(ev.window.From.Add(-span)), To: ev.window.From},
		Filter:    f,
	}
}

// historyStart is where a history that would begin at t begins: at the
// hour, so that as ticks move the span by 15 minutes its far end is whole
// hours the baseline cache holds, never a partial hour that would cost an
// engine request per count and tick. A history is thus up to 45 minutes
// longer than its nominal span, the same on every backend and path.
func historyStart(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// settledEnd is where a history that settles (ends settle before the
// window that starts at from) ends: at the hour, for the same reason, so
// the settle is up to 45 minutes longer than asked.
func settledEnd(from time.Time, settle time.Duration) time.Time {
	if settle <= 0 {
		return from
	}
	return from.Add(-settle).UTC().Truncate(time.Hour)
}

func (ev *evaluation) count(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	ev.res.Queries++
	return ev.d.store.CountGroups(ctx, req, fn)
}
