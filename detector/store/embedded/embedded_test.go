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
