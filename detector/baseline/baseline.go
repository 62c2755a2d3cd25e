// Package baseline keeps what the jobs know about the past as compact
// per-day documents, and the last hours as a tail of recent events, so
// that a tick reads its own new events once instead of the whole history.
//
// It works at the store seam: a Cache wraps a backend and answers the
// detector's grouped counts. A count over a span that covers whole UTC days
// is split into those days, whole hours where a day does not fit, and
// what has not sealed yet. Each whole day that has sealed (ended at least
// Seal ago, so late CloudTrail deliveries are in) is counted once over all
// entities, kept in memory and in a state document ("baseline day"), and
// read back from there by every later tick, restart and replica. Hours
// are kept in memory, and a day's document keeps its hours too: a running
// service sums a sealing day from the hours it already holds, and the day
// a span starts on gives its remaining hours from its document, so in the
// steady state no day and no hour is counted by the engine twice. When a
// span moves, its sums of days and hours are shifted by the parts that
// came and left (span.go). The unsealed end, and any recent window, is
// answered from the tail (tail.go): the source's recent events, read once
// per tick and counted in memory. Summing the parts gives exactly what one
// aggregation over the span gives (TestEquivalence and
// TestTailFollowsTicks prove it on all three backends): the signals do not
// change, only the work.
//
// A day document is keyed by the request's signature — index, time field,
// filter, grouping, hour buckets — so a rule whose definition changes gets
// new documents and never reads stale ones. Size: one document per
// (signature, day), holding one count per (partition, entity, value[, hour])
// active that day; documents older than Keep are deleted as days fall out.
package baseline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
)

// Backend is what the cache needs of a store: the counts it splits, the
// events it passes through, and the state documents it keeps days in.
type Backend interface {
	CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error
	Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error)
	GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error)
	PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error)
	DeleteState(ctx context.Context, index, id string, version store.Version) error
}

// Defaults.
const (
	// DefaultSeal: CloudTrail delivers within about 15 minutes; an hour
	// and more of margin before a day is counted for good.
	DefaultSeal = 2 * time.Hour
	// DefaultKeep covers the longest history a shipped rule uses (90 days)
	// with its settle and a day of slack.
	DefaultKeep = 92 * 24 * time.Hour
)

// DefaultMemoryGroups: about 100 MiB of day groups.
const DefaultMemoryGroups = 1_000_000

const day = 24 * time.Hour

// Options configure a Cache.
type Options struct {
	// StateIndex holds the day documents (the scheduler's state index).
	StateIndex string
	// Seal is how long after its end a day is counted for good.
	Seal time.Duration
	// Keep is how far back from the newest span day documents are kept.
	Keep time.Duration
	// MemoryGroups bounds the day groups held in memory (default
	// DefaultMemoryGroups); beyond it the oldest days are read back from
	// their state documents when needed.
	MemoryGroups int
	// Rebuild recounts every day a request touches from the raw events
	// and overwrites its document (offtrail baseline rebuild).
	Rebuild bool
	// NoTail sends the recent end of spans to the backend, one request per
	// count, instead of answering it from the tail (see tail.go).
	NoTail bool
	// TailLimit bounds the events of one tail read (DefaultTailLimit).
	TailLimit int
	// OnBuild is called after a day is counted from raw events.
	OnBuild func(signature string, day time.Time, groups int)
	Now     func() time.Time
	Log     zerolog.Logger
}

// Stats count where the cache's answers came from.
type Stats struct {
	Requests   int64 // grouped counts asked for
	Split      int64 // of which answered from days plus raw edges
	RawQueries int64 // counts sent to the backend (edges, unsplittable requests, day builds)
	DaysMemory int64 // days served from memory
	DaysState  int64 // days read from a state document
	DaysBuilt  int64 // days counted from raw events
	// DaysFromHours counts days summed from the hours held as they sealed.
	DaysFromHours int64
	Expired       int64 // day documents deleted as they fell out of Keep
	// StateErrors count failed reads and writes of day documents; the
	// days were counted raw instead.
	StateErrors int64
	// Hours stand in for partial days at the span's ends (memory only).
	HoursMemory int64
	HoursBuilt  int64
	// HoursFromState counts hours read from the document of their day.
	HoursFromState int64
	// Evicted counts days forgotten over the memory budget.
	Evicted int64
	// DaySumsShifted and HourSumsShifted count the sums of a span's days
	// and hours moved by the parts that came and left, not summed again.
	DaySumsShifted, HourSumsShifted int64
	// DaySumsSummed and HourSumsSummed count the sums made from all
	// their parts: a series' first, or one no kept series was near.
	DaySumsSummed, HourSumsSummed int64
	// The tail: counts answered from it, reads of the backend's events
	// for it, the events read, and counts sent to the backend because a
	// read reached TailLimit.
	TailAnswers, TailReads, TailEvents, TailFallbacks int64
	// TailRereads counts sealed hours read again because the source held
	// more events than the tail (late deliveries); each sealed hour the
	// tail held is checked with one count (in RawQueries).
	TailRereads int64
}

