// Package demo runs offtrail end to end without a cluster: it generates a
// synthetic AWS organisation with planted attacks, indexes it as Elastic's
// AWS integration would into the embedded store, replays the shipped rule
// pack as the scheduler would have run it, and scores the result against
// the labels. `offtrail demo` prints it; the test suite and the bench use
// the same code.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/synth"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

// Index is where the demo's CloudTrail documents go.
const Index = "logs-aws.cloudtrail-demo"

// Config says what to generate and replay.
type Config struct {
	Synth      synth.Config
	Replay     time.Duration  // the span before the end replayed by the scheduler; default 3 days
	Geo        cloudtrail.Geo // optional GeoIP database for source.geo
	Rules      []*rules.Rule  // default: the built-in pack
	Log        zerolog.Logger // progress and debug
	OnProgress func(schedule.Progress)
	// Store, when set, receives the documents instead of a new in-memory
	// embedded store (the bench uses it to compare backends).
	Store store.Backend
}

// Report is what the demo found and how good that was.
type Report struct {
	Labels        *synth.Labels
	Events        int
	Signals       []*detector.Signal // highest score first
	PerRule       []schedule.BacktestStats
	Scenarios     []ScenarioResult
	Caught        int // attack scenarios caught
	Attacks       int
	FalseAlerts   int // signals that touch no planted attack
	FalseByRule   map[string]int
	FalseSignals  []*detector.Signal
	IdentityWeeks float64 // identities × replayed weeks
	LoadTime      time.Duration
	ReplayTime    time.Duration
}

// ScenarioResult says whether a labelled scenario was caught, and by what.
type ScenarioResult struct {
	Scenario synth.Scenario
	Caught   bool
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

// Run generates, loads, replays and scores.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Replay == 0 {
		cfg.Replay = 72 * time.Hour
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

	// 1. Generate straight into the store, shaped as the ecs profile.
	start := time.Now()
	w, err := st.NewBulkWriter(ctx, Index, nil)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	shaper := &cloudtrail.Shaper{Geo: cfg.Geo}
	labels, err := synth.EventsContext(ctx, cfg.Synth, func(raw map[string]any) error {
		rec, err := cloudtrail.NewRecord(raw)
		if err != nil {
			return fmt.Errorf("generated record: %w", err)
		}
		shaper.Now = func() time.Time { return rec.Time.Add(5 * time.Minute) }
		src, err := json.Marshal(shaper.ECS(rec))
		if err != nil {
			return err
		}
		rep.Events++
		return w.Add(ctx, store.Doc{ID: rec.ID, Source: src})
	})
	if err != nil {
		return nil, fmt.Errorf("demo: generate: %w", err)
	}
	if _, failed, err := w.Close(ctx); err != nil || failed > 0 {
		return nil, fmt.Errorf("demo: load: %d failed: %v", failed, err)
	}
	if err := st.Refresh(ctx, Index); err != nil {
		return nil, err
	}
	rep.Labels = labels
	rep.LoadTime = time.Since(start)

	// 2. Replay the pack over the last days as the scheduler would have.
	rs := make([]*rules.Rule, len(cfg.Rules))
	for i, r := range cfg.Rules {
		rc := *r
		rc.Source.Index = []string{Index}
		if rc.OffHours != nil && !rc.OffHours.Learned() {
			// People work in their own zones: give the fixed-hours rule the
			// mapping a team would supply through off_hours.timezones.
			oh := *rc.OffHours
			oh.TimezoneByEntity = timezones(labels)
			rc.OffHours = &oh
		}
		rs[i] = &rc
	}
	det := detector.New(st, cfg.Log, detector.WithHighRiskActions(rules.HighRiskActions()),
		detector.WithClock(func() time.Time { return labels.End }))
	start = time.Now()
	rep.PerRule, err = schedule.Backtest(ctx, det, rs, labels.End.Add(-cfg.Replay), labels.End, schedule.BacktestOptions{
		OnSignal:    func(s *detector.Signal) error { rep.Signals = append(rep.Signals, s); return nil },
		OnProgress:  cfg.OnProgress,
		RunIDPrefix: "demo",
	})
	if err != nil {
		return nil, fmt.Errorf("demo: replay: %w", err)
	}
	rep.ReplayTime = time.Since(start)
	sort.SliceStable(rep.Signals, func(i, j int) bool { return rep.Signals[i].Score > rep.Signals[j].Score })

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
	rep.FalseByRule = map[string]int{}
	results := make([]ScenarioResult, len(rep.Labels.Scenarios))
	for i, sc := range rep.Labels.Scenarios {
		results[i].Scenario = sc
	}
	for _, s := range rep.Signals {
		hit := map[int]bool{}
		for _, e := range s.Events {
			if i, ok := owner[e.ID]; ok {
				hit[i] = true
			}
		}
		attack := false
		for i := range hit {
			r := &results[i]
			r.Signals++
			if !contains(r.Rules, s.RuleID) {
				r.Rules = append(r.Rules, s.RuleID)
			}
			if r.Scenario.Kind == "attack" {
				r.Caught = true
				attack = true
			}
		}
		if !attack {
			rep.FalseAlerts++
			rep.FalseByRule[s.RuleID]++
			rep.FalseSignals = append(rep.FalseSignals, s)
		}
	}
	for i := range results {
		sort.Strings(results[i].Rules)
		if results[i].Scenario.Kind == "attack" {
			rep.Attacks++
			if results[i].Caught {
				rep.Caught++
			}
		}
	}
	rep.Scenarios = results
	rep.IdentityWeeks = float64(len(rep.Labels.Identities)) * replay.Hours() / (24 * 7)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// timezones maps every ARN of every identity to its timezone.
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
