package baseline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/internal/testenv"
)

var (
	base  = storetest.FixtureBase // the fixture spans two whole days from here
	later = base.Add(30 * 24 * time.Hour)
)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestPlanSplitsWholeSealedDaysAndHours(t *testing.T) {
	mem := embedded.NewMemory()
	defer mem.Close()
	q := func(from, to time.Time) store.CountRequest {
		return store.CountRequest{Query: store.Query{Index: []string{"x"}, TimeField: "@timestamp", Window: store.Window{From: from, To: to}}, GroupBy: []string{"a", "b"}}
	}
	h := time.Hour
	cases := []struct {
		name   string
		req    store.CountRequest
		now    time.Time
		split  bool
		builds int64 // days counted on first use
		hours  int64 // hours counted (a day's remaining sealed hours are counted at once)
		raw    int64 // raw queries in all: edges + day counts + one per run of hours, or 1 unsplit
		tail   int64 // counts answered from the tail
	}{
		{"a window of 15 minutes: raw", q(base.Add(h), base.Add(h+15*time.Minute)), later, false, 0, 0, 1, 0},
		{"part of an hour at each end: raw", q(base.Add(h+10*time.Minute), base.Add(2*h+5*time.Minute)), later, false, 0, 0, 1, 0},
		{"hours, no day: the rest of the day in one count", q(base.Add(h), base.Add(20*h)), later, true, 0, 23, 1, 0},
		{"hours, a day, hours", q(base.Add(-3*h), base.Add(27*h)), later, true, 1, 27, 3, 0},
		{"a partial hour first", q(base.Add(-3*h-20*time.Minute), base.Add(24*h)), later, true, 1, 3, 3, 0},
		{"second day not sealed yet: its sealed hours in one count, the rest from the tail", q(base.Add(-3*h), base.Add(48*h)), base.Add(49 * h), true, 1, 26, 3, 1},
		{"two aligned days, no edges", q(base, base.Add(48*h)), later, true, 2, 0, 2, 0},
		{"restrict on a grouped field", func() store.CountRequest {
			r := q(base, base.Add(48*h))
			r.Restrict = map[string][]string{"a": {"1"}}
			return r
		}(), later, true, 2, 0, 2, 0},
		{"restrict on a field not grouped by: raw", func() store.CountRequest {
			r := q(base, base.Add(48*h))
			r.Restrict = map[string][]string{"c": {"1"}}
			return r
		}(), later, false, 0, 0, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := baseline.New(mem, baseline.Options{StateIndex: "offtrail-state-plan-" + fmt.Sprint(time.Now().UnixNano()), Now: clock(tc.now)})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CountGroups(t.Context(), tc.req, func(store.Group) error { return nil }); err != nil {
				t.Fatal(err)
			}
			st := c.Stats()
			if st.DaysBuilt != tc.builds || st.HoursBuilt != tc.hours || st.RawQueries != tc.raw || st.TailAnswers != tc.tail || (st.Split == 1) != tc.split {
				t.Errorf("stats %+v; want split %v, %d days and %d hours counted, %d raw queries, %d from the tail", st, tc.split, tc.builds, tc.hours, tc.raw, tc.tail)
			}
		})
	}
}

func TestNewNeedsAStateIndex(t *testing.T) {
	if _, err := baseline.New(embedded.NewMemory(), baseline.Options{}); err == nil {
		t.Fatal("a cache with nowhere to keep its days was accepted")
	}
}

// requests are the shapes the jobs ask for: an entity's values, hour
// buckets, restricted to active entities or values, filtered.
func requests() []store.CountRequest {
	arn, action := storetest.FieldARN, storetest.FieldAction
	span := func(from, to time.Time) store.Query {
		return store.Query{TimeField: storetest.FieldTime, Window: store.Window{From: from, To: to}}
	}
	odd := span(base.Add(-5*time.Hour-17*time.Minute), base.Add(47*time.Hour+3*time.Second))
	whole := span(base.Add(-time.Hour), base.Add(50*time.Hour))
	aligned := span(base, base.Add(48*time.Hour))
	alice := "arn:aws:iam::111111111111:user/alice"
	ci := "arn:aws:sts::111111111111:assumed-role/deployer/ci-run"
	return []store.CountRequest{
		{Query: odd, GroupBy: []string{arn, action}},
		{Query: whole, GroupBy: []string{storetest.FieldAccount, arn, action}, Restrict: map[string][]string{arn: {alice, ci, "nobody"}}},
		{Query: aligned, GroupBy: []string{storetest.FieldAccount, action, arn}, Restrict: map[string][]string{action: {"CreateUser", "StopLogging"}}},
		{Query: odd, GroupBy: []string{arn}, HourBuckets: true, Restrict: map[string][]string{arn: {alice}}},
		{Query: whole, GroupBy: []string{arn, action}, Restrict: map[string][]string{arn: {ci, alice, ci}, action: {"ListUsers", "GetObject", "PutObject"}}},
		{Query: whole, GroupBy: []string{arn, storetest.FieldRegion}, HourBuckets: true},
		{Query: func() store.Query {
			q := odd
			q.Filter = store.Filter{Terms: map[string][]string{storetest.FieldProvider: {"iam.amazonaws.com"}}, Not: map[string][]string{storetest.FieldOutcome: {"failure"}}}
			return q
		}(), GroupBy: []string{arn, action}},
	}
}

