package baseline

import (
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
	s.buf = s.buf[:0]
	for i, k := range key {
		if i > 0 {
			s.buf = append(s.buf, store.KeySep...)
		}
		s.buf = append(s.buf, k...)
	}
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
				g.Count += r.groups[pos[i]].Count
				pos[i]++
			}
		}
		if err := fn(g); err != nil {
			return err
		}
	}
}
