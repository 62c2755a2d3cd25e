package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
)

// The tail is the unsealed end of every span: the last hours, which no
// day or hour document holds yet. Every rule asks for it every tick (its
// window, the end of its history, the end of each context field's
// history), and each ask was one engine request. The tail instead reads
// the new events of a source once per tick, whatever the number of rules
// and fields, keeps them in an in-memory embedded store, and answers those
// counts there, with the same filter semantics as the engines (the
// backend conformance suite holds all three to them).
//
// Late deliveries: an event that lands in an hour the tail has already
// read is not seen until the hour seals, when the tail reads that hour
// once more and the hour's counts are taken from it — the same moment a
// raw hour build would count it. The scheduler's delay is what keeps a
// window's own events complete, tail or not.

// tailIndex is the in-memory index the tail's events are kept in.
const tailIndex = "tail"

// DefaultTailLimit bounds the events one tail read may return; a read
// that reaches it is not used (the counts go to the engine instead).
const DefaultTailLimit = 200_000

var errTailFull = errors.New("tail read reached its limit")

// tail holds the recent events of one source (indices and time field).
type tail struct {
	mu       sync.Mutex
	q        store.Query // Index and TimeField of the source
	mem      *embedded.Store
	from, to time.Time         // [from, to) is held
	sealed   map[time.Time]int // sealed hours counted, and for how many signatures
}

// register remembers req's signature for its source, so the tail counts
// each sealed hour for it (sealHour).
func (c *Cache) register(req store.CountRequest, sig string) {
	src := tailSource(req.Query)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.known[src][sig]; ok {
		return
	}
	if c.known[src] == nil {
		c.known[src] = map[string]store.CountRequest{}
	}
	req.Restrict, req.Query.Window, req.PageSize = nil, store.Window{}, 0
	c.known[src][sig] = req
}

// tailSource names a request's source.
func tailSource(q store.Query) string {
	b, _ := json.Marshal(struct {
		I []string `json:"i"`
		T string   `json:"t"`
	}{q.Index, q.TimeField})
	return string(b)
}

// tailFloor is where the tail starts: the newest sealed hour, which is
// the newest an hour build asks for and the oldest an edge does.
func (c *Cache) tailFloor() time.Time {
	return c.opts.Now().Add(-c.opts.Seal).UTC().Truncate(time.Hour).Add(-time.Hour)
}

// inTail reports whether w is for the tail to answer: recent, and not
// reaching past now (events still to come would be missed).
func (c *Cache) inTail(w store.Window) bool {
	return !c.opts.NoTail && !w.From.Before(c.tailFloor()) && !w.To.After(c.opts.Now())
}

// countRecent answers req from the tail when its window is recent, else
// from the backend.
func (c *Cache) countRecent(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	if c.inTail(req.Query.Window) {
		err := c.fromTail(ctx, req, fn)
		if !errors.Is(err, errTailFull) {
			return err
		}
		c.tailFallbacks.Add(1)
	}
	c.raw.Add(1)
	return c.b.CountGroups(ctx, req, fn)
}

// fromTail counts req over the tail of its source, reading what the tail
// does not hold yet.
func (c *Cache) fromTail(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	return c.withTail(ctx, req.Query, func(mem *embedded.Store, local store.Query) error {
		req.Query = local
		return mem.CountGroups(ctx, req, fn)
	})
}

// eventsFromTail reads q's events from the tail of its source (the
// events of a signal's window, fetched for its timeline).
func (c *Cache) eventsFromTail(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	var out []store.Event
	err := c.withTail(ctx, q, func(mem *embedded.Store, local store.Query) error {
		evs, err := mem.Events(ctx, local, limit)
		for i := range evs {
			evs[i].ID, evs[i].Index, _ = strings.Cut(evs[i].ID, "\x00")
		}
		out = evs
		return err
	})
	return out, err
}

