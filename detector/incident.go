package detector

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/offtrail/offtrail/rules"
)

// Incidents are what a person is alerted to: the anomalies (rule signals,
// the building blocks) of one actor over one session of activity, combined
// into one score.
//
// Combining. Anomalies that share a contributing event (two rules firing
// on one StopLogging are not two independent surprises), or come from the
// same rule (one session at unusual hours is one surprise, not one per
// hour; three new actions of one new service are one exploration), are one
// piece of evidence. A group counts with its strongest member plus a
// tenth of the others, at most a quarter of a power of ten more: its
// members are strongly correlated, so breadth adds little. The groups,
// strongest first, then add up with halving weights, S = S₁ + S₂/2 +
// S₃/4 + …, so independent anomalies strengthen each other (three of
// 1 in 1,000 make 1 in 180,000) but the total never exceeds twice the
// strongest: rules overlap, and many weak hints are not proof. The incident score is the same logistic of S as
// every rule's, so the incident threshold (default 75, "1 in 32,000") reads
// like a rule's.

// Incident defaults.
const (
	DefaultIncidentThreshold = 75
	DefaultSessionGap        = time.Hour
	DefaultSessionSpan       = 24 * time.Hour
	maxTimeline              = 100
)

// IncidentRuleID names incidents where a rule id is expected (rule.id).
const IncidentRuleID = "offtrail-incident"

// IncidentOptions bound sessions and set the alerting threshold.
type IncidentOptions struct {
	// Threshold is the incident score at which a person is alerted.
	Threshold float64 `yaml:"threshold" json:"threshold"`
	// Gap ends a session: a pause longer than this starts a new one.
	Gap time.Duration `yaml:"gap" json:"gap"`
	// MaxSpan bounds a session: at most this long from its first event.
	MaxSpan time.Duration `yaml:"max_span" json:"max_span"`
}

// WithDefaults fills unset options.
func (o IncidentOptions) WithDefaults() IncidentOptions {
	if o.Threshold == 0 {
		o.Threshold = DefaultIncidentThreshold
	}
	if o.Gap <= 0 {
		o.Gap = DefaultSessionGap
	}
	if o.MaxSpan <= 0 {
		o.MaxSpan = DefaultSessionSpan
	}
	return o
}

// TimelineEvent is one contributing event of an incident.
type TimelineEvent struct {
	ID     string    `json:"id"`
	Index  string    `json:"index,omitempty"`
	Time   time.Time `json:"time"`
	Action string    `json:"action,omitempty"`
	Rules  []string  `json:"rules,omitempty"`
}

// Anomaly is one rule signal as an incident sees it. It is what the
// scheduler keeps of a session between runs, so it round-trips as JSON.
type Anomaly struct {
	SignalID       string          `json:"signal_id"`
	Rule           string          `json:"rule"`
	RuleName       string          `json:"rule_name"`
	Job            string          `json:"job"`
	Value          string          `json:"value"`
	Score          float64         `json:"score"`
	Surprisal      float64         `json:"surprisal"`
	Severity       string          `json:"severity"`
	RiskScore      int             `json:"risk_score"`
	HighRisk       string          `json:"high_risk,omitempty"`
	Floor          string          `json:"floor,omitempty"`
	Confidence     Confidence      `json:"confidence"`
	BaselineEvents int64           `json:"baseline_events"`
	Automation     bool            `json:"automation,omitempty"`
	Reason         string          `json:"reason"`
	Start          time.Time       `json:"start"`
	End            time.Time       `json:"end"`
	Events         []TimelineEvent `json:"events"`
	// Evidence numbers the group of correlated anomalies it belongs to;
	// Weight is its group's weight in the combined surprisal (0 when a
	// stronger member of its group stands for it).
	Evidence int     `json:"evidence"`
	Weight   float64 `json:"weight"`
	// Attached anomalies are below their rule's threshold: they join a
	// session made by the others and weigh nothing in its score.
	Attached bool `json:"attached,omitempty"`
}

// AnomalyOf is the incident's view of a signal.
func AnomalyOf(s *Signal) Anomaly {
	a := Anomaly{
		SignalID: s.ID, Rule: s.RuleID, RuleName: s.RuleName, Job: s.Job, Value: valueString(s.Value),
		Score: s.Score, Surprisal: round(SurprisalFromScore(s.Score), 3), Severity: s.Severity, RiskScore: s.RiskScore,
		HighRisk: s.HighRisk, Floor: s.Floor, Confidence: s.Confidence, BaselineEvents: s.Baseline.Events,
		Automation: s.Automation, Reason: s.Reason, Events: s.Timeline, Attached: s.Attached,
	}
	if len(s.Events) > 0 {
		a.Start, a.End = s.Events[0].Time.UTC(), s.Events[len(s.Events)-1].Time.UTC()
	}
	return a
}

