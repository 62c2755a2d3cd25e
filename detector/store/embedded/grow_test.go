package embedded_test

import (
	"maps"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// TestColumnsGrowWithAppends: an in-memory index written in batches, with
// queries between them (so columns exist when the next batch lands, and
// are extended or rebuilt), answers as one written at once.
func TestColumnsGrowWithAppends(t *testing.T) {
	docs := storetest.FixtureN(9, 900)
	// A multi-valued field, and a batch that replaces earlier documents.
	for i := range docs {
		if i%10 == 3 {
			docs[i].Source["tags"] = []any{"a", "b" + docs[i].ID[:6]}
		}
	}
	replaced := append([]storetest.Doc(nil), docs[100:150]...)
	for i := range replaced {
		src := maps.Clone(replaced[i].Source)
		src["tags"] = "replaced"
		replaced[i] = storetest.Doc{ID: replaced[i].ID, Source: src}
	}
	grown := embedded.NewMemory()
	reqs := []store.CountRequest{
		{GroupBy: []string{storetest.FieldARN, storetest.FieldAction}},
		{GroupBy: []string{"tags"}},
		{GroupBy: []string{storetest.FieldRegion}, HourBuckets: true},
		{GroupBy: []string{storetest.FieldARN}, Restrict: map[string][]string{storetest.FieldARN: {"arn:aws:iam::111111111111:user/alice"}}},
	}
	for i := range reqs {
		reqs[i].Query = store.Query{Index: []string{"x"}, TimeField: storetest.FieldTime,
			Window: store.Window{From: storetest.FixtureBase.Add(-time.Hour), To: storetest.FixtureBase.Add(50 * time.Hour)}}
	}
	counts := func(s *embedded.Store, req store.CountRequest) map[string]int64 {
		out := map[string]int64{}
		if err := s.CountGroups(t.Context(), req, func(g store.Group) error { out[store.KeyString(g.Key)] = g.Count; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var sofar []storetest.Doc
	for n, batch := range [][]storetest.Doc{docs[:300], docs[300:301], docs[301:], replaced} {
		storetest.Load(t, grown, "x", batch)
		once := embedded.NewMemory() // what the batches so far hold, written at once
		storetest.Load(t, once, "x", append(sofar, batch...))
		sofar = append(sofar, batch...)
		for i, req := range reqs {
			if n < 3 && i == 3 {
				continue // a field first asked for after the last batch: built, not extended
			}
			want, got := counts(once, req), counts(grown, req)
			if len(want) == 0 || !maps.Equal(got, want) {
				t.Errorf("after batch %d, request %d: %d groups written in batches, %d at once", n, i, len(got), len(want))
			}
		}
	}
}
