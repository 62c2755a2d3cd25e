package synth

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkGenerate reports events/s written (rendered, gzipped, on disk;
// set TMPDIR to choose the disk). The 300×60 case (~4M events) runs only
// with SYNTH_BENCH_LARGE=1.
func BenchmarkGenerate(b *testing.B) {
	for _, sz := range []struct{ ids, days int }{{50, 7}, {300, 60}} {
		b.Run(fmt.Sprintf("%dx%d", sz.ids, sz.days), func(b *testing.B) {
			if sz.ids > 50 && os.Getenv("SYNTH_BENCH_LARGE") == "" {
				b.Skip("set SYNTH_BENCH_LARGE=1")
			}
			cfg := Config{Identities: sz.ids, Days: sz.days, Seed: 1, End: time.Date(2024, 6, 28, 12, 0, 0, 0, time.UTC)}
			var events int
			for i := 0; i < b.N; i++ {
				cfg.OutDir = b.TempDir()
				l, err := Generate(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				events += l.Events
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}

// BenchmarkEvents is the in-memory path the demo uses (records decoded
// into maps).
func BenchmarkEvents(b *testing.B) {
	cfg := Config{Identities: 50, Days: 7, Seed: 1, End: time.Date(2024, 6, 28, 12, 0, 0, 0, time.UTC)}
	var events int
	for i := 0; i < b.N; i++ {
		l, err := Events(cfg, func(map[string]any) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		events += l.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
