package detector

import (
	"context"
	"fmt"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// slot is a time-of-week bucket in an entity's own timezone: weekday or
// weekend, and the hour of the day. Learning 48 slots instead of 168 pools
// the five working days, so a month of history is enough to learn them.
type slot struct {
	weekend bool
	hour    int
}

func slotOf(t time.Time) slot {
	wd := t.Weekday()
	return slot{weekend: wd == time.Saturday || wd == time.Sunday, hour: t.Hour()}
}

func (s slot) index() int {
	if s.weekend {
		return 24 + s.hour
	}
	return s.hour
}

func (s slot) String() string {
	day := "weekday"
	if s.weekend {
		day = "weekend"
	}
	return fmt.Sprintf("%s %02d:00", day, s.hour)
}

// offHoursLocation returns an entity's timezone: its own from the rule's
// timezones mapping (keyed by any of the entity's values), else the rule's.
func offHoursLocation(oh *rules.OffHours, entity []string) *time.Location {
	for _, v := range entity {
		if _, ok := oh.TimezoneByEntity[v]; ok {
			return oh.LocationFor(v)
		}
	}
	return oh.LocationFor("")
}

// offHoursDistance is how far t lies outside business hours: zero inside,
// else the time to the nearest start or end of a business day, at most 12h.
func offHoursDistance(oh *rules.OffHours, t time.Time, loc *time.Location) time.Duration {
	if oh.WorkTime(t, loc) {
		return 0
	}
	const limit = 12 * time.Hour
	lt := t.In(loc)
	best := limit
	for d := -3; d <= 3; d++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+d, 0, 0, 0, 0, loc)
		if !oh.WorkTime(day.Add(time.Duration(oh.StartMinute())*time.Minute), loc) {
			continue // not a business day
		}
		start := day.Add(time.Duration(oh.StartMinute()) * time.Minute)
		end := day.Add(time.Duration(oh.EndMinute()) * time.Minute)
		var dist time.Duration
		switch {
		case lt.Before(start):
			dist = start.Sub(lt)
		default:
			dist = lt.Sub(end)
		}
		if dist >= 0 && dist < best {
			best = dist
		}
	}
	return best
}

// fixedHoursScore: a policy rule, so clear violations score high, scaled
// by how unusual off-hours work is for the entity (never → full, always →
// half) and by how far outside the hours it is (two hours or more → full;
// a sign-in three minutes early barely counts).
func fixedHoursScore(pOff float64, dist time.Duration) float64 {
	reach := dist.Hours() / 2
	if reach > 1 {
		reach = 1
	}
	return 50 + 50*(1-pOff)*reach
}

// hourTouchesOffHours reports whether any minute of the hour starting at t
// is outside business hours in loc.
func hourTouchesOffHours(oh *rules.OffHours, t time.Time, loc *time.Location) bool {
	return !oh.WorkTime(t, loc) || !oh.WorkTime(t.Add(59*time.Minute), loc)
}

// fixedHoursHistory is how far back a fixed-hours rule looks for the
// actor's habit of working outside them (p_off).
const fixedHoursHistory = 30 * 24 * time.Hour

