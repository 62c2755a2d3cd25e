package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

func TestConformanceDir(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		s, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return NewMemory() })
}

// Two stores on one directory stand for two processes: flock locks belong
// to open files, so they exclude each other as processes would.
func TestPutStateRace(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	v0, err := a.PutState(ctx, "state", "lease", json.RawMessage(`{"owner":"none"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		// Everyone read v0 (or nothing, in odd rounds: create races).
		var ifv *store.Version
		id := "lease"
		if round%2 == 1 {
			id = fmt.Sprintf("new-%d", round)
		} else {
			cur := v0
			ifv = &cur
		}
		var wg sync.WaitGroup
		results := make([]error, 8)
		versions := make([]store.Version, 8)
		for i := range results {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				versions[i], results[i] = s.PutState(ctx, "state", id, json.RawMessage(fmt.Sprintf(`{"owner":%d}`, i)), ifv)
			}()
		}
		wg.Wait()
		winners := 0
		for i, err := range results {
			switch {
			case err == nil:
				winners++
				if id == "lease" {
					v0 = versions[i]
				}
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners, want 1", round, winners)
		}
	}
}

// Queries run while writers add documents; run with -race.
func TestConcurrentReadWrite(t *testing.T) {
	for _, mode := range []string{"dir", "memory"} {
		t.Run(mode, func(t *testing.T) {
			s := NewMemory()
			if mode == "dir" {
				var err error
				if s, err = Open(t.TempDir(), Options{}); err != nil {
					t.Fatal(err)
				}
			}
			ctx := t.Context()
			fx := storetest.Fixture(3)
			q := store.Query{Index: []string{"logs-*"}, TimeField: storetest.FieldTime,
				Window: store.Window{From: storetest.FixtureBase, To: storetest.FixtureBase.AddDate(0, 0, 3)}}
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < len(fx); i += 10 {
						bw, err := s.NewBulkWriter(ctx, fmt.Sprintf("logs-%d", w), nil)
						if err != nil {
							t.Error(err)
							return
						}
						for _, d := range fx[i:min(i+10, len(fx))] {
							bw.Add(ctx, d.StoreDoc())
						}
						if _, _, err := bw.Close(ctx); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 20 {
						err := s.CountGroups(ctx, store.CountRequest{Query: q, GroupBy: []string{storetest.FieldAction}}, func(store.Group) error { return nil })
						if err != nil {
							t.Error(err)
							return
						}
						if _, err := s.Events(ctx, q, 5); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			var total int64
			err := s.CountGroups(ctx, store.CountRequest{Query: q, GroupBy: []string{storetest.FieldProvider}}, func(g store.Group) error {
				total += g.Count
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Both writers wrote every document once, each to its own index.
			if total != int64(2*len(fx)) {
				t.Fatalf("counted %d documents, want %d", total, 2*len(fx))
			}
		})
	}
}
