package embedded

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

const benchDocs = 200_000

var benchFixture = sync.OnceValue(func() []store.Doc {
	fx := storetest.FixtureN(7, benchDocs)
	out := make([]store.Doc, len(fx))
	for i, d := range fx {
		out[i] = d.StoreDoc()
	}
	return out
})

func loadBench(b *testing.B, s *Store, index string) {
	b.Helper()
	ctx := context.Background()
	w, err := s.NewBulkWriter(ctx, index, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range benchFixture() {
		if err := w.Add(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	if _, _, err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

var benchQuery = store.Query{
	Index:     []string{"logs-*"},
	TimeField: "@timestamp",
	Window:    store.Window{From: storetest.FixtureBase, To: storetest.FixtureBase.Add(48 * time.Hour)},
	Filter:    store.Filter{Not: map[string][]string{"event.outcome": {"failure"}}},
}

// BenchmarkCountGroups measures a rare-job baseline query over warm
// columns: identity x action, filtered, and the same per hour.
func BenchmarkCountGroups(b *testing.B) {
	s := NewMemory()
	loadBench(b, s, "logs-bench")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		req  store.CountRequest
	}{
		{"identity-action", store.CountRequest{Query: benchQuery, GroupBy: []string{"aws.cloudtrail.user_identity.arn", "event.action"}}},
		{"identity-hour", store.CountRequest{Query: benchQuery, GroupBy: []string{"aws.cloudtrail.user_identity.arn"}, HourBuckets: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			noop := func(store.Group) error { return nil }
			if err := s.CountGroups(ctx, c.req, noop); err != nil { // builds the columns
				b.Fatal(err)
			}
			for b.Loop() {
				if err := s.CountGroups(ctx, c.req, noop); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchDocs)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// BenchmarkColumnBuild measures the first query on a field: decoding every
// document once.
func BenchmarkColumnBuild(b *testing.B) {
	s := NewMemory()
	loadBench(b, s, "logs-bench")
	ix := s.indexFor("logs-bench")
	fields := []string{"aws.cloudtrail.user_identity.arn", "event.action", "event.outcome"}
	for b.Loop() {
		ix.mu.RLock()
		newColCache().ensure(ix, fields, []string{"@timestamp"})
		ix.mu.RUnlock()
	}
	b.ReportMetric(float64(benchDocs)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkScanSegment reads a 200k-document gzip segment as a cold index
// load does (decompress and split lines), against the same data as plain
// NDJSON. SetBytes is the uncompressed size.
func BenchmarkScanSegment(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{SegmentDocs: benchDocs})
	if err != nil {
		b.Fatal(err)
	}
	loadBench(b, s, "logs-bench")
	segs, _ := filepath.Glob(filepath.Join(dir, "logs-bench", "seg-*.ndjson.gz"))
	if len(segs) != 1 {
		b.Fatalf("segments: %v", segs)
	}
	// The same lines, uncompressed.
	var plain []byte
	for _, d := range benchFixture() {
		plain = appendLine(plain, d.ID, d.Source)
	}
	plainName := filepath.Join(b.TempDir(), "plain.ndjson")
	if err := os.WriteFile(plainName, plain, 0o644); err != nil {
		b.Fatal(err)
	}
	gz, _ := os.Stat(segs[0])
	b.Logf("%d docs: %d bytes plain, %d gzip", benchDocs, len(plain), gz.Size())
	for _, c := range []struct{ name, file string }{{"gzip", segs[0]}, {"plain", plainName}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				n := 0
				err := readDataFile(c.file, func(rawDoc) { n++ }, func(int, error) {})
				if err != nil || n != benchDocs {
					b.Fatalf("read %d docs: %v", n, err)
				}
			}
			b.ReportMetric(float64(benchDocs)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
	b.Run("segment-load", func(b *testing.B) {
		// A cold read of the segment with one value and one time column.
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			s.Close() // drops the cache
			ix := s.indexFor("logs-bench")
			if err := ix.refreshFiles(s.cache); err != nil {
				b.Fatal(err)
			}
			g, err := s.segmentFor(ix, ix.files[0], []string{"event.action"}, []string{"@timestamp"})
			if err != nil || g.n != benchDocs {
				b.Fatalf("loaded %d: %v", g.n, err)
			}
		}
		b.ReportMetric(float64(benchDocs)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	})
}

// BenchmarkBudgetedSlidingWindow slides a 2-hour count over 200k documents
// in 20 segments on disk with a cache budget of a few segments, as ticks
// over a long history do: it reports the cache's peak (never above the
// budget) and how much the live heap grew over the run.
func BenchmarkBudgetedSlidingWindow(b *testing.B) {
	const budget = 8 << 20
	fx := slices.Clone(benchFixture())
	at := func(d store.Doc) time.Time {
		ts, _ := store.ParseTime(fastjson.GetString(d.Source, "@timestamp"))
		return ts
	}
	slices.SortStableFunc(fx, func(x, y store.Doc) int { return at(x).Compare(at(y)) })
	s, err := Open(b.TempDir(), Options{CacheBytes: budget, SegmentDocs: benchDocs / 20})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w, _ := s.NewBulkWriter(ctx, "logs-bench", nil)
	for _, d := range fx {
		w.Add(ctx, d)
	}
	if _, _, err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	first, last := at(fx[0]), at(fx[len(fx)-1])
	req := store.CountRequest{Query: store.Query{Index: []string{"logs-bench"}, TimeField: "@timestamp"},
		GroupBy: []string{"aws.cloudtrail.user_identity.arn", "event.action"}}
	noop := func(store.Group) error { return nil }
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse // the fixture and the store's metadata
	tick := 0
	for b.Loop() {
		from := first.Add(time.Duration(tick%int(last.Sub(first)/(15*time.Minute))) * 15 * time.Minute)
		req.Query.Window = store.Window{From: from, To: from.Add(2 * time.Hour)}
		if err := s.CountGroups(ctx, req, noop); err != nil {
			b.Fatal(err)
		}
		tick++
	}
	st := s.CacheStats()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(st.Peak)/(1<<20), "cache-peak-MiB")
	b.ReportMetric(float64(st.Budget)/(1<<20), "budget-MiB")
	b.ReportMetric((float64(ms.HeapInuse)-float64(base))/(1<<20), "heap-growth-MiB")
	if st.Peak > budget {
		b.Fatalf("cache peak %d over budget %d", st.Peak, budget)
	}
}
