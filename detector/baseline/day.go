package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// dayGroups is one day's counts for one signature.
type dayGroups struct {
	signature string
	day       time.Time
	groups    []store.Group
}

// dayDoc is a day as stored: compact, one key tuple and count per group.
// The state index maps none of it (dynamic: false): it is read by id only.
type dayDoc struct {
	Kind        string     `json:"kind"`
	Signature   string     `json:"signature"`
	Day         string     `json:"day"`
	Index       []string   `json:"index"`
	GroupBy     []string   `json:"group_by"`
	HourBuckets bool       `json:"hour_buckets,omitempty"`
	Built       time.Time  `json:"built"`
	Keys        [][]string `json:"keys"`
	Counts      []int64    `json:"counts"`
}

const dayKind = "baseline-day"

// day returns one day's counts: from memory, else its state document,
// else counted from the raw events and stored.
func (c *Cache) day(ctx context.Context, req store.CountRequest, sig string, d time.Time) (*dayGroups, error) {
	id := DocID(sig, d)
	c.mu.Lock()
	dg := c.days[id]
	c.mu.Unlock()
	if dg != nil && !c.opts.Rebuild {
		c.fromMemory.Add(1)
		return dg, nil
	}
	var prev *store.Version
	raw, v, err := c.b.GetState(ctx, c.opts.StateIndex, id)
	switch {
	case err == nil && !c.opts.Rebuild:
		if dg, err = decodeDay(raw, sig, d); err != nil {
			return nil, wrap(err, "day %s", id)
		}
		c.fromState.Add(1)
		return c.remember(id, dg), nil
	case err == nil:
		prev = &v
	case !errors.Is(err, store.ErrNotFound):
		return nil, wrap(err, "read day %s", id)
	}
	dg, err = c.build(ctx, req, sig, d)
	if err != nil {
		return nil, err
	}
	if err := c.store(ctx, id, req, dg, prev); err != nil {
		return nil, err
	}
	return c.remember(id, dg), nil
}

// remember keeps dg for later ticks; a day already kept by a concurrent
// build wins (both hold the same counts).
func (c *Cache) remember(id string, dg *dayGroups) *dayGroups {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.days[id]; cur != nil && !c.opts.Rebuild {
		return cur
	}
	c.days[id] = dg
	return dg
}

// build counts one whole day over every entity: the restriction of the
// request that asked is applied on reading, so every later tick, whatever
// its active entities, can use the same document.
func (c *Cache) build(ctx context.Context, req store.CountRequest, sig string, d time.Time) (*dayGroups, error) {
	full := req
	full.Restrict = nil
	full.Query.Window = store.Window{From: d, To: d.Add(day)}
	dg := &dayGroups{signature: sig, day: d}
	c.raw.Add(1)
	err := c.b.CountGroups(ctx, full, func(g store.Group) error {
		dg.groups = append(dg.groups, store.Group{Key: append([]string(nil), g.Key...), Count: g.Count})
		return nil
	})
	if err != nil {
		return nil, wrap(err, "count day %s", d.Format(time.DateOnly))
	}
	c.built.Add(1)
	if c.opts.OnBuild != nil {
		c.opts.OnBuild(sig, d, len(dg.groups))
	}
	return dg, nil
}

// store writes a day's document. Another replica may have written it
// first: its counts are the same, so losing that race is fine.
func (c *Cache) store(ctx context.Context, id string, req store.CountRequest, dg *dayGroups, prev *store.Version) error {
	doc := dayDoc{Kind: dayKind, Signature: dg.signature, Day: dg.day.Format(time.DateOnly),
		Index: req.Query.Index, GroupBy: req.GroupBy, HourBuckets: req.HourBuckets, Built: c.opts.Now().UTC(),
		Keys: make([][]string, len(dg.groups)), Counts: make([]int64, len(dg.groups))}
	for i, g := range dg.groups {
		doc.Keys[i], doc.Counts[i] = g.Key, g.Count
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return wrap(err, "encode day %s", id)
	}
	if _, err := c.b.PutState(ctx, c.opts.StateIndex, id, raw, prev); err != nil && !errors.Is(err, store.ErrConflict) {
		return wrap(err, "write day %s", id)
	}
	return nil
}

func decodeDay(raw json.RawMessage, sig string, d time.Time) (*dayGroups, error) {
	var doc dayDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != dayKind || doc.Signature != sig || doc.Day != d.Format(time.DateOnly) || len(doc.Keys) != len(doc.Counts) {
		return nil, errors.New("not the day document expected")
	}
	dg := &dayGroups{signature: sig, day: d, groups: make([]store.Group, len(doc.Keys))}
	for i := range doc.Keys {
		dg.groups[i] = store.Group{Key: doc.Keys[i], Count: doc.Counts[i]}
	}
	return dg, nil
}

// sweepBack is how many days before Keep a signature's first use looks
// for documents left by earlier runs.
const sweepBack = 14

// expire keeps memory to the widest span a signature was asked for, and
// deletes the documents of the days that fell more than Keep behind since
// the newest span end it served. The first time a signature is used, the
// sweep looks sweepBack days further, for what a process that stopped
// earlier may have left.
func (c *Cache) expire(ctx context.Context, sig string, w store.Window) {
	c.mu.Lock()
	if span := w.To.Sub(w.From); span > c.span[sig] {
		c.span[sig] = span
	}
	prev, seen := c.newest[sig]
	if seen && !w.To.After(prev) {
		c.mu.Unlock()
		return
	}
	c.newest[sig] = w.To
	inMemory := w.To.Add(-c.span[sig] - day)
	for id, dg := range c.days {
		if dg.signature == sig && dg.day.Before(inMemory) {
			delete(c.days, id)
		}
	}
	c.mu.Unlock()
	cutoff := w.To.Add(-c.opts.Keep).UTC().Truncate(day)
	from := cutoff.Add(-sweepBack * day)
	if last := prev.Add(-c.opts.Keep).UTC().Truncate(day); seen && last.After(from) {
		from = last
	}
	for d := from; d.Before(cutoff); d = d.Add(day) {
		c.deleteDoc(ctx, DocID(sig, d))
	}
}

func (c *Cache) deleteDoc(ctx context.Context, id string) {
	_, v, err := c.b.GetState(ctx, c.opts.StateIndex, id)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err == nil {
		err = c.b.DeleteState(ctx, c.opts.StateIndex, id, v)
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		// A document left behind costs space, not correctness: its day
		// is never asked for again.
		c.opts.Log.Warn().Err(err).Str("id", id).Msg("baseline: could not delete an expired day")
		return
	}
	c.expired.Add(1)
}
