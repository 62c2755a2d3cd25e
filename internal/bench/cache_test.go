package bench

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/offtrail/offtrail/detector/store"
)

// TestShapedCacheRoundTrip: documents read back from the cache are the
// ones written, and an aborted cache leaves no file.
func TestShapedCacheRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		docs []store.Doc
	}{
		{"empty", nil},
		{"escapes", []store.Doc{
			{ID: "a", Source: []byte(`{"message":"tab\there\nnewline","n":1}`)},
			{ID: "b-2", Source: []byte(`{"unicode":"é","nested":{"x":[1,2]}}`)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ecs.ndjson.gz")
			cw, err := newCacheWriter(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range tc.docs {
				if err := cw.add(d); err != nil {
					t.Fatal(err)
				}
			}
			if err := cw.commit(); err != nil {
				t.Fatal(err)
			}
			cw.abort() // after commit: a no-op
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ch := make(chan store.Doc, len(tc.docs)+1)
			if err := readCache(context.Background(), f, ch); err != nil {
				t.Fatal(err)
			}
			close(ch)
			var got []store.Doc
			for d := range ch {
				got = append(got, d)
			}
			if !slices.EqualFunc(got, tc.docs, func(a, b store.Doc) bool { return a.ID == b.ID && string(a.Source) == string(b.Source) }) {
				t.Fatalf("got %q, want %q", got, tc.docs)
			}

			dir := t.TempDir()
			cw, err = newCacheWriter(filepath.Join(dir, "x.gz"))
			if err != nil {
				t.Fatal(err)
			}
			cw.abort()
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("aborted cache left %v", left)
			}
		})
	}
}

func TestNewestFirst(t *testing.T) {
	got := newestFirst([]string{
		"a/111_CloudTrail_eu-west-1_20240102T0000Z_x.json.gz",
		"a/111_CloudTrail_us-east-1_20240101T0000Z_x.json.gz",
		"a/222_CloudTrail_eu-west-1_20240103T0000Z_y.json.gz",
		"a/222_CloudTrail_us-east-1_20240101T0005Z_y.json.gz",
	})
	want := []string{
		"a/222_CloudTrail_eu-west-1_20240103T0000Z_y.json.gz",
		"a/111_CloudTrail_eu-west-1_20240102T0000Z_x.json.gz",
		"a/222_CloudTrail_us-east-1_20240101T0005Z_y.json.gz",
		"a/111_CloudTrail_us-east-1_20240101T0000Z_x.json.gz",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
}
