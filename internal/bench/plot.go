package bench

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// curve is one line of a plot panel: a series' values against history.
type curve struct {
	Label   string
	Backend string
	Tool    string
	Scope   string
	Points  [][2]float64 // events, milliseconds
}

// panels picks the two panels' curves from the costs: total CPU per tick
// for every series, p95 per tick for those that have ticks (ElastAlert
// replays in buffer_time segments, so it has no per-tick latency).
func panels(costs []Cost) (cpu, p95 []curve) {
	keys, series := Series(costs)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, k := range keys {
		cs := series[k]
		c0 := cs[0]
		label := c0.Backend + ", " + c0.Scope
		if c0.Tool != ToolOfftrail {
			label = c0.Backend + ", " + c0.Tool + " " + c0.Scope
		}
		cc := curve{Label: label, Backend: c0.Backend, Tool: c0.Tool, Scope: c0.Scope}
		lc := cc
		for _, c := range cs {
			cc.Points = append(cc.Points, [2]float64{float64(c.Events), ms(c.Total())})
			if c.P95 > 0 {
				lc.Points = append(lc.Points, [2]float64{float64(c.Events), ms(c.P95)})
			}
		}
		cpu = append(cpu, cc)
		if len(lc.Points) > 0 {
			p95 = append(p95, lc)
		}
	}
	return cpu, p95
}

// Plot draws per-tick total CPU and p95 latency against history size, one
// line per backend and scope plus ElastAlert, as a PNG.
func Plot(w io.Writer, costs []Cost) error {
	if len(costs) == 0 {
		return errors.New("plot: nothing measured")
	}
	cpu, p95 := panels(costs)
	left, err := panel("Total CPU per 15-minute tick (client + engine)", "CPU ms per tick", cpu)
	if err != nil {
		return err
	}
	right, err := panel("p95 latency per tick", "ms", p95)
	if err != nil {
		return err
	}
	img := vgimg.New(vg.Points(1200), vg.Points(520))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(24), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// PlotFile writes Plot's PNG to path.
func PlotFile(path string, costs []Cost) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := Plot(f, costs); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panel draws curves against history; one colour per backend, a dash
// and marker per tool and scope, so a backend's lines read as a group.
func panel(title, ylabel string, curves []curve) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "events of history"
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	xs, top := extent(curves)
	// Log history (sizes span decades), ticks at the sizes measured, and
	// head-room above the data for the legend.
	p.X.Scale = plot.LogScale{}
	p.X.Min, p.X.Max = xs[0]/2, xs[len(xs)-1]*2
	p.X.Tick.Marker = sizeTicks(xs)
	p.Y.Max = top * 1.9
	p.Y.Tick.Marker = wholeTicks{}
	colours, dashes := map[string]int{}, map[string]int{}
	for _, c := range curves {
		pts := make(plotter.XYs, len(c.Points))
		for i, pt := range c.Points {
			pts[i].X, pts[i].Y = pt[0], pt[1]
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", c.Label, err)
		}
		ci := indexOf(colours, c.Backend)
		di := indexOf(dashes, c.Tool+" "+c.Scope)
		line.Color, points.Color = plotutil.Color(ci), plotutil.Color(ci)
		line.Dashes = plotutil.Dashes(di)
		line.Width = vg.Points(1.5)
		points.Shape = plotutil.Shape(di)
		p.Add(line, points)
		p.Legend.Add(c.Label, line, points)
	}
	return p, nil
}

func indexOf(m map[string]int, k string) int {
	if i, ok := m[k]; ok {
		return i
	}
	m[k] = len(m)
	return m[k]
}

// extent returns the history sizes of the curves, sorted, and the
// highest value.
func extent(curves []curve) ([]float64, float64) {
	seen := map[float64]bool{}
	top := 1.0
	for _, c := range curves {
		for _, pt := range c.Points {
			seen[pt[0]] = true
			top = max(top, pt[1])
		}
	}
	return slices.Sorted(maps.Keys(seen)), top
}

// sizeTicks labels the measured history sizes (83k, 1.2M).
type sizeTicks []float64

func (s sizeTicks) Ticks(float64, float64) []plot.Tick {
	out := make([]plot.Tick, len(s))
	for i, x := range s {
		out[i] = plot.Tick{Value: x, Label: HumanCount(int(x))}
	}
	return out
}

// wholeTicks are the default ticks without decimals (milliseconds).
type wholeTicks struct{}

func (wholeTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', 0, 64)
		}
	}
	return ts
}
