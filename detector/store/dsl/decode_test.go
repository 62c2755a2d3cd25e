package dsl

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// TestDecodeRawHits: the one-pass raw decoding gives what decodeHits
// gives, byte for byte in the sources (escapes, numbers and key order as
// the engine sent them), and falls back to it where it cannot.
func TestDecodeRawHits(t *testing.T) {
	w := store.Window{From: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)}
	const src1 = `{"@timestamp":"2026-11-01T10:00:00.250Z","b":1.50e3,"a":"caf\u00e9 \"x\"\\n","k\u00e9y":[true,null,{"z":-0.0}]}`
	const src2 = `{"@timestamp":"2026-11-01T10:59:59Z","n":{"deep":{"s":"\ud83d\ude00"}}}`
	hit := func(id, src, sort string) string {
		return `{"_index":"logs-1","_id":"` + id + `","_score":null,"_source":` + src + `,"sort":[` + sort + `]}`
	}
	body := func(hits ...string) []byte {
		return []byte(`{"took":3,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"max_score":null,"hits":[` +
			strings.Join(hits, ",") + `]}}`)
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"plain", body(hit("a\\u0031", src1, "1793527200250"), hit("b", src2, "1793530799000"))},
		{"empty", body()},
		{"sort value a string", body(hit("a", src1, `"2026-11-01T10:00:00.250Z"`))},
		{"sort outside the window: decoded from the source", body(hit("a", src1, "1"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, werr := decodeHits(tc.body, "@timestamp", &w)
			got, gerr := decodeRawHits(tc.body, "@timestamp", w)
			if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("raw decoding:\n%+v, %v\nwant\n%+v, %v", got, gerr, want, werr)
			}
			for _, e := range got {
				if !strings.Contains(string(tc.body), string(e.Raw)) {
					t.Errorf("source of %s changed: %s", e.ID, e.Raw)
				}
			}
		})
	}
	failed := []byte(`{"timed_out":false,"_shards":{"total":2,"successful":1,"failed":1,"failures":[{"index":"logs-1","reason":{"type":"query_shard_exception","reason":"bad"}}]},"hits":{"hits":[]}}`)
	if _, err := decodeRawHits(failed, "@timestamp", w); err == nil || !strings.Contains(err.Error(), "query_shard_exception") {
		t.Errorf("shard failure: %v", err)
	}
	if _, err := decodeRawHits([]byte(`{"timed_out":true,"hits":{"hits":[]}}`), "@timestamp", w); err == nil {
		t.Error("a timed-out search decoded")
	}
	if _, err := decodeRawHits([]byte(`{"hits":`), "@timestamp", w); err == nil {
		t.Error("a truncated response decoded")
	}
}

// FuzzDecodeRawHits: any response decodes to events with a time, and a
// source object where there is one, or to an error; never a panic.
func FuzzDecodeRawHits(f *testing.F) {
	f.Add([]byte(`{"hits":{"hits":[{"_id":"a","_source":{"x":1},"sort":[1793527200250]}]}}`))
	w := store.Window{From: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeRawHits(body, "@timestamp", w)
		if err != nil {
			return
		}
		for _, e := range got {
			if len(e.Raw) > 0 && e.Raw[0] != '{' || e.Time.IsZero() {
				t.Fatalf("event %+v", e)
			}
		}
	})
}
