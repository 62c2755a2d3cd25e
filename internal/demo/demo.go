// Package demo runs offtrail end to end without a cluster: it generates a
// synthetic AWS organisation with planted attacks, indexes it as Elastic's
// AWS integration would into the embedded store, replays the shipped rule
// pack as the scheduler would have run it, and scores the result against
// the labels. `offtrail demo` prints it; the test suite and the bench use
// the same code.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/ingest"
	"github.com/offtrail/offtrail/internal/synth"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

// Index is where the demo's CloudTrail documents go.
const Index = "logs-aws.cloudtrail-demo"

// Config says what to generate and replay.
type Config struct {
	Synth  synth.Config
	Replay time.Duration  // the span before the end replayed by the scheduler; default 3 days
	Geo    cloudtrail.Geo // optional GeoIP database for source.geo
	Rules  []*rules.Rule  // default: the built-in pack
	// Incidents sets the incident threshold and sessions (defaults: see
	// detector.IncidentOptions).
	Incidents  detector.IncidentOptions
	Log        zerolog.Logger // progress and debug
	OnProgress func(schedule.Progress)
	// Store, when set, receives the documents instead of a new in-memory
	// embedded store (the bench uses it to compare backends).
	Store store.Backend
	// RawHistory aggregates the whole history every tick instead of using
	// the baseline days (the equivalence test compares both).
	RawHistory bool
	// Index and StateIndex name the demo's indices (default Index and
	// StateIndex): tests on a shared engine give their own.
	Index, StateIndex string
}

// StateIndex holds the demo's baseline days.
const StateIndex = "offtrail-state-demo"

// Report is what the demo found and how good that was.
type Report struct {
	Labels    *synth.Labels
	Events    int
	Signals   []*detector.Signal // the building blocks, highest score first
	Incidents []*detector.Incident
	PerRule   []schedule.BacktestStats
	Scenarios []ScenarioResult
	Caught    int // attack scenarios in an alerting incident
	// CaughtSession counts attack scenarios inside the session of an
	// alerting incident of their identity (its span, give or take the
	// session gap), even when none of their own events is a contributing
	// one: what an analyst opening that incident's session would see.
	CaughtSession int
	Attacks       int
	Alerts        int // alerting incidents
	FalseAlerts   int // alerting incidents that touch no planted attack
	FalseByRule   map[string]int
	// FalseByKind counts false incidents by the benign scenario they touch
	// ("background" when none).
	FalseByKind    map[string]int
	FalseIncidents []*detector.Incident
	// NoBaseline counts actors whose incidents had no history at all.
	NoBaseline    int
	IdentityWeeks float64 // identities × replayed weeks
	LoadTime      time.Duration
	ReplayTime    time.Duration
	// Baselines is the cache the replay counted history through (nil with
	// RawHistory).
	Baselines *baseline.Cache
}

// ScenarioResult says whether a labelled scenario was caught, and by what.
type ScenarioResult struct {
	Scenario synth.Scenario
	Caught   bool     // in an alerting incident
	Session  bool     // within the session of an alerting incident of its identity
	Score    float64  // the best incident score touching it
	Rules    []string // rules whose signals contain its events
	Signals  int
}

// Recall is the share of attack scenarios caught.
func (r *Report) Recall() float64 {
	if r.Attacks == 0 {
		return 0
	}
	return float64(r.Caught) / float64(r.Attacks)
}

// FalsePer100IdentityWeeks normalises false alerts by exposure.
func (r *Report) FalsePer100IdentityWeeks() float64 {
	if r.IdentityWeeks == 0 {
		return 0
	}
	return float64(r.FalseAlerts) / r.IdentityWeeks * 100
}

// Locator turns a GeoIP database into synth.Config.Locate.
func Locator(geo cloudtrail.Geo) func(string) string {
	return func(ip string) string {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return ""
		}
		loc, _ := geo.Lookup(a)
		return loc.CountryISOCode
	}
}