// Cache answers grouped counts from day documents where it can.
type Cache struct {
	b    Backend
	opts Options
	// started is opts.Now() at New: a day that seals later has no
	// document older than this cache (sealedSince).
	started time.Time

	mu     sync.Mutex
	days   map[string]*dayGroups    // document id -> counts
	newest map[string]time.Time     // signature -> newest span end seen
	span   map[string]time.Duration // signature -> widest span asked for
	// daySums: signature -> its latest sums of whole days, and hourSums
	// of sealed hours outside whole days, one per series of spans (at
	// most maxSeries)
	daySums, hourSums map[string][]*spanSum
	hours             map[string]*dayGroups                    // signature-hour -> counts (memory only)
	tails             map[string]*tail                         // source -> its recent events
	known             map[string]map[string]store.CountRequest // source -> signature -> a request of it
	// dayGroups counts the groups held in days, against MemoryGroups.
	dayGroups int

	requests, split, raw, fromMemory, fromState, built, expired, stateErrors, hoursMemory, hoursBuilt, evicted atomic.Int64
	tailAnswers, tailReads, tailEvents, tailFallbacks                                                          atomic.Int64
	daySumsShifted, hourSumsShifted, daySumsSummed, hourSumsSummed, daysFromHours, hoursFromState, tailRereads atomic.Int64
}

// New wraps b.
func New(b Backend, opts Options) (*Cache, error) {
	if opts.StateIndex == "" {
		return nil, errors.New("baseline cache: no state index to keep days in")
	}
	if opts.Seal <= 0 {
		opts.Seal = DefaultSeal
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MemoryGroups <= 0 {
		opts.MemoryGroups = DefaultMemoryGroups
	}
	if opts.TailLimit <= 0 {
		opts.TailLimit = DefaultTailLimit
	}
	return &Cache{b: b, opts: opts, started: opts.Now(), days: map[string]*dayGroups{}, newest: map[string]time.Time{}, span: map[string]time.Duration{}, daySums: map[string][]*spanSum{}, hourSums: map[string][]*spanSum{}, hours: map[string]*dayGroups{}, tails: map[string]*tail{}, known: map[string]map[string]store.CountRequest{}}, nil
}

// Stats returns the counters so far.
func (c *Cache) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Split: c.split.Load(), RawQueries: c.raw.Load(),
		DaysMemory: c.fromMemory.Load(), DaysState: c.fromState.Load(), DaysBuilt: c.built.Load(), Expired: c.expired.Load(), StateErrors: c.stateErrors.Load(), HoursMemory: c.hoursMemory.Load(), HoursBuilt: c.hoursBuilt.Load(), Evicted: c.evicted.Load(),
		TailAnswers: c.tailAnswers.Load(), TailReads: c.tailReads.Load(), TailEvents: c.tailEvents.Load(), TailFallbacks: c.tailFallbacks.Load(),
		DaySumsShifted: c.daySumsShifted.Load(), HourSumsShifted: c.hourSumsShifted.Load(),
		DaySumsSummed: c.daySumsSummed.Load(), HourSumsSummed: c.hourSumsSummed.Load(),
		DaysFromHours: c.daysFromHours.Load(), HoursFromState: c.hoursFromState.Load(),
		TailRereads: c.tailRereads.Load()}
}

// Events reads recent events from the tail, the rest from the backend.
func (c *Cache) Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	if c.inTail(q.Window) {
		evs, err := c.eventsFromTail(ctx, q, limit)
		if !errors.Is(err, errTailFull) {
			return evs, err
		}
		c.tailFallbacks.Add(1)
	}
	return c.b.Events(ctx, q, limit)
}

