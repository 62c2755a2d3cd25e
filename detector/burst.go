package detector

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// The burst job: an hourly count that is unusual for the entity against
// its own hourly counts. Every single call of a burst of secret reads or
// denied calls is familiar; only their number is not, which is what rare
// values cannot see.
//
// Cost: one grouped count over the window and one over the history,
// restricted to the entities active in the window, both per hour bucket.
// They grow with distinct (entity, hour) pairs — (entity, value, hour) for
// count: distinct — never with raw events.

// burstProbability is the chance that an hour of the entity reaches k,
// from its own history of T hours, E of which reached k, the busiest
// with M:
//
//	k ≤ M:  p = (E + ½) / (T + 1)
//	k > M:  p = ½ / (T + 1) · ((M + 1) / (k + 1))²
//
// The first is the smoothed share of hours that reached k. Above anything
// seen, the half-hour's worth of "never" is shrunk by how far k exceeds
// the busiest hour: 25 reads by someone whose busiest hour had 0 are far
// rarer (1 in ~10⁶ over 30 days) than 25 by someone who often reads 20
// (1 in ~2,000).
func burstProbability(k, m, e, t int64) float64 {
	t = max(t, 1)
	if k <= m {
		return (float64(e) + 0.5) / float64(t+1)
	}
	r := float64(m+1) / float64(k+1)
	return 0.5 / float64(t+1) * r * r
}

// burstHour is one entity's activity in one UTC hour.
type burstHour struct {
	events int64 // events in the hour
	value  int64 // what is judged: events, or distinct values of the field
}

// burstEntity is one entity's hours, in the window or in the history.
type burstEntity struct {
	values []string // partition values then by values
	hours  map[time.Time]*burstHour
}

// burstCounts reads one hourly grouped count into per-entity hours. The
// group key is the entity, then the distinct field when counting
// distinct values (each group is then one value), then the hour.
func (ev *evaluation) burstCounts(ctx context.Context, req store.CountRequest, nEnt int, distinct bool, keep func(ek string) bool) (map[string]*burstEntity, error) {
	out := map[string]*burstEntity{}
	err := ev.count(ctx, req, func(g store.Group) error {
		hk := g.Key[len(g.Key)-1]
		h, err := time.Parse(time.RFC3339, hk)
		if err != nil {
			return fmt.Errorf("hour bucket %q: %w", hk, err)
		}
		ek := ev.keys.join(g.Key[:nEnt])
		if keep != nil && !keep(ek) {
			return nil // same by-value in another partition
		}
		be := out[ek]
		if be == nil {
			be = &burstEntity{values: g.Key[:nEnt], hours: map[time.Time]*burstHour{}}
			out[ek] = be
		}
		bh := be.hours[h]
		if bh == nil {
			bh = &burstHour{}
			be.hours[h] = bh
		}
		bh.events += g.Count
		if distinct {
			bh.value++
		} else {
			bh.value += g.Count
		}
		return nil
	})
	return out, err
}

// peak is the entity's busiest whole hour at or after from (ties: the
// earliest, whose events the contributing-event fetch reaches first).
func (be *burstEntity) peak(from time.Time) (time.Time, *burstHour) {
	var best time.Time
	var bh *burstHour
	for h, c := range be.hours {
		if h.Before(from) {
			continue
		}
		if bh == nil || c.value > bh.value || (c.value == bh.value && h.Before(best)) {
			best, bh = h, c
		}
	}
	return best, bh
}

// burstHistory summarises an entity's history for k: hours reaching k,
// the busiest hour, the events and the hour-of-week profile (for the
// automation test).
type burstHistory struct {
	reaching int64
	busiest  int64
	events   int64
	profile  hourProfile
}

func summariseHistory(be *burstEntity, k int64) burstHistory {
	var s burstHistory
	if be == nil {
		return s
	}
	for h, c := range be.hours {
		if c.value >= k {
			s.reaching++
		}
		s.busiest = max(s.busiest, c.value)
		s.events += c.events
		s.profile.add(slotOf(h), c.events)
	}
	return s
}

func (ev *evaluation) burst(ctx context.Context) ([]*candidate, error) {
	br := ev.rule.Burst
	entF := ev.physical(append(append([]string{}, br.Partition...), br.By...))
	nPart, nEnt := len(br.Partition), len(entF)
	distinct := br.Count == rules.CountDistinct
	groupBy := entF
	if distinct {
		groupBy = append(append([]string{}, entF...), ev.prof.Physical(br.Field))
	}

	// 1. The window, per entity and hour.
	win, err := ev.burstCounts(ctx, store.CountRequest{Query: ev.windowQuery(), GroupBy: groupBy, HourBuckets: true}, nEnt, distinct, nil)
	if err != nil || len(win) == 0 {
		return nil, err
	}
	// The leading partial hour was judged whole by an earlier run (the
	// rule checker demands lookback ≥ interval + 1h); judging its tail
	// again would alert the rest of the same burst a second time.
	firstWhole := ceilHour(ev.window.From)
	restrict := map[string]bool{}
	for ek, be := range win {
		if _, bh := be.peak(firstWhole); bh == nil || bh.value < int64(br.MinCount) {
			delete(win, ek)
			continue
		}
		restrict[be.values[nPart]] = true
	}
	if len(win) == 0 {
		return nil, nil
	}

	// 2. The same hourly counts over the history, for those entities. It
	// ends at the window's first whole hour so no hour is split between
	// the two.
	hq := ev.historyQuery(time.Duration(br.History))
	hq.Window.To = firstWhole
	hq.Window.From = firstWhole.Add(-time.Duration(br.History))
	hist, err := ev.burstCounts(ctx, store.CountRequest{Query: hq, GroupBy: groupBy, HourBuckets: true,
		Restrict: map[string][]string{entF[nPart]: sortedKeys(restrict)}}, nEnt, distinct, func(ek string) bool { return win[ek] != nil })
	if err != nil {
		return nil, err
	}

	// 3. Score each entity's busiest hour.
	span := int64(math.Ceil(time.Duration(br.History).Hours()))
	out := make([]*candidate, 0, len(win))
	for ek, be := range win {
		out = append(out, ev.burstCandidate(ek, be, hist[ek], firstWhole, span))
	}
	return out, nil
}

