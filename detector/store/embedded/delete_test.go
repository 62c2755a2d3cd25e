package embedded

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// TestDeleteIndices: Delete takes an index's events, signals and state
// documents and a template away, in memory and on disk (and after a
// reopen), leaves other indices alone, and a name made again starts
// empty: the bench's kept store relies on it to start each run afresh.
func TestDeleteIndices(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (*Store, func() *Store)
	}{
		{"memory", func(t *testing.T) (*Store, func() *Store) {
			s := NewMemory()
			return s, func() *Store { return s }
		}},
		{"dir", func(t *testing.T) (*Store, func() *Store) {
			dir := t.TempDir()
			open := func() *Store {
				s, err := Open(dir, Options{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			return open(), open
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s, reopen := tc.open(t)
			at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
			doc := func(id string) store.Doc {
				return store.Doc{ID: id, Source: json.RawMessage(`{"@timestamp":"` + at.Format(time.RFC3339) + `","event":{"action":"GetObject"}}`)}
			}
			for _, ix := range []string{"gone", "kept"} {
				w, err := s.NewBulkWriter(ctx, ix, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Add(ctx, doc(ix+"-1")); err != nil {
					t.Fatal(err)
				}
				if _, _, err := w.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := s.PutState(ctx, ix+"-state", "lease", json.RawMessage(`{"owner":"bench"}`), nil); err != nil {
					t.Fatal(err)
				}
				if err := s.EnsureTemplate(ctx, ix+"-template", json.RawMessage(`{}`)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Delete([]string{"gone", "gone-state", "never-was"}, []string{"gone-template", "never-was"}); err != nil {
				t.Fatal(err)
			}
			for _, st := range []*Store{s, reopen()} {
				q := func(ix string) store.Query {
					return store.Query{Index: []string{ix}, TimeField: "@timestamp", Window: store.Window{From: at.Add(-time.Hour), To: at.Add(time.Hour)}}
				}
				if n, err := st.CountEvents(ctx, q("gone")); err != nil || n != 0 {
					t.Errorf("deleted index counts %d (%v), want 0", n, err)
				}
				if n, err := st.CountEvents(ctx, q("kept")); err != nil || n != 1 {
					t.Errorf("other index counts %d (%v), want 1", n, err)
				}
				if _, _, err := st.GetState(ctx, "gone-state", "lease"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("deleted state index: %v, want not found", err)
				}
				if _, _, err := st.GetState(ctx, "kept-state", "lease"); err != nil {
					t.Errorf("other state index: %v", err)
				}
			}
			// A state document made again is a creation, not an update.
			if _, err := s.PutState(ctx, "gone-state", "lease", json.RawMessage(`{"owner":"next"}`), nil); err != nil {
				t.Fatalf("state index made again: %v", err)
			}
			if err := s.Delete([]string{"../kept"}, nil); err == nil {
				t.Error("a name with a path separator was accepted")
			}
		})
	}
}
