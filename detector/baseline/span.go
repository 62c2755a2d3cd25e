package baseline

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// spanSum is a run of whole days (or of sealed hours) summed: consecutive
// ticks ask for the same days until midnight moves the span, and each tick
// only picks out its active entities' groups through the index on the
// restricted field. When the span moves, the sum is shifted by the parts
// that came and left rather than summed again.
type spanSum struct {
	at     []time.Time   // the days or hours summed, in order
	groups []store.Group // one per key, in key order
	keys   []string      // the groups' keys joined (store.KeyString)
	// held are the parts whose groups the sum keeps so it can take them
	// off when they leave: every hour, but only the first day (the next
	// to leave), since days are held within a memory budget elsewhere.
	held map[time.Time]*dayGroups

	mu    sync.Mutex
	index map[int]map[string][]int // key position -> value -> group indices
}

// spanSum returns the sum of p's days for req's signature. Rules that
// share a signature over different spans (a 30-day history, a 90-day one,
// a context history that settles a day back) ask for different days:
// each series keeps its own sum, as hourSum's do, where one sum per
// signature had every other request sum all its days again.
func (c *Cache) spanSum(ctx context.Context, req store.CountRequest, p plan) (*spanSum, error) {
	get := func(d time.Time) (*dayGroups, error) { return c.day(ctx, req, p.signature, d) }
	hold := func(d time.Time) bool { return d.Equal(p.days[0]) }
	return c.seriesSum(c.daySums, p.signature, p.days, get, hold, sumCounters{&c.daySumsShifted, &c.daySumsSummed, &c.fromMemory})
}

// hourSum is spanSum for p's sealed hours outside its days (the partial
// days at the span's ends): an hour seals once every four ticks, so the
// same hours answer three ticks in four. Hours never change once counted,
// so a sum of them never goes stale.
func (c *Cache) hourSum(ctx context.Context, req store.CountRequest, p plan) (*spanSum, error) {
	get := func(h time.Time) (*dayGroups, error) { return c.hour(ctx, req, p.signature, h) }
	return c.seriesSum(c.hourSums, p.signature, p.hours, get, func(time.Time) bool { return true }, sumCounters{shifted: &c.hourSumsShifted, summed: &c.hourSumsSummed})
}

// seriesSum returns the sum over the parts at from the series of sums
// kept for sig: the one holding exactly at, or the one nearest to it
// shifted (which then moves on), or a new series.
func (c *Cache) seriesSum(series map[string][]*spanSum, sig string, at []time.Time, get func(time.Time) (*dayGroups, error),
	hold func(time.Time) bool, n sumCounters) (*spanSum, error) {
	c.mu.Lock()
	var prev *spanSum
	fewest := 0
	for _, ss := range series[sig] {
		if slices.Equal(ss.at, at) && !c.opts.Rebuild {
			c.mu.Unlock()
			if n.reused != nil {
				n.reused.Add(int64(len(at)))
			}
			return ss, nil
		}
		came, left := partsChanged(ss.at, at)
		if n := len(came) + len(left); prev == nil || n < fewest {
			prev, fewest = ss, n
		}
	}
	c.mu.Unlock()
	ss, err := c.sumOf(prev, at, get, hold, n)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sums := series[sig]
	if i := slices.Index(sums, prev); prev != nil && i >= 0 && fewest < len(at) && movedOn(prev.at, at) {
		sums[i] = ss // the series moved on
	} else {
		sums = append(sums, ss) // another series, or the first
		if len(sums) > maxSeries {
			sums = slices.Delete(sums, 0, 1)
		}
	}
	series[sig] = sums
	return ss, nil
}

// sumCounters are where seriesSum counts a sum shifted, summed from all
// its parts, or reused as it was (its parts, days only).
type sumCounters struct{ shifted, summed, reused *atomic.Int64 }

// movedOn reports whether at is prev moved later in time, not a shorter
// or earlier span beside it (which keeps a series of its own).
func movedOn(prev, at []time.Time) bool {
	return !at[0].Before(prev[0]) && !at[len(at)-1].Before(prev[len(prev)-1])
}

// maxSeries bounds the series of sums one signature keeps: the shipped
// rules share a signature over at most three kinds of span.
const maxSeries = 4

// sumOf returns the sum over the parts at, each got by get, holding the
// parts hold names. It shifts prev when fewer parts change than at holds
// (the parts that left are prev's held ones, or got again); otherwise,
// and on a rebuild, it sums every part again.
func (c *Cache) sumOf(prev *spanSum, at []time.Time, get func(time.Time) (*dayGroups, error), hold func(time.Time) bool, n sumCounters) (*spanSum, error) {
	got := map[time.Time]*dayGroups{}
	fetch := func(t time.Time) (*dayGroups, error) {
		if dg := got[t]; dg != nil {
			return dg, nil
		}
		dg, err := get(t)
		got[t] = dg
		return dg, err
	}
	var (
		r   run
		ok  bool
		err error
	)
	if prev != nil && !c.opts.Rebuild {
		if r, ok, err = shiftSum(prev, at, fetch); ok {
			n.shifted.Add(1)
		}
	}
	if err == nil && !ok {
		n.summed.Add(1)
		r, err = summed(at, fetch)
	}
	if err != nil {
		return nil, err
	}
	ss := &spanSum{at: slices.Clone(at), groups: r.groups, keys: r.keys, held: map[time.Time]*dayGroups{}}
	for _, t := range at {
		if !hold(t) {
			continue
		}
		dg := got[t]
		if dg == nil && prev != nil {
			dg = prev.held[t]
		}
		if dg == nil {
			if dg, err = fetch(t); err != nil {
				return nil, err
			}
		}
		ss.held[t] = dg
	}
	return ss, nil
}

