package cloudtrail

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offtrail/offtrail/internal/testenv"
)

// sharedData is the attack data every engineer tests with.
const sharedData = "../../../shared/data/cloudtrail"

func sharedFile(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("OFFTRAIL_SHARED_DATA"), sharedData, "/work/shared/data/cloudtrail"} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if testenv.InCI() {
		t.Fatalf("shared data %s not found", name)
	}
	t.Skipf("shared data %s not found", name)
	return ""
}

const (
	ev1 = `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","eventID":"1"}`
	ev2 = `{"eventTime":"2024-01-01T00:00:01Z","eventName":"B","eventID":"2"}`
	ev3 = `{"@timestamp":"2024-01-01T00:00:02.000Z","eventName":"C","eventID":"3"}`
)

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

type skip struct {
	n   int
	msg string
}

func TestReadFormats(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		ids      []string
		skips    []skip // record number and a fragment of the reason
		badFiles int
	}{
		{name: "records", content: `{"Records":[` + ev1 + `,` + ev2 + `]}`, ids: []string{"1", "2"}},
		{name: "records gzip no extension", content: gz(`{"Records":[` + ev1 + `,` + ev2 + `]}`), ids: []string{"1", "2"}},
		{name: "records pretty with BOM", content: "\xef\xbb\xbf{\n  \"Records\": [\n" + ev1 + ",\n" + ev2 + "\n  ]\n}\n", ids: []string{"1", "2"}},
		{name: "records not first key", content: `{"Meta":{"x":1},"Records":[` + ev1 + `]}`, ids: []string{"1"}},
		{name: "records empty", content: `{"Records":[]}`},
		{name: "records null", content: `{"Records":null}`},
		{name: "array", content: `[` + ev1 + `,` + ev2 + `]`, ids: []string{"1", "2"}},
		{name: "ndjson", content: ev1 + "\n" + ev2 + "\r\n\n" + ev3, ids: []string{"1", "2", "3"}},
		{name: "ndjson delivery per line", content: `{"Records":[` + ev1 + `]}` + "\n" + `{"Records":[` + ev2 + `,` + ev3 + `]}` + "\n", ids: []string{"1", "2", "3"}},
		{name: "concatenated deliveries", content: `{"Records":[` + ev1 + `]}{"Records":[` + ev2 + `]}`, ids: []string{"1", "2"}},
		{name: "pretty single record", content: "{\n  \"eventName\": \"A\",\n  \"eventTime\": \"2024-01-01T00:00:00Z\",\n  \"eventID\": \"1\"\n}\n", ids: []string{"1"}},
		{name: "empty", content: ""},
		{name: "whitespace", content: " \n\t\n"},
		{name: "ndjson bad line", content: ev1 + "\n{\"eventName\": \n" + ev2 + "\n", ids: []string{"1", "2"},
			skips: []skip{{2, "invalid JSON"}}},
		{name: "ndjson bad records", content: ev1 + "\n" +
			`{"eventTime":"2024-01-01T00:00:00Z"}` + "\n" +
			`{"eventName":"X"}` + "\n" +
			`{"eventName":"X","eventTime":"yesterday"}` + "\n" +
			`{"eventName":"X","eventTime":1700000000}` + "\n" +
			`[1,2]` + "\n" +
			ev2 + "\n",
			ids:   []string{"1", "2"},
			skips: []skip{{2, "no eventName"}, {3, "no eventTime"}, {4, "not a time"}, {5, "not a string"}, {6, "not an object"}}},
		{name: "records with bad elements", content: `{"Records":[` + ev1 + `,42,{"eventName":""},` + ev2 + `]}`, ids: []string{"1", "2"},
			skips: []skip{{2, "not an object"}, {3, "no eventName"}}},
		{name: "records truncated", content: `{"Records":[` + ev1 + `,` + ev2[:20], ids: []string{"1"},
			skips: []skip{{2, "invalid JSON"}}, badFiles: 1},
		{name: "gzip truncated", content: gz(`{"Records":[` + ev1 + `,` + ev2 + `]}`)[:30], badFiles: 1, skips: []skip{{1, "unexpected EOF"}}},
		{name: "not json", content: "eventName,eventTime\nA,B\n", badFiles: 1, skips: []skip{{0, "not JSON"}}},
		{name: "records not array", content: `{"Records":{"a":1}}`, badFiles: 1, skips: []skip{{0, "not an array"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var ids []string
			var skips []skip
			var errs []string
			r := Reader{OnSkip: func(pos Pos, err error) {
				if pos.File != path {
					t.Errorf("skip reported for %q", pos.File)
				}
				skips = append(skips, skip{n: pos.Record})
				errs = append(errs, err.Error())
			}}
			st, err := r.Read(context.Background(), []string{path}, func(rec Record) error {
				if rec.File != path || rec.N < 1 {
					t.Errorf("record located at %s:%d", rec.File, rec.N)
				}
				ids = append(ids, rec.ID)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.ids) {
				t.Errorf("ids = %v, want %v", ids, tt.ids)
			}
			if len(skips) != len(tt.skips) {
				t.Fatalf("skips = %v %q, want %v", skips, errs, tt.skips)
			}
			for i, s := range tt.skips {
				if skips[i].n != s.n || !strings.Contains(errs[i], s.msg) {
					t.Errorf("skip %d = %d %q, want %d %q", i, skips[i].n, errs[i], s.n, s.msg)
				}
			}
			wantSkipped := len(tt.skips) - tt.badFiles
			if st.Files != 1 || st.Records != len(tt.ids) || st.Skipped != wantSkipped || st.BadFiles != tt.badFiles {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestReadS3Layout(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/"
	write(base+"02/123456789012_CloudTrail_us-east-1_20240102T0000Z_b.json.gz", gz(`{"Records":[`+ev2+`]}`))
	write(base+"01/123456789012_CloudTrail_us-east-1_20240101T0000Z_a.json.gz", gz(`{"Records":[`+ev1+`]}`))
	write(base+"01/123456789012_CloudTrail_us-east-1_20240101T0005Z_c.json", `{"Records":[`+ev3+`]}`)
	write("AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/01/123456789012_CloudTrail-Digest_us-east-1_x.json.gz", gz(`{"awsAccountId":"123456789012"}`))
	write(base+"01/README.txt", "not an event file")
	write(base+"01/.hidden.json", ev1)

	var ids []string
	st, err := Read(context.Background(), []string{root}, func(rec Record) error {
		ids = append(ids, rec.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[1 3 2]" || st.Files != 3 || st.Records != 3 {
		t.Errorf("ids %v, stats %+v", ids, st)
	}

	if _, err := Read(context.Background(), []string{filepath.Join(root, "nope")}, func(Record) error { return nil }); err == nil {
		t.Error("missing path: no error")
	}
}

func TestReadStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(path, []byte(`{"Records":[`+ev1+`,`+ev2+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	_, err := Read(context.Background(), []string{path}, func(Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: err %v after %d records", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Read(ctx, []string{path}, func(Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
}

func TestHashIDStable(t *testing.T) {
	a := `{"eventName":"X","eventTime":"2024-01-01T00:00:00Z","requestParameters":{"b":1,"a":2}}`
	b := "{\n \"requestParameters\": {\"a\": 2, \"b\": 1},\n \"eventTime\": \"2024-01-01T00:00:00Z\", \"eventName\": \"X\"}"
	ids := map[string]bool{}
	for _, content := range []string{a, b, `[` + a + `]`} {
		st, err := (&Reader{}).ReadStream(context.Background(), "x", strings.NewReader(content), func(rec Record) error {
			ids[rec.ID] = true
			return nil
		})
		if err != nil || st.Records != 1 {
			t.Fatalf("%v %+v", err, st)
		}
	}
	if len(ids) != 1 {
		t.Errorf("ids differ by layout: %v", ids)
	}
}

// TestSharedData reads the shared attack data: every Stratus and OTRF event
// is usable; of Panther's rule-test events exactly those lacking a name or a
// parseable time are skipped, each reported.
func TestSharedData(t *testing.T) {
	for _, tt := range []struct {
		file string
		want int
	}{
		{"stratus_detonation_logs.jsonl", 310},
		{"otrf_ec2_proxy_s3_exfiltration.jsonl", 103},
	} {
		st, err := (&Reader{OnSkip: func(pos Pos, err error) { t.Errorf("%s: %v", pos, err) }}).
			Read(context.Background(), []string{sharedFile(t, tt.file)}, func(rec Record) error {
				if rec.Time.IsZero() || rec.ID == "" {
					t.Errorf("%s:%d: no time or id", rec.File, rec.N)
				}
				ToECS(rec, nil)
				return nil
			})
		if err != nil || st.Records != tt.want || st.Skipped != 0 {
			t.Errorf("%s: %+v, %v", tt.file, st, err)
		}
	}

	// Panther wraps each event ({"rule_id":…,"log":{…}}): unwrap into NDJSON.
	f, err := os.Open(sharedFile(t, "panther_cloudtrail_rule_tests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var nd bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	total := 0
	for sc.Scan() {
		var w struct{ Log json.RawMessage }
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			t.Fatal(err)
		}
		nd.Write(w.Log)
		nd.WriteByte('\n')
		total++
	}
	reasons := map[string]int{}
	st, err := (&Reader{OnSkip: func(pos Pos, err error) {
		if pos.Record < 1 {
			t.Errorf("file-level error: %v", err)
		}
		reason := err.Error()
		if i := strings.Index(reason, " \""); i > 0 {
			reason = reason[:i]
		}
		reasons[reason]++
	}}).ReadStream(context.Background(), "panther", &nd, func(rec Record) error {
		doc := ToECS(rec, nil)
		if _, ok := lookup(doc, "event.action"); !ok {
			t.Errorf("record %d: no event.action", rec.N)
		}
		ToRaw(rec, nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("panther: %d events, %+v, skipped for %v", total, st, reasons)
	// 8 have no eventName, 17 no usable time (missing, "redacted", "...").
	if total != 461 || st.Records != 436 || st.Skipped != 25 {
		t.Errorf("stats %+v of %d", st, total)
	}
}

// A directory reached through a symlink is walked like the directory.
func TestReadSymlinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := `{"eventVersion":"1.08","eventTime":"2024-03-05T10:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventID":"e1"}`
	if err := os.WriteFile(filepath.Join(real, "a.json"), []byte(`{"Records":[`+rec+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	n := 0
	st, err := Read(t.Context(), []string{link}, func(Record) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || st.Records != 1 {
		t.Fatalf("read %d records (stats %+v) through the symlink, want 1", n, st)
	}
}

// A file that breaks part-way counts what it cannot read: loaded +
// skipped + unreadable covers every record that can be known, and the
// problem is placed by line for NDJSON, by record otherwise.
func TestReadBrokenFiles(t *testing.T) {
	for _, tc := range []struct {
		file                         string
		records, skipped, unreadable int
		badFiles                     int
		wantPos                      []string
	}{
		// Record 11 of 21 lacks a comma: 10 read, 11 known but unreadable.
		{"bad-record-11-of-21.json", 10, 0, 11, 1, []string{"bad-record-11-of-21.json: record 11"}},
		// Gzip cut inside record 10 of 20: the rest cannot be known.
		{"truncated-records-20.json.gz", 9, 0, 1, 1, []string{"truncated-records-20.json.gz: record 10"}},
		{"truncated-lines-20.ndjson.gz", 9, 0, 1, 1, []string{"truncated-lines-20.ndjson.gz:10 (record 10)"}},
		// Blank lines: the bad record is the 4th, on line 7.
		{"bad-line-7.ndjson", 4, 1, 0, 0, []string{"bad-line-7.ndjson:7 (record 4)"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "broken", tc.file)
			var pos []string
			r := Reader{OnSkip: func(p Pos, err error) {
				pos = append(pos, strings.TrimPrefix(p.String(), filepath.Join("testdata", "broken")+string(filepath.Separator)))
			}}
			st, err := r.Read(context.Background(), []string{path}, func(Record) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != tc.records || st.Skipped != tc.skipped || st.Unreadable != tc.unreadable || st.BadFiles != tc.badFiles {
				t.Errorf("stats %+v, want records %d skipped %d unreadable %d bad files %d", st, tc.records, tc.skipped, tc.unreadable, tc.badFiles)
			}
			if fmt.Sprint(pos) != fmt.Sprint(tc.wantPos) {
				t.Errorf("positions %q, want %q", pos, tc.wantPos)
			}
		})
	}
}

// Records of NDJSON carry their line.
func TestRecordLines(t *testing.T) {
	var lines []int
	_, err := Read(context.Background(), []string{"testdata/broken/bad-line-7.ndjson"}, func(rec Record) error {
		lines = append(lines, rec.Line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lines) != "[1 3 6 8]" {
		t.Errorf("lines %v, want [1 3 6 8]", lines)
	}
}