// CountGroups answers req, from day documents where the span allows. Each
// group is reported once, with the sum over the parts, in key order.
func (c *Cache) CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	c.requests.Add(1)
	p := c.plan(req)
	if p.signature == "" {
		return c.countRecent(ctx, req, fn)
	}
	c.split.Add(1)
	c.register(req, p.signature)
	edges := newGroupSum(0)
	for _, w := range p.edges {
		edge := req
		edge.Query.Window = w
		err := c.countRecent(ctx, edge, func(g store.Group) error {
			edges.add(g.Key, g.Count)
			return nil
		})
		if err != nil {
			return err
		}
	}
	runs := []run{edges.sorted()}
	if len(p.days) > 0 {
		days, err := c.spanSum(ctx, req, p)
		if err != nil {
			return err
		}
		runs = append(runs, days.restricted(req))
	}
	if len(p.hours) > 0 {
		hours, err := c.hourSum(ctx, req, p)
		if err != nil {
			return err
		}
		runs = append(runs, hours.restricted(req))
	}
	c.expire(ctx, p.signature, req.Query.Window)
	return mergeRuns(runs, fn)
}

// plan is how one request is answered.
type plan struct {
	signature string
	days      []time.Time    // whole sealed UTC days, by their midnight
	hours     []time.Time    // whole sealed hours outside those days
	edges     []store.Window // the rest of the span, counted raw
}

// plan splits req's span, from its start, into whole sealed UTC days,
// whole sealed hours where a day does not fit (the partial days at either
// end), and raw edges for what is left: the part of an hour at the start,
// and the unsealed end. A request is not split when no whole sealed hour
// fits, or when its restriction names a field it does not group by (the
// documents could not apply it).
func (c *Cache) plan(req store.CountRequest) plan {
	if !groupsByRestricted(req) {
		return plan{}
	}
	w := req.Query.Window
	sealedBy := c.opts.Now().Add(-c.opts.Seal)
	fits := func(at time.Time, d time.Duration) bool {
		end := at.Add(d)
		return at.Equal(at.Truncate(d)) && !end.After(w.To) && !end.After(sealedBy)
	}
	var p plan
	raw := func(from, to time.Time) {
		if n := len(p.edges); n > 0 && p.edges[n-1].To.Equal(from) {
			p.edges[n-1].To = to
			return
		}
		p.edges = append(p.edges, store.Window{From: from, To: to})
	}
	for cur := w.From.UTC(); cur.Before(w.To); {
		switch {
		case fits(cur, day):
			p.days = append(p.days, cur)
			cur = cur.Add(day)
		case fits(cur, time.Hour):
			p.hours = append(p.hours, cur)
			cur = cur.Add(time.Hour)
		case cur.Equal(cur.Truncate(time.Hour)):
			raw(cur, w.To) // aligned but not whole or not sealed: so is the rest
			cur = w.To
		default:
			next := cur.Truncate(time.Hour).Add(time.Hour)
			if next.After(w.To) {
				next = w.To
			}
			raw(cur, next)
			cur = next
		}
	}
	if len(p.days) == 0 && len(p.hours) == 0 {
		return plan{}
	}
	p.signature = Signature(req)
	return p
}

func groupsByRestricted(req store.CountRequest) bool {
	for f := range req.Restrict {
		if indexOf(req.GroupBy, f) < 0 {
			return false
		}
	}
	return true
}

// restriction returns the test a day's group must pass to be one the
// restricted request would have counted.
func restriction(req store.CountRequest) func(key []string) bool {
	type rule struct {
		at  int
		set map[string]bool
	}
	var rs []rule
	for f, vals := range req.Restrict {
		set := make(map[string]bool, len(vals))
		for _, v := range vals {
			set[v] = true
		}
		rs = append(rs, rule{at: indexOf(req.GroupBy, f), set: set})
	}
	return func(key []string) bool {
		for _, r := range rs {
			if !r.set[key[r.at]] {
				return false
			}
		}
		return true
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// signatureVersion changes when the day documents' meaning does.
const signatureVersion = 1

// Signature names what a day document counts: everything about a request
// but its span, its restriction and its page size.
func Signature(req store.CountRequest) string {
	b, _ := json.Marshal(struct {
		V           int          `json:"v"`
		Index       []string     `json:"index"`
		TimeField   string       `json:"time_field"`
		Filter      store.Filter `json:"filter"`
		GroupBy     []string     `json:"group_by"`
		HourBuckets bool         `json:"hour_buckets"`
	}{signatureVersion, req.Query.Index, req.Query.TimeField, req.Query.Filter, req.GroupBy, req.HourBuckets})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// DocID is the state document id of one signature's day.
func DocID(signature string, d time.Time) string {
	return "baseline-" + signature + "-" + d.UTC().Format(time.DateOnly)
}

func wrap(err error, what string, args ...any) error {
	return fmt.Errorf("baseline: "+what+": %w", append(args, err)...)
}