// Run generates, loads, replays and scores.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Replay == 0 {
		cfg.Replay = 72 * time.Hour
	}
	if cfg.Index == "" {
		cfg.Index = Index
	}
	if cfg.StateIndex == "" {
		cfg.StateIndex = StateIndex
	}
	if cfg.Synth.Locate == nil && cfg.Geo != nil {
		cfg.Synth.Locate = Locator(cfg.Geo)
	}
	if cfg.Rules == nil {
		pack, diags := rules.Builtin()
		if diags.HasErrors() {
			return nil, diags.Err()
		}
		cfg.Rules = pack.Enabled()
	}
	st := cfg.Store
	if st == nil {
		mem := embedded.NewMemory()
		defer mem.Close()
		st = mem
	}
	rep := &Report{}

	// 1. Generate straight into the store, shaped as the ecs profile. The
	// shaping and JSON encoding dominate, so they run on every core; the
	// store does not care in which order documents arrive (ids are fixed).
	start := time.Now()
	w, err := st.NewBulkWriter(ctx, cfg.Index, nil)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	labels, events, err := shapeInto(ctx, cfg, w)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	rep.Events = events
	if _, failed, err := w.Close(ctx); err != nil || failed > 0 {
		return nil, fmt.Errorf("demo: load: %d failed: %v", failed, err)
	}
	if err := st.Refresh(ctx, cfg.Index); err != nil {
		return nil, err
	}
	rep.Labels = labels
	rep.LoadTime = time.Since(start)

	// 2. Replay the pack over the last days as the scheduler would have.
	rs := make([]*rules.Rule, len(cfg.Rules))
	for i, r := range cfg.Rules {
		rc := *r
		rc.Source.Index = []string{cfg.Index}
		if rc.OffHours != nil && !rc.OffHours.Learned() {
			// People work in their own zones: give the fixed-hours rule the
			// mapping a team would supply through off_hours.timezones.
			oh := *rc.OffHours
			oh.TimezoneByEntity = timezones(labels)
			rc.OffHours = &oh
		}
		rs[i] = &rc
	}
	counted := detector.Store(st)
	if !cfg.RawHistory {
		cache, err := baseline.New(st, baseline.Options{StateIndex: cfg.StateIndex, Log: cfg.Log, Now: func() time.Time { return labels.End }})
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		counted, rep.Baselines = cache, cache
	}
	det := detector.New(counted, cfg.Log, detector.WithHighRiskActions(rules.HighRiskActions()),
		detector.WithClock(func() time.Time { return labels.End }))
	start = time.Now()
	if err := replay(ctx, det, rs, labels.End.Add(-cfg.Replay), labels.End, cfg.OnProgress, rep); err != nil {
		return nil, fmt.Errorf("demo: replay: %w", err)
	}
	rep.ReplayTime = time.Since(start)
	sort.SliceStable(rep.Signals, func(i, j int) bool { return rep.Signals[i].Score > rep.Signals[j].Score })
	rep.Incidents = detector.IncidentsOf(rep.Signals, cfg.Incidents)

	// 3. Score against the labels.
	score(rep, cfg.Replay)
	return rep, nil
}

// score matches signals to scenarios by their contributing events.
func score(rep *Report, replay time.Duration) {
	owner := map[string]int{} // event id -> scenario index (attacks win over benign)
	for i, sc := range rep.Labels.Scenarios {
		for _, id := range sc.EventIDs {
			if j, ok := owner[id]; ok && rep.Labels.Scenarios[j].Kind == "attack" {
				continue
			}
			owner[id] = i
		}
	}
	results := make([]ScenarioResult, len(rep.Labels.Scenarios))
	for i, sc := range rep.Labels.Scenarios {
		results[i].Scenario = sc
	}
	// Building blocks: which rules saw each scenario.
	for _, s := range rep.Signals {
		for i := range touched(owner, signalEventIDs(s)) {
			r := &results[i]
			r.Signals++
			if !slices.Contains(r.Rules, s.RuleID) {
				r.Rules = append(r.Rules, s.RuleID)
			}
		}
	}
	// Alerts are incidents.
	rep.FalseByRule, rep.FalseByKind = map[string]int{}, map[string]int{}
	noBaseline := map[detector.Actor]bool{}
	for _, inc := range rep.Incidents {
		hit := touched(owner, inc.EventIDs())
		for i := range hit {
			results[i].Score = max(results[i].Score, inc.Score)
		}
		if !inc.Alert {
			continue
		}
		rep.Alerts++
		if inc.NoBaseline {
			noBaseline[inc.Actor] = true
		}
		attack := false
		var kinds []string
		for i := range hit {
			if results[i].Scenario.Kind == "attack" {
				results[i].Caught, attack = true, true
			} else {
				kinds = append(kinds, results[i].Scenario.ID)
			}
		}
		if attack {
			continue
		}
		rep.FalseAlerts++
		rep.FalseIncidents = append(rep.FalseIncidents, inc)
		for _, r := range inc.Rules {
			rep.FalseByRule[r]++
		}
		if len(kinds) == 0 {
			kinds = []string{"background"}
		}
		for _, k := range slices.Compact(slices.Sorted(slices.Values(kinds))) {
			rep.FalseByKind[k]++
		}
	}
	rep.NoBaseline = len(noBaseline)
	for i := range results {
		sort.Strings(results[i].Rules)
		if results[i].Scenario.Kind == "attack" {
			rep.Attacks++
			if results[i].Caught {
				rep.Caught++
			}
			results[i].Session = results[i].Caught || inAlertingSession(rep.Incidents, results[i].Scenario)
			if results[i].Session {
				rep.CaughtSession++
			}
		}
	}
	rep.Scenarios = results
	rep.IdentityWeeks = float64(len(rep.Labels.Identities)) * replay.Hours() / (24 * 7)
}

