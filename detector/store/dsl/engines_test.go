package dsl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
	"github.com/offtrail/offtrail/detector/store/elastic"
	offtrailos "github.com/offtrail/offtrail/detector/store/opensearch"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/internal/testenv"
)

// engines opens a backend per engine that is configured: the behaviours
// below go beyond the conformance suite and must match on both.
func engines(t testing.TB) map[string]store.Backend {
	t.Helper()
	out := map[string]store.Backend{}
	for name, u := range testenv.Engines(t) {
		var (
			b   store.Backend
			err error
		)
		switch name {
		case testenv.Elasticsearch:
			b, err = elastic.New(elasticsearch.Config{Addresses: []string{u}})
		case testenv.OpenSearch:
			b, err = offtrailos.New(opensearch.Config{Addresses: []string{u}})
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		out[name] = b
	}
	return out
}

func uniqueIndex(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano())
}

func TestEngines(t *testing.T) {
	for name, b := range engines(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("missing indices are empty", func(t *testing.T) { testMissing(t, b) })
			t.Run("dynamic text fields use keyword", func(t *testing.T) { testKeywordSubfield(t, b) })
			t.Run("errors name engine, operation and index", func(t *testing.T) { testErrors(t, b) })
		})
	}
}

func testMissing(t *testing.T, b store.Backend) {
	ctx := t.Context()
	w := store.Window{From: time.Unix(0, 0), To: time.Now()}
	for _, idx := range [][]string{{"offtrail-nothing-here-*"}, {"offtrail-no-such-index"}} {
		q := store.Query{Index: idx, TimeField: "@timestamp", Window: w}
		n := 0
		if err := b.CountGroups(ctx, store.CountRequest{Query: q, GroupBy: []string{"event.action"}, HourBuckets: true}, func(store.Group) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("CountGroups(%v) = %d groups, %v; want none", idx, n, err)
		}
		if err := b.Stats(ctx, store.StatsRequest{Query: q, By: []string{"user.name"}, Distinct: "event.action"}, func(store.Stats) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("Stats(%v) = %d, %v; want none", idx, n, err)
		}
		if evs, err := b.Events(ctx, q, 10); err != nil || len(evs) != 0 {
			t.Errorf("Events(%v) = %d, %v; want none", idx, len(evs), err)
		}
		if err := b.Refresh(ctx, idx...); err != nil {
			t.Errorf("Refresh(%v): %v", idx, err)
		}
	}
}

// An index without a template maps strings as text with a .keyword
// sub-field (the raw CloudTrail shape from Logstash); rules still name the
// plain field.
func testKeywordSubfield(t *testing.T, b store.Backend) {
	ctx := t.Context()
	idx := uniqueIndex("offtrail-dyn-")
	storetest.DropAfter(t, b, idx)
	w, err := b.NewBulkWriter(ctx, idx, func(id string, err error) { t.Errorf("bulk %s: %v", id, err) })
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"ConsoleLogin", "ConsoleLogin", "GetObject"} {
		src := fmt.Sprintf(`{"eventTime":"2024-03-04T10:0%d:00Z","eventName":%q,"userIdentity":{"arn":"arn:aws:iam::1:user/alice"}}`, i, name)
		if err := w.Add(ctx, store.Doc{ID: fmt.Sprint(i), Source: json.RawMessage(src)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, failed, err := w.Close(ctx); n != 3 || failed != 0 || err != nil {
		t.Fatalf("bulk: %d indexed, %d failed, %v", n, failed, err)
	}
	if err := b.Refresh(ctx, idx); err != nil {
		t.Fatal(err)
	}
	q := store.Query{Index: []string{idx}, TimeField: "eventTime",
		Window: store.Window{From: time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)},
		Filter: store.Filter{Terms: map[string][]string{"eventName": {"ConsoleLogin"}}}}
	got := map[string]int64{}
	err = b.CountGroups(ctx, store.CountRequest{Query: q, GroupBy: []string{"userIdentity.arn", "eventName"}}, func(g store.Group) error {
		got[strings.Join(g.Key, " ")] = g.Count
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["arn:aws:iam::1:user/alice ConsoleLogin"] != 2 {
		t.Errorf("groups %v, want alice ConsoleLogin = 2", got)
	}
}

func testErrors(t *testing.T, b store.Backend) {
	ctx := t.Context()
	err := b.EnsureTemplate(ctx, "offtrail-bad-template", json.RawMessage(`{"index_patterns":["x"],"no_such_key":1}`))
	if err == nil {
		t.Fatal("bad template accepted")
	}
	var re *dsl.ResponseError
	want := b.Kind() + " ensure template offtrail-bad-template: status 400"
	if !strings.HasPrefix(err.Error(), want) || !errors.As(err, &re) || re.Reason == "" {
		t.Errorf("error %q, want it to start %q and carry the engine's reason", err, want)
	}
}

func deleteIndex(b store.Backend, idx string) {
	type transporter interface{ Transport() dsl.Transport }
	if tb, ok := b.(transporter); ok {
		_ = dsl.Delete(context.Background(), tb.Transport(), dsl.Path([]string{idx}))
	}
}

// BenchmarkBulkWriter measures bulk indexing throughput into each engine:
// CloudTrail-shaped documents (ECS field names, ~1 KB) through the
// clients' bulk indexers, refresh excluded.
func BenchmarkBulkWriter(b *testing.B) {
	const perOp = 20000
	docs := storetest.FixtureN(7, perOp)
	for name, be := range engines(b) {
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			if err := be.EnsureTemplate(ctx, storetest.TemplateName, json.RawMessage(storetest.Template)); err != nil {
				b.Fatal(err)
			}
			var bytes int64
			for _, d := range docs {
				bytes += int64(len(d.StoreDoc().Source))
			}
			b.SetBytes(bytes)
			b.ResetTimer()
			for b.Loop() {
				idx := uniqueIndex(storetest.IndexPrefix + "bench-")
				b.StopTimer()
				storeDocs := make([]store.Doc, len(docs))
				for i, d := range docs {
					storeDocs[i] = d.StoreDoc()
				}
				b.StartTimer()
				w, err := be.NewBulkWriter(ctx, idx, func(id string, err error) { b.Errorf("%s: %v", id, err) })
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range storeDocs {
					if err := w.Add(ctx, d); err != nil {
						b.Fatal(err)
					}
				}
				if n, failed, err := w.Close(ctx); n != perOp || failed != 0 || err != nil {
					b.Fatalf("indexed %d failed %d: %v", n, failed, err)
				}
				b.StopTimer()
				deleteIndex(be, idx)
				b.StartTimer()
			}
			b.ReportMetric(float64(perOp*b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}
