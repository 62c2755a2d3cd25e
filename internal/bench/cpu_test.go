package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseNodeStats(t *testing.T) {
	for _, tc := range []struct {
		file    string
		nodes   int
		total   time.Duration
		probed  int64 // unix ms of the oldest node's probe
		wantErr string
	}{
		{file: "elasticsearch-8.19.json", nodes: 1, total: 339550 * time.Millisecond, probed: 1796129408301},
		{file: "opensearch-2.19.json", nodes: 1, total: 151970 * time.Millisecond, probed: 1796129408892},
		{file: "two-nodes.json", nodes: 2, total: 3750 * time.Millisecond, probed: 1796129407500},
		{file: "failed-node.json", wantErr: "1 of 2 nodes failed"},
		{file: "no-cpu.json", wantErr: "node a (n1) has no process.cpu.total_in_millis"},
		{file: "no-nodes.json", wantErr: "no nodes"},
		{file: "not-json.json", wantErr: "node stats: invalid character"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "nodestats", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			ns, err := ParseNodeStats(body)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ns.CPU) != tc.nodes || ns.CPU.Total() != tc.total || ns.Probed.UnixMilli() != tc.probed {
				t.Fatalf("got %d nodes, total %v, probed %d; want %d, %v, %d", len(ns.CPU), ns.CPU.Total(), ns.Probed.UnixMilli(), tc.nodes, tc.total, tc.probed)
			}
		})
	}
}

func TestNodeCPUSince(t *testing.T) {
	ms := time.Millisecond
	before := NodeCPU{"a": 100 * ms, "b": 50 * ms}
	for _, tc := range []struct {
		name    string
		after   NodeCPU
		want    time.Duration
		wantErr string
	}{
		{"both nodes worked", NodeCPU{"a": 130 * ms, "b": 60 * ms}, 40 * ms, ""},
		{"idle", NodeCPU{"a": 100 * ms, "b": 50 * ms}, 0, ""},
		{"restarted", NodeCPU{"a": 10 * ms, "b": 60 * ms}, 0, "node a restarted"},
		{"replaced", NodeCPU{"a": 130 * ms, "c": 60 * ms}, 0, "node c joined"},
		{"left", NodeCPU{"a": 130 * ms}, 0, "2 nodes before, 1 after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.after.Since(before)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Since = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestSampleSince(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a := Sample{At: t0, Client: time.Second, Engine: NodeCPU{"a": 2 * time.Second}}
	b := Sample{At: t0.Add(10 * time.Second), Client: 1500 * time.Millisecond, Engine: NodeCPU{"a": 5 * time.Second}}
	u, err := b.Since(a)
	if err != nil {
		t.Fatal(err)
	}
	if u != (Used{Wall: 10 * time.Second, Client: 500 * time.Millisecond, Engine: 3 * time.Second, HasEngine: true}) {
		t.Fatalf("got %+v", u)
	}
	// Embedded: no engine figures, no engine CPU.
	u, err = Sample{At: t0.Add(time.Second), Client: 2 * time.Second}.Since(Sample{At: t0, Client: time.Second})
	if err != nil || u.HasEngine || u.Engine != 0 || u.Client != time.Second {
		t.Fatalf("embedded: %+v, %v", u, err)
	}
}

func TestProcessCPUAdvances(t *testing.T) {
	before := ProcessCPU()
	deadline := time.Now().Add(2 * time.Second)
	x := 0
	for ProcessCPU()-before < 20*time.Millisecond && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
	}
	if ProcessCPU()-before < 20*time.Millisecond {
		t.Fatalf("2 s of spinning used %v of CPU (x=%d)", ProcessCPU()-before, x)
	}
}

func TestSettleWaitsForTheEngine(t *testing.T) {
	rates := func(rs ...float64) func() (float64, error) {
		return func() (float64, error) {
			r := rs[0]
			if len(rs) > 1 {
				rs = rs[1:]
			}
			return r, nil
		}
	}
	for _, tc := range []struct {
		name   string
		probe  func() (float64, error)
		waited time.Duration
		ok     bool
		note   string
	}{
		{"idle at once", rates(0.01), 0, true, "engine idle 10 ms/s before"},
		{"merging, then idle", rates(0.265, 0.12, 0.03), 4 * time.Second, true, "engine idle 30 ms/s before (settled after 4s)"},
		{"busy throughout", rates(0.3), 10 * time.Second, false, "engine idle 300 ms/s before: NOT SETTLED after 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := settle(tc.probe, 0.05, 10*time.Second, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if s.Waited != tc.waited || s.OK != tc.ok || s.Note() != tc.note {
				t.Errorf("settled %+v, note %q; want waited %s, ok %v, note %q", s, s.Note(), tc.waited, tc.ok, tc.note)
			}
		})
	}
}
