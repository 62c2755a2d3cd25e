package detector

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// candidate is one scored (entity, value) pair before selection.
type candidate struct {
	job        string   // rare | first_seen | off_hours | off_hours_learned
	entity     []string // partition values then by values
	value      []string // the value fields' values (or a time slot)
	entityKey  string
	valueKey   string
	count      int64 // events in the window
	baseline   *Baseline
	peers      Peers
	est        Estimate
	automation bool
	floor      string // severity of the high-impact floor applied, if any
	// freshSince is when the entity first produced a value it had only
	// produced within rare.fresh before the window (judged as new).
	freshSince  time.Time
	freshEvents int64
	least       float64 // the score no context may lower it below (a floor)
	// eventFilter narrows the window query to this pair's events; keep, when
	// set, drops fetched events that do not belong (off-hours precision).
	eventFilter store.Filter
	keep        func(store.Event) bool
	// refine rescores from the precise contributing events (off-hours
	// candidates are found on hour buckets); false drops the candidate.
	refine func(events []store.Event) (Estimate, bool)
	// describe writes the job-specific part of the reason and the extra
	// offtrail.* fields.
	reason func(ev *evaluation, s *Signal, c *candidate) string
	extra  map[string]any
}

// Automation heuristics from the baseline alone: an identity that keeps
// repeating a narrow set of calls behaves like a script, however few calls
// it makes (a nightly job with a handful of calls is automation too).
// People spread over more kinds of calls; a role assumed by a service or a
// job (not an SSO permission set, no e-mail as session name) may spread a
// little wider and still be one.
const (
	automationMinEvents    = 100
	automationMaxDistinct  = 5
	machineRoleMaxDistinct = 12
)

// machineRole reports whether an identity is a role session that no person
// signs in to: assumed-role ARNs other than AWS SSO permission sets, with a
// session name that is not an e-mail address.
func machineRole(arn string) bool {
	_, rest, ok := strings.Cut(arn, ":assumed-role/")
	if !ok {
		return false
	}
	role, session, _ := strings.Cut(rest, "/")
	return !strings.HasPrefix(role, "AWSReservedSSO_") && !strings.Contains(session, "@")
}

// identityFields are the logical fields that name an actor; only an actor
// can behave like automation (an action or an account cannot).
var identityFields = map[string]bool{"identity": true, "user": true, "user_id": true, "access_key": true}

// behaviourFields are the judged fields whose narrowness says "script": a
// person calls dozens of kinds of API, a CI role a handful. Narrowness of
// places or error codes says nothing (everyone works from few countries).
var behaviourFields = map[string]bool{"action": true, "service": true}

func looksAutomated(field, by []string, identity string, b *Baseline) bool {
	if b == nil || len(by) == 0 || !identityFields[by[len(by)-1]] {
		return false
	}
	behaviour := false
	for _, f := range field {
		behaviour = behaviour || behaviourFields[f]
	}
	if !behaviour {
		return false
	}
	limit := automationMaxDistinct
	if machineRole(identity) {
		limit = machineRoleMaxDistinct
	}
	return b.Total >= automationMinEvents && b.Distinct() <= limit
}

