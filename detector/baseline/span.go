package baseline

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// spanSum is a run of whole days summed once: consecutive ticks ask for
// the same days until midnight moves the span, so the merge is paid once
// a day, and each tick only picks out its active entities' groups through
// the index on the restricted field.
type spanSum struct {
	first, last time.Time
	hours       []time.Time   // an hours' sum: the hours summed
	groups      []store.Group // one per key, in key order
	keys        []string      // the groups' keys joined (store.KeyString)

	mu    sync.Mutex
	index map[int]map[string][]int // key position -> value -> group indices
}

// spanSum returns the sum of p's days for req's signature.
func (c *Cache) spanSum(ctx context.Context, req store.CountRequest, p plan) (*spanSum, error) {
	first, last := p.days[0], p.days[len(p.days)-1]
	c.mu.Lock()
	ss := c.sums[p.signature]
	c.mu.Unlock()
	if ss != nil && ss.first.Equal(first) && ss.last.Equal(last) && !c.opts.Rebuild {
		c.fromMemory.Add(int64(len(p.days)))
		return ss, nil
	}
	r, err := summed(p.days, func(d time.Time) (*dayGroups, error) { return c.day(ctx, req, p.signature, d) })
	if err != nil {
		return nil, err
	}
	ss = &spanSum{first: first, last: last, groups: r.groups, keys: r.keys}
	c.mu.Lock()
	if cur := c.sums[p.signature]; cur == nil || !cur.last.After(last) {
		c.sums[p.signature] = ss
	}
	c.mu.Unlock()
	return ss, nil
}

// hourSum is spanSum for p's sealed hours outside its days (the partial
// days at the span's ends): an hour seals once every four ticks, so the
// same hours answer three ticks in four, and their merge is paid once.
// Hours never change once counted, so a sum of them never goes stale.
func (c *Cache) hourSum(ctx context.Context, req store.CountRequest, p plan) (*spanSum, error) {
	c.mu.Lock()
	hs := c.hourSums[p.signature]
	c.mu.Unlock()
	if hs != nil && slices.Equal(hs.hours, p.hours) && !c.opts.Rebuild {
		return hs, nil
	}
	r, err := summed(p.hours, func(h time.Time) (*dayGroups, error) { return c.hour(ctx, req, p.signature, h) })
	if err != nil {
		return nil, err
	}
	hs = &spanSum{first: p.hours[0], last: p.hours[len(p.hours)-1], hours: slices.Clone(p.hours), groups: r.groups, keys: r.keys}
	c.mu.Lock()
	c.hourSums[p.signature] = hs
	c.mu.Unlock()
	return hs, nil
}

// summed merges the groups of the days or hours at, each got by get.
func summed(at []time.Time, get func(time.Time) (*dayGroups, error)) (run, error) {
	merged := newGroupSum(0)
	for _, t := range at {
		dg, err := get(t)
		if err != nil {
			return run{}, err
		}
		for _, g := range dg.groups {
			merged.addInterned(g.Key, g.Count)
		}
	}
	return merged.sorted(), nil
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