// withTail makes the tail of q's source hold q's window and calls fn with
// it and q rewritten to read it.
func (c *Cache) withTail(ctx context.Context, q store.Query, fn func(*embedded.Store, store.Query) error) error {
	src := tailSource(q)
	c.mu.Lock()
	t := c.tails[src]
	if t == nil {
		t = &tail{q: store.Query{Index: q.Index, TimeField: q.TimeField}, sealed: map[time.Time]int{}}
		c.tails[src] = t
	}
	c.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := c.extend(ctx, t, q.Window); err != nil {
		return err
	}
	c.tailAnswers.Add(1)
	q.Index = []string{tailIndex}
	return fn(t.mem, q)
}

// extend makes t hold w (t.mu held): it drops what fell behind the floor,
// reads the parts of w it lacks, and counts the newest sealed hour.
func (c *Cache) extend(ctx context.Context, t *tail, w store.Window) error {
	floor := c.tailFloor()
	switch {
	case t.mem == nil || !t.to.After(floor) || w.From.After(t.to) || w.To.Before(t.from):
		// Empty, stale or out of reach: start again at w.
		t.mem, t.from, t.to, t.sealed = embedded.NewMemory(), w.From, w.From, map[time.Time]int{}
	case t.from.Before(floor.Add(-time.Hour)):
		if err := c.prune(t, floor); err != nil {
			return err
		}
	}
	held := store.Window{From: t.from, To: t.to}
	if w.From.Before(t.from) {
		if err := c.read(ctx, t, store.Window{From: w.From, To: t.from}); err != nil {
			return err
		}
		t.from = w.From
	}
	if w.To.After(t.to) {
		if err := c.read(ctx, t, store.Window{From: t.to, To: w.To}); err != nil {
			return err
		}
		t.to = w.To
	}
	return c.sealHour(ctx, t, floor, held)
}

// sealHour counts hour h, once it has sealed and the tail holds it, for
// every signature of the source (t.mu held). An hour the tail held before
// this call (held) is read once more first, for late deliveries; one it
// has just read is not. A span that ends a settle before its window (the
// context fields' histories end a day back) reaches the hour a day later
// and finds it kept, where it would otherwise count it raw, one request
// per field and hour.
func (c *Cache) sealHour(ctx context.Context, t *tail, h time.Time, held store.Window) error {
	w := store.Window{From: h, To: h.Add(time.Hour)}
	if t.mem == nil || t.from.After(w.From) || t.to.Before(w.To) {
		return nil // the tail does not hold it (yet)
	}
	c.mu.Lock()
	known := len(c.known[tailSource(t.q)])
	c.mu.Unlock()
	done, seen := t.sealed[h]
	if seen && done == known {
		return nil // counted for every signature there is
	}
	if !seen && w.From.Before(held.To) && w.To.After(held.From) {
		late, err := c.arrivedLate(ctx, t, w)
		if err != nil {
			return err
		}
		if late {
			if err := c.read(ctx, t, w); err != nil {
				return err
			}
		}
	}
	t.sealed[h] = known
	c.mu.Lock()
	todo := map[string]store.CountRequest{}
	for sig, req := range c.known[tailSource(t.q)] {
		if c.hours[hourID(sig, h)] == nil {
			todo[sig] = req
		}
	}
	c.mu.Unlock()
	for sig, req := range todo {
		req.Query.Window = w
		req.Query.Index = []string{tailIndex}
		hg := &dayGroups{signature: sig, day: h}
		err := t.mem.CountGroups(ctx, req, func(g store.Group) error {
			hg.groups = append(hg.groups, store.Group{Key: internKey(g.Key), Count: g.Count})
			return nil
		})
		if err != nil {
			return wrap(err, "count hour %s from the tail", h.Format(time.RFC3339))
		}
		c.hoursBuilt.Add(1)
		c.mu.Lock()
		if c.hours[hourID(sig, h)] == nil {
			c.hours[hourID(sig, h)] = hg
		}
		c.mu.Unlock()
	}
	return nil
}

