package detector

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// Near misses say why something did not fire: the best candidates below a
// rule's threshold, each with what kept its score down. They are collected
// only when asked (WithNearMisses), from what the evaluation computed
// anyway: no query is added for them.

// NearMiss is one candidate that stayed below its rule's threshold.
type NearMiss struct {
	Rule string `json:"rule"`
	Job  string `json:"job"`
	// WindowEnd is the end of the evaluated window it was found in.
	WindowEnd time.Time `json:"window_end"`
	Entity    []Field   `json:"entity"`
	Value     []Field   `json:"value"`
	Label     string    `json:"label"`
	Count     int64     `json:"count"`
	// Score is the final score; RawScore the score before context (and
	// before the contributing events refined it), equal when neither did.
	Score      float64    `json:"score"`
	RawScore   float64    `json:"raw_score"`
	Threshold  float64    `json:"threshold"`
	Confidence Confidence `json:"confidence"`
	// Stage is where it fell short: "score" (below the threshold when
	// scored), "context" (lowered below it by familiar context) or
	// "events" (its contributing events lowered or dropped it).
	Stage     string     `json:"stage"`
	LoweredBy []Lowering `json:"lowered_by"`
	// Exceptions lists the exception entries that matched, once exception
	// lists exist; empty until then.
	Exceptions []string `json:"exceptions,omitempty"`
}

// Lowering is one plain-language reason a score stayed low; Kind is one of
// history, low_history, peers, confidence, automation, floor, context,
// events, habit, exception.
type Lowering struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// Near-miss stages.
const (
	StageScore   = "score"
	StageContext = "context"
	StageEvents  = "events"
)

// DefaultNearMisses is how many near misses per rule --explain shows.
const DefaultNearMisses = 5

// WithNearMisses makes Evaluate keep the n best candidates below the
// threshold in Result.NearMisses (0, the default, keeps none and costs
// nothing).
func WithNearMisses(n int) Option { return func(d *Detector) { d.nearMisses = n } }

// NoNearMissReason says why a rule has no near misses, from its counts of
// candidates and of those at or above the threshold ("" when it has some
// candidates below).
func NoNearMissReason(candidates, above int) string {
	switch {
	case candidates == 0:
		return "no candidates in the window"
	case above >= candidates:
		return fmt.Sprintf("all %d candidate(s) at or above the threshold", candidates)
	}
	return ""
}

// missLog collects what the signal path drops, for near misses.
type missLog struct {
	refined map[*candidate]Estimate // off-hours refinement, kept when it drops a candidate
	raw     map[*candidate]float64  // score before refinement
	out     []NearMiss
}

// explaining reports whether near misses are collected.
func (ev *evaluation) explaining() bool { return ev.miss != nil }

// startExplain prepares near-miss collection: refinements are wrapped so
// a candidate they drop keeps its refined score.
func (ev *evaluation) startExplain(cands []*candidate) {
	if ev.d.nearMisses <= 0 {
		return
	}
	ev.miss = &missLog{refined: map[*candidate]Estimate{}, raw: map[*candidate]float64{}}
	for _, c := range cands {
		if c.refine == nil {
			continue
		}
		c, orig := c, c.refine
		c.refine = func(events []store.Event) (Estimate, bool) {
			ev.miss.raw[c] = c.est.Score
			est, ok := orig(events)
			ev.miss.refined[c] = est
			return est, ok
		}
	}
}

// dropped records a selected candidate that yielded no signal.
func (ev *evaluation) dropped(c *candidate) {
	if !ev.explaining() {
		return
	}
	nm := ev.nearMissOf(c, StageEvents)
	if est, ok := ev.miss.refined[c]; ok {
		nm.Score = round(est.Score, 2)
		nm.RawScore = round(ev.miss.raw[c], 2)
		nm.LoweredBy = append([]Lowering{{"events", fmt.Sprintf("its precise event times lowered the score from %.0f to %.0f (the hour bucket stood for them until then)", nm.RawScore, nm.Score)}}, nm.LoweredBy...)
	} else {
		nm.LoweredBy = append([]Lowering{{"events", "its events could not be fetched (deleted meanwhile, or none matched precisely)"}}, nm.LoweredBy...)
	}
	ev.miss.out = append(ev.miss.out, nm)
}

