package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// sampleCosts is a run over two history sizes: the engines with
// ElastAlert, embedded with the in-process engine.
func sampleCosts() []Cost {
	ms := time.Millisecond
	mib := uint64(1 << 20)
	var out []Cost
	for _, h := range []struct {
		events int
		scale  time.Duration
	}{{1_180_000, 1}, {12_080_000, 2}} {
		for _, b := range []string{"elasticsearch", "opensearch"} {
			out = append(out,
				Cost{Backend: b, Tool: ToolOfftrail, Scope: PackScope, Events: h.events, Ticks: 20, P50: 400 * ms * h.scale, P95: 900 * ms * h.scale,
					Client: 120 * ms, Engine: 800 * ms * h.scale, HasEngine: true, PeakHeap: 8 * mib, PeakRSS: 60 * mib, Note: "engine idle 5 ms/s before"},
				Cost{Backend: b, Tool: ToolOfftrail, Scope: "aws-rare-method-for-user", Events: h.events, Ticks: 20, P50: 60 * ms, P95: 95 * ms,
					Client: 9500 * time.Microsecond, Engine: 70 * ms * h.scale, HasEngine: true, PeakHeap: 6 * mib, PeakRSS: 50 * mib},
				Cost{Backend: b, Tool: ToolElastAlert, Scope: ElastAlertScope + ", with start-up", Events: h.events, Ticks: 20,
					Client: 420 * ms, Engine: 150 * ms * h.scale, HasEngine: true, PeakRSS: 105 * mib, Note: "a|b"},
			)
		}
		out = append(out, Cost{Backend: "embedded", Tool: ToolOfftrail, Scope: PackScope, Events: h.events, Ticks: 20, P50: 300 * ms, P95: 700 * ms * h.scale,
			Client: 650 * ms * h.scale, PeakHeap: 230 * mib, PeakRSS: 400 * mib})
	}
	return out
}

func TestCostTableGolden(t *testing.T) {
	tb := &Table{}
	tb.Add(Row{Section: "latency", Metric: "full pack per tick p50 / p95", Backend: "opensearch", History: "1.2M", Value: "400 ms / 900 ms"})
	for _, c := range sampleCosts() {
		tb.AddCost(c)
	}
	for _, f := range []struct{ format, file string }{{"table", "cost.golden.txt"}, {"markdown", "cost.golden.md"}} {
		var buf bytes.Buffer
		if err := tb.Write(&buf, f.format); err != nil {
			t.Fatal(err)
		}
		golden(t, f.file, buf.Bytes())
	}
}

func TestRatios(t *testing.T) {
	rs := Ratios(sampleCosts())
	if len(rs) != 7 {
		t.Fatalf("%d ratios, want 7 (3 series on each engine, 1 embedded)", len(rs))
	}
	r := rs[0]
	if r.Backend != "elasticsearch" || r.Scope != PackScope || r.Small != 1_180_000 || r.Large != 12_080_000 || r.P95 != 2 {
		t.Fatalf("first ratio %+v", r)
	}
	// 120 + 800 ms → 120 + 1600 ms
	if got := r.Total; got < 1.869 || got > 1.870 {
		t.Fatalf("total ratio %v", got)
	}
	if one := Ratios(sampleCosts()[:7]); len(one) != 0 {
		t.Fatalf("one history size gave ratios %+v", one)
	}
}

func TestPlotPanels(t *testing.T) {
	cpu, p95 := panels(sampleCosts())
	got, err := json.MarshalIndent(map[string][]curve{"cpu": cpu, "p95": p95}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plot-panels.golden.json", append(got, '\n'))
}

func TestPlotPNG(t *testing.T) {
	for _, tc := range []struct {
		name  string
		costs []Cost
	}{{"two sizes", sampleCosts()}, {"one size", sampleCosts()[:7]}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Plot(&buf, tc.costs); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 400 {
				t.Fatalf("image %v", b)
			}
		})
	}
	if err := Plot(&bytes.Buffer{}, nil); err == nil {
		t.Fatal("plot of nothing accepted")
	}
}