// Incident is one actor's session of anomalous activity.
type Incident struct {
	ID         string          `json:"id"`
	Actor      Actor           `json:"actor"`
	Start      time.Time       `json:"start"`
	End        time.Time       `json:"end"`
	Score      float64         `json:"score"`
	Surprisal  float64         `json:"surprisal"`
	Threshold  float64         `json:"threshold"`
	Alert      bool            `json:"alert"`
	Severity   string          `json:"severity"`
	RiskScore  int             `json:"risk_score"`
	Confidence Confidence      `json:"confidence"`
	NoBaseline bool            `json:"no_baseline"`
	Evidence   int             `json:"evidence"`
	Summary    string          `json:"summary"`
	Rules      []string        `json:"rules"`
	Anomalies  []Anomaly       `json:"anomalies"`
	Timeline   []TimelineEvent `json:"timeline"`
	Updated    time.Time       `json:"updated"`
	// Triage is set by a Triager before the incident is written.
	Triage *Triage `json:"triage,omitempty"`
}

// BuildIncidents groups anomalies by actor and session and scores each
// session. Incidents come out highest score first; all of them, alerting
// or not (Alert says which).
func BuildIncidents(anoms map[Actor][]Anomaly, opts IncidentOptions) []*Incident {
	opts = opts.WithDefaults()
	var out []*Incident
	for actor, list := range anoms {
		for _, sess := range Sessions(list, opts) {
			out = append(out, NewIncident(actor, sess, opts))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// IncidentsOf builds incidents from signals.
func IncidentsOf(sigs []*Signal, opts IncidentOptions) []*Incident {
	byActor := map[Actor][]Anomaly{}
	for _, s := range sigs {
		byActor[s.Actor] = append(byActor[s.Actor], AnomalyOf(s))
	}
	return BuildIncidents(byActor, opts)
}

// Sessions splits one actor's anomalies into sessions: a new one starts
// after a pause longer than Gap, or once MaxSpan has passed since the
// session's first event. Anomalies come back sorted within each session.
func Sessions(list []Anomaly, opts IncidentOptions) [][]Anomaly {
	opts = opts.WithDefaults()
	sorted := append([]Anomaly(nil), list...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Start.Equal(sorted[j].Start) {
			return sorted[i].Start.Before(sorted[j].Start)
		}
		return sorted[i].SignalID < sorted[j].SignalID
	})
	var out [][]Anomaly
	var cur []Anomaly
	var start, end time.Time
	var attached []Anomaly
	for _, a := range sorted {
		if a.Attached {
			attached = append(attached, a)
			continue
		}
		if len(cur) > 0 && (a.Start.Sub(end) > opts.Gap || a.Start.Sub(start) >= opts.MaxSpan) {
			out = append(out, cur)
			cur = nil
		}
		if len(cur) == 0 {
			start, end = a.Start, a.End
		}
		cur = append(cur, a)
		if a.End.After(end) {
			end = a.End
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return attach(out, attached, opts.Gap)
}

// attach adds each attached anomaly to the session it falls in, or within
// Gap of; one that falls near none is dropped: it cannot alert alone, and
// it neither opens a session nor joins two.
func attach(sessions [][]Anomaly, attached []Anomaly, gap time.Duration) [][]Anomaly {
	if len(attached) == 0 {
		return sessions
	}
	for _, a := range attached {
		for i, sess := range sessions {
			start, end := sess[0].Start, sess[0].End
			for _, b := range sess {
				if !b.Attached && b.End.After(end) {
					end = b.End
				}
			}
			if !a.Start.Before(start.Add(-gap)) && !a.Start.After(end.Add(gap)) {
				sessions[i] = append(sess, a)
				break
			}
		}
	}
	for _, sess := range sessions {
		sort.SliceStable(sess, func(i, j int) bool {
			if !sess[i].Start.Equal(sess[j].Start) {
				return sess[i].Start.Before(sess[j].Start)
			}
			return sess[i].SignalID < sess[j].SignalID
		})
	}
	return sessions
}

// IncidentID is deterministic: the actor and the first contributing event
// of the session's first anomaly, so re-running a span, or a second
// replica, updates the same document.
func IncidentID(actor Actor, first Anomaly) string {
	ev := first.SignalID
	if len(first.Events) > 0 {
		ev = first.Events[0].ID
	}
	h := sha256.New()
	for _, s := range []string{"incident", actor.Account, actor.Identity, ev} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// NewIncident scores one session (its anomalies sorted by start, as
// Sessions returns them).
func NewIncident(actor Actor, sess []Anomaly, opts IncidentOptions) *Incident {
	opts = opts.WithDefaults()
	anoms := dedupAnomalies(sess)
	inc := &Incident{ID: IncidentID(actor, firstContributing(anoms)), Actor: actor, Threshold: opts.Threshold, Anomalies: anoms}
	inc.Evidence, inc.Surprisal = combine(anoms)
	inc.Score = round(ScoreFromSurprisal(inc.Surprisal), 2)
	var floor string
	var history int64
	ruleIDs := map[string]bool{}
	inc.NoBaseline = true
	for _, a := range anoms {
		if inc.Start.IsZero() || a.Start.Before(inc.Start) {
			inc.Start = a.Start
		}
		if a.End.After(inc.End) {
			inc.End = a.End
		}
		if a.Attached {
			continue // shown, never weighed
		}
		ruleIDs[a.Rule] = true
		inc.Severity = maxSeverity(inc.Severity, a.Severity)
		inc.RiskScore = max(inc.RiskScore, a.RiskScore)
		if a.Floor != "" {
			floor = maxSeverity(floor, a.Floor)
		}
		history = max(history, a.BaselineEvents)
		inc.NoBaseline = inc.NoBaseline && a.BaselineEvents == 0
	}
	if floor != "" {
		inc.Score = max(inc.Score, FloorScore)
		inc.Surprisal = max(inc.Surprisal, round(SurprisalFromScore(FloorScore), 3))
		inc.Severity = maxSeverity(inc.Severity, floor)
	}
	inc.Severity = maxSeverity(inc.Severity, severityForScore(inc.Score))
	inc.RiskScore = max(inc.RiskScore, rules.SeverityScore(inc.Severity))
	inc.Confidence = ConfidenceFor(inc.Score, history)
	inc.Alert = inc.Score >= opts.Threshold
	inc.Rules = sortedKeys(ruleIDs)
	inc.Timeline = timeline(anoms)
	inc.Summary = summarise(inc)
	return inc
}

// firstContributing is the session's first anomaly that is not attached:
// the incident's id must not change when an attached one comes before it.
func firstContributing(anoms []Anomaly) Anomaly {
	for _, a := range anoms {
		if !a.Attached {
			return a
		}
	}
	return anoms[0]
}

// severityForScore: an incident stronger than any one rule's judgement
// earns severity from its score alone.
func severityForScore(score float64) string {
	switch {
	case score >= 97:
		return "high"
	case score >= 85:
		return "medium"
	}
	return "low"
}

// dedupAnomalies keeps one anomaly per signal id (a signal can reach a
// session twice: replayed windows, a restarted scheduler).
func dedupAnomalies(in []Anomaly) []Anomaly {
	seen := map[string]bool{}
	out := make([]Anomaly, 0, len(in))
	for _, a := range in {
		if seen[a.SignalID] {
			continue
		}
		seen[a.SignalID] = true
		out = append(out, a)
	}
	return out
}

// Within-group weights (see the package comment on combining).
const (
	groupExtraWeight = 0.1
	groupExtraMax    = 0.25
)

// combine groups correlated anomalies (shared events, or the same rule)
// and adds the groups' surprisals with halving weights. It sets
// each anomaly's Evidence and Weight and returns the number of groups and
// the combined surprisal.
func combine(anoms []Anomaly) (int, float64) {
	parent := make([]int, len(anoms))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) { parent[find(a)] = find(b) }
	byEvent := map[string]int{}
	byRule := map[string]int{}
	for i, a := range anoms {
		if a.Attached {
			continue
		}
		for _, e := range a.Events {
			if j, ok := byEvent[e.ID]; ok {
				union(i, j)
			} else {
				byEvent[e.ID] = i
			}
		}
		if j, ok := byRule[a.Rule]; ok {
			union(i, j)
		} else {
			byRule[a.Rule] = i
		}
	}
	best := map[int]int{} // group root -> its strongest anomaly
	for i := range anoms {
		if anoms[i].Attached {
			continue
		}
		r := find(i)
		if b, ok := best[r]; !ok || anoms[i].Surprisal > anoms[b].Surprisal {
			best[r] = i
		}
	}
	rest := map[int]float64{} // group root -> surprisal of its other members
	for i := range anoms {
		if r := find(i); best[r] != i && !anoms[i].Attached {
			rest[r] += anoms[i].Surprisal
		}
	}
	groupS := func(i int) float64 { return anoms[i].Surprisal + min(groupExtraMax, groupExtraWeight*rest[find(i)]) }
	leaders := make([]int, 0, len(best))
	for _, i := range best {
		leaders = append(leaders, i)
	}
	sort.Slice(leaders, func(x, y int) bool {
		a, b := groupS(leaders[x]), groupS(leaders[y])
		if a != b {
			return a > b
		}
		return anoms[leaders[x]].SignalID < anoms[leaders[y]].SignalID
	})
	group := map[int]int{}
	total, w := 0.0, 1.0
	for n, i := range leaders {
		group[find(i)] = n + 1
		anoms[i].Weight = w
		total += w * groupS(i)
		w /= 2
	}
	for i := range anoms {
		anoms[i].Evidence = group[find(i)] // 0 for attached ones
	}
	return len(leaders), round(total, 3)
}

// timeline merges the anomalies' events, oldest first, each with the
// rules that used it.
func timeline(anoms []Anomaly) []TimelineEvent {
	byID := map[string]*TimelineEvent{}
	for _, a := range anoms {
		for _, e := range a.Events {
			t := byID[e.ID]
			if t == nil {
				c := e
				c.Rules = nil
				t = &c
				byID[e.ID] = t
			}
			if len(t.Rules) == 0 || t.Rules[len(t.Rules)-1] != a.Rule {
				t.Rules = append(t.Rules, a.Rule)
			}
		}
	}
	out := make([]TimelineEvent, 0, len(byID))
	for _, t := range byID {
		sort.Strings(t.Rules)
		t.Rules = compactStrings(t.Rules)
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > maxTimeline {
		out = out[:maxTimeline]
	}
	return out
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// summarise is the incident's one paragraph: who, how long, what was
// anomalous (strongest evidence first) and how strong it is together.
func summarise(inc *Incident) string {
	var sb strings.Builder
	who := inc.Actor.Label
	if inc.Actor.Account != "" {
		who += " (account " + inc.Actor.Account + ")"
	}
	span := inc.End.Sub(inc.Start).Round(time.Minute)
	fmt.Fprintf(&sb, "%s: %d %s in %s", who, len(inc.Anomalies), plural(len(inc.Anomalies), "anomaly", "anomalies"), shortDuration(span))
	if inc.Evidence < len(inc.Anomalies) {
		fmt.Fprintf(&sb, " (%d independent)", inc.Evidence)
	}
	leaders := make([]Anomaly, 0, inc.Evidence)
	for _, a := range inc.Anomalies {
		if a.Weight > 0 {
			leaders = append(leaders, a)
		}
	}
	sort.Slice(leaders, func(i, j int) bool { return leaders[i].Weight > leaders[j].Weight })
	parts := make([]string, 0, 3)
	for i, a := range leaders {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d more", len(leaders)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s: %s (%.0f)", a.RuleName, a.Value, a.Score))
	}
	fmt.Fprintf(&sb, ": %s. Combined score %.0f (%s)", strings.Join(parts, "; "), inc.Score, oneIn(math.Pow(10, -inc.Surprisal)))
	for _, a := range inc.Anomalies {
		if a.Floor != "" {
			fmt.Fprintf(&sb, "; high-impact action %s alerts whatever the history", a.Value)
			break
		}
	}
	if inc.NoBaseline {
		sb.WriteString("; no baseline: the actor had no history before this session, so nothing was compared with a past")
	}
	return sb.String() + "."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// timelineOf summarises a signal's events for incidents.
func (ev *evaluation) timelineOf(s *Signal) []TimelineEvent {
	out := make([]TimelineEvent, len(s.Events))
	for i, e := range s.Events {
		out[i] = TimelineEvent{ID: e.ID, Index: e.Index, Time: e.Time.UTC(), Action: ev.eventField(e, "action"), Rules: []string{s.RuleID}}
	}
	return out
}

// EventIDs lists every contributing event id of every anomaly (the
// timeline keeps at most 100).
func (inc *Incident) EventIDs() []string {
	var ids []string
	for _, a := range inc.Anomalies {
		for _, e := range a.Events {
			ids = append(ids, e.ID)
		}
	}
	return ids
}
