package embedded_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
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

// TestKeepSources: sources kept as they came answer as written ones; a
// source over several lines is compacted, one that is not an object is
// refused.
func TestKeepSources(t *testing.T) {
	docs := storetest.FixtureN(5, 200)
	written, kept := embedded.NewMemory(), embedded.NewMemory()
	storetest.Load(t, written, "x", docs)
	var raw []store.Doc
	for i, d := range docs {
		src, err := json.Marshal(d.Source)
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 { // pretty-printed: must be compacted to stay one line
			src, _ = json.MarshalIndent(d.Source, "", "  ")
		}
		raw = append(raw, store.Doc{ID: d.ID, Source: src})
	}
	if err := kept.KeepSources("x", raw); err != nil {
		t.Fatal(err)
	}
	q := store.Query{Index: []string{"x"}, TimeField: storetest.FieldTime,
		Window: store.Window{From: storetest.FixtureBase.Add(-time.Hour), To: storetest.FixtureBase.Add(50 * time.Hour)}}
	want, err := written.Events(t.Context(), q, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kept.Events(t.Context(), q, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(docs) || !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %d events, written %d of %d (or they differ)", len(got), len(want), len(docs))
	}
	for _, bad := range []string{`[1]`, `{"a":`, ``} {
		if err := kept.KeepSources("x", []store.Doc{{ID: "bad", Source: json.RawMessage(bad)}}); err == nil {
			t.Errorf("source %q kept", bad)
		}
	}
	if err := kept.KeepSources("x", []store.Doc{{Source: json.RawMessage(`{}`)}}); err == nil {
		t.Error("empty id kept")
	}
}

// TestDeleteBefore: an in-memory index whose columns were built, then cut
// at a time (twice, with a batch in between), answers as one written with
// only what is left: the columns kept are those a fresh build would make.
func TestDeleteBefore(t *testing.T) {
	docs := storetest.FixtureN(11, 900)
	for i := range docs {
		switch {
		case i%10 == 3:
			docs[i].Source["tags"] = []any{"a", "b" + docs[i].ID[:6]}
		case i%37 == 5:
			delete(docs[i].Source, storetest.FieldTime) // no time: always dropped
		}
	}
	reqs := []store.CountRequest{
		{GroupBy: []string{storetest.FieldARN, storetest.FieldAction}},
		{GroupBy: []string{"tags"}},
		{GroupBy: []string{storetest.FieldRegion}, HourBuckets: true},
	}
	q := store.Query{Index: []string{"x"}, TimeField: storetest.FieldTime,
		Window: store.Window{From: storetest.FixtureBase.Add(-time.Hour), To: storetest.FixtureBase.Add(50 * time.Hour)}}
	for i := range reqs {
		reqs[i].Query = q
	}
	answers := func(s *embedded.Store) (map[string]int64, []store.Event) {
		out := map[string]int64{}
		for i, req := range reqs {
			err := s.CountGroups(t.Context(), req, func(g store.Group) error { out[fmt.Sprint(i, g.Key)] = g.Count; return nil })
			if err != nil {
				t.Fatal(err)
			}
		}
		evs, err := s.Events(t.Context(), q, 10000)
		if err != nil {
			t.Fatal(err)
		}
		return out, evs
	}
	timeOf := func(d storetest.Doc) (time.Time, bool) {
		s, _ := d.Source[storetest.FieldTime].(string)
		ts, err := time.Parse(time.RFC3339Nano, s)
		return ts, err == nil
	}
	after := func(ds []storetest.Doc, cut time.Time) []storetest.Doc {
		var out []storetest.Doc
		for _, d := range ds {
			if ts, ok := timeOf(d); ok && !ts.Before(cut) {
				out = append(out, d)
			}
		}
		return out
	}

	cut := embedded.NewMemory()
	storetest.Load(t, cut, "x", docs[:600])
	answers(cut) // the columns exist before the cut
	held := docs[:600]
	for n, step := range []struct {
		at    time.Duration
		batch []storetest.Doc
	}{{10 * time.Hour, docs[600:]}, {20 * time.Hour, nil}, {20 * time.Hour, nil}} {
		at := storetest.FixtureBase.Add(step.at)
		want := after(held, at)
		gone, err := cut.DeleteBefore("x", storetest.FieldTime, at)
		if err != nil {
			t.Fatal(err)
		}
		if gone != len(held)-len(want) {
			t.Errorf("cut %d: %d documents gone, want %d", n, gone, len(held)-len(want))
		}
		held = append(want, step.batch...)
		storetest.Load(t, cut, "x", step.batch)
		fresh := embedded.NewMemory()
		storetest.Load(t, fresh, "x", held)
		wantCounts, wantEvents := answers(fresh)
		gotCounts, gotEvents := answers(cut)
		if len(wantCounts) == 0 || !maps.Equal(gotCounts, wantCounts) {
			t.Errorf("cut %d: %d groups after the cut, %d written fresh", n, len(gotCounts), len(wantCounts))
		}
		if len(wantEvents) == 0 || !reflect.DeepEqual(gotEvents, wantEvents) {
			t.Errorf("cut %d: %d events after the cut, %d written fresh", n, len(gotEvents), len(wantEvents))
		}
	}
	if _, err := cut.DeleteBefore("x", "", storetest.FixtureBase); err == nil {
		t.Error("a cut without a time field was made")
	}
	disk, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	if _, err := disk.DeleteBefore("x", storetest.FieldTime, storetest.FixtureBase); err == nil {
		t.Error("a store on disk deleted")
	}
}
