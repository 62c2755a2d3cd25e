package detector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/rules"
)

// Signal is one alert: what was found, why, and the events behind it.
type Signal struct {
	ID          string
	RuleID      string
	RuleName    string
	Job         string
	RunID       string
	Window      store.Window
	Created     time.Time
	Entity      []Field // the partition and by fields
	Value       []Field // the rare value (or time slot)
	Label       string  // readable name of the entity
	Count       int64   // events of this pair in the window
	Score       float64
	Probability float64
	Surprisal   float64
	Confidence  Confidence
	Severity    string
	RiskScore   int
	HighRisk    string // category when the action is high-risk
	// Floor is the severity of the high-impact floor when it applied.
	Floor string
	// Attached: below the rule's threshold, kept only to join an incident
	// its actor has for other reasons (see attachThreshold).
	Attached bool
	// Actor is who acted: the identity and account of the first event.
	Actor      Actor
	Automation bool
	Reason     string
	Baseline   BaselineSummary
	Events     []store.Event // contributing events, oldest first
	Timeline   []TimelineEvent
	Extra      map[string]any
	Context    *ContextResult // set when the rule has a context check

	// least is the score context may not lower it below: the high-impact
	// floor, or a rule's novel_floor.
	least float64
	// pair is the entity and value keys, for Written (repeats.go).
	pair string

	doc map[string]any
}

// Actor is the identity behind a signal, within its account: what
// incidents group by.
type Actor struct {
	Identity string `json:"id"`
	Account  string `json:"account,omitempty"`
	Label    string `json:"label,omitempty"`
}

// Key identifies the actor in maps and document ids.
func (a Actor) Key() string { return a.Account + "\x1f" + a.Identity }

// NoBaseline reports whether the signal's entity had no history at all:
// its score is then a floor or a guess, never a comparison with a past.
func (s *Signal) NoBaseline() bool { return s.Baseline.Events == 0 }

// Field is one named value.
type Field struct {
	Name  string `json:"field"`
	Value string `json:"value"`
}

// BaselineSummary is the history a score was judged against.
type BaselineSummary struct {
	History        string `json:"history"`
	Events         int64  `json:"events"`
	Distinct       int    `json:"distinct"`
	Singletons     int64  `json:"singletons"`
	ValueEvents    int64  `json:"value_events"`
	Peers          int    `json:"peers"`
	PeersWithValue int    `json:"peers_with_value"`
	// PeersNearest: the peers are the actor's most similar identities by
	// behaviour, not its whole partition.
	PeersNearest bool         `json:"peers_nearest,omitempty"`
	Typical      []ValueCount `json:"typical,omitempty"`
}

// ValueCount is one baseline value with its count.
type ValueCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// raiseSeverity raises a severity one level for a high-risk action, but not
// beyond high: critical stays a choice the rule's author makes.
func raiseSeverity(s string) string {
	switch s {
	case "low":
		return "medium"
	case "medium":
		return "high"
	}
	return s
}

// maxSeverity returns the higher of two severities.
func maxSeverity(a, b string) string {
	if rules.SeverityScore(b) > rules.SeverityScore(a) {
		return b
	}
	return a
}

