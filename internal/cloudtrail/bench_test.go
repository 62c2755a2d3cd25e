package cloudtrail

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchRecords returns n valid shared events, repeated as needed.
func benchRecords(b testing.TB, n int) [][]byte {
	var valid [][]byte
	for _, e := range sharedEvents(b) {
		var raw map[string]any
		if unmarshal(e, &raw) != nil {
			continue
		}
		if _, err := NewRecord(raw); err == nil {
			valid = append(valid, e)
		}
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = valid[i%len(valid)]
	}
	return out
}

// BenchmarkReadGzip decodes one gzip delivery file of 10,000 events laid
// out as in S3 and reports events/s.
func BenchmarkReadGzip(b *testing.B) {
	const n = 10000
	data := gzipBytes(delivery(benchRecords(b, n)))
	dir := filepath.Join(b.TempDir(), "AWSLogs", "123456789012", "CloudTrail", "us-east-1", "2024", "01", "01")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "123456789012_CloudTrail_us-east-1_20240101T0000Z_x.json.gz"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir))))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	total := 0
	for b.Loop() {
		st, err := Read(context.Background(), []string{root}, func(Record) error { return nil })
		if err != nil || st.Records != n {
			b.Fatalf("%+v %v", st, err)
		}
		total += st.Records
	}
	reportRate(b, total, start, cpu0)
}

// BenchmarkToECS shapes events and encodes the documents, as load does.
func BenchmarkToECS(b *testing.B) {
	var recs []Record
	for _, e := range benchRecords(b, 1000) {
		var raw map[string]any
		if err := unmarshal(e, &raw); err != nil {
			b.Fatal(err)
		}
		rec, err := NewRecord(raw)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec)
	}
	shaper := &Shaper{Geo: testGeo}
	var buf bytes.Buffer
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	i := 0
	for b.Loop() {
		buf.Reset()
		if err := json.NewEncoder(&buf).Encode(shaper.ECS(recs[i%len(recs)])); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportRate(b, i, start, cpu0)
}

// reportRate reports events per wall second and per CPU second (the GC
// runs on other threads, so CPU time can exceed wall time).
func reportRate(b *testing.B, events int, start time.Time, cpu0 time.Duration) {
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
}