func (ev *evaluation) offHours(ctx context.Context) ([]*candidate, error) {
	oh := ev.rule.OffHours
	byF := ev.physical(ev.rule.Entity()) // the loader defaults it to identity
	nEnt := len(byF)

	// Per entity and UTC hour: the window's activity.
	type hourCount struct {
		hour  time.Time
		count int64
	}
	active := map[string][]hourCount{}
	entityVals := map[string][]string{}
	restrict := map[string]bool{}
	err := ev.count(ctx, store.CountRequest{Query: ev.windowQuery(), GroupBy: byF, HourBuckets: true}, func(g store.Group) error {
		h, err := time.Parse(time.RFC3339, g.Key[nEnt])
		if err != nil {
			return fmt.Errorf("hour bucket %q: %w", g.Key[nEnt], err)
		}
		ek := ev.keys.join(g.Key[:nEnt])
		active[ek] = append(active[ek], hourCount{h, g.Count})
		entityVals[ek] = g.Key[:nEnt]
		restrict[g.Key[0]] = true
		return nil
	})
	if err != nil || len(active) == 0 {
		return nil, err
	}

	// The history, per entity and hour, in each entity's own zone.
	history := fixedHoursHistory
	if oh.Learn > 0 {
		history = time.Duration(oh.Learn)
	}
	profiles := map[string]*hourProfile{}
	offCounts := map[string]int64{}
	err = ev.count(ctx, store.CountRequest{Query: ev.historyQuery(history), GroupBy: byF, HourBuckets: true, Restrict: map[string][]string{byF[0]: sortedKeys(restrict)}}, func(g store.Group) error {
		ek := ev.keys.join(g.Key[:nEnt])
		if active[ek] == nil {
			return nil
		}
		h, err := time.Parse(time.RFC3339, g.Key[nEnt])
		if err != nil {
			return fmt.Errorf("hour bucket %q: %w", g.Key[nEnt], err)
		}
		p := profiles[ek]
		if p == nil {
			p = &hourProfile{}
			profiles[ek] = p
		}
		local := h.In(offHoursLocation(oh, entityVals[ek]))
		p.add(slotOf(local), g.Count)
		if oh.Learn == 0 && !oh.WorkTime(h, local.Location()) {
			offCounts[ek] += g.Count
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	var out []*candidate
	for ek, hours := range active {
		ent := entityVals[ek]
		loc := offHoursLocation(oh, ent)
		p := profiles[ek]
		if p == nil {
			p = &hourProfile{}
		}
		b := &Baseline{Total: p.total}
		filter := store.Filter{Terms: map[string][]string{}}
		for i, f := range byF {
			filter.Terms[f] = []string{ent[i]}
		}
		if oh.Learn == 0 {
			// Fixed hours: one candidate per entity for all its off-hours
			// events in the window.
			var n int64
			var far time.Duration
			for _, hc := range hours {
				if hourTouchesOffHours(oh, hc.hour, loc) {
					n += hc.count
					// The bucket's middle stands for its events until the
					// precise events refine it.
					if d := offHoursDistance(oh, hc.hour.Add(30*time.Minute), loc); d > far {
						far = d
					}
				}
			}
			if n == 0 {
				continue
			}
			pOff := float64(offCounts[ek]+1) / float64(p.total+2)
			score := fixedHoursScore(pOff, far)
			threshold := ev.rule.AnomalyThreshold
			out = append(out, &candidate{
				job: "off_hours", entity: ent, value: []string{"outside " + oh.Start + "-" + oh.End}, entityKey: ek, valueKey: "off_hours",
				count: n, baseline: b,
				est:         Estimate{Probability: pOff, Surprisal: Surprisal(pOff), Score: score},
				eventFilter: filter,
				keep:        func(e store.Event) bool { return !oh.WorkTime(e.Time, loc) },
				refine: func(events []store.Event) (Estimate, bool) {
					var d time.Duration
					for _, e := range events {
						d = max(d, offHoursDistance(oh, e.Time, loc))
					}
					sc := fixedHoursScore(pOff, d)
					return Estimate{Probability: pOff, Surprisal: Surprisal(pOff), Score: sc}, sc >= threshold
				},
				reason: fixedHoursReason(oh, loc, offCounts[ek], p.total),
				extra:  map[string]any{"timezone": loc.String(), "business_hours": oh.Start + "-" + oh.End, "history_off_hours_events": offCounts[ek]},
			})
			continue
		}
		// Learned hours: one candidate per (entity, slot) active in the window.
		bySlot := map[slot]int64{}
		for _, hc := range hours {
			bySlot[slotOf(hc.hour.In(loc))] += hc.count
		}
		auto := p.automated()
		for s, n := range bySlot {
			prob := p.probability(s)
			surprisal := Surprisal(prob)
			if auto {
				surprisal *= automationWeight
			}
			s := s
			out = append(out, &candidate{
				job: "off_hours_learned", entity: ent, value: []string{s.String()}, entityKey: ek, valueKey: s.String(),
				count: n, baseline: b, automation: auto,
				est:         Estimate{Probability: prob, Surprisal: surprisal, Score: ScoreFromSurprisal(surprisal), Novel: p.counts[s.index()] == 0},
				eventFilter: filter,
				keep:        func(e store.Event) bool { return slotOf(e.Time.In(loc)) == s },
				reason:      learnedHoursReason(p, s, loc),
				extra:       map[string]any{"timezone": loc.String(), "slot": s.String(), "slot_history_events": p.counts[s.index()], "active_slots": p.activeSlots()},
			})
		}
	}
	return out, nil
}