// rare scores every (entity, value) pair active in the window against the
// entity's history. Cost: one grouped count over the window, one over the
// history restricted to the active entities, and — only when some value is
// new to its entity — two more for the peer statistics. None of them pulls
// raw events; all grow with distinct pairs, not with events.
func (ev *evaluation) rare(ctx context.Context) ([]*candidate, error) {
	rr := ev.rule.Rare
	partF := ev.physical(rr.Partition)
	byF := ev.physical(rr.By)
	valF := ev.physical(rr.Field)
	entF := append(append([]string{}, partF...), byF...)
	nPart, nEnt := len(partF), len(entF)
	groupBy := append(append([]string{}, entF...), valF...)

	// 1. What happened in the window.
	active := map[string]map[string]int64{}
	entityVals := map[string][]string{}
	restrict := map[string]bool{}
	err := ev.count(ctx, store.CountRequest{Query: ev.windowQuery(), GroupBy: groupBy}, func(g store.Group) error {
		ek, vk := ev.keys.join(g.Key[:nEnt]), ev.keys.join(g.Key[nEnt:])
		if active[ek] == nil {
			active[ek] = map[string]int64{}
			entityVals[ek] = g.Key[:nEnt]
		}
		active[ek][vk] += g.Count
		restrict[g.Key[nPart]] = true
		return nil
	})
	if err != nil || len(active) == 0 {
		return nil, err
	}

	// 2. The active entities' baselines.
	hq := ev.historyQuery(time.Duration(rr.History))
	if rr.Settle > 0 {
		hq.Window.To = settledEnd(hq.Window.To, time.Duration(rr.Settle))
		hq.Window.From = hq.Window.From.Add(-time.Duration(rr.Settle))
	}
	baselines := map[string]*Baseline{}
	run := entityRun{n: nEnt}
	var b *Baseline // the current entity's, nil when it is not active
	err = ev.count(ctx, store.CountRequest{Query: hq, GroupBy: groupBy, Restrict: map[string][]string{byF[0]: sortedKeys(restrict)}}, func(g store.Group) error {
		if run.next(g.Key) {
			b = nil
			ek := ev.keys.join(g.Key[:nEnt])
			if active[ek] == nil {
				return nil // same by-value in another partition
			}
			if b = baselines[ek]; b == nil {
				b = &Baseline{}
				baselines[ek] = b
			}
		}
		if b != nil {
			b.Add(ev.keys.join(g.Key[nEnt:]), g.Count)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// 2b. Values the entity first produced only just before the window.
	fresh, err := ev.freshValues(ctx, hq, groupBy, nEnt, byF[0], restrict, active, baselines)
	if err != nil {
		return nil, err
	}

	// 3. Peer statistics for values new to their entity.
	novelFirst := map[string]bool{}
	novel := map[string]bool{}
	for ek, vals := range active {
		for vk := range vals {
			if b := baselines[ek]; b == nil || b.Counts[vk] == 0 || !fresh[ek+"\x1e"+vk].IsZero() {
				novel[vk] = true
				novelFirst[store.SplitKey(vk)[0]] = true
			}
		}
	}
	peerTotals := map[string]int{}
	valueUsers := map[string]int{}
	behaviour := behaviouralPeers(rr.Field, rr.By)
	sets := peerSets{}
	switch {
	case len(novel) > 0 && behaviour:
		// Every entity's value set, to choose each actor's nearest peers.
		run := entityRun{n: nEnt}
		var vals *valueSet // the current entity's
		err = ev.count(ctx, store.CountRequest{Query: hq, GroupBy: groupBy}, func(g store.Group) error {
			if run.next(g.Key) {
				vals = sets.values(ev.keys.join(g.Key[:nPart]), ev.keys.join(g.Key[:nEnt]))
			}
			vals.add(ev.keys.join(g.Key[nEnt:]))
			return nil
		})
		if err != nil {
			return nil, err
		}
	case len(novel) > 0:
		err = ev.count(ctx, store.CountRequest{Query: hq, GroupBy: entF}, func(g store.Group) error {
			peerTotals[ev.keys.join(g.Key[:nPart])]++
			return nil
		})
		if err != nil {
			return nil, err
		}
		peerGroup := append(append(append([]string{}, partF...), valF...), byF...)
		nVal := len(valF)
		err = ev.count(ctx, store.CountRequest{Query: hq, GroupBy: peerGroup, Restrict: map[string][]string{valF[0]: sortedKeys(novelFirst)}}, func(g store.Group) error {
			vk := ev.keys.join(g.Key[nPart : nPart+nVal])
			if novel[vk] {
				valueUsers[ev.keys.join(g.Key[:nPart])+"\x1e"+vk]++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	partOf := func(ek string) string { return ev.keys.join(entityVals[ek][:nPart]) }

	// Peers that produce the same new value in this very window are
	// evidence of a coordinated change (a region launched, a service
	// adopted by a team), not of one identity going astray.
	windowUsers := map[string]int{}
	for ek, vals := range active {
		pk := ev.keys.join(entityVals[ek][:nPart])
		for vk := range vals {
			if novel[vk] {
				windowUsers[pk+"\x1e"+vk]++
			}
		}
	}

	// 4. Score.
	var out []*candidate
	for ek, vals := range active {
		b := baselines[ek]
		if b == nil {
			b = &Baseline{}
		}
		ent := entityVals[ek]
		pk := ev.keys.join(ent[:nPart])
		auto := looksAutomated(rr.Field, rr.By, ent[len(ent)-1], b)
		for vk, n := range vals {
			judged, since := b, fresh[ek+"\x1e"+vk]
			if !since.IsZero() {
				judged = b.without(vk)
			}
			peers := Peers{Total: peerTotals[pk], WithValue: valueUsers[pk+"\x1e"+vk]}
			if b.Total > 0 && peers.Total > 0 {
				peers.Total-- // the entity is not its own peer
			}
			switch {
			case judged.Counts[vk] > 0:
			case behaviour:
				peers = sets.peerStats(pk, ek, vk, active, partOf)
			default:
				if others := windowUsers[pk+"\x1e"+vk] - 1; others > 0 {
					peers.WithValue += others
					if peers.Total < peers.WithValue {
						peers.Total = peers.WithValue
					}
				}
			}
			if auto && judged.Counts[vk] == 0 {
				// What people do says nothing about what a job should do:
				// a backup role listing users is new whoever else does it.
				peers.WithValue = 0
			}
			est := EstimateValue(judged, vk, peers, auto)
			floor, least := ev.floorFor(rr.Field, store.SplitKey(vk), est), 0.0
			if floor != "" {
				least = FloorScore
			}
			if rr.NovelFloor > 0 && est.Novel && judged.Total >= int64(max(1, rr.MinHistoryEvents)) {
				least = max(least, rr.NovelFloor)
			}
			est.Score = max(est.Score, least)
			if rr.Mode == "first_seen" && !est.Novel {
				continue
			}
			job := "rare"
			if rr.Mode == "first_seen" {
				job = "first_seen"
			}
			value := store.SplitKey(vk)
			f := store.Filter{Terms: map[string][]string{}}
			for i, field := range entF {
				f.Terms[field] = []string{ent[i]}
			}
			for i, field := range valF {
				f.Terms[field] = []string{value[i]}
			}
			out = append(out, &candidate{
				job: job, entity: ent, value: value, entityKey: ek, valueKey: vk,
				count: n, baseline: judged, freshSince: since, freshEvents: b.Counts[vk] - judged.Counts[vk], peers: peers, est: est, automation: auto, floor: floor, least: least,
				eventFilter: f, reason: rareReason,
			})
		}
	}
	return out, nil
}

// freshValues finds, when the rule sets rare.fresh, the (entity, value)
// pairs whose every baseline event lies within Fresh before the baseline's
// end, and when each was first produced (to the hour). One grouped count
// over that span, restricted to the active entities.
func (ev *evaluation) freshValues(ctx context.Context, hq store.Query, groupBy []string, nEnt int, byField string,
	restrict map[string]bool, active map[string]map[string]int64, baselines map[string]*Baseline) (map[string]time.Time, error) {
	span := time.Duration(ev.rule.Rare.Fresh)
	if span <= 0 {
		return nil, nil
	}
	q := hq
	if from := hq.Window.To.Add(-span); from.After(q.Window.From) {
		q.Window.From = from
	}
	recent := map[string]int64{}
	first := map[string]time.Time{}
	err := ev.count(ctx, store.CountRequest{Query: q, GroupBy: groupBy, HourBuckets: true, Restrict: map[string][]string{byField: sortedKeys(restrict)}}, func(g store.Group) error {
		ek, vk := ev.keys.join(g.Key[:nEnt]), ev.keys.join(g.Key[nEnt:len(g.Key)-1])
		if active[ek][vk] == 0 {
			return nil
		}
		k := ek + "\x1e" + vk
		recent[k] += g.Count
		if h, err := time.Parse(time.RFC3339, g.Key[len(g.Key)-1]); err == nil && (first[k].IsZero() || h.Before(first[k])) {
			first[k] = h
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for k, n := range recent {
		ek, vk, _ := strings.Cut(k, "\x1e")
		if b := baselines[ek]; b != nil && b.Counts[vk] == n {
			out[k] = first[k]
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// FloorScore is the least score of a high-impact action that is new to
// its actor, or made by an actor with no baseline at all: above the
// default incident threshold, so it alerts whatever the history says.
const FloorScore = 80

// floorFor returns the floor severity when the judged value is a
// high-impact action the entity never made in its history (or the entity
// has no history), "" otherwise. A high-impact action the entity makes
// routinely is judged by its rarity like any other.
func (ev *evaluation) floorFor(fields, value []string, est Estimate) string {
	if !est.Novel {
		return ""
	}
	for i, f := range fields {
		if f == "action" && i < len(value) {
			return ev.d.highImpact[value[i]]
		}
	}
	return ""
}
