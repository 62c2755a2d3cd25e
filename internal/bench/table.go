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
	"text/tabwriter"
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

// Table collects rows in the order measured.
type Table struct {
	Rows []Row
}

// Add appends a row.
func (t *Table) Add(r Row) { t.Rows = append(t.Rows, r) }

var header = []string{"SECTION", "METRIC", "BACKEND", "HISTORY", "VALUE", "NOTE"}

func (r Row) cells() []string {
	return []string{r.Section, r.Metric, r.Backend, r.History, r.Value, r.Note}
}

// Write prints the table as aligned text ("table") or a Markdown table
// ("markdown").
func (t *Table) Write(w io.Writer, format string) error {
	switch format {
	case "", "table":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range t.Rows {
			fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
		}
		return tw.Flush()
	case "markdown":
		fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
		fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(header)))
		for _, r := range t.Rows {
			cells := r.cells()
			for i, c := range cells {
				cells[i] = strings.ReplaceAll(c, "|", `\|`)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
		return nil
	default:
		return fmt.Errorf("format %q: want table or markdown", format)
	}
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
