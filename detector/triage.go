package detector

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/mappings"
)

// Triage context: what Elastic's guide for "Unusual AWS Command for a
// User" asks an analyst to look up first, written into the incident so
// nobody has to: the actor's other alerts of the last 48 hours, its usual
// countries, networks, clients and hours, and links to searches of its
// events around the incident.

// Triage defaults.
const (
	TriageRecent  = 48 * time.Hour      // how far back other alerts are listed
	TriageHistory = 30 * 24 * time.Hour // the baseline the usual values come from
	triageTop     = 5                   // values listed per field
	triageAlerts  = 20                  // other alerts listed per incident
	// triageRead bounds the signals-index read of one batch.
	triageRead = 2000
	// usualShare is the share of the actor's events its usual hours hold.
	usualShare = 0.9
)

// Triage is an incident's triage block (offtrail.incident.triage).
type Triage struct {
	// Recent are the actor's other signals and incidents that started in
	// the RecentHours before the incident, oldest first.
	Recent      []RecentAlert `json:"recent"`
	RecentHours int           `json:"recent_hours"`
	// Truncated: the read hit its bound, older alerts may be missing.
	Truncated bool            `json:"recent_truncated,omitempty"`
	Baseline  *TriageBaseline `json:"baseline,omitempty"`
	// Links are the configured searches, by name.
	Links map[string]string `json:"links,omitempty"`
}

