package baseline

import (
	"context"
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

// spanSum returns the sum of p's days for req's signature.
func (c *Cache) spanSum(ctx context.Context, req store.CountRequest, p plan) (*spanSum, error) {
	c.mu.Lock()
	prev := c.sums[p.signature]
	c.mu.Unlock()
	if prev != nil && slices.Equal(prev.at, p.days) && !c.opts.Rebuild {
		c.fromMemory.Add(int64(len(p.days)))
		return prev, nil
	}
	get := func(d time.Time) (*dayGroups, error) { return c.day(ctx, req, p.signature, d) }
	ss, err := c.sumOf(prev, p.days, get, func(d time.Time) bool { return d.Equal(p.days[0]) }, &c.daySumsShifted)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if cur := c.sums[p.signature]; cur == nil || !cur.at[len(cur.at)-1].After(p.days[len(p.days)-1]) {
		c.sums[p.signature] = ss
	}
	c.mu.Unlock()
	return ss, nil
}

// hourSum is spanSum for p's sealed hours outside its days (the partial
// days at the span's ends): an hour seals once every four ticks, so the
// same hours answer three ticks in four. Hours never change once counted,
// so a sum of them never goes stale. Rules that share a signature over
// different spans (a history that ends now, a context history that ends a
// day back) ask for different hours: each series keeps its own sum, and a
// request shifts the one nearest to it.
func (c *Cache) hourSum(ctx context.Context, req store.CountRequest, p plan) (*spanSum, error) {
	c.mu.Lock()
	var prev *spanSum
	fewest := 0
	for _, hs := range c.hourSums[p.signature] {
		if slices.Equal(hs.at, p.hours) && !c.opts.Rebuild {
			c.mu.Unlock()
			return hs, nil
		}
		came, left := partsChanged(hs.at, p.hours)
		if n := len(came) + len(left); prev == nil || n < fewest {
			prev, fewest = hs, n
		}
	}
	c.mu.Unlock()
	get := func(h time.Time) (*dayGroups, error) { return c.hour(ctx, req, p.signature, h) }
	hs, err := c.sumOf(prev, p.hours, get, func(time.Time) bool { return true }, &c.hourSumsShifted)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sums := c.hourSums[p.signature]
	if i := slices.Index(sums, prev); prev != nil && i >= 0 && fewest < len(p.hours) {
		sums[i] = hs // the series moved on
	} else {
		sums = append(sums, hs) // another series, or the first
		if len(sums) > maxHourSums {
			sums = slices.Delete(sums, 0, 1)
		}
	}
	c.hourSums[p.signature] = sums
	return hs, nil
}

// maxHourSums bounds the series of hour sums one signature keeps: the
// shipped rules share a signature over at most two kinds of span.
const maxHourSums = 4

// sumOf returns the sum over the parts at, each got by get, holding the
// parts hold names. It shifts prev when prev holds every part that left
// and fewer parts change than at holds; otherwise, and on a rebuild, it
// sums every part again.
func (c *Cache) sumOf(prev *spanSum, at []time.Time, get func(time.Time) (*dayGroups, error), hold func(time.Time) bool, shifts *atomic.Int64) (*spanSum, error) {
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
			shifts.Add(1)
		}
	}
	if err == nil && !ok {
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
// added, those that left (which prev holds) taken off. It reports false
// when that cannot be done or would cost more than summing again.
func shiftSum(prev *spanSum, at []time.Time, get func(time.Time) (*dayGroups, error)) (run, bool, error) {
	came, left := partsChanged(prev.at, at)
	if len(came)+len(left) >= len(at) {
		return run{}, false, nil
	}
	leftRuns := make([]run, 0, len(left))
	for _, t := range left {
		dg := prev.held[t]
		if dg == nil {
			return run{}, false, nil // not held: its groups are not at hand
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
	keep := restriction(req)
	var picked []int
	seen := make(map[string]bool, len(req.Restrict[fields[0]]))
	for _, v := range req.Restrict[fields[0]] {
		if seen[v] {
			continue // a value listed twice is one restriction
		}
		seen[v] = true
		for _, i := range idx[v] {
			if keep(ss.groups[i].Key) {
				picked = append(picked, i)
			}
		}
	}
	slices.Sort(picked) // the groups are in key order: so are their places
	out := run{groups: make([]store.Group, len(picked)), keys: make([]string, len(picked))}
	for j, i := range picked {
		out.groups[j], out.keys[j] = ss.groups[i], ss.keys[i]
	}
	return out
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
