package baseline

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/offtrail/offtrail/detector/store"
)

// groupSum adds counts by group key. A tick merges the same keys from
// many days and hours, so it keeps each key's first slice (the days' and
// hours' keys are interned) instead of joining and splitting every key
// again, and joins a key only to look it up, in a buffer it reuses.
type groupSum struct {
	at     map[string]int // joined key → its place in groups and keys
	groups []store.Group
	keys   []string // joined, for the engines' order
	buf    []byte
}

func newGroupSum(hint int) *groupSum {
	return &groupSum{at: make(map[string]int, hint)}
}

// add counts n for key, copying key if it is new (a backend may reuse
// the slice it passes).
func (s *groupSum) add(key []string, n int64) { s.put(key, n, true) }

// addInterned counts n for key and keeps key itself if it is new: the
// days' and hours' keys are interned and never change.
func (s *groupSum) addInterned(key []string, n int64) { s.put(key, n, false) }

func (s *groupSum) put(key []string, n int64, clone bool) {
	s.buf = store.AppendKey(s.buf[:0], key)
	if i, ok := s.at[string(s.buf)]; ok { // no allocation for a lookup
		s.groups[i].Count += n
		return
	}
	k := string(s.buf)
	if clone {
		key = slices.Clone(key)
	}
	s.at[k] = len(s.groups)
	s.groups = append(s.groups, store.Group{Key: key, Count: n})
	s.keys = append(s.keys, k)
}

// run is groups with unique keys in the order of their joined keys
// (store.KeyString, the engines' composite order), with those keys. A
// run restricted to some of a sum's groups is a view (at: their places,
// in order), so that a tick's restriction copies no group.
type run struct {
	groups []store.Group
	keys   []string
	at     []int32 // when view: the run is these places of groups and keys
	view   bool
}

func (r run) len() int {
	if r.view {
		return len(r.at)
	}
	return len(r.keys)
}

func (r run) key(i int) string {
	if r.view {
		return r.keys[r.at[i]]
	}
	return r.keys[i]
}

func (r run) group(i int) store.Group {
	if r.view {
		return r.groups[r.at[i]]
	}
	return r.groups[i]
}

// from returns the first place at or after from (whose key is below key)
// whose key is at least key: a gallop, then a binary search, so a
// stretch of n keys costs about 2·log n comparisons, and one key two.
func (r run) from(from int, key string) int {
	n := r.len()
	lo, hi, step := from, from+1, 1
	for hi < n && r.key(hi) < key {
		lo, step = hi, step*2
		hi = from + step
	}
	hi = min(hi, n)
	return lo + 1 + sort.Search(hi-lo-1, func(j int) bool { return r.key(lo+1+j) >= key })
}

// sorted returns the sum as a run.
func (s *groupSum) sorted() run {
	order := make([]int, len(s.groups))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(s.keys[a], s.keys[b]) })
	out := run{groups: make([]store.Group, len(order)), keys: make([]string, len(order))}
	for i, j := range order {
		out.groups[i], out.keys[i] = s.groups[j], s.keys[j]
	}
	return out
}

// mergeRuns calls fn once for each key of the runs, in key order, with
// its counts summed: the days' and hours' sums are runs already, so a
// tick merges them without hashing or sorting their groups again.
func mergeRuns(runs []run, fn func(store.Group) error) error {
	return mergeSigned(runs, nil, func(g store.Group, _ string) error { return fn(g) })
}

