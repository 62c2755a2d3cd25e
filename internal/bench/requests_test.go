package bench

import (
	"context"
	"net/url"
	"testing"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
	"github.com/offtrail/offtrail/detector/store/embedded"
)

// recordingTransport records the requests the bench itself sends.
type recordingTransport struct{ paths []string }

func (r *recordingTransport) Do(_ context.Context, method, path string, _ url.Values, _ []byte) (int, []byte, error) {
	r.paths = append(r.paths, method+" "+path)
	return 200, []byte(`{}`), nil
}

type engineLike struct {
	store.Backend
	t *recordingTransport
}

func (e engineLike) Transport() dsl.Transport { return e.t }

// TestCountingStoreKeepsTheEngine: counting offtrail's calls must not hide
// the engine from the bench's own requests (node stats, dropping the
// measurement's indices); it once did, and every run after the first
// found the last run's incident state and wrote no incident.
func TestCountingStoreKeepsTheEngine(t *testing.T) {
	rt := &recordingTransport{}
	counted := &countingStore{Backend: engineLike{Backend: embedded.NewMemory(), t: rt}}
	if !HasEngine(counted) {
		t.Fatal("an engine behind the counting store is not seen")
	}
	if err := DropIndices(t.Context(), counted, []string{"x-signals"}, nil); err != nil {
		t.Fatal(err)
	}
	if len(rt.paths) != 1 || rt.paths[0] != "DELETE /x-signals" {
		t.Fatalf("drop sent %v", rt.paths)
	}
	if HasEngine(&countingStore{Backend: embedded.NewMemory()}) {
		t.Fatal("the embedded store behind the counting store is taken for an engine")
	}
}

// Every state call counts once, a bulk of several documents too, and the
// reads among them are counted apart.
func TestCountingStoreCountsState(t *testing.T) {
	ctx := t.Context()
	c := &countingStore{Backend: embedded.NewMemory()}
	v, err := c.PutState(ctx, "s", "a", []byte(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetState(ctx, "s", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutStates(ctx, "s", []store.StatePut{{ID: "a", Doc: []byte(`{}`), IfVersion: &v}, {ID: "b", Doc: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	got := c.snapshot()
	if got.State != 3 || got.StateReads != 1 {
		t.Fatalf("state %d, reads %d; want 3 and 1", got.State, got.StateReads)
	}
	if s := got.PerTick(1); s != "store calls/tick 3.0 (counts 0.0, stats 0.0, events 0.0, state 3.0 of which 1.0 reads, writes 0.0)" {
		t.Fatalf("per tick: %s", s)
	}
}