func (ev *evaluation) burstCandidate(ek string, be *burstEntity, hist *burstEntity, firstWhole time.Time, span int64) *candidate {
	br := ev.rule.Burst
	h, bh := be.peak(firstWhole)
	k := bh.value
	s := summariseHistory(hist, k)
	prob := burstProbability(k, s.busiest, s.reaching, span)
	surprisal := Surprisal(prob)
	auto := identityFields[br.By[len(br.By)-1]] && s.profile.automated()
	if auto {
		surprisal *= automationWeight
	}
	filter := store.Filter{Terms: map[string][]string{}}
	for i, f := range ev.physical(append(append([]string{}, br.Partition...), br.By...)) {
		filter.Terms[f] = []string{be.values[i]}
	}
	end := h.Add(time.Hour)
	return &candidate{
		job: "burst", entity: be.values, value: []string{burstValueText(br, k)},
		// The hour, not the count, names the burst: a later run that
		// sees it grow links to the same signal.
		entityKey: ek, valueKey: h.Format(time.RFC3339),
		count: bh.events, baseline: &Baseline{Total: s.events}, automation: auto,
		est:         Estimate{Probability: prob, Surprisal: surprisal, Score: ScoreFromSurprisal(surprisal), Novel: k > s.busiest},
		eventFilter: filter,
		// Events come oldest first with room for ten times the signal's
		// share: an earlier hour of the window busier than that hides the
		// burst hour's events, and the candidate yields no signal.
		keep:   func(e store.Event) bool { return !e.Time.Before(h) && e.Time.Before(end) },
		reason: burstReason(h, k, s),
		extra: map[string]any{
			"burst_hour": h.Format(time.RFC3339), "burst_count": k, "count": br.Count, "field": br.Field,
			"history_busiest_hour": s.busiest, "history_hours_reaching": s.reaching, "history_hours": span,
		},
	}
}

// ceilHour is the first whole UTC hour at or after t.
func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// burstNouns name the distinct values of common fields in the plural.
var burstNouns = map[string]string{
	"region": "regions", "action": "commands", "service": "services", "account": "accounts",
	"source.ip": "source addresses", "source.country": "countries", "source.city": "cities",
	"user_agent": "clients", "error_code": "error codes", "access_key": "access keys",
}

func burstNoun(br *rules.Burst) string {
	if br.Count != rules.CountDistinct {
		return "events"
	}
	if n, ok := burstNouns[br.Field]; ok {
		return n
	}
	return "values of " + br.Field
}

// burstValueText is the signal's value: "25 events in an hour".
func burstValueText(br *rules.Burst, k int64) string {
	return fmt.Sprintf("%s %s in an hour", commas(k), burstNoun(br))
}

// burstReason says what the hour held and what the history's hours did.
func burstReason(h time.Time, k int64, hist burstHistory) func(*evaluation, *Signal, *candidate) string {
	return func(ev *evaluation, s *Signal, c *candidate) string {
		br := ev.rule.Burst
		var sb strings.Builder
		if br.Count == rules.CountDistinct {
			fmt.Fprintf(&sb, "%s used %s %s in one hour (%s UTC, %s)", s.Label, commas(k), burstNoun(br), h.Format("15:04"), callNoun(ev, s, c.count))
		} else {
			fmt.Fprintf(&sb, "%s made %s in one hour (%s UTC)", s.Label, callNoun(ev, s, k), h.Format("15:04"))
		}
		// No history under the rule's filter is a count of zero, not a
		// missing baseline: "never read a secret" is the point.
		switch {
		case hist.reaching == 0:
			fmt.Fprintf(&sb, "; in the previous %s its busiest hour had %s and no hour reached %s", br.History, commas(hist.busiest), commas(k))
		default:
			fmt.Fprintf(&sb, "; in the previous %s its busiest hour had %s and %s of its hours reached %s (%s)",
				br.History, commas(hist.busiest), commas(hist.reaching), commas(k), oneIn(c.est.Probability))
		}
		if c.automation {
			sb.WriteString("; it behaves like automation, so a departure weighs more")
		}
		return sb.String() + "."
	}
}

// callNoun writes "25 GetSecretValue calls", "25 calls (GetParameter,
// GetSecretValue)" or "25 calls", and "that failed with AccessDenied"
// when every contributing event failed with the same code.
func callNoun(ev *evaluation, s *Signal, n int64) string {
	actions, codes := map[string]bool{}, map[string]bool{}
	failed := 0
	for _, e := range s.Events {
		actions[ev.eventField(e, "action")] = true
		if code := ev.eventField(e, "error_code"); code != "" {
			codes[code] = true
			failed++
		}
	}
	delete(actions, "")
	names := sortedKeys(actions)
	out := commas(n) + " calls"
	switch {
	case len(names) == 1:
		out = commas(n) + " " + names[0] + " calls"
	case len(names) > 1 && len(names) <= 3:
		out += " (" + strings.Join(names, ", ") + ")"
	}
	if failed == len(s.Events) && len(codes) == 1 {
		out += " that failed with " + sortedKeys(codes)[0]
	}
	return out
}
