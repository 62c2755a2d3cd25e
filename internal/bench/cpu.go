package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
)

// NodeCPU is the CPU time each node's process has used since it started
// (process.cpu.total_in_millis of GET _nodes/stats/process), by node id.
type NodeCPU map[string]time.Duration

// Total sums the nodes.
func (n NodeCPU) Total() time.Duration {
	var t time.Duration
	for _, d := range n {
		t += d
	}
	return t
}

// Since is the CPU the nodes used between before and n. A node that
// joined, left or restarted in between makes the difference meaningless,
// so it is an error rather than a silently low number.
func (n NodeCPU) Since(before NodeCPU) (time.Duration, error) {
	if len(n) != len(before) {
		return 0, fmt.Errorf("node stats: %d nodes before, %d after", len(before), len(n))
	}
	var d time.Duration
	for _, id := range slices.Sorted(maps.Keys(n)) {
		b, ok := before[id]
		switch {
		case !ok:
			return 0, fmt.Errorf("node stats: node %s joined during the measurement", id)
		case n[id] < b:
			return 0, fmt.Errorf("node stats: node %s restarted during the measurement (CPU %v → %v)", id, b, n[id])
		}
		d += n[id] - b
	}
	return d, nil
}

// NodeStats is one answer of the node stats API.
type NodeStats struct {
	CPU NodeCPU
	// Probed is when the oldest node's figure was taken (process.timestamp):
	// the nodes cache their process stats (monitor.process.refresh_interval,
	// 1 s by default), so an answer can be older than the request.
	Probed time.Time
}

