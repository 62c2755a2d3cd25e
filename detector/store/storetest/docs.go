package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// testPutDocs: documents written by id replace earlier versions (an
// incident updated in place), and there is never more than one per id.
func testPutDocs(t *testing.T, b store.Backend, prefix string) {
	ctx := t.Context()
	idx := prefix + "alerts"
	doc := func(id string, score int) store.Doc {
		src, _ := json.Marshal(map[string]any{"@timestamp": "2024-06-10T12:00:00Z", "offtrail": map[string]any{"kind": "incident", "score": score}})
		return store.Doc{ID: id, Source: src}
	}
	if err := b.PutDocs(ctx, idx, []store.Doc{doc("inc-a", 60), doc("inc-b", 70)}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutDocs(ctx, idx, []store.Doc{doc("inc-a", 90)}); err != nil {
		t.Fatal(err)
	}
	got := ReadDocs(t, b, idx)
	want := map[string]float64{"inc-a": 90, "inc-b": 70}
	if len(got) != len(want) {
		t.Fatalf("%d documents %v, want %d", len(got), got, len(want))
	}
	for id, score := range want {
		var d struct {
			Offtrail struct {
				Score float64 `json:"score"`
			} `json:"offtrail"`
		}
		if err := json.Unmarshal(got[id], &d); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if d.Offtrail.Score != score {
			t.Errorf("%s: score %v, want %v (the latest version)", id, d.Offtrail.Score, score)
		}
	}
}

// docReader is the embedded store's view of PutDocs documents (its
// incidents.ndjson); the engines answer searches.
type docReader interface {
	Docs(index string) (map[string]json.RawMessage, error)
}

// ReadDocs returns the documents PutDocs wrote into idx, by id, on any
// backend (the embedded store's incidents file, or a search on the
// engines), failing the test on a duplicate id.
func ReadDocs(t *testing.T, b store.Backend, idx string) map[string]json.RawMessage {
	t.Helper()
	if r, ok := b.(docReader); ok {
		docs, err := r.Docs(idx)
		if err != nil {
			t.Fatal(err)
		}
		return docs
	}
	if err := b.Refresh(t.Context(), idx); err != nil {
		t.Fatal(err)
	}
	all := store.Window{From: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	evs, err := b.Events(t.Context(), store.Query{Index: []string{idx}, TimeField: "@timestamp", Window: all}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, e := range evs {
		if _, dup := out[e.ID]; dup {
			t.Errorf("id %s twice", e.ID)
		}
		out[e.ID], _ = json.Marshal(e.Source)
	}
	return out
}