// eventCounter is a backend that counts events without reading them.
type eventCounter interface {
	CountEvents(ctx context.Context, q store.Query) (int64, error)
}

// arrivedLate reports whether the source may hold more events in w than
// the tail does: one count of the hour, where reading the hour again cost
// the engine four ticks' reads. CloudTrail only adds events, so equal
// counts mean nothing arrived after the tail read the hour. A backend
// that cannot count has the hour read again.
func (c *Cache) arrivedLate(ctx context.Context, t *tail, w store.Window) (bool, error) {
	src, ok := c.b.(eventCounter)
	if !ok {
		return true, nil
	}
	q := t.q
	q.Window = w
	c.raw.Add(1)
	source, err := src.CountEvents(ctx, q)
	if err != nil {
		return false, wrap(err, "count the sealed hour %s", w)
	}
	q.Index = []string{tailIndex}
	held, err := t.mem.CountEvents(ctx, q)
	if err != nil {
		return false, wrap(err, "count the sealed hour %s in the tail", w)
	}
	if source == held {
		return false, nil
	}
	c.tailRereads.Add(1)
	return true, nil
}

// read adds the source's events of w to the tail; ids already held are
// replaced, so reading a span twice adds only what arrived in between.
func (c *Cache) read(ctx context.Context, t *tail, w store.Window) error {
	q := t.q
	q.Window = w
	c.tailReads.Add(1)
	evs, err := readEvents(ctx, c.b, q, c.opts.TailLimit)
	if err != nil {
		return wrap(err, "read the tail %s", w)
	}
	if len(evs) >= c.opts.TailLimit {
		t.mem = nil // what it holds may be incomplete
		return errTailFull
	}
	c.tailEvents.Add(int64(len(evs)))
	// Ids carry their index: two indices of one pattern may each hold an
	// id, and the engines count both. The id comes first so that events
	// of one time are read back ordered by id, as the engines order them.
	return keep(t.mem, evs, func(e store.Event) string { return e.ID + "\x00" + e.Index })
}

// rawEventReader is a backend that can leave sources undecoded: the tail
// only passes them on, and decoding and encoding again cost it more than
// the counting.
type rawEventReader interface {
	RawEvents(ctx context.Context, q store.Query, limit int) ([]store.Event, error)
}

func readEvents(ctx context.Context, b interface {
	Events(context.Context, store.Query, int) ([]store.Event, error)
}, q store.Query, limit int) ([]store.Event, error) {
	if r, ok := b.(rawEventReader); ok {
		return r.RawEvents(ctx, q, limit)
	}
	return b.Events(ctx, q, limit)
}

// keep writes events into mem under the ids id gives them. The engines'
// sources go in as they came (embedded.KeepSources); a backend that
// decoded them has them encoded again.
func keep(mem *embedded.Store, evs []store.Event, id func(store.Event) string) error {
	docs := make([]store.Doc, 0, len(evs))
	for _, e := range evs {
		src := e.Raw
		if src == nil {
			var err error
			if src, err = json.Marshal(e.Source); err != nil {
				return wrap(err, "tail: encode event %s", e.ID)
			}
		}
		docs = append(docs, store.Doc{ID: id(e), Source: src})
	}
	if err := mem.KeepSources(tailIndex, docs); err != nil {
		return wrap(err, "tail")
	}
	return nil
}

// prune drops the events before floor (t.mu held). The tail's store
// keeps the columns it built for the rest: copying those events into a
// fresh store parsed them all again, an hour's worth of work every hour.
func (c *Cache) prune(t *tail, floor time.Time) error {
	if _, err := t.mem.DeleteBefore(tailIndex, t.q.TimeField, floor); err != nil {
		return wrap(err, "prune the tail")
	}
	t.from = floor
	for h := range t.sealed {
		if h.Before(floor) {
			delete(t.sealed, h)
		}
	}
	return nil
}
