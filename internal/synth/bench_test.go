package synth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkGenerate reports events/s written (gzip files included).
func BenchmarkGenerate(b *testing.B) {
	cfg := Config{Identities: 50, Days: 7, Seed: 1, End: time.Date(2024, 6, 28, 12, 0, 0, 0, time.UTC)}
	var events int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg.OutDir = b.TempDir()
		l, err := Generate(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		events += l.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
