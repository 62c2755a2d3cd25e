package cloudtrail

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// sharedEvents returns the events of the shared data files, one JSON
// object each (Panther's wrapper removed).
func sharedEvents(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, name := range []string{"stratus_detonation_logs.jsonl", "otrf_ec2_proxy_s3_exfiltration.jsonl", "panther_cloudtrail_rule_tests.jsonl"} {
		f, err := os.Open(sharedFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			var w struct {
				Log json.RawMessage `json:"log"`
			}
			if json.Unmarshal(line, &w) == nil && len(w.Log) > 0 {
				line = w.Log
			}
			out = append(out, line)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// delivery lays events out as CloudTrail writes them to S3.
func delivery(events [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func FuzzRead(f *testing.F) {
	events := sharedEvents(f)
	for i, e := range events {
		if i%8 == 0 {
			f.Add(e)
		}
	}
	f.Add(delivery(events[:3]))
	f.Add(gzipBytes(delivery(events[3:6])))
	f.Add(bytes.Join(events[6:9], []byte("\n")))
	f.Add([]byte(`[` + ev1 + `,` + ev2 + `]`))
	f.Add([]byte(`{"Records":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		shaper := &Shaper{Geo: testGeo, Now: func() time.Time { return time.Unix(0, 0) }}
		st, err := (&Reader{}).ReadStream(context.Background(), "fuzz", bytes.NewReader(data), func(rec Record) error {
			if name, _ := rec.Raw["eventName"].(string); rec.ID == "" || rec.N < 1 || name == "" {
				t.Fatalf("bad record %+v", rec)
			}
			if _, err := json.Marshal(shaper.ECS(rec)); err != nil {
				t.Fatalf("ECS: %v", err)
			}
			if _, err := json.Marshal(shaper.Raw(rec)); err != nil {
				t.Fatalf("Raw: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ReadStream: %v", err)
		}
		if st.Files != 1 || st.BadFiles > 1 || st.Records < 0 || st.Skipped < 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func FuzzToECS(f *testing.F) {
	for i, e := range sharedEvents(f) {
		if i%4 == 0 {
			f.Add(e)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw map[string]any
		if unmarshal(data, &raw) != nil {
			return
		}
		rec, err := NewRecord(raw)
		if err != nil {
			return
		}
		doc := ToECS(rec, testGeo)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back map[string]any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if a, _ := lookup(back, "event.action"); a != raw["eventName"] {
			t.Fatalf("event.action %v, eventName %v", a, raw["eventName"])
		}
		if o, _ := lookup(back, "event.outcome"); o == nil || o == "" {
			t.Fatalf("no outcome")
		}
		if _, err := json.Marshal(ToRaw(rec, testGeo)); err != nil {
			t.Fatalf("raw: %v", err)
		}
	})
}
