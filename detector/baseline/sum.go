package baseline

import (
	"fmt"
	"slices"
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
// (store.KeyString, the engines' composite order), with those keys.
type run struct {
	groups []store.Group
	keys   []string
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
// two merges of sorted runs instead of being summed again over every day
// or hour it holds. Counts are integers, so the result is exactly the
// sum over the new parts; a group whose count falls to zero is dropped,
// as a count over the new span would not report it. It fails if a count
// would go below zero: a part that left was not in base.
func shifted(base run, came, left []run) (run, error) {
	runs := append(append([]run{base}, came...), left...)
	signs := make([]int64, len(runs))
	for i := range signs {
		signs[i] = 1
		if i > len(came) {
			signs[i] = -1
		}
	}
	out := run{groups: make([]store.Group, 0, len(base.groups)), keys: make([]string, 0, len(base.keys))}
	err := mergeSigned(runs, signs, func(g store.Group, key string) error {
		switch {
		case g.Count < 0:
			return fmt.Errorf("group %q would count %d: a part taken off was not in the sum", store.KeyString(g.Key), g.Count)
		case g.Count > 0:
			out.groups = append(out.groups, g)
			out.keys = append(out.keys, key)
		}
		return nil
	})
	return out, err
}

// mergeSigned is mergeRuns with each run's counts multiplied by its sign
// (all +1 when signs is nil); fn also gets the group's joined key.
func mergeSigned(runs []run, signs []int64, fn func(g store.Group, key string) error) error {
	pos := make([]int, len(runs))
	for {
		best := -1
		for i, r := range runs {
			if pos[i] < len(r.keys) && (best < 0 || r.keys[pos[i]] < runs[best].keys[pos[best]]) {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		k := runs[best].keys[pos[best]]
		g := store.Group{Key: runs[best].groups[pos[best]].Key}
		for i, r := range runs {
			if pos[i] < len(r.keys) && r.keys[pos[i]] == k {
				n := r.groups[pos[i]].Count
				if signs != nil {
					n *= signs[i]
				}
				g.Count += n
				pos[i]++
			}
		}
		if err := fn(g, k); err != nil {
			return err
		}
	}
}