// missed records a signal that context lowered below the threshold.
func (ev *evaluation) missed(s *Signal, c *candidate) {
	if !ev.explaining() {
		return
	}
	nm := ev.nearMissOf(c, StageContext)
	nm.Score, nm.Label, nm.Confidence = s.Score, s.Label, s.Confidence
	if s.Context != nil {
		nm.RawScore = s.Context.ScoreBefore
		nm.LoweredBy = append([]Lowering{{"context", contextLowering(s, ev.rule.Context)}}, withoutKind(nm.LoweredBy, "context")...)
	}
	ev.miss.out = append(ev.miss.out, nm)
}

// nearMisses returns the best near misses: candidates below the threshold
// when scored, and those the signal path dropped, best first, at most n.
func (ev *evaluation) nearMisses(cands []*candidate) []NearMiss {
	if !ev.explaining() {
		return nil
	}
	threshold := ev.rule.AnomalyThreshold
	var below []*candidate
	for _, c := range cands {
		// Those at or above the attach threshold went down the signal
		// path: it records them if it drops them.
		if c.est.Score < attachThreshold(threshold) {
			below = append(below, c)
		}
	}
	sortCandidates(below)
	out := ev.miss.out
	for _, c := range below[:min(len(below), ev.d.nearMisses)] {
		out = append(out, ev.nearMissOf(c, StageScore))
	}
	SortNearMisses(out)
	return out[:min(len(out), ev.d.nearMisses)]
}

// SortNearMisses orders near misses best first (ties by rule, label and
// value, for determinism).
func SortNearMisses(nm []NearMiss) {
	sort.SliceStable(nm, func(i, j int) bool {
		a, b := nm[i], nm[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		return valueString(a.Value) < valueString(b.Value)
	})
}

func sortCandidates(cs []*candidate) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.est.Score != b.est.Score {
			return a.est.Score > b.est.Score
		}
		if a.entityKey != b.entityKey {
			return a.entityKey < b.entityKey
		}
		return a.valueKey < b.valueKey
	})
}

// nearMissOf describes a candidate from its scoring alone.
func (ev *evaluation) nearMissOf(c *candidate, stage string) NearMiss {
	score := round(c.est.Score, 2)
	nm := NearMiss{
		Rule: ev.rule.ID, Job: c.job, WindowEnd: ev.window.To.UTC(), Count: c.count,
		Score: score, RawScore: score, Threshold: ev.rule.AnomalyThreshold, Stage: stage,
		Confidence: ConfidenceFor(c.est.Score, c.baseline.Total),
	}
	nm.Entity, nm.Value = ev.fields(c)
	nm.Label = entityLabel(ev.prof, nm.Entity, store.Event{})
	nm.LoweredBy = ev.lowerings(c)
	if len(nm.LoweredBy) == 0 {
		nm.LoweredBy = []Lowering{{"history", "its history makes it ordinary enough: " + oneIn(c.est.Probability)}}
	}
	return nm
}

// lowerings lists what kept a candidate's score down, most telling first.
func (ev *evaluation) lowerings(c *candidate) []Lowering {
	var out []Lowering
	add := func(kind, format string, args ...any) {
		out = append(out, Lowering{kind, fmt.Sprintf(format, args...)})
	}
	b, hist := c.baseline, historyText(ev)
	switch c.job {
	case "rare", "first_seen":
		out = append(out, ev.rareLowerings(c)...)
	case "off_hours":
		if n, _ := c.extra["history_off_hours_events"].(int64); n > 0 {
			add("habit", "works outside %s often: %s of %s events in %s were", c.extra["business_hours"], commas(n), commas(b.Total), hist)
		}
		if c.est.Score < 100 && c.est.Score > 50 {
			add("habit", "close to business hours (the score is full only two hours or more outside them)")
		}
	case "off_hours_learned":
		if n, _ := c.extra["slot_history_events"].(int64); n > 0 {
			add("habit", "active at %s before: %s of %s events in %s", c.extra["slot"], commas(n), commas(b.Total), hist)
		}
		if b.Total < mediumConfidenceEvents {
			add("low_history", "little history (%s events in %s): its hours are not learned yet", commas(b.Total), hist)
		}
	case "burst":
		if n, _ := c.extra["history_hours_reaching"].(int64); n > 0 {
			add("habit", "%s of its hours in %s reached this count (busiest: %v)", commas(n), hist, c.extra["history_busiest_hour"])
		}
	}
	if c.automation {
		// Automation is judged stricter, never laxer: said so that nobody
		// looks for the reason there.
		add("automation", "behaves like automation (judged 1.15 times stricter, no context discount)")
	}
	// Confidence follows from the score except where history caps it.
	if conf := ConfidenceFor(100, b.Total); conf != ConfidenceHigh {
		add("confidence", "its history caps confidence at %s: %s events (medium needs %d, high %d)", conf, commas(b.Total), mediumConfidenceEvents, highConfidenceEvents)
	}
	if ev.rule.Context != nil {
		add("context", "context (%s) is judged only at or above the threshold", strings.Join(ev.rule.Context.Fields, ", "))
	}
	return out
}

