package detector_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/rules"
)

// TestNearMisses evaluates every shipped rule over the scenario with and
// without near misses: the signals and the number of queries are the
// same (explaining costs no query), and the near misses, pinned in a
// golden file, are below their threshold, best first, each with a reason.
func TestNearMisses(t *testing.T) {
	b := embedded.NewMemory()
	index := storetest.IndexPrefix + "nearmiss"
	ctx := t.Context()
	if err := b.EnsureTemplate(ctx, storetest.TemplateName, []byte(storetest.Template)); err != nil {
		t.Fatal(err)
	}
	storetest.Load(t, b, index, scenarioDocs())
	pack, diags := rules.Builtin()
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	clock := detector.WithClock(func() time.Time { return windowEnd })
	plain := detector.New(b, zerolog.Nop(), clock)
	explain := detector.New(b, zerolog.Nop(), clock, detector.WithNearMisses(3))
	var lines []string
	for _, r := range pack.Enabled() {
		rc := *r
		rc.Source.Index = []string{index}
		w := store.Window{From: windowEnd.Add(-rc.Schedule.Lookback.Std()), To: windowEnd}
		p, err := plain.Evaluate(ctx, &rc, w, "test")
		if err != nil {
			t.Fatal(err)
		}
		x, err := explain.Evaluate(ctx, &rc, w, "test")
		if err != nil {
			t.Fatal(err)
		}
		if p.NearMisses != nil {
			t.Errorf("%s: near misses without WithNearMisses", r.ID)
		}
		if p.Queries != x.Queries || len(p.Signals) != len(x.Signals) {
			t.Errorf("%s: explaining changed the run: %d/%d queries, %d/%d signals", r.ID, p.Queries, x.Queries, len(p.Signals), len(x.Signals))
		}
		if len(x.NearMisses) == 0 {
			lines = append(lines, fmt.Sprintf("%s | none: %s", r.ID, detector.NoNearMissReason(x.Candidates, x.Above)))
		}
		for i, nm := range x.NearMisses {
			if nm.Score >= rc.AnomalyThreshold || (i > 0 && nm.Score > x.NearMisses[i-1].Score) || len(nm.LoweredBy) == 0 {
				t.Errorf("%s: near miss %d: score %.1f (threshold %.0f), %d reasons", r.ID, i, nm.Score, rc.AnomalyThreshold, len(nm.LoweredBy))
			}
			var why []string
			for _, l := range nm.LoweredBy {
				why = append(why, l.Kind+": "+l.Text)
			}
			var vals []string
			for _, f := range nm.Value {
				vals = append(vals, f.Value)
			}
			lines = append(lines, fmt.Sprintf("%s | %s | %s | %s score=%.1f raw=%.1f conf=%s | %s", r.ID, nm.Label,
				strings.Join(vals, "/"), nm.Stage, nm.Score, nm.RawScore, nm.Confidence, strings.Join(why, "; ")))
		}
	}
	golden := filepath.Join("testdata", "nearmiss.golden")
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("near misses differ from %s (run with -update if intended):\n--- got\n%s--- want\n%s", golden, got, want)
	}
	// bob's first DescribeVolumes is what six of his ten peers do.
	if !strings.Contains(got, "| bob | DescribeVolumes |") || !strings.Contains(got, "peers: ") {
		t.Errorf("bob's DescribeVolumes is not a near miss lowered by peers:\n%s", got)
	}
}

func TestNoNearMissReason(t *testing.T) {
	for _, tc := range []struct {
		cands, above int
		want         string
	}{
		{0, 0, "no candidates in the window"},
		{3, 3, "all 3 candidate(s) at or above the threshold"},
		{3, 1, ""},
	} {
		if got := detector.NoNearMissReason(tc.cands, tc.above); got != tc.want {
			t.Errorf("%d/%d: %q, want %q", tc.cands, tc.above, got, tc.want)
		}
	}
}
