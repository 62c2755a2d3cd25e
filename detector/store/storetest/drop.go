package storetest

import (
	"context"
	"net/http"
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
	t.Cleanup(func() {
		for _, ix := range indices {
			status, body, err := tp.Transport().Do(context.Background(), http.MethodDelete, dsl.Path([]string{ix}), nil, nil)
			if err != nil || status >= 300 && status != http.StatusNotFound {
				t.Logf("drop %s: status %d, %v: %.200s", ix, status, err, body)
			}
		}
	})
}