// RecentAlert is one other signal or incident of the actor.
type RecentAlert struct {
	ID    string    `json:"id"`
	Kind  string    `json:"kind"` // signal | incident
	Rules []string  `json:"rules"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Score float64   `json:"score"`
	// actor, for matching; not written.
	actor Actor
}

// TriageBaseline is what the actor usually does, from its history before
// the day of the incident.
type TriageBaseline struct {
	History    string       `json:"history"`
	From       time.Time    `json:"from"`
	To         time.Time    `json:"to"`
	Countries  []ValueCount `json:"countries,omitempty"`
	Networks   []ValueCount `json:"networks,omitempty"`
	UserAgents []ValueCount `json:"user_agents,omitempty"`
	Hours      *HourHabit   `json:"hours,omitempty"`
}

// HourHabit is when the actor works, by hour of the day in UTC.
type HourHabit struct {
	Timezone string `json:"timezone"`
	// Usual is the shortest run of hours holding 90% of its events,
	// "08:00-18:00" (the end excluded; it may wrap past midnight).
	Usual     string  `json:"usual"`
	Share     float64 `json:"share"`
	Events    int64   `json:"events"`
	Weekend   int64   `json:"weekend_events"`
	Histogram []int64 `json:"histogram"`
}

// TriageStore is what triage reads: grouped counts over the actor's
// history and documents of the signals index.
type TriageStore interface {
	CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error
	Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error)
}

// TriageCounter answers the baselines' grouped counts.
type TriageCounter interface {
	CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error
}

func (t *Triager) history() TriageCounter {
	if t.History != nil {
		return t.History
	}
	return t.Store
}

// TriageSource is where an actor's history lives: a rule's indices and
// profile. The zero value skips the baseline.
type TriageSource struct {
	Index   []string
	Profile *mappings.Profile
}

func (s TriageSource) key() string {
	if s.Profile == nil {
		return ""
	}
	return s.Profile.Name + "\x1f" + strings.Join(s.Index, ",")
}

// Triager fills incidents' triage blocks.
type Triager struct {
	Store TriageStore
	// History answers the baselines' counts when set: the baseline cache
	// in run, so an actor's 30 whole days are summed from day documents
	// instead of aggregated by the engine at every incident update.
	History TriageCounter
	// SignalsIndex is read for the actor's other alerts; empty reads
	// none (Enrich's known alerts only: backtest, once).
	SignalsIndex string
	Links        Links
	Log          zerolog.Logger
}

// Enrich sets the triage block of each incident: one read of the signals
// index for the batch and four grouped counts per source and day of the
// batch, all restricted to the incidents' actors. known are alerts the
// caller already has (a backtest's own signals and incidents). A failed
// lookup is logged and leaves its part out: triage never holds up an
// incident.
func (t *Triager) Enrich(ctx context.Context, incs []*Incident, src func(*Incident) TriageSource, known []RecentAlert) {
	if len(incs) == 0 {
		return
	}
	recent, truncated := t.readRecent(ctx, incs)
	recent = append(recent, known...)
	for _, inc := range incs {
		inc.Triage = &Triage{Recent: recentFor(inc, recent), RecentHours: int(TriageRecent.Hours()), Truncated: truncated,
			Links: t.Links.Render(inc, t.Log)}
	}
	// Baselines: one batch per source and UTC day, so each incident is
	// compared with the whole days before its own.
	type batchKey struct {
		src string
		day time.Time
	}
	batches := map[batchKey][]*Incident{}
	sources := map[string]TriageSource{}
	var order []batchKey
	for _, inc := range incs {
		s := TriageSource{}
		if src != nil {
			s = src(inc)
		}
		if s.Profile == nil || len(s.Index) == 0 {
			continue
		}
		k := batchKey{s.key(), inc.Start.UTC().Truncate(24 * time.Hour)}
		if batches[k] == nil {
			order = append(order, k)
		}
		sources[k.src] = s
		batches[k] = append(batches[k], inc)
	}
	for _, k := range order {
		base, err := t.baselines(ctx, sources[k.src], k.day, batches[k])
		if err != nil {
			t.Log.Warn().Err(err).Msg("incident triage: baseline left out")
			continue
		}
		for _, inc := range batches[k] {
			inc.Triage.Baseline = base[inc.Actor.Identity]
		}
	}
}

// readRecent reads the actors' alerts around the batch from the signals
// index in one query.
func (t *Triager) readRecent(ctx context.Context, incs []*Incident) ([]RecentAlert, bool) {
	if t.SignalsIndex == "" || t.Store == nil {
		return nil, false
	}
	actors := map[string]bool{}
	from, to := incs[0].Start, incs[0].End
	for _, inc := range incs {
		actors[inc.Actor.Identity] = true
		from, to = minTime(from, inc.Start), maxTime(to, inc.End)
	}
	// A signal's @timestamp is its window's end, after its events: read a
	// day past the batch and select on the events' start below.
	q := store.Query{Index: []string{t.SignalsIndex}, TimeField: "@timestamp",
		Window: store.Window{From: from.Add(-TriageRecent), To: to.Add(24 * time.Hour)},
		Filter: store.Filter{Terms: map[string][]string{"offtrail.actor.id": sortedKeys(actors)}}}
	evs, err := t.Store.Events(ctx, q, triageRead)
	if err != nil {
		t.Log.Warn().Err(err).Str("index", t.SignalsIndex).Msg("incident triage: other alerts left out")
		return nil, false
	}
	out := make([]RecentAlert, 0, len(evs))
	for _, e := range evs {
		if a, ok := recentOfDoc(e); ok {
			out = append(out, a)
		}
	}
	return out, len(evs) >= triageRead
}

// recentOfDoc reads a signal or incident document.
func recentOfDoc(e store.Event) (RecentAlert, bool) {
	str := func(f string) string {
		v, _ := store.Lookup(e.Source, f)
		s, _ := store.Stringify(v)
		return s
	}
	a := RecentAlert{ID: e.ID, Kind: str("offtrail.kind"), actor: Actor{Identity: str("offtrail.actor.id"), Account: str("offtrail.actor.account")}}
	if a.Kind != "signal" && a.Kind != "incident" {
		return a, false
	}
	a.Start, _ = store.ParseTime(str("event.start"))
	a.End, _ = store.ParseTime(str("event.end"))
	if v, ok := store.Lookup(e.Source, "offtrail.score"); ok {
		a.Score, _ = v.(float64)
	}
	if a.Kind == "incident" {
		if rs, ok := store.Lookup(e.Source, "offtrail.incident.rules"); ok {
			for _, r := range asSlice(rs) {
				if s, ok := store.Stringify(r); ok {
					a.Rules = append(a.Rules, s)
				}
			}
		}
	} else {
		a.Rules = []string{str("rule.id")}
	}
	return a, !a.Start.IsZero()
}

func asSlice(v any) []any {
	if s, ok := v.([]any); ok {
		return s
	}
	return []any{v}
}

// RecentOf lists signals and incidents as triage sees them (for callers
// that hold them in memory instead of a signals index).
func RecentOf(sigs []*Signal, incs []*Incident) []RecentAlert {
	out := make([]RecentAlert, 0, len(sigs)+len(incs))
	for _, s := range sigs {
		if len(s.Events) == 0 {
			continue
		}
		out = append(out, RecentAlert{ID: s.ID, Kind: "signal", Rules: []string{s.RuleID}, Start: s.Events[0].Time.UTC(),
			End: s.Events[len(s.Events)-1].Time.UTC(), Score: s.Score, actor: s.Actor})
	}
	for _, inc := range incs {
		out = append(out, RecentAlert{ID: inc.ID, Kind: "incident", Rules: inc.Rules, Start: inc.Start, End: inc.End, Score: inc.Score, actor: inc.Actor})
	}
	return out
}

// recentFor selects the actor's alerts that started in the window before
// the incident, leaving out the incident and its own signals.
func recentFor(inc *Incident, all []RecentAlert) []RecentAlert {
	own := map[string]bool{inc.ID: true}
	for _, a := range inc.Anomalies {
		own[a.SignalID] = true
	}
	from := inc.Start.Add(-TriageRecent)
	out := []RecentAlert{}
	for _, a := range all {
		if own[a.ID] || a.actor.Identity != inc.Actor.Identity || (a.actor.Account != "" && a.actor.Account != inc.Actor.Account) {
			continue
		}
		if a.Start.Before(from) || !a.Start.Before(inc.Start) {
			continue
		}
		own[a.ID] = true
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > triageAlerts {
		out = out[len(out)-triageAlerts:] // the most recent
	}
	return out
}

// triageFields are the logical fields whose usual values triage lists.
var triageFields = []string{"source.country", "source.network", "user_agent"}

// baselines counts, for the actors of one batch, their values of each
// triage field and their events per hour over the history before day.
func (t *Triager) baselines(ctx context.Context, src TriageSource, day time.Time, incs []*Incident) (map[string]*TriageBaseline, error) {
	prof := src.Profile
	idF := prof.Physical("identity")
	actors := map[string]bool{}
	for _, inc := range incs {
		actors[inc.Actor.Identity] = true
	}
	restrict := map[string][]string{idF: sortedKeys(actors)}
	q := store.Query{Index: src.Index, TimeField: prof.Time, Window: store.Window{From: day.Add(-TriageHistory), To: day}}
	out := map[string]*TriageBaseline{}
	get := func(actor string) *TriageBaseline {
		b := out[actor]
		if b == nil {
			b = &TriageBaseline{History: "30d", From: q.Window.From, To: q.Window.To}
			out[actor] = b
		}
		return b
	}
	for _, logical := range triageFields {
		if !prof.IsLogical(logical) {
			continue // not in this profile (geo on raw CloudTrail)
		}
		counts := map[string]map[string]int64{}
		err := t.history().CountGroups(ctx, store.CountRequest{Query: q, GroupBy: []string{idF, prof.Physical(logical)}, Restrict: restrict}, func(g store.Group) error {
			if counts[g.Key[0]] == nil {
				counts[g.Key[0]] = map[string]int64{}
			}
			counts[g.Key[0]][normaliseContext(logical, g.Key[1])] += g.Count
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("usual %s: %w", logical, err)
		}
		for actor, c := range counts {
			top := topCounts(c, triageTop)
			b := get(actor)
			switch logical {
			case "source.country":
				b.Countries = top
			case "source.network":
				b.Networks = top
			case "user_agent":
				b.UserAgents = top
			}
		}
	}
	hist := map[string]*HourHabit{}
	err := t.history().CountGroups(ctx, store.CountRequest{Query: q, GroupBy: []string{idF}, HourBuckets: true, Restrict: restrict}, func(g store.Group) error {
		h, err := time.Parse(time.RFC3339, g.Key[1])
		if err != nil {
			return fmt.Errorf("hour bucket %q: %w", g.Key[1], err)
		}
		hh := hist[g.Key[0]]
		if hh == nil {
			hh = &HourHabit{Timezone: "UTC", Histogram: make([]int64, 24)}
			hist[g.Key[0]] = hh
		}
		hh.Histogram[h.UTC().Hour()] += g.Count
		hh.Events += g.Count
		if wd := h.UTC().Weekday(); wd == time.Saturday || wd == time.Sunday {
			hh.Weekend += g.Count
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("usual hours: %w", err)
	}
	for actor, hh := range hist {
		hh.Usual, hh.Share = usualRun(hh.Histogram, hh.Events)
		get(actor).Hours = hh
	}
	return out, nil
}

func topCounts(m map[string]int64, n int) []ValueCount {
	out := make([]ValueCount, 0, len(m))
	for v, c := range m {
		out = append(out, ValueCount{v, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out[:min(n, len(out))]
}

// usualRun is the shortest run of hours (wrapping past midnight) that
// holds usualShare of the events, earliest start on ties.
func usualRun(hist []int64, total int64) (string, float64) {
	if total == 0 {
		return "", 0
	}
	for length := 1; length <= 24; length++ {
		best, bestStart := int64(-1), 0
		for start := 0; start < 24; start++ {
			var n int64
			for k := 0; k < length; k++ {
				n += hist[(start+k)%24]
			}
			if n > best {
				best, bestStart = n, start
			}
		}
		if float64(best) >= usualShare*float64(total) {
			return fmt.Sprintf("%02d:00-%02d:00", bestStart, (bestStart+length)%24), round(float64(best)/float64(total), 3)
		}
	}
	return "00:00-00:00", 1
}

// Links are named text/template URL templates (config incidents.links).
type Links map[string]*template.Template

// LinkData is what a link template can use.
type LinkData struct {
	// From and To bound the search: an hour before the incident's first
	// event to an hour after its last, RFC 3339 in UTC.
	From, To string
	// Actor is the user name as CloudTrail's user.name holds it (the
	// role's name for an assumed role); ARN the whole identity.
	Actor, ARN string
	Account    string
	IncidentID string
}

// ParseLinks compiles link templates, trying each on a sample so a
// misspelt field fails at load, not at the first incident.
func ParseLinks(src map[string]string) (Links, error) {
	out := Links{}
	sample := LinkData{From: "2024-01-01T00:00:00Z", To: "2024-01-01T02:00:00Z", Actor: "alice",
		ARN: "arn:aws:iam::111111111111:user/alice", Account: "111111111111", IncidentID: "0"}
	for _, name := range sortedKeys(src) {
		tm, err := template.New(name).Option("missingkey=error").Parse(src[name])
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", name, err)
		}
		if err := tm.Execute(&strings.Builder{}, sample); err != nil {
			return nil, fmt.Errorf("link %s: %w", name, err)
		}
		out[name] = tm
	}
	return out, nil
}

// Render fills the links for one incident; a template that fails is
// logged and left out.
func (l Links) Render(inc *Incident, log zerolog.Logger) map[string]string {
	if len(l) == 0 {
		return nil
	}
	d := LinkData{
		From: inc.Start.Add(-time.Hour).UTC().Format(time.RFC3339), To: inc.End.Add(time.Hour).UTC().Format(time.RFC3339),
		Actor: UserName(inc.Actor.Identity), ARN: inc.Actor.Identity, Account: inc.Actor.Account, IncidentID: inc.ID,
	}
	out := map[string]string{}
	for name, tm := range l {
		var sb strings.Builder
		if err := tm.Execute(&sb, d); err != nil {
			log.Warn().Err(err).Str("link", name).Msg("incident triage: link left out")
			continue
		}
		out[name] = sb.String()
	}
	return out
}

// UserName is what ECS's user.name holds for an identity: the user's name,
// or the role's for an assumed role (DESIGN, the ecs profile).
func UserName(arn string) string {
	if !strings.HasPrefix(arn, "arn:") {
		return arn
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return arn
	}
	res := parts[5]
	if r, ok := strings.CutPrefix(res, "assumed-role/"); ok {
		role, _, _ := strings.Cut(r, "/")
		return role
	}
	if i := strings.LastIndex(res, "/"); i >= 0 {
		return res[i+1:]
	}
	return res
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Line is the triage block in one short line, for tables and
// notifications: the other alerts, then the usual places, client and hours.
func (t *Triage) Line() string {
	if t == nil {
		return ""
	}
	var parts []string
	switch n := len(t.Recent); n {
	case 0:
		parts = append(parts, fmt.Sprintf("no other alerts in the %dh before", t.RecentHours))
	default:
		last := t.Recent[n-1]
		parts = append(parts, fmt.Sprintf("%d other %s in the %dh before (last: %s %s at %s)", n, plural(n, "alert", "alerts"),
			t.RecentHours, last.Kind, strings.Join(last.Rules, "+"), last.Start.UTC().Format("2006-01-02 15:04")))
	}
	if b := t.Baseline; b != nil {
		var usual []string
		for _, vs := range [][]ValueCount{b.Countries, b.Networks, b.UserAgents} {
			if len(vs) > 0 {
				usual = append(usual, shorten(vs[0].Value, 40))
			}
		}
		if b.Hours != nil && b.Hours.Usual != "" {
			usual = append(usual, b.Hours.Usual+" "+b.Hours.Timezone)
		}
		if len(usual) > 0 {
			parts = append(parts, "usually "+strings.Join(usual, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