// ParseNodeStats reads the process CPU of every node from a node stats
// answer. Failed nodes or a node without the figure are errors: a sum
// over part of the cluster would understate the engine's work.
func ParseNodeStats(body []byte) (NodeStats, error) {
	var resp struct {
		Nodes *struct {
			Total, Successful, Failed int
		} `json:"_nodes"`
		NodeStats map[string]struct {
			Name    string `json:"name"`
			Process *struct {
				Timestamp int64 `json:"timestamp"`
				CPU       *struct {
					TotalInMillis *int64 `json:"total_in_millis"`
				} `json:"cpu"`
			} `json:"process"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return NodeStats{}, fmt.Errorf("node stats: %w", err)
	}
	if resp.Nodes != nil && resp.Nodes.Failed > 0 {
		return NodeStats{}, fmt.Errorf("node stats: %d of %d nodes failed to answer", resp.Nodes.Failed, resp.Nodes.Total)
	}
	if len(resp.NodeStats) == 0 {
		return NodeStats{}, errors.New("node stats: no nodes in the answer")
	}
	out := NodeStats{CPU: make(NodeCPU, len(resp.NodeStats))}
	for id, n := range resp.NodeStats {
		if n.Process == nil || n.Process.CPU == nil || n.Process.CPU.TotalInMillis == nil {
			return NodeStats{}, fmt.Errorf("node stats: node %s (%s) has no process.cpu.total_in_millis", id, n.Name)
		}
		out.CPU[id] = time.Duration(*n.Process.CPU.TotalInMillis) * time.Millisecond
		if t := time.UnixMilli(n.Process.Timestamp); out.Probed.IsZero() || t.Before(out.Probed) {
			out.Probed = t
		}
	}
	return out, nil
}

// transporter is what the Elasticsearch and OpenSearch stores offer
// beside store.Backend: their official client's raw request path (auth,
// TLS and signing as the connection was built).
type transporter interface {
	Transport() dsl.Transport
}

// deleter is a store that deletes its own indices and templates (the
// embedded store, see embedded.Store.Delete).
type deleter interface {
	Delete(indices, templates []string) error
}

// HasEngine reports whether st runs queries in another process whose CPU
// the node stats API reports (not the embedded store, which runs in
// offtrail's own process).
func HasEngine(st store.Backend) bool {
	t, ok := st.(transporter)
	return ok && t.Transport() != nil
}

// EngineCPU reads the cluster's node stats through st's client.
func EngineCPU(ctx context.Context, st store.Backend) (NodeStats, error) {
	t, ok := st.(transporter)
	if !ok || t.Transport() == nil {
		return NodeStats{}, fmt.Errorf("node stats: the %s store has no engine process", st.Kind())
	}
	status, body, err := t.Transport().Do(ctx, http.MethodGet, "/_nodes/stats/process", nil, nil)
	if err != nil {
		return NodeStats{}, fmt.Errorf("node stats: %w", err)
	}
	if status != http.StatusOK {
		return NodeStats{}, fmt.Errorf("node stats: status %d: %s", status, strings.TrimSpace(string(truncateBytes(body, 200))))
	}
	return ParseNodeStats(body)
}

// freshWait bounds how long EngineCPUAfter waits for fresh figures: a
// node whose clock runs behind ours would otherwise never qualify.
const freshWait = 3 * time.Second

// EngineCPUAfter reads node stats taken no earlier than t, asking again
// every 100 ms while the nodes answer from their cache (up to freshWait;
// then the last answer, a little stale, is returned).
func EngineCPUAfter(ctx context.Context, st store.Backend, t time.Time) (NodeStats, error) {
	deadline := time.Now().Add(freshWait)
	for {
		ns, err := EngineCPU(ctx, st)
		if err != nil || !ns.Probed.Before(t.Truncate(time.Millisecond)) || time.Now().After(deadline) {
			return ns, err
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ns, ctx.Err()
		}
	}
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Sample is the CPU both sides have used so far.
type Sample struct {
	At     time.Time
	Client time.Duration // this process, user + system
	Engine NodeCPU       // nil without an engine
}

// Meter takes samples of one store's CPU.
type Meter struct {
	Store store.Backend
}

// Take samples now: the engine's figures are probed after the call began
// (so they hold all work done before it), and the client is read last.
// Waiting for fresh figures adds up to the nodes' refresh interval of
// idle engine time to an interval; Background reports its rate.
func (m Meter) Take(ctx context.Context) (Sample, error) {
	var s Sample
	if HasEngine(m.Store) {
		ns, err := EngineCPUAfter(ctx, m.Store, time.Now())
		if err != nil {
			return s, err
		}
		s.Engine = ns.CPU
	}
	s.At, s.Client = time.Now(), ProcessCPU()
	return s, nil
}

// Used is what was spent between two samples.
type Used struct {
	Wall, Client, Engine time.Duration
	// HasEngine is false for the embedded store: its engine is this
	// process, so Client already holds all the work.
	HasEngine bool
}

// Since returns the CPU used from before to s.
func (s Sample) Since(before Sample) (Used, error) {
	u := Used{Wall: s.At.Sub(before.At), Client: s.Client - before.Client, HasEngine: s.Engine != nil}
	if s.Engine != nil {
		d, err := s.Engine.Since(before.Engine)
		if err != nil {
			return u, err
		}
		u.Engine = d
	}
	return u, nil
}

// Background measures the engine's CPU rate while offtrail does nothing
// (CPU per second of wall time): the engines are shared, and what others
// run on them lands in every engine figure.
func (m Meter) Background(ctx context.Context, d time.Duration) (float64, error) {
	if !HasEngine(m.Store) {
		return 0, nil
	}
	a, err := m.Take(ctx)
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	b, err := m.Take(ctx)
	if err != nil {
		return 0, err
	}
	u, err := b.Since(a)
	if err != nil {
		return 0, err
	}
	return u.Engine.Seconds() / u.Wall.Seconds(), nil
}

// Settling: an engine merging what was just loaded burns a quarter of a
// core for minutes (265 ms/s seen after a load), and every engine figure
// would carry it. Before it measures, the bench waits for the engine's
// idle rate to fall to SettledRate, for at most SettleWithin.
const (
	SettledRate  = 0.05 // 50 ms of engine CPU per second
	SettleWithin = 3 * time.Minute
)

// Settled is what waiting for the engine found.
type Settled struct {
	Rate   float64       // the last idle rate measured (CPU s per s)
	Waited time.Duration // before it fell to SettledRate, or SettleWithin
	OK     bool          // false: still busy when the wait ran out
}

// Note renders s for a table note.
func (s Settled) Note() string {
	switch {
	case !s.OK:
		return fmt.Sprintf("engine idle %.0f ms/s before: NOT SETTLED after %s", 1000*s.Rate, s.Waited.Round(time.Second))
	case s.Waited > 0:
		return fmt.Sprintf("engine idle %.0f ms/s before (settled after %s)", 1000*s.Rate, s.Waited.Round(time.Second))
	default:
		return fmt.Sprintf("engine idle %.0f ms/s before", 1000*s.Rate)
	}
}

// Settle measures the engine's idle rate in windows of 2 s until it is at
// most SettledRate or SettleWithin has passed.
func (m Meter) Settle(ctx context.Context) (Settled, error) {
	return settle(func() (float64, error) { return m.Background(ctx, 2*time.Second) }, SettledRate, SettleWithin, 2*time.Second)
}

// settle calls probe, each call taking about step, until a rate is at
// most limit or within has passed.
func settle(probe func() (float64, error), limit float64, within, step time.Duration) (Settled, error) {
	var s Settled
	for {
		rate, err := probe()
		if err != nil {
			return s, err
		}
		s.Rate = rate
		if rate <= limit {
			s.OK = true
			return s, nil
		}
		if s.Waited+step > within {
			return s, nil
		}
		s.Waited += step
	}
}

// DropIndices deletes indices and index templates through st's client,
// or the embedded store's own Delete (a kept bench store outlives the
// run); a missing one is not an error.
func DropIndices(ctx context.Context, st store.Backend, indices, templates []string) error {
	if d, ok := st.(deleter); ok {
		return d.Delete(indices, templates) // the embedded store, kept or not
	}
	t, ok := st.(transporter)
	if !ok || t.Transport() == nil {
		return fmt.Errorf("drop %v: the %s store can delete neither through a cluster nor itself", indices, st.Kind())
	}
	var paths []string
	for _, ix := range indices {
		paths = append(paths, dsl.Path([]string{ix}))
	}
	for _, tp := range templates {
		paths = append(paths, dsl.Path(nil, "_index_template", tp))
	}
	return dsl.Delete(ctx, t.Transport(), paths...)
}
