package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
)

// Requests count what offtrail asked of its store, by kind: the engine's
// CPU is spent per request as much as per document read.
type Requests struct {
	Counts, Stats, Events, State, Writes int64
	// StateReads is the part of State that reads (a lone replica's
	// heartbeat, the baselines' day documents); the rest writes.
	StateReads int64
}

// Total is every request.
func (r Requests) Total() int64 { return r.Counts + r.Stats + r.Events + r.State + r.Writes }

// Since is r minus an earlier snapshot.
func (r Requests) Since(before Requests) Requests {
	return Requests{Counts: r.Counts - before.Counts, Stats: r.Stats - before.Stats, Events: r.Events - before.Events,
		State: r.State - before.State, Writes: r.Writes - before.Writes, StateReads: r.StateReads - before.StateReads}
}

// PerTick renders r over n ticks.
func (r Requests) PerTick(n int) string {
	d := float64(max(1, n))
	return fmt.Sprintf("store calls/tick %.1f (counts %.1f, stats %.1f, events %.1f, state %.1f of which %.1f reads, writes %.1f)",
		float64(r.Total())/d, float64(r.Counts)/d, float64(r.Stats)/d, float64(r.Events)/d, float64(r.State)/d, float64(r.StateReads)/d, float64(r.Writes)/d)
}

// countingStore counts the calls made through it. One call may be more
// than one HTTP request (composite pages, chunked restrictions).
type countingStore struct {
	store.Backend
	counts, stats, events, state, writes atomic.Int64
	stateReads                           atomic.Int64
	docs                                 atomic.Int64 // written by PutDocs (incidents)
}

func (c *countingStore) snapshot() Requests {
	return Requests{Counts: c.counts.Load(), Stats: c.stats.Load(), Events: c.events.Load(), State: c.state.Load(), Writes: c.writes.Load(), StateReads: c.stateReads.Load()}
}

func (c *countingStore) CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	c.counts.Add(1)
	return c.Backend.CountGroups(ctx, req, fn)
}

func (c *countingStore) Stats(ctx context.Context, req store.StatsRequest, fn func(store.Stats) error) error {
	c.stats.Add(1)
	return c.Backend.Stats(ctx, req, fn)
}

func (c *countingStore) Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	c.events.Add(1)
	return c.Backend.Events(ctx, q, limit)
}

func (c *countingStore) GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error) {
	c.state.Add(1)
	c.stateReads.Add(1)
	return c.Backend.GetState(ctx, index, id)
}

func (c *countingStore) PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error) {
	c.state.Add(1)
	return c.Backend.PutState(ctx, index, id, doc, ifVersion)
}

func (c *countingStore) PutStates(ctx context.Context, index string, puts []store.StatePut) ([]store.StatePutResult, error) {
	c.state.Add(1) // one request, however many documents
	return c.Backend.PutStates(ctx, index, puts)
}

func (c *countingStore) DeleteState(ctx context.Context, index, id string, version store.Version) error {
	c.state.Add(1)
	return c.Backend.DeleteState(ctx, index, id, version)
}

func (c *countingStore) WriteSignals(ctx context.Context, index string, docs []store.Doc) (store.WriteResult, error) {
	c.writes.Add(1)
	return c.Backend.WriteSignals(ctx, index, docs)
}

func (c *countingStore) PutDocs(ctx context.Context, index string, docs []store.Doc) error {
	c.writes.Add(1)
	c.docs.Add(int64(len(docs)))
	return c.Backend.PutDocs(ctx, index, docs)
}

// RawEvents passes the backend's undecoded reads on (the baseline cache's
// tail uses them), counted as events.
func (c *countingStore) RawEvents(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	c.events.Add(1)
	if r, ok := c.Backend.(interface {
		RawEvents(context.Context, store.Query, int) ([]store.Event, error)
	}); ok {
		return r.RawEvents(ctx, q, limit)
	}
	return c.Backend.Events(ctx, q, limit)
}

// CountEvents passes the backend's event count on (the tail checks a
// sealed hour with it), counted as a count.
func (c *countingStore) CountEvents(ctx context.Context, q store.Query) (int64, error) {
	c.counts.Add(1)
	if r, ok := c.Backend.(interface {
		CountEvents(context.Context, store.Query) (int64, error)
	}); ok {
		return r.CountEvents(ctx, q)
	}
	return 0, fmt.Errorf("count events: the %s store cannot count", c.Backend.Kind())
}

// Delete is DropIndices on the backend: the bench's own work, not
// offtrail's, so it is not counted.
func (c *countingStore) Delete(indices, templates []string) error {
	return DropIndices(context.Background(), c.Backend, indices, templates)
}

// Transport is the backend's, for the node stats and index deletes that
// are the bench's own, not offtrail's work (nil for the embedded store).
func (c *countingStore) Transport() dsl.Transport {
	if t, ok := c.Backend.(transporter); ok {
		return t.Transport()
	}
	return nil
}
