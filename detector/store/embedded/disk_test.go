package embedded

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/offtrail/offtrail/detector/store"
)

var wide = store.Window{
	From: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
	To:   time.Date(2024, 3, 8, 0, 0, 0, 0, time.UTC),
}

func counts(t *testing.T, s *Store, req store.CountRequest) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	var prev []string
	err := s.CountGroups(t.Context(), req, func(g store.Group) error {
		if prev != nil && store.KeyString(prev) >= store.KeyString(g.Key) {
			t.Errorf("groups out of order: %q after %q", g.Key, prev)
		}
		prev = g.Key
		got[store.KeyString(g.Key)] = g.Count
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// testdata/store holds hand-written files: a wrapped and a bare document, a
// bad line, an overriding duplicate id, arrays, numbers, epoch millis, a
// hidden index and the store's own _state directory.
func TestReadHandWrittenFiles(t *testing.T) {
	s, err := Open("testdata/store", Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := store.Query{Index: []string{"*"}, TimeField: "@timestamp", Window: wide}
	cases := []struct {
		name  string
		by    []string
		hours bool
		want  map[string]int64
	}{
		{"action", []string{"event.action"}, false, map[string]int64{"GetObject": 2, "PutObject": 1, "ListBuckets": 1}},
		{"array elements, deduplicated", []string{"tags"}, false, map[string]int64{"x": 2, "y": 1}},
		{"array of objects", []string{"resources.arn"}, false, map[string]int64{"arn:aws:s3:::b1": 1, "arn:aws:s3:::b2": 1}},
		{"cross product", []string{"tags", "resources.arn"}, false, map[string]int64{
			"x\x1farn:aws:s3:::b1": 1, "x\x1farn:aws:s3:::b2": 1, "y\x1farn:aws:s3:::b1": 1, "y\x1farn:aws:s3:::b2": 1}},
		{"numbers as written", []string{"n"}, false, map[string]int64{"5": 1, "1.5": 1, "123456789012345678": 1}},
		{"boolean", []string{"event.ok"}, false, map[string]int64{"true": 1}},
		{"hours in UTC", []string{"event.action"}, true, map[string]int64{
			"GetObject\x1f2024-03-04T10:00:00Z": 1, "GetObject\x1f2024-03-04T11:00:00Z": 1,
			"PutObject\x1f2024-03-04T09:00:00Z": 1, "ListBuckets\x1f2024-03-04T11:00:00Z": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := counts(t, s, store.CountRequest{Query: q, GroupBy: c.by, HourBuckets: c.hours})
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}

	evs, err := s.Events(t.Context(), q, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	if want := []string{"a2", "a1", "a3", "events.ndjson:3"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("event ids %q, want %q", ids, want)
	}
	if evs[1].Source["replaced"] != true {
		t.Errorf("a1 was not replaced by its later line: %v", evs[1].Source)
	}

	hidden := counts(t, s, store.CountRequest{Query: store.Query{Index: []string{".hidden*"}, TimeField: "@timestamp", Window: wide}, GroupBy: []string{"event.action"}})
	if !reflect.DeepEqual(hidden, map[string]int64{"Hidden": 1}) {
		t.Errorf("explicit hidden pattern: %v", hidden)
	}
}

func TestDiskLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w, err := s.NewBulkWriter(ctx, "logs", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(ctx, store.Doc{ID: "e1", Source: json.RawMessage("{\n \"@timestamp\": \"2024-03-04T10:00:00Z\", \"event\": {\"action\": \"A\"}\n}")})
	w.Add(ctx, store.Doc{ID: "bad", Source: json.RawMessage(`[1]`)})
	w.Add(ctx, store.Doc{ID: "", Source: json.RawMessage(`{}`)})
	if n, failed, err := w.Close(ctx); n != 1 || failed != 2 || err != nil {
		t.Fatalf("Close: %d %d %v", n, failed, err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "logs", "seg-*.ndjson.gz"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	f, err := os.Open(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b := new(strings.Builder)
	if _, err := io.Copy(b, zr); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if want := `{"_id":"e1","_source":{"@timestamp":"2024-03-04T10:00:00Z","event":{"action":"A"}}}` + "\n"; b.String() != want {
		t.Errorf("segment holds %q, want %q", b.String(), want)
	}

	if _, err := s.WriteSignals(ctx, "alerts", []store.Doc{{ID: "s1", Source: json.RawMessage(`{"rule": {"id": "r"}}`)}}); err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, "alerts", "signals.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"_id":"s1","_source":{"rule":{"id":"r"}}}` + "\n"; string(sig) != want {
		t.Errorf("signals.ndjson holds %q, want %q", sig, want)
	}

	if _, err := s.PutState(ctx, "state", "a/../b", json.RawMessage(`{"x": 1}`), nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile(filepath.Join(dir, "_state", "state", "a%2F..%2Fb.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"seq_no":1,"primary_term":1,"doc":{"x":1}}`; string(st) != want {
		t.Errorf("state file holds %s, want %s", st, want)
	}
	if err := s.EnsureTemplate(ctx, "t1", json.RawMessage(`{"index_patterns":["x"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_templates", "t1.json")); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "../x", "_state", ".x", "a,b", "a*"} {
		if _, err := s.NewBulkWriter(ctx, bad, nil); err == nil {
			t.Errorf("NewBulkWriter(%q) accepted", bad)
		}
	}
}

// A second store (another process) sees what the first wrote, and create-only
// signals stay create-only across both.
func TestTwoStoresShareADirectory(t *testing.T) {
	dir := t.TempDir()
	a, _ := Open(dir, Options{})
	b, _ := Open(dir, Options{})
	ctx := t.Context()
	q := store.Query{Index: []string{"logs-*"}, TimeField: "@timestamp", Window: wide}
	req := store.CountRequest{Query: q, GroupBy: []string{"event.action"}}
	load := func(s *Store, id, action string) {
		t.Helper()
		w, err := s.NewBulkWriter(ctx, "logs-x", nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Add(ctx, store.Doc{ID: id, Source: json.RawMessage(`{"@timestamp":"2024-03-04T10:00:00Z","event":{"action":"` + action + `"}}`)})
		if _, _, err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	load(a, "1", "A")
	if got := counts(t, b, req); !reflect.DeepEqual(got, map[string]int64{"A": 1}) {
		t.Fatalf("b sees %v", got)
	}
	load(a, "2", "B")
	load(a, "1", "C") // overwrites 1
	if got := counts(t, b, req); !reflect.DeepEqual(got, map[string]int64{"B": 1, "C": 1}) {
		t.Fatalf("b sees %v after more writes", got)
	}
	if got := counts(t, a, req); !reflect.DeepEqual(got, map[string]int64{"B": 1, "C": 1}) {
		t.Fatalf("a sees %v", got)
	}

	sig := []store.Doc{{ID: "s", Source: json.RawMessage(`{"@timestamp":"2024-03-04T10:00:00Z"}`)}}
	if r, err := a.WriteSignals(ctx, "sig", sig); err != nil || r.Created != 1 {
		t.Fatalf("a: %+v %v", r, err)
	}
	if r, err := b.WriteSignals(ctx, "sig", sig); err != nil || r.Existed != 1 {
		t.Fatalf("b: %+v %v", r, err)
	}
}