// AtThreshold recounts the report as if incidents alerted at threshold t:
// attacks caught (contributing events in an alerting incident) and false
// incidents (alerting, touching no attack). For the bench's sensitivity
// rows: one replay, every threshold.
func AtThreshold(rep *Report, t float64) (caught, falseIncidents int) {
	owner := map[string]int{}
	for i, sc := range rep.Labels.Scenarios {
		for _, id := range sc.EventIDs {
			if j, ok := owner[id]; ok && rep.Labels.Scenarios[j].Kind == "attack" {
				continue
			}
			owner[id] = i
		}
	}
	hitAttack := map[int]bool{}
	for _, inc := range rep.Incidents {
		if inc.Score < t {
			continue
		}
		attack := false
		for i := range touched(owner, inc.EventIDs()) {
			if rep.Labels.Scenarios[i].Kind == "attack" {
				hitAttack[i], attack = true, true
			}
		}
		if !attack {
			falseIncidents++
		}
	}
	return len(hitAttack), falseIncidents
}

// inAlertingSession reports whether an alerting incident of one of the
// scenario's identities spans its time, give or take the default gap.
func inAlertingSession(incs []*detector.Incident, sc synth.Scenario) bool {
	gap := detector.DefaultSessionGap
	for _, inc := range incs {
		if inc.Alert && slices.Contains(sc.Identities, inc.Actor.Identity) &&
			!sc.Start.After(inc.End.Add(gap)) && !sc.End.Before(inc.Start.Add(-gap)) {
			return true
		}
	}
	return false
}

// touched returns the scenarios owning any of the event ids.
func touched(owner map[string]int, ids []string) map[int]bool {
	hit := map[int]bool{}
	for _, id := range ids {
		if i, ok := owner[id]; ok {
			hit[i] = true
		}
	}
	return hit
}

func signalEventIDs(s *detector.Signal) []string {
	ids := make([]string, len(s.Events))
	for i, e := range s.Events {
		ids[i] = e.ID
	}
	return ids
}

func timezones(l *synth.Labels) map[string]string {
	out := map[string]string{}
	for _, id := range l.Identities {
		if id.Timezone == "" {
			continue
		}
		out[id.ARN] = id.Timezone
		for _, arn := range id.ARNs {
			out[arn] = id.Timezone
		}
	}
	return out
}

// shapeInto generates the organisation and writes it, shaped as ECS, into
// w: the generator feeds workers that shape and encode, and one goroutine
// adds to the writer.
func shapeInto(ctx context.Context, cfg Config, w store.BulkWriter) (*synth.Labels, int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	raws := make(chan map[string]any, 1024)
	docs := make(chan store.Doc, 1024)
	var shapers sync.WaitGroup
	shape := ingest.Shape{Profile: "ecs", Geo: cfg.Geo, Ingested: ingest.Delivered(5 * time.Minute)}
	for range max(1, runtime.GOMAXPROCS(0)) {
		shapers.Add(1)
		go func() {
			defer shapers.Done()
			for raw := range raws {
				rec, err := cloudtrail.NewRecord(raw)
				if err != nil {
					cancel(fmt.Errorf("generated record: %w", err))
					continue
				}
				doc, _, err := shape.Doc(rec)
				if err != nil {
					cancel(err)
					continue
				}
				select {
				case docs <- doc:
				case <-ctx.Done():
				}
			}
		}()
	}
	added := make(chan error, 1)
	n := 0
	go func() {
		var err error
		for d := range docs {
			if err == nil {
				if err = w.Add(ctx, d); err == nil {
					n++
				} else {
					cancel(err)
				}
			}
		}
		added <- err
	}()
	labels, genErr := synth.EventsContext(ctx, cfg.Synth, func(raw map[string]any) error {
		select {
		case raws <- raw:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(raws)
	shapers.Wait()
	close(docs)
	addErr := <-added
	if err := context.Cause(ctx); err != nil && genErr == nil && addErr == nil {
		return nil, 0, err
	}
	if err := errors.Join(genErr, addErr); err != nil {
		return nil, 0, err
	}
	return labels, n, nil
}

// replay backtests each rule on its own goroutine, as many at once as
// there are cores: rules are independent (their signal ids differ), and
// the embedded store serves concurrent readers.
func replay(ctx context.Context, det *detector.Detector, rs []*rules.Rule, from, to time.Time, progress func(schedule.Progress), rep *Report) error {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		errs    = make([]error, len(rs))
		perRule = make([][]schedule.BacktestStats, len(rs))
		sigs    = make([][]*detector.Signal, len(rs))
		sem     = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
		done    int
	)
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			perRule[i], errs[i] = schedule.Backtest(ctx, det, []*rules.Rule{r}, from, to, schedule.BacktestOptions{
				OnSignal: func(s *detector.Signal) error { sigs[i] = append(sigs[i], s); return nil },
				OnProgress: func(p schedule.Progress) {
					if progress == nil {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					// Count across all rules (each Backtest counts its own).
					done++
					p.Done, p.Total, p.RuleIndex, p.Rules = done, p.Windows*len(rs), i, len(rs)
					progress(p)
				},
				RunIDPrefix: "demo",
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := range rs {
		rep.PerRule = append(rep.PerRule, perRule[i]...)
		rep.Signals = append(rep.Signals, sigs[i]...)
	}
	return nil
}
