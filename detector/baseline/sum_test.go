package baseline

import (
	"reflect"
	"testing"

	"github.com/offtrail/offtrail/detector/store"
)

// TestGroupSum: counts add up by key, groups come out in KeyString order,
// and a backend's key slice is copied (it may reuse it) where an interned
// one is kept.
func TestGroupSum(t *testing.T) {
	s := newGroupSum(0)
	reused := []string{"b", "x"}
	s.add(reused, 1)
	reused[0], reused[1] = "a", "y"
	s.add(reused, 2)
	s.addInterned([]string{"b", "x"}, 3)
	s.addInterned([]string{"a", "y"}, 4)
	s.addInterned([]string{"a\x00", "z"}, 5) // before "a" with any second part, as joined keys sort
	got := s.sorted().groups
	want := []store.Group{{Key: []string{"a\x00", "z"}, Count: 5}, {Key: []string{"a", "y"}, Count: 6}, {Key: []string{"b", "x"}, Count: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sorted %v, want %v", got, want)
	}
	for i := 1; i < len(got); i++ {
		if store.KeyString(got[i-1].Key) >= store.KeyString(got[i].Key) {
			t.Fatalf("not in KeyString order: %v", got)
		}
	}
}

// TestMergeRuns: each key once, in key order, its counts summed over the
// runs that hold it.
func TestMergeRuns(t *testing.T) {
	runs := []run{
		runOfCounts(map[string]int64{"a\x1fx": 1, "c\x1fx": 2}),
		{},
		runOfCounts(map[string]int64{"a\x1fx": 10, "b\x1fy": 20, "d\x1fz": 30}),
		runOfCounts(map[string]int64{"c\x1fx": 100}),
	}
	var got []store.Group
	if err := mergeRuns(runs, func(g store.Group) error { got = append(got, g); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []store.Group{{Key: []string{"a", "x"}, Count: 11}, {Key: []string{"b", "y"}, Count: 20},
		{Key: []string{"c", "x"}, Count: 102}, {Key: []string{"d", "z"}, Count: 30}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
}

// TestShifted: a sum moved by the parts that came and left holds each
// key's new count, drops the keys that fell to zero, and refuses to take
// off what the sum never held.
func TestShifted(t *testing.T) {
	base := runOfCounts(map[string]int64{"a\x1fx": 3, "b\x1fy": 1, "c\x1fx": 2})
	got, err := shifted(base,
		[]run{runOfCounts(map[string]int64{"b\x1fy": 1, "d\x1fz": 4})},
		[]run{runOfCounts(map[string]int64{"a\x1fx": 3}), runOfCounts(map[string]int64{"c\x1fx": 1})})
	if err != nil {
		t.Fatal(err)
	}
	want := runOfCounts(map[string]int64{"b\x1fy": 2, "c\x1fx": 1, "d\x1fz": 4})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("shifted %v, want %v", got, want)
	}
	if _, err := shifted(base, nil, []run{runOfCounts(map[string]int64{"e\x1fx": 1})}); err == nil {
		t.Fatal("taking off a group the sum does not hold: no error")
	}
}

// runOfCounts is the run of counts by joined key.
func runOfCounts(counts map[string]int64) run {
	s := newGroupSum(0)
	for k, n := range counts {
		s.add(store.SplitKey(k), n)
	}
	return s.sorted()
}
