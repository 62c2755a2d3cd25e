// Package bench measures offtrail: detection quality on the synthetic
// organisation, per-run latency of the full rule pack and load throughput
// on each backend, and the embedded store's scan rate against plain gzip
// decompression. `offtrail bench` prints its table; BENCHMARKS.md keeps one.
// Nothing here is a pass/fail test: targets are read off the table.
package bench

import (
	"fmt"
	"io"
	"strings"
)

// Row is one measurement.
type Row struct {
	Section string // quality, latency, load, scan
	Metric  string
	Backend string // embedded, elasticsearch, opensearch, or "" for quality
	History string // events of history, e.g. "1.0M"
	Value   string
	Note    string
}

// Table collects rows in the order measured, and the per-tick costs
// printed after them as a table of their own.
type Table struct {
	Rows  []Row
	Costs []Cost
}

// Add appends a row.
func (t *Table) Add(r Row) { t.Rows = append(t.Rows, r) }

// AddCost appends a cost.
func (t *Table) AddCost(c Cost) { t.Costs = append(t.Costs, c) }

var header = []string{"SECTION", "METRIC", "BACKEND", "HISTORY", "VALUE", "NOTE"}

func (r Row) cells() []string {
	return []string{r.Section, r.Metric, r.Backend, r.History, r.Value, r.Note}
}

// Write prints the table as aligned text ("table") or a Markdown table
// ("markdown"), then the costs and their history ratios.
func (t *Table) Write(w io.Writer, format string) error {
	rows := make([][]string, len(t.Rows))
	for i, r := range t.Rows {
		rows[i] = r.cells()
	}
	if err := writeGrid(w, format, header, rows); err != nil {
		return err
	}
	return writeCosts(w, format, t.Costs)
}

// HumanCount prints an event count as 100k, 1.0M.
func HumanCount(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// ParseCount reads 100k, 1M, 10M or a plain number.
func ParseCount(s string) (int, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1e6, strings.TrimSuffix(s, "m")
	}
	var f float64
	if _, err := fmt.Sscanf(s, "%g", &f); err != nil || f <= 0 {
		return 0, fmt.Errorf("history %q: want a count like 100k or 1M", s)
	}
	return int(f * mult), nil
}
