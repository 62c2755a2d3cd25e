package baseline

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
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

// TestShiftedMatchesMerge: on random sums and parts, a shift holds what
// merging base with every part, signed, would (the way it was computed
// before), and fails exactly when that merge goes below zero.
func TestShiftedMatchesMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	counts := func(n, keys int) map[string]int64 {
		m := map[string]int64{}
		for range n {
			m[fmt.Sprintf("e%d\x1fv%d", rng.IntN(keys), rng.IntN(3))] += 1 + rng.Int64N(3)
		}
		return m
	}
	for trial := range 500 {
		base := counts(rng.IntN(60), 40)
		var came, left []run
		for range rng.IntN(3) {
			came = append(came, runOfCounts(counts(rng.IntN(10), 40)))
		}
		for range rng.IntN(3) {
			// Mostly parts the sum holds, sometimes one it does not.
			part := map[string]int64{}
			for k, n := range base {
				if rng.IntN(4) == 0 {
					part[k] = 1 + rng.Int64N(n)
				}
			}
			if rng.IntN(10) == 0 {
				part["zz\x1fnever"] = 1
			}
			left = append(left, runOfCounts(part))
		}
		want, wantErr := mergedShift(runOfCounts(base), came, left)
		got, err := shifted(runOfCounts(base), came, left)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("trial %d: error %v, the merge's %v", trial, err, wantErr)
		}
		if err == nil && (len(got.keys) != len(want.keys) || len(got.keys) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("trial %d: shifted %v, merged %v", trial, got, want)
		}
	}
}

// mergedShift is shifted as a k-way merge of base and every signed part.
func mergedShift(base run, came, left []run) (run, error) {
	runs := append(append([]run{base}, came...), left...)
	signs := make([]int64, len(runs))
	for i := range signs {
		signs[i] = 1
		if i > len(came) {
			signs[i] = -1
		}
	}
	var out run
	err := mergeSigned(runs, signs, func(g store.Group, key string) error {
		if g.Count < 0 {
			return fmt.Errorf("below zero")
		}
		if g.Count > 0 {
			out.groups, out.keys = append(out.groups, g), append(out.keys, key)
		}
		return nil
	})
	return out, err
}

// BenchmarkShifted: an hour sum of 48 hours moved by one hour, the step a
// tick takes once an hour.
func BenchmarkShifted(b *testing.B) {
	hour := func(h int) run {
		s := newGroupSum(0)
		for e := range 2000 {
			if (e+h)%3 == 0 {
				s.add([]string{fmt.Sprintf("arn:aws:iam::1:user/u%d", e%70), fmt.Sprintf("Action%d", e)}, 1)
			}
		}
		return s.sorted()
	}
	base := hour(0)
	for h := 1; h < 48; h++ {
		r, err := shifted(base, []run{hour(h)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		base = r
	}
	came, left := []run{hour(48)}, []run{hour(0)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := shifted(base, came, left); err != nil {
			b.Fatal(err)
		}
	}
}

// viewAmong returns r as a view (run.at) over a larger run that holds
// r's groups among others, as spanSum.restricted returns one.
func viewAmong(r run, rng *rand.Rand) run {
	m := map[string]int64{}
	for i, k := range r.keys {
		m[k] = r.groups[i].Count
	}
	for range rng.IntN(20) {
		m[fmt.Sprintf("e%d\x1fx%d", rng.IntN(20), rng.IntN(4))] = 99 // never one of r's keys
	}
	all := runOfCounts(m)
	v := run{groups: all.groups, keys: all.keys, at: []int32{}, view: true}
	for i, k := range all.keys {
		if _, mine := slices.BinarySearch(r.keys, k); mine {
			v.at = append(v.at, int32(i))
		}
	}
	return v
}

// TestMergeSignedMatchesSum holds the merge to a plain sum by key on
// random runs: every key once, in key order, with its signed total and
// the first run's key slice.
func TestMergeSignedMatchesSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 500 {
		runs := make([]run, rng.IntN(5))
		signs := make([]int64, len(runs))
		want := map[string]int64{}
		for i := range runs {
			m := map[string]int64{}
			for range rng.IntN(30) {
				m[fmt.Sprintf("e%d\x1fv%d", rng.IntN(20), rng.IntN(4))] += 1 + rng.Int64N(5)
			}
			runs[i], signs[i] = runOfCounts(m), int64(1-2*rng.IntN(2))
			if rng.IntN(2) == 0 {
				runs[i] = viewAmong(runs[i], rng) // as a restricted day sum is
			}
			for k, n := range m {
				want[k] += signs[i] * n
			}
		}
		var keys []string
		got := map[string]int64{}
		err := mergeSigned(runs, signs, func(g store.Group, key string) error {
			if store.KeyString(g.Key) != key {
				t.Fatalf("trial %d: group %v under key %q", trial, g.Key, key)
			}
			keys, got[key] = append(keys, key), g.Count
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(keys) || len(keys) != len(want) || !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: merged %v (keys %q), want %v", trial, got, keys, want)
		}
	}
}

// BenchmarkMergeRuns: a tick's three runs for one rule's restricted
// history (the window's edges, the days' sum, the hours' sum).
func BenchmarkMergeRuns(b *testing.B) {
	part := func(n, every int) run {
		s := newGroupSum(0)
		for e := 0; e < n; e += every {
			s.add([]string{"123456789012", fmt.Sprintf("arn:aws:sts::123456789012:assumed-role/team-%d/session", e%90), fmt.Sprintf("Describe%dInstances", e)}, 1)
		}
		return s.sorted()
	}
	runs := []run{part(400, 7), part(6000, 1), part(3000, 2)}
	b.ReportAllocs()
	for b.Loop() {
		if err := mergeRuns(runs, func(store.Group) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
