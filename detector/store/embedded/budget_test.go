package embedded

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// The fixture loaded into small segments under a small cache budget answers
// exactly as the in-memory store, including after reloads and overwrites,
// while the cache's own accounting never passes the budget.
func TestBudgetedDiskMatchesMemory(t *testing.T) {
	const (
		docs    = 6000
		segDocs = 500
		budget  = 256 << 10 // a few segments' columns
	)
	fx := storetest.FixtureN(11, docs)
	dir := t.TempDir()
	disk, err := Open(dir, Options{CacheBytes: budget, SegmentDocs: segDocs})
	if err != nil {
		t.Fatal(err)
	}
	mem := NewMemory()
	ctx := t.Context()
	load := func(s *Store, ds []storetest.Doc) {
		t.Helper()
		w, err := s.NewBulkWriter(ctx, "logs-b", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if err := w.Add(ctx, d.StoreDoc()); err != nil {
				t.Fatal(err)
			}
		}
		if n, failed, err := w.Close(ctx); err != nil || failed != 0 || n != int64(len(ds)) {
			t.Fatalf("Close: %d %d %v", n, failed, err)
		}
	}
	// Load twice (idempotent), then overwrite a document in an old segment
	// with one that moves it to another time and action.
	changed := fx[10]
	src := map[string]any{}
	for k, v := range changed.Source {
		src[k] = v
	}
	src["event"] = map[string]any{"action": "Overwritten", "provider": "test.amazonaws.com"}
	src[storetest.FieldTime] = storetest.FixtureBase.Add(-time.Hour).Format(time.RFC3339)
	changed.Source = src
	for _, s := range []*Store{disk, mem} {
		load(s, fx)
		load(s, fx[:docs/2])
		load(s, []storetest.Doc{changed})
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "logs-b", "seg-*")); len(segs) != docs/segDocs+docs/2/segDocs+1 {
		t.Fatalf("%d segments", len(segs))
	}

	span := 40 * 24 * time.Hour
	windows := []store.Window{
		{From: storetest.FixtureBase.Add(-2 * time.Hour), To: storetest.FixtureBase.Add(span)},
		{From: storetest.FixtureBase.Add(24 * time.Hour), To: storetest.FixtureBase.Add(26 * time.Hour)},
		{From: storetest.FixtureBase.Add(-2 * time.Hour), To: storetest.FixtureBase},
		{From: storetest.FixtureBase.Add(3 * 24 * time.Hour), To: storetest.FixtureBase.Add(9 * 24 * time.Hour)},
		{From: storetest.FixtureBase.Add(10 * time.Hour), To: storetest.FixtureBase.Add(30 * time.Hour)},
	}
	for round := range 2 { // the second round runs on what the cache kept
		for wi, w := range windows {
			q := store.Query{Index: []string{"logs-*"}, TimeField: storetest.FieldTime, Window: w,
				Filter: store.Filter{Not: map[string][]string{storetest.FieldOutcome: {"failure"}}}}
			name := fmt.Sprintf("round %d window %d", round, wi)
			for _, by := range [][]string{{storetest.FieldAction}, {storetest.FieldARN, storetest.FieldAction}} {
				req := store.CountRequest{Query: q, GroupBy: by, HourBuckets: wi == 1}
				if got, want := counts(t, disk, req), counts(t, mem, req); !reflect.DeepEqual(got, want) {
					t.Errorf("%s by %v: disk %v, memory %v", name, by, got, want)
				}
			}
			sreq := store.StatsRequest{Query: q, By: []string{storetest.FieldARN}, Distinct: storetest.FieldAction}
			if got, want := stats(t, disk, sreq), stats(t, mem, sreq); !reflect.DeepEqual(got, want) {
				t.Errorf("%s stats: disk %v, memory %v", name, got, want)
			}
			de, err := disk.Events(ctx, q, 25)
			if err != nil {
				t.Fatal(err)
			}
			me, err := mem.Events(ctx, q, 25)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(de, me) {
				t.Errorf("%s events differ: disk %d, memory %d", name, len(de), len(me))
			}
		}
	}
	st := disk.CacheStats()
	t.Logf("cache: %+v", st)
	if st.Peak > budget || st.Used > budget {
		t.Errorf("cache held %d bytes (peak %d), budget %d", st.Used, st.Peak, budget)
	}
	if st.Evictions == 0 {
		t.Errorf("no evictions: the budget did not bind")
	}

	// Another store on the directory (the next process) reads the columns
	// kept beside the segments, and a damaged column file is read again
	// from its segment rather than trusted.
	cols, _ := filepath.Glob(filepath.Join(dir, "logs-b", sidecarDir, "seg-*", "v.*"))
	if len(cols) == 0 {
		t.Fatal("no column files kept beside the segments")
	}
	b, err := os.ReadFile(cols[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(cols[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir, Options{CacheBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	for wi, w := range windows {
		q := store.Query{Index: []string{"logs-*"}, TimeField: storetest.FieldTime, Window: w}
		for _, by := range [][]string{{storetest.FieldAction}, {storetest.FieldARN, storetest.FieldRegion}} {
			req := store.CountRequest{Query: q, GroupBy: by}
			if got, want := counts(t, again, req), counts(t, mem, req); !reflect.DeepEqual(got, want) {
				t.Errorf("reopened, window %d by %v: disk %v, memory %v", wi, by, got, want)
			}
		}
	}

	// Signals already present are not written again, across segments.
	sig := []store.Doc{{ID: fx[0].ID, Source: json.RawMessage(`{"@timestamp":"2024-03-04T10:00:00Z"}`)},
		{ID: "new", Source: json.RawMessage(`{"@timestamp":"2024-03-04T10:00:00Z"}`)}}
	if r, err := disk.WriteSignals(ctx, "logs-b", sig); err != nil || r.Created != 1 || r.Existed != 1 {
		t.Fatalf("WriteSignals: %+v %v", r, err)
	}
}

func stats(t *testing.T, s *Store, req store.StatsRequest) map[string][2]int64 {
	t.Helper()
	got := map[string][2]int64{}
	err := s.Stats(t.Context(), req, func(st store.Stats) error {
		got[store.KeyString(st.Key)] = [2]int64{st.Total, st.Distinct}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A window query reads only the files its window meets, once their time
// ranges are known.
func TestWindowReadsOnlyItsSegments(t *testing.T) {
	// Time-ordered, as CloudTrail files load, so segments are time slices.
	fx := storetest.FixtureN(5, 4000)
	at := func(d storetest.Doc) time.Time {
		ts, _ := store.ParseTime(d.Source[storetest.FieldTime])
		return ts
	}
	slices.SortStableFunc(fx, func(a, b storetest.Doc) int { return at(a).Compare(at(b)) })
	s, err := Open(t.TempDir(), Options{SegmentDocs: 400})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w, _ := s.NewBulkWriter(ctx, "logs-w", nil)
	for _, d := range fx {
		w.Add(ctx, d.StoreDoc())
	}
	if _, _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	first, last := at(fx[0]), at(fx[len(fx)-1])
	all := store.Query{Index: []string{"logs-w"}, TimeField: storetest.FieldTime, Window: store.Window{From: first, To: last.Add(time.Second)}}
	req := store.CountRequest{Query: all, GroupBy: []string{storetest.FieldAction}}
	counts(t, s, req) // learns every file's range
	s.cache.reset()
	before := s.CacheStats().Misses
	req.Query.Window = store.Window{From: last.Add(-time.Hour), To: last.Add(time.Second)}
	counts(t, s, req)
	if read := s.CacheStats().Misses - before; read > 2 {
		t.Errorf("a one-hour window read %d of 10 segments", read)
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"512MiB", 512 << 20}, {"1g", 1 << 30}, {"300 KB", 300 << 10}, {"12345", 12345}, {"0", 0}, {"x", 0}, {"-1M", 0}} {
		got, err := ParseSize(c.in)
		if got != c.want || (err != nil) != (c.want == 0) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	t.Setenv(CacheEnv, "64MiB")
	s, err := Open(t.TempDir(), Options{})
	if err != nil || s.CacheStats().Budget != 64<<20 {
		t.Fatalf("budget from %s: %+v %v", CacheEnv, s.CacheStats(), err)
	}
	t.Setenv(CacheEnv, "lots")
	if _, err := Open(t.TempDir(), Options{}); err == nil {
		t.Error("bad env value accepted")
	}
	os.Unsetenv(CacheEnv)
}