func collect(t *testing.T, s interface {
	CountGroups(context.Context, store.CountRequest, func(store.Group) error) error
}, req store.CountRequest) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := s.CountGroups(t.Context(), req, func(g store.Group) error {
		k := store.KeyString(g.Key)
		if _, dup := out[k]; dup {
			return fmt.Errorf("group %q reported twice", k)
		}
		out[k] = g.Count
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// equivalenceBackends opens every backend the cache is proved on: the
// embedded store always, the engines the environment names.
func equivalenceBackends(t *testing.T) map[string]store.Backend {
	out := map[string]store.Backend{"embedded": embedded.NewMemory()}
	for name, url := range testenv.Engines(t) {
		b, err := backends.Open(t.Context(), backends.Options{URLs: []string{url}}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	for _, b := range out {
		t.Cleanup(func() { b.Close() })
	}
	return out
}

// loadFixture loads the two-day fixture into a new index of b and names
// a new state index beside it.
func loadFixture(t *testing.T, b store.Backend) (index, state string) {
	t.Helper()
	return loadDocs(t, b, "baseline-", storetest.FixtureN(3, 1500))
}

// loadDocs loads docs into a new index of b, named from prefix, and names
// a new state index beside it; both are dropped when t ends.
func loadDocs(t *testing.T, b store.Backend, prefix string, docs []storetest.Doc) (index, state string) {
	t.Helper()
	id := fmt.Sprint(time.Now().UnixNano())
	index, state = storetest.IndexPrefix+prefix+id, "offtrail-state-test-"+id
	storetest.DropAfter(t, b, index, state)
	if err := b.EnsureTemplate(t.Context(), storetest.TemplateName, json.RawMessage(storetest.Template)); err != nil {
		t.Fatal(err)
	}
	storetest.Load(t, b, index, docs)
	if err := b.Refresh(t.Context(), index); err != nil {
		t.Fatal(err)
	}
	return index, state
}

// TestEquivalence: the cache's answers equal one aggregation over the
// span, on every backend, whether the days come from a fresh count, from
// memory, or from the state documents a previous process left.
func TestEquivalence(t *testing.T) {
	for name, b := range equivalenceBackends(t) {
		t.Run(name, func(t *testing.T) {
			index, state := loadFixture(t, b)
			opts := baseline.Options{StateIndex: state, Now: clock(later)}
			first, err := baseline.New(b, opts)
			if err != nil {
				t.Fatal(err)
			}
			restarted, _ := baseline.New(b, opts)
			tight := opts
			tight.MemoryGroups = 10 // a budget of a few groups: days are read back from state
			squeezed, _ := baseline.New(b, tight)
			for i, req := range requests() {
				req.Query.Index = []string{index}
				want := collect(t, b, req)
				if len(want) == 0 {
					t.Fatalf("request %d counts nothing: the test proves nothing", i)
				}
				for _, step := range []struct {
					name  string
					cache *baseline.Cache
				}{{"built", first}, {"from memory", first}, {"from state", restarted}, {"over a memory budget", squeezed}, {"over it again", squeezed}} {
					if got := collect(t, step.cache, req); !maps.Equal(got, want) {
						t.Errorf("request %d %s: %d groups differ from the aggregation's %d: %v", i, step.name, len(got), len(want), diff(got, want))
					}
				}
			}
			for _, st := range []baseline.Stats{first.Stats(), restarted.Stats()} {
				if st.Split == 0 {
					t.Errorf("no request was answered from days: %+v", st)
				}
			}
			if st := first.Stats(); st.DaysBuilt == 0 || st.DaysMemory == 0 {
				t.Errorf("first cache: %+v, want days built then served from memory", st)
			}
			if st := squeezed.Stats(); st.Evicted == 0 || st.DaysBuilt != 0 {
				t.Errorf("cache over its memory budget: %+v, want days evicted and read back, none rebuilt", st)
			}
			if st := restarted.Stats(); st.DaysState == 0 || st.DaysBuilt != 0 {
				t.Errorf("restarted cache: %+v, want every day read from state, none rebuilt", st)
			}
		})
	}
}

func diff(got, want map[string]int64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			out = append(out, fmt.Sprintf("%q: got %d want %d", k, got[k], want[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%q: got %d, not in the aggregation", k, got[k]))
		}
	}
	if len(out) > 5 {
		out = append(out[:5], "…")
	}
	return out
}

// TestRebuildOverwrites: a rebuild recounts the days from raw events even
// when documents exist (data loaded late, a changed mapping).
func TestRebuildOverwrites(t *testing.T) {
	mem := embedded.NewMemory()
	defer mem.Close()
	storetest.Load(t, mem, "logs-x", storetest.FixtureN(5, 300))
	req := store.CountRequest{Query: store.Query{Index: []string{"logs-x"}, TimeField: storetest.FieldTime,
		Window: store.Window{From: base, To: base.Add(48 * time.Hour)}}, GroupBy: []string{storetest.FieldARN}}
	opts := baseline.Options{StateIndex: "offtrail-state-rb", Now: clock(later)}
	c, _ := baseline.New(mem, opts)
	before := collect(t, c, req)
	// Late data lands in a sealed day: only a rebuild sees it.
	storetest.Load(t, mem, "logs-x", []storetest.Doc{{ID: "late", Source: map[string]any{
		storetest.FieldTime: base.Add(30 * time.Hour).Format(time.RFC3339), storetest.FieldARN: "arn:aws:iam::1:user/late"}}})
	stale, _ := baseline.New(mem, opts)
	if got := collect(t, stale, req); !maps.Equal(got, before) {
		t.Fatalf("a sealed day changed without a rebuild")
	}
	opts.Rebuild = true
	var built []string
	opts.OnBuild = func(_ string, d time.Time, _ int) { built = append(built, d.Format(time.DateOnly)) }
	rb, _ := baseline.New(mem, opts)
	if got := collect(t, rb, req); got["arn:aws:iam::1:user/late"] != 1 {
		t.Fatalf("rebuild did not count the late event: %v", got)
	}
	if len(built) != 2 {
		t.Fatalf("rebuild counted days %v, want both", built)
	}
	opts.Rebuild, opts.OnBuild = false, nil
	after, _ := baseline.New(mem, opts)
	if got := collect(t, after, req); got["arn:aws:iam::1:user/late"] != 1 {
		t.Fatal("the rebuilt documents were not stored")
	}
}

// TestExpireDeletesOldDays: documents of days more than Keep behind the
// newest span are deleted, those inside are kept.
func TestExpireDeletesOldDays(t *testing.T) {
	mem := embedded.NewMemory()
	defer mem.Close()
	storetest.Load(t, mem, "logs-x", storetest.FixtureN(6, 200))
	const state = "offtrail-state-exp"
	opts := baseline.Options{StateIndex: state, Now: clock(later), Keep: 10 * 24 * time.Hour}
	c, _ := baseline.New(mem, opts)
	req := func(from time.Time) store.CountRequest {
		return store.CountRequest{Query: store.Query{Index: []string{"logs-x"}, TimeField: storetest.FieldTime,
			Window: store.Window{From: from, To: from.Add(48 * time.Hour)}}, GroupBy: []string{storetest.FieldARN}}
	}
	collect(t, c, req(base))
	sig := baseline.Signature(req(base))
	for _, d := range []time.Time{base, base.Add(24 * time.Hour)} {
		if _, _, err := mem.GetState(t.Context(), state, baseline.DocID(sig, d)); err != nil {
			t.Fatalf("day %s not stored: %v", d, err)
		}
	}
	collect(t, c, req(base.Add(9*24*time.Hour+12*time.Hour))) // the first day ended 10.5 days before the span
	if _, _, err := mem.GetState(t.Context(), state, baseline.DocID(sig, base)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("day behind Keep still stored: %v", err)
	}
	if _, _, err := mem.GetState(t.Context(), state, baseline.DocID(sig, base.Add(24*time.Hour))); err != nil {
		t.Fatalf("day within Keep deleted: %v", err)
	}
	if c.Stats().Expired != 1 {
		t.Fatalf("stats %+v, want one expired", c.Stats())
	}
}