// SignalID is deterministic: the rule, the entity, the value and the first
// contributing event. Re-running a window, after a crash, a retry or on a
// second replica, yields the same id and the create-only write skips it.
func SignalID(ruleID, entityKey, valueKey, firstEventID string) string {
	h := sha256.New()
	for _, s := range []string{ruleID, entityKey, valueKey, firstEventID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (ev *evaluation) buildSignal(ctx context.Context, c *candidate) (*Signal, error) {
	r := ev.rule
	q := ev.windowQuery()
	q.Filter = q.Filter.And(c.eventFilter)
	limit := ev.d.eventsPerSignal
	fetch := limit
	if c.keep != nil {
		fetch = limit * 10 // room for the events keep drops
	}
	ev.res.Queries++
	events, err := ev.d.store.Events(ctx, q, fetch)
	if err != nil {
		return nil, fmt.Errorf("contributing events: %w", err)
	}
	if c.keep != nil {
		kept := events[:0]
		for _, e := range events {
			if c.keep(e) {
				kept = append(kept, e)
			}
		}
		events = kept
	}
	if len(events) > limit {
		events = events[:limit]
	}
	if len(events) == 0 {
		// Counted but not fetchable (deleted meanwhile, or the hour bucket
		// held only business-hours events): nothing to show, nothing to alert.
		return nil, nil
	}
	if c.refine != nil {
		est, ok := c.refine(events)
		if !ok {
			return nil, nil
		}
		c.est = est
	}

	s := &Signal{
		ID:          SignalID(r.ID, c.entityKey, c.valueKey, events[0].ID),
		RuleID:      r.ID,
		RuleName:    r.Name,
		Job:         c.job,
		RunID:       ev.res.RunID,
		Window:      ev.window,
		Created:     ev.d.now().UTC(),
		Count:       c.count,
		Score:       round(c.est.Score, 2),
		Probability: c.est.Probability,
		Surprisal:   round(c.est.Surprisal, 3),
		Severity:    r.Severity,
		RiskScore:   r.RiskScore,
		Automation:  c.automation,
		Events:      events,
		Extra:       c.extra,
	}
	s.pair = c.entityKey + "\x1e" + c.valueKey
	s.Confidence = ConfidenceFor(c.est.Score, c.baseline.Total)
	s.Entity, s.Value = ev.fields(c)
	s.Label = entityLabel(ev.prof, s.Entity, events[0])
	s.Actor = Actor{Identity: ev.eventField(events[0], "identity"), Account: ev.eventField(events[0], "account")}
	s.Actor.Label = ShortIdentity(s.Actor.Identity)
	if s.Actor.Identity == "" {
		s.Actor.Identity, s.Actor.Label = s.Label, s.Label
	}
	if cat := ev.highRiskCategory(s.Value); cat != "" {
		s.HighRisk = cat
		s.Severity = raiseSeverity(s.Severity)
	}
	s.least = c.least
	if c.floor != "" {
		s.Floor = c.floor
		s.Severity = maxSeverity(s.Severity, c.floor)
	}
	if n := rules.SeverityScore(s.Severity); n > s.RiskScore {
		s.RiskScore = n
	}
	s.Baseline = BaselineSummary{
		History:        historyText(ev),
		Events:         c.baseline.Total,
		Distinct:       c.baseline.Distinct(),
		Singletons:     c.baseline.Singletons,
		ValueEvents:    c.baseline.Counts[c.valueKey],
		Peers:          c.peers.Total,
		PeersWithValue: c.peers.WithValue,
		PeersNearest:   c.peers.Nearest,
		Typical:        typical(c.baseline, 5),
	}
	return s, nil
}

// finish writes the reason and the document once the score is final.
func (ev *evaluation) finish(s *Signal, c *candidate) {
	s.Timeline = ev.timelineOf(s)
	s.Reason = c.reason(ev, s, c)
	if ev.rule.Context != nil {
		s.Reason += contextReason(s, ev.rule.Context)
	}
	s.doc = ev.document(s)
}

func historyText(ev *evaluation) string {
	r := ev.rule
	switch {
	case r.Rare != nil:
		return r.Rare.History.String()
	case r.OffHours != nil && r.OffHours.Learn > 0:
		return r.OffHours.Learn.String()
	case r.Burst != nil:
		return r.Burst.History.String()
	default:
		return rules.Duration(fixedHoursHistory).String()
	}
}

func (ev *evaluation) fields(c *candidate) (entity, value []Field) {
	var entNames, valNames []string
	switch {
	case ev.rule.Rare != nil:
		entNames = append(append(entNames, ev.rule.Rare.Partition...), ev.rule.Rare.By...)
		valNames = ev.rule.Rare.Field
	case ev.rule.OffHours != nil:
		entNames = ev.rule.Entity()
		valNames = []string{"hours"}
	case ev.rule.Burst != nil:
		entNames = append(append(entNames, ev.rule.Burst.Partition...), ev.rule.Burst.By...)
		valNames = []string{"count"}
	}
	for i, n := range entNames {
		if i < len(c.entity) {
			entity = append(entity, Field{n, c.entity[i]})
		}
	}
	for i, n := range valNames {
		if i < len(c.value) {
			value = append(value, Field{n, c.value[i]})
		}
	}
	return entity, value
}

func (ev *evaluation) highRiskCategory(value []Field) string {
	for _, f := range value {
		if f.Name == "action" || f.Name == ev.prof.Physical("action") {
			if cat, ok := ev.d.highRisk[f.Value]; ok {
				return cat
			}
		}
	}
	// A rule whose where clause pins actions: use the event's action.
	return ""
}

func typical(b *Baseline, n int) []ValueCount {
	out := make([]ValueCount, 0, len(b.Counts))
	for v, c := range b.Counts {
		out = append(out, ValueCount{strings.Join(store.SplitKey(v), " / "), c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func round(x float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	if x < 0 {
		return float64(int64(x*p-0.5)) / p
	}
	return float64(int64(x*p+0.5)) / p
}

// entityLabel is a readable name for the entity: a user or role name rather
// than a whole ARN.
func entityLabel(prof *mappings.Profile, entity []Field, first store.Event) string {
	var parts []string
	for _, f := range entity {
		switch f.Name {
		case "account":
			if len(entity) == 1 {
				parts = append(parts, "account "+f.Value)
			}
			continue
		case "identity":
			parts = append(parts, ShortIdentity(f.Value))
		default:
			parts = append(parts, f.Value)
		}
	}
	if len(parts) == 0 {
		if v, ok := store.Lookup(first.Source, prof.Physical("user")); ok {
			if s, ok := store.Stringify(v); ok {
				return s
			}
		}
		return "?"
	}
	return strings.Join(parts, " / ")
}

// ShortIdentity turns an ARN into the name a person would use:
// arn:aws:iam::1:user/alice → alice; arn:aws:sts::1:assumed-role/Deploy/ci → role Deploy (session ci).
func ShortIdentity(arn string) string {
	if !strings.HasPrefix(arn, "arn:") {
		return arn
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return arn
	}
	res := parts[5]
	switch {
	case strings.HasPrefix(res, "assumed-role/"):
		p := strings.SplitN(strings.TrimPrefix(res, "assumed-role/"), "/", 2)
		if len(p) == 2 {
			return "role " + p[0] + " (session " + p[1] + ")"
		}
		return "role " + p[0]
	case res == "root":
		return "root of " + parts[4]
	}
	if i := strings.LastIndex(res, "/"); i >= 0 {
		return res[i+1:]
	}
	return res
}
