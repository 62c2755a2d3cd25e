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
