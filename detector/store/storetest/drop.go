package storetest

import (
	"context"
	"testing"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
)

// DropAfter deletes indices from b's engine when t ends: tests name
// theirs uniquely, and a local engine kept running between runs would
// otherwise hold every one (each costing it heap and cluster-state work,
// which the bench's engine CPU figures would carry). The embedded
// store's indices go with its directory.
func DropAfter(t testing.TB, b store.Backend, indices ...string) {
	t.Helper()
	tp, ok := b.(interface{ Transport() dsl.Transport })
	if !ok || tp.Transport() == nil {
		return
	}
	paths := make([]string, len(indices))
	for i, ix := range indices {
		paths[i] = dsl.Path([]string{ix})
	}
	t.Cleanup(func() {
		if err := dsl.Delete(context.Background(), tp.Transport(), paths...); err != nil {
			t.Logf("drop test indices: %v", err)
		}
	})
}