// shifted returns base with the parts that came added and those that left
// taken off: when a span moves by a day or an hour, its sum is updated by
// a merge of sorted runs instead of being summed again over every day or
// hour it holds. Counts are integers, so the result is exactly the sum
// over the new parts; a group whose count falls to zero is dropped, as a
// count over the new span would not report it. It fails if a count would
// go below zero: a part that left was not in base.
//
// The parts that move are a day or an hour against a sum of many, so
// their change is merged first into one small run, and base is copied
// across in whole stretches between the keys that change, each found by
// binary search: a shift costs a copy of base, not a comparison of each
// of its keys with every part's.
func shifted(base run, came, left []run) (run, error) {
	delta := signedDelta(came, left)
	out := run{groups: make([]store.Group, 0, len(base.groups)+len(delta.groups)), keys: make([]string, 0, len(base.keys)+len(delta.keys))}
	i := 0
	for d, key := range delta.keys {
		j := i + sort.SearchStrings(base.keys[i:], key)
		out.groups, out.keys = append(out.groups, base.groups[i:j]...), append(out.keys, base.keys[i:j]...)
		g := delta.groups[d]
		if i = j; j < len(base.keys) && base.keys[j] == key {
			g = store.Group{Key: base.groups[j].Key, Count: base.groups[j].Count + g.Count}
			i++
		}
		switch {
		case g.Count < 0:
			return run{}, fmt.Errorf("group %q would count %d: a part taken off was not in the sum", store.KeyString(g.Key), g.Count)
		case g.Count > 0:
			out.groups, out.keys = append(out.groups, g), append(out.keys, key)
		}
	}
	out.groups, out.keys = append(out.groups, base.groups[i:]...), append(out.keys, base.keys[i:]...)
	return out, nil
}

// signedDelta is the parts that came minus those that left, by key, in
// key order; a key whose change nets to zero is left out.
func signedDelta(came, left []run) run {
	runs := append(slices.Clone(came), left...)
	signs := make([]int64, len(runs))
	for i := range signs {
		signs[i] = 1
		if i >= len(came) {
			signs[i] = -1
		}
	}
	var delta run
	_ = mergeSigned(runs, signs, func(g store.Group, key string) error {
		if g.Count != 0 {
			delta.groups, delta.keys = append(delta.groups, g), append(delta.keys, key)
		}
		return nil
	})
	return delta
}

// mergeSigned is mergeRuns with each run's counts multiplied by its sign
// (all +1 when signs is nil); fn also gets the group's joined key. A
// group's key is the first run's that holds it. Each step finds the
// smallest head and the next one above it; a run alone below every other
// head gives its whole stretch up to that next head at once, found by a
// gallop, so merging a sum of days with a few hours' keys compares about
// the few keys, not each of the days'.
func mergeSigned(runs []run, signs []int64, fn func(g store.Group, key string) error) error {
	pos := make([]int, len(runs))
	tied := make([]int, 0, len(runs)) // the runs whose head is the smallest key
	sign := func(i int) int64 {
		if signs == nil {
			return 1
		}
		return signs[i]
	}
	for {
		tied = tied[:0]
		var k, next string // the smallest head, and the smallest above it
		hasNext := false
		for i, r := range runs {
			if pos[i] >= r.len() {
				continue
			}
			head := r.key(pos[i])
			if len(tied) == 0 {
				k, tied = head, append(tied, i)
				continue
			}
			switch c := strings.Compare(head, k); {
			case c == 0:
				tied = append(tied, i)
			case c < 0:
				next, hasNext = k, true // k was below every other head
				k, tied = head, append(tied[:0], i)
			case !hasNext || head < next:
				next, hasNext = head, true
			}
		}
		switch len(tied) {
		case 0:
			return nil
		case 1:
			i := tied[0]
			r, end := runs[i], runs[i].len()
			if hasNext {
				end = r.from(pos[i], next)
			}
			for ; pos[i] < end; pos[i]++ {
				g := r.group(pos[i])
				g.Count *= sign(i)
				if err := fn(g, r.key(pos[i])); err != nil {
					return err
				}
			}
			continue
		}
		g := store.Group{Key: runs[tied[0]].group(pos[tied[0]]).Key}
		for _, i := range tied {
			g.Count += runs[i].group(pos[i]).Count * sign(i)
			pos[i]++
		}
		if err := fn(g, k); err != nil {
			return err
		}
	}
}