// shiftSum returns prev's sum moved to the parts at: the parts that came
// added, those that left (held by prev, or got) taken off. It reports
// false when that would cost more than summing again.
func shiftSum(prev *spanSum, at []time.Time, get func(time.Time) (*dayGroups, error)) (run, bool, error) {
	came, left := partsChanged(prev.at, at)
	if len(came)+len(left) >= len(at) {
		return run{}, false, nil
	}
	leftRuns := make([]run, 0, len(left))
	for _, t := range left {
		dg := prev.held[t]
		if dg == nil {
			// Not held by the sum (a day other than its first, left by a
			// shorter span of the same signature): the day cache has it.
			var err error
			if dg, err = get(t); err != nil {
				return run{}, false, err
			}
		}
		leftRuns = append(leftRuns, sumParts(dg))
	}
	cameRuns := make([]run, 0, len(came))
	for _, t := range came {
		dg, err := get(t)
		if err != nil {
			return run{}, false, err
		}
		cameRuns = append(cameRuns, sumParts(dg))
	}
	r, err := shifted(run{groups: prev.groups, keys: prev.keys}, cameRuns, leftRuns)
	if err != nil {
		return run{}, false, nil // cannot happen with the parts as held; summed again
	}
	return r, true, nil
}

// summed merges the groups of the days or hours at, each got by get.
func summed(at []time.Time, get func(time.Time) (*dayGroups, error)) (run, error) {
	parts := make([]*dayGroups, 0, len(at))
	for _, t := range at {
		dg, err := get(t)
		if err != nil {
			return run{}, err
		}
		parts = append(parts, dg)
	}
	return sumParts(parts...), nil
}

// sumParts merges the groups of days or hours into one run.
func sumParts(parts ...*dayGroups) run {
	merged := newGroupSum(0)
	for _, dg := range parts {
		for _, g := range dg.groups {
			merged.addInterned(g.Key, g.Count)
		}
	}
	return merged.sorted()
}

// partsChanged returns the parts of next not in prev, and those of prev
// not in next; both lists are in time order.
func partsChanged(prev, next []time.Time) (came, left []time.Time) {
	in := func(list []time.Time, t time.Time) bool {
		_, ok := slices.BinarySearchFunc(list, t, func(a, b time.Time) int { return a.Compare(b) })
		return ok
	}
	for _, t := range next {
		if !in(prev, t) {
			came = append(came, t)
		}
	}
	for _, t := range prev {
		if !in(next, t) {
			left = append(left, t)
		}
	}
	return came, left
}

// restricted returns, as a run, the groups req's restriction keeps:
// through the index of its most selective field, then the other fields
// checked.
func (ss *spanSum) restricted(req store.CountRequest) run {
	if len(req.Restrict) == 0 {
		return run{groups: ss.groups, keys: ss.keys}
	}
	fields := make([]string, 0, len(req.Restrict))
	for f := range req.Restrict {
		fields = append(fields, f)
	}
	sort.Slice(fields, func(i, j int) bool { return len(req.Restrict[fields[i]]) < len(req.Restrict[fields[j]]) })
	at := indexOf(req.GroupBy, fields[0])
	idx := ss.indexOn(at)
	// The index chose fields[0]: only the other fields are checked.
	others := req
	others.Restrict = maps.Clone(req.Restrict)
	delete(others.Restrict, fields[0])
	keep := restriction(others)
	picked := []int32{}
	seen := make(map[string]bool, len(req.Restrict[fields[0]]))
	for _, v := range req.Restrict[fields[0]] {
		if seen[v] {
			continue // a value listed twice is one restriction
		}
		seen[v] = true
		for _, i := range idx[v] {
			if keep(ss.groups[i].Key) {
				picked = append(picked, int32(i))
			}
		}
	}
	slices.Sort(picked) // the groups are in key order: so are their places
	return run{groups: ss.groups, keys: ss.keys, at: picked, view: true}
}

func (ss *spanSum) indexOn(at int) map[string][]int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ix := ss.index[at]; ix != nil {
		return ix
	}
	ix := map[string][]int{}
	for i, g := range ss.groups {
		ix[g.Key[at]] = append(ix[g.Key[at]], i)
	}
	if ss.index == nil {
		ss.index = map[int]map[string][]int{}
	}
	ss.index[at] = ix
	return ix
}
