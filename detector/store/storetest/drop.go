package storetest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
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

// DropPrefixAfter deletes, when t ends, every index on b's engine whose
// name starts with prefix: the conformance suite's subtests make indices
// under one prefix without naming them all. Engines refuse wildcard
// deletes by default, so the names are listed first.
func DropPrefixAfter(t testing.TB, b store.Backend, prefix string) {
	t.Helper()
	tp, ok := b.(interface{ Transport() dsl.Transport })
	if !ok || tp.Transport() == nil {
		return
	}
	t.Cleanup(func() {
		ctx := context.Background()
		q := url.Values{"h": {"index"}, "format": {"json"}, "expand_wildcards": {"all"}}
		status, body, err := tp.Transport().Do(ctx, http.MethodGet, "/_cat/indices/"+url.PathEscape(prefix+"*"), q, nil)
		if err != nil || status != http.StatusOK {
			t.Logf("list test indices %s*: status %d: %v", prefix, status, err)
			return
		}
		var rows []struct {
			Index string `json:"index"`
		}
		if err := json.Unmarshal(body, &rows); err != nil {
			t.Logf("list test indices %s*: %v", prefix, err)
			return
		}
		paths := make([]string, 0, len(rows))
		for _, r := range rows {
			paths = append(paths, dsl.Path([]string{r.Index}))
		}
		if err := dsl.Delete(ctx, tp.Transport(), paths...); err != nil {
			t.Logf("drop test indices: %v", err)
		}
	})
}
