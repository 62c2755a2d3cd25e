package bench

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Tools in a Cost.
const (
	ToolOfftrail   = "offtrail"
	ToolElastAlert = "elastalert"
)

// Cost is the work of one tool and scope on one backend at one history
// size, per 15-minute tick.
type Cost struct {
	Backend string // elasticsearch, opensearch, embedded
	Tool    string // offtrail or elastalert
	Scope   string // pack, a rule id, or ElastAlert's rule
	Events  int    // documents in the index
	// Ticks measured; for ElastAlert, its replay span in 15-minute ticks
	// (it queries in buffer_time segments, not ticks).
	Ticks int
	// P50 and P95 per tick; zero for ElastAlert.
	P50, P95 time.Duration
	// Client and Engine CPU per tick. HasEngine is false for the embedded
	// store, whose engine is offtrail's process (its work is in Client).
	Client, Engine time.Duration
	HasEngine      bool
	// PeakHeap and PeakRSS of the client (bytes; zero where not taken).
	PeakHeap, PeakRSS uint64
	Note              string
}

// Total is client and engine CPU per tick.
func (c Cost) Total() time.Duration { return c.Client + c.Engine }

// Key groups the costs of one series (one line of the plot, one ratio).
func (c Cost) Key() string { return c.Backend + " " + c.Tool + " " + c.Scope }

var costHeader = []string{"BACKEND", "HISTORY", "TOOL", "SCOPE", "TICKS", "P50 / P95 PER TICK", "CLIENT CPU/TICK", "ENGINE CPU/TICK", "TOTAL CPU/TICK", "PEAK HEAP / RSS", "NOTE"}

func (c Cost) cells() []string {
	lat := "-"
	if c.P50 > 0 || c.P95 > 0 {
		lat = Ms(c.P50) + " / " + Ms(c.P95)
	}
	engine := CPUMs(c.Engine)
	if !c.HasEngine {
		engine = "0 (in-process)"
	}
	mem := "-"
	switch {
	case c.PeakHeap > 0:
		mem = MiB(c.PeakHeap) + " / " + MiB(c.PeakRSS)
	case c.PeakRSS > 0:
		mem = "- / " + MiB(c.PeakRSS) // not a Go process
	}
	return []string{c.Backend, HumanCount(c.Events), c.Tool, c.Scope, fmt.Sprint(c.Ticks), lat,
		CPUMs(c.Client), engine, CPUMs(c.Total()), mem, c.Note}
}

// Ratio compares a series' largest history with its smallest.
type Ratio struct {
	Backend, Tool, Scope string
	Small, Large         int // events
	P50, P95, Total      float64
}

var ratioHeader = []string{"BACKEND", "TOOL", "SCOPE", "HISTORY", "P50 RATIO", "P95 RATIO", "TOTAL CPU/TICK RATIO"}

func (r Ratio) cells() []string {
	f := func(x float64) string {
		if x == 0 {
			return "-"
		}
		return fmt.Sprintf("×%.2f", x)
	}
	return []string{r.Backend, r.Tool, r.Scope,
		fmt.Sprintf("%s / %s (×%.1f)", HumanCount(r.Large), HumanCount(r.Small), float64(r.Large)/float64(r.Small)),
		f(r.P50), f(r.P95), f(r.Total)}
}

// Ratios returns, for every series measured at two or more history
// sizes, the largest size's cost over the smallest's (the 10M/1M
// ratio), in the order the series were first measured.
func Ratios(costs []Cost) []Ratio {
	bySeries := map[string][]Cost{}
	var order []string
	for _, c := range costs {
		if _, ok := bySeries[c.Key()]; !ok {
			order = append(order, c.Key())
		}
		bySeries[c.Key()] = append(bySeries[c.Key()], c)
	}
	var out []Ratio
	for _, k := range order {
		cs := bySeries[k]
		lo := slices.MinFunc(cs, func(a, b Cost) int { return cmp.Compare(a.Events, b.Events) })
		hi := slices.MaxFunc(cs, func(a, b Cost) int { return cmp.Compare(a.Events, b.Events) })
		if lo.Events == hi.Events || lo.Events == 0 {
			continue
		}
		div := func(a, b time.Duration) float64 {
			if b == 0 {
				return 0
			}
			return float64(a) / float64(b)
		}
		out = append(out, Ratio{Backend: lo.Backend, Tool: lo.Tool, Scope: lo.Scope, Small: lo.Events, Large: hi.Events,
			P50: div(hi.P50, lo.P50), P95: div(hi.P95, lo.P95), Total: div(hi.Total(), lo.Total())})
	}
	return out
}

// writeCosts prints the cost table and the ratios in format.
func writeCosts(w io.Writer, format string, costs []Cost) error {
	if len(costs) == 0 {
		return nil
	}
	rows := make([][]string, len(costs))
	for i, c := range costs {
		rows[i] = c.cells()
	}
	fmt.Fprintln(w)
	if err := writeGrid(w, format, costHeader, rows); err != nil {
		return err
	}
	ratios := Ratios(costs)
	if len(ratios) == 0 {
		return nil
	}
	rows = rows[:0]
	for _, r := range ratios {
		rows = append(rows, r.cells())
	}
	fmt.Fprintln(w)
	return writeGrid(w, format, ratioHeader, rows)
}

// writeGrid prints rows under header as aligned text or Markdown.
func writeGrid(w io.Writer, format string, header []string, rows [][]string) error {
	switch format {
	case "", "table":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	case "markdown":
		fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
		fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(header)))
		for _, r := range rows {
			cells := slices.Clone(r)
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

// Series groups costs by Key, each sorted by history size, keys in the
// order first measured.
func Series(costs []Cost) (keys []string, series map[string][]Cost) {
	series = map[string][]Cost{}
	for _, c := range costs {
		if _, ok := series[c.Key()]; !ok {
			keys = append(keys, c.Key())
		}
		series[c.Key()] = append(series[c.Key()], c)
	}
	for _, k := range slices.Collect(maps.Keys(series)) {
		slices.SortStableFunc(series[k], func(a, b Cost) int { return cmp.Compare(a.Events, b.Events) })
	}
	return keys, series
}

// CPUMs formats a CPU time in milliseconds, one decimal below 100 ms.
func CPUMs(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 100 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
