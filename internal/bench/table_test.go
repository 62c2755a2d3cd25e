package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTableFormats(t *testing.T) {
	tb := &Table{}
	tb.Add(Row{Section: "latency", Metric: "p50 / p95", Backend: "embedded", History: "1.0M", Value: "5 ms / 9 ms", Note: "a|b"})
	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"table", []string{"SECTION", "latency", "5 ms / 9 ms", "a|b"}},
		{"markdown", []string{"| SECTION | METRIC |", "|---|---|", `a\|b`}},
	} {
		var buf bytes.Buffer
		if err := tb.Write(&buf, tc.format); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s output lacks %q:\n%s", tc.format, w, buf.String())
			}
		}
	}
	if err := tb.Write(&bytes.Buffer{}, "html"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestCounts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{{"100k", 100_000}, {"1M", 1_000_000}, {"10m", 10_000_000}, {"2500", 2500}} {
		got, err := ParseCount(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseCount(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseCount("lots"); err == nil {
		t.Error("ParseCount(lots) accepted")
	}
	if got := HumanCount(1_234_567); got != "1.2M" {
		t.Errorf("HumanCount = %s", got)
	}
	if d := DaysFor(1_000_000, 50); d < 90 || d > 120 {
		t.Errorf("DaysFor(1M, 50) = %d days", d)
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 20; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if q := quantile(ds, 0.5); q != 10*time.Millisecond {
		t.Errorf("p50 = %v", q)
	}
	if q := quantile(ds, 0.95); q != 19*time.Millisecond {
		t.Errorf("p95 = %v", q)
	}
}