// rareLowerings: the value's own history, the entity's little history,
// its peers and the floors that did not apply.
func (ev *evaluation) rareLowerings(c *candidate) []Lowering {
	var out []Lowering
	add := func(kind, format string, args ...any) {
		out = append(out, Lowering{kind, fmt.Sprintf(format, args...)})
	}
	rr, b, hist := ev.rule.Rare, c.baseline, historyText(ev)
	what := valueString(fieldsOf(rr.Field, c.value))
	if n := b.Counts[c.valueKey]; n > 0 {
		add("history", "not new: %s %s in %s (of %s events, %d kinds)", what, times(n), hist, commas(b.Total), b.Distinct())
	}
	if c.est.Novel && b.Total < mediumConfidenceEvents {
		add("low_history", "little history (%s events in %s): anything new is likely for it (%s)", commas(b.Total), hist, oneIn(c.est.Novelty))
	}
	if c.est.Novel && c.peers.WithValue > 0 {
		peers := "peers"
		if c.peers.Nearest {
			peers = "nearest peers by behaviour"
		}
		// Only when they made a difference (not for an entity whose
		// novelty alone keeps it low).
		if without := max(EstimateValue(b, c.valueKey, Peers{Total: c.peers.Total}, c.automation).Score, c.least); without-c.est.Score >= 1 {
			add("peers", "%d of %d %s did the same (without them: %.0f)", c.peers.WithValue, c.peers.Total, peers, without)
		}
	}
	for i, f := range rr.Field {
		if f != "action" || i >= len(c.value) {
			continue
		}
		if sev := ev.d.highImpact[c.value[i]]; sev != "" && !c.est.Novel {
			add("floor", "%s is high-impact, but made before (%s in %s): no floor", c.value[i], times(b.Counts[c.valueKey]), hist)
		}
	}
	if rr.NovelFloor > 0 && c.est.Novel && b.Total < int64(max(1, rr.MinHistoryEvents)) {
		add("floor", "novel_floor %.0f not applied: %s events of history, fewer than min_history_events %d", rr.NovelFloor, commas(b.Total), max(1, rr.MinHistoryEvents))
	}
	return out
}

func fieldsOf(names, values []string) []Field {
	out := make([]Field, 0, len(values))
	for i, v := range values {
		if i < len(names) {
			out = append(out, Field{names[i], v})
		}
	}
	return out
}

func withoutKind(ls []Lowering, kind string) []Lowering {
	out := ls[:0:0]
	for _, l := range ls {
		if l.Kind != kind {
			out = append(out, l)
		}
	}
	return out
}

// contextLowering says what familiar context took off a signal's score.
func contextLowering(s *Signal, cx *rules.Context) string {
	c := s.Context
	familiar := "familiar context"
	if c.Familiar && cx != nil {
		familiar = "a familiar " + joinAnd(cx.Fields)
	}
	text := fmt.Sprintf("%s lowered the score from %.0f to %.0f (-%.2g powers of ten", familiar, c.ScoreBefore, s.Score, c.Discount)
	if c.Penalty > 0 {
		text += fmt.Sprintf(", +%.2g for new %s", c.Penalty, strings.Join(c.New, ", "))
	}
	return text + ")"
}
