package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/valyala/fastjson"
)

// dayGroups is one day's counts for one signature.
type dayGroups struct {
	signature string
	day       time.Time
	groups    []store.Group
}

// dayDoc is a day as stored. The groups are one opaque string, a line per
// group ("key\x1fkey\tcount"): the state template maps none of the
// document (dynamic: false), and where no template was installed the
// engine's dynamic mapping sees one text field, never a key it could take
// for a date or a number and then refuse the next day's.
type dayDoc struct {
	Kind        string    `json:"kind"`
	Signature   string    `json:"signature"`
	Day         string    `json:"day"`
	Index       []string  `json:"index"`
	GroupBy     []string  `json:"group_by"`
	HourBuckets bool      `json:"hour_buckets,omitempty"`
	Built       time.Time `json:"built"`
	Count       int       `json:"count"`
	Groups      string    `json:"groups"`
	// Hours are the day's groups by hour, each key with its hour of the
	// day ("00" to "23") appended, when HoursKept: the day a span starts
	// on needs its hours one by one, 30 or 90 days after the day was
	// counted, and reads them here instead of counting them again. A
	// signature with hour buckets keeps its hours in its keys already.
	Hours     string `json:"hours,omitempty"`
	HoursKept bool   `json:"hours_kept,omitempty"`
	// Escaped: the keys' backslashes, tabs and newlines are written as
	// \\, \t and \n, since a user agent (the caller's to choose) may hold
	// the line format's own separators. Documents written before hold
	// keys as they were.
	Escaped bool `json:"escaped,omitempty"`
}

const dayKind = "baseline-day"

// dayDocRead is a day document as read. Its groups and its hours are
// each one long JSON string and a reader needs one of them: the document
// is parsed once (fastjson) and a string is unescaped only when read,
// where encoding/json scanned the whole document twice and unescaped both.
type dayDocRead struct {
	v *fastjson.Value
}

// readDayDoc parses a day document and checks it is sig's day d.
func readDayDoc(raw json.RawMessage, sig string, d time.Time) (dayDocRead, error) {
	var p fastjson.Parser
	v, err := p.ParseBytes(raw)
	if err != nil {
		return dayDocRead{}, err
	}
	doc := dayDocRead{v: v}
	if doc.str("kind") != dayKind || doc.str("signature") != sig || doc.str("day") != d.Format(time.DateOnly) {
		return doc, errors.New("not the day document expected")
	}
	return doc, nil
}

// str returns a string field, "" when absent; a field of another type is
// an error the checks on what it holds then report.
func (d dayDocRead) str(key string) string { return string(d.v.GetStringBytes(key)) }

func (d dayDocRead) flag(key string) bool { return d.v.GetBool(key) }

// count is the document's count of groups: 0 when absent (as
// encoding/json read it), -1 when not a whole number (never matched).
func (d dayDocRead) count() int {
	c := d.v.Get("count")
	if c == nil {
		return 0
	}
	n, err := c.Int()
	if err != nil {
		return -1
	}
	return n
}

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
	// A running service holds the sealing day's hours: their sum is the
	// day, and no read of a document another replica may have written
	// first (the same counts) is needed before writing it.
	hours, err := c.heldHours(ctx, req, sig, d)
	if err != nil {
		return nil, err
	}
	if hours != nil {
		c.daysFromHours.Add(1)
		dg = sumHours(sig, d, hours)
		if err := c.store(ctx, id, req, dg, hours, nil); err != nil {
			return nil, err
		}
		return c.remember(id, dg), nil
	}
	var prev *store.Version
	if !c.sealedSince(d) {
		stored, v, err := c.readDay(ctx, id, sig, d)
		if err != nil || stored != nil {
			return stored, err
		}
		prev = v
	}
	if hours, err = c.build(ctx, req, sig, d); err != nil {
		return nil, err
	}
	dg = sumHours(sig, d, hours)
	if c.opts.OnBuild != nil {
		c.opts.OnBuild(sig, d, len(dg.groups))
	}
	if err := c.store(ctx, id, req, dg, hours, prev); err != nil {
		return nil, err
	}
	return c.remember(id, dg), nil
}

// readDay returns day d's document as stored, kept for later ticks, or
// nil when there is none to use; with Rebuild, the version of the one to
// overwrite.
func (c *Cache) readDay(ctx context.Context, id, sig string, d time.Time) (*dayGroups, *store.Version, error) {
	raw, v, err := c.b.GetState(ctx, c.opts.StateIndex, id)
	switch {
	case err == nil && !c.opts.Rebuild:
		dg, err := decodeDay(raw, sig, d)
		if err != nil {
			return nil, nil, wrap(err, "day %s", id)
		}
		c.fromState.Add(1)
		return c.remember(id, dg), nil, nil
	case err == nil:
		return nil, &v, nil
	case !errors.Is(err, store.ErrNotFound):
		// The days are an optimisation: a state index this process may
		// not read (a read-only backtest role) costs raw counting only.
		c.stateError(err, "read", id)
	}
	return nil, nil, nil
}

// sealedSince reports whether day d sealed after this cache started: no
// document of it can be older than this process, and one another replica
// wrote since holds the same counts, so the day is counted and written
// create-only without a read first (a running service's every new day).
func (c *Cache) sealedSince(d time.Time) bool {
	return !c.opts.Rebuild && d.Add(day).Add(c.opts.Seal).After(c.started)
}

// remember keeps dg for later ticks; a day already kept by a concurrent
// build wins (both hold the same counts).
func (c *Cache) remember(id string, dg *dayGroups) *dayGroups {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.days[id]; cur != nil && !c.opts.Rebuild {
		return cur
	}
	c.dropDay(id)
	c.days[id] = dg
	c.dayGroups += len(dg.groups)
	for c.dayGroups > c.opts.MemoryGroups && len(c.days) > 1 {
		c.evictOldest(id)
	}
	return dg
}

// dropDay forgets a day (c.mu held).
func (c *Cache) dropDay(id string) {
	if dg := c.days[id]; dg != nil {
		c.dayGroups -= len(dg.groups)
		delete(c.days, id)
	}
}

// evictOldest forgets the oldest day held, other than keep (c.mu held):
// over the memory budget, the days furthest back are read from their
// state documents again when next needed.
func (c *Cache) evictOldest(keep string) {
	var oldest string
	for id, dg := range c.days {
		if id != keep && (oldest == "" || dg.day.Before(c.days[oldest].day)) {
			oldest = id
		}
	}
	c.dropDay(oldest)
	c.evicted.Add(1)
}

// hour returns one whole sealed hour's counts, kept in memory only: hours
// stand in for the partial days at the ends of a span until the day seals
// (today) or the span moves past it (the day the history starts on), so a
// restart recounts at most a day of them, once.
func (c *Cache) hour(ctx context.Context, req store.CountRequest, sig string, h time.Time) (*dayGroups, error) {
	id := hourID(sig, h)
	c.mu.Lock()
	hg := c.hours[id]
	c.mu.Unlock()
	if hg != nil && !c.opts.Rebuild {
		c.hoursMemory.Add(1)
		return hg, nil
	}
	if hg, err := c.hourFromTail(ctx, req, id, h); hg != nil || err != nil {
		return hg, err
	}
	hours, err := c.hoursFromDoc(ctx, sig, h)
	if err != nil {
		return nil, err
	}
	if hours == nil {
		if hours, err = c.countHours(ctx, req, sig, h); err != nil {
			return nil, err
		}
		c.hoursBuilt.Add(int64(len(hours)))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hg := range hours {
		hid := hourID(sig, hg.day)
		if cur := c.hours[hid]; cur == nil || c.opts.Rebuild && hid == id {
			c.hours[hid] = hg
		}
	}
	return c.hours[id], nil
}

// countHours counts, in one request, every sealed hour from h to the end
// of its day (or to what has sealed), split by an hour component added to
// the key: the day a span starts on needs its remaining hours one by one
// as the span's start moves through it, and asking for each on its own
// cost a request per signature and hour (23 per signature each day).
// Hours without events come back empty, so they are not asked again.
func (c *Cache) countHours(ctx context.Context, req store.CountRequest, sig string, h time.Time) ([]*dayGroups, error) {
	byHour := c.hoursFrom(sig, h)
	end := h.Add(time.Duration(len(byHour)) * time.Hour)
	full := req
	full.Restrict, full.HourBuckets = nil, true
	full.Query.Window = store.Window{From: h, To: end}
	c.raw.Add(1)
	err := c.b.CountGroups(ctx, full, func(g store.Group) error {
		at, ok := store.ParseTime(g.Key[len(g.Key)-1])
		hg := byHour[at.Truncate(time.Hour)]
		if !ok || hg == nil {
			return fmt.Errorf("hour key %q outside %s", g.Key[len(g.Key)-1], full.Query.Window)
		}
		key := g.Key
		if !req.HourBuckets { // the hour was added for the split: not part of the signature's key
			key = key[:len(key)-1]
		}
		hg.groups = append(hg.groups, store.Group{Key: internKey(key), Count: g.Count})
		return nil
	})
	if err != nil {
		return nil, wrap(err, "count the hours from %s to %s", h.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return values(byHour), nil
}

// hoursFrom returns empty groups for every sealed hour from h to the end
// of its day (at least h itself: the plan asked for it).
func (c *Cache) hoursFrom(sig string, h time.Time) map[time.Time]*dayGroups {
	end := h.Truncate(day).Add(day)
	if sealed := c.opts.Now().Add(-c.opts.Seal).UTC().Truncate(time.Hour); sealed.Before(end) {
		end = sealed
	}
	if !end.After(h) {
		end = h.Add(time.Hour)
	}
	byHour := map[time.Time]*dayGroups{}
	for t := h; t.Before(end); t = t.Add(time.Hour) {
		byHour[t] = &dayGroups{signature: sig, day: t}
	}
	return byHour
}

func values(byHour map[time.Time]*dayGroups) []*dayGroups {
	out := make([]*dayGroups, 0, len(byHour))
	for _, hg := range byHour {
		out = append(out, hg)
	}
	return out
}

// hoursFromDoc returns the hours from h to the end of its day from that
// day's document, when it keeps them (or its keys carry them), and nil
// otherwise: the day a span starts on was counted, by hour, a span ago,
// and one state read replaces a count.
func (c *Cache) hoursFromDoc(ctx context.Context, sig string, h time.Time) ([]*dayGroups, error) {
	d := h.UTC().Truncate(day)
	if c.opts.Rebuild || d.Add(day).After(c.opts.Now().Add(-c.opts.Seal)) {
		return nil, nil // not sealed: it has no document yet
	}
	id := DocID(sig, d)
	raw, _, err := c.b.GetState(ctx, c.opts.StateIndex, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		c.stateError(err, "read", id)
		return nil, nil
	}
	hours, err := hoursOf(raw, sig, d)
	if err != nil {
		// A document this process cannot read costs a count, not the rule.
		c.stateError(wrap(err, "hours of day %s", id), "decode", id)
		return nil, nil
	}
	if hours == nil {
		return nil, nil // written before days kept their hours
	}
	byHour := c.hoursFrom(sig, h)
	for at, groups := range hours {
		if hg := byHour[at]; hg != nil {
			hg.groups = groups
		}
	}
	c.hoursFromState.Add(int64(len(byHour)))
	return values(byHour), nil
}

// hoursOf returns the groups by hour that a day's document keeps, nil if
// it keeps none (written before days kept their hours).
func hoursOf(raw json.RawMessage, sig string, d time.Time) (map[time.Time][]store.Group, error) {
	doc, err := readDayDoc(raw, sig, d)
	if err != nil {
		return nil, err
	}
	hourBuckets := doc.flag("hour_buckets")
	if !doc.flag("hours_kept") && !hourBuckets {
		return nil, nil
	}
	lines := doc.str("hours")
	if hourBuckets {
		lines = doc.str("groups")
	}
	groups, err := decodeGroups(lines, doc.flag("escaped"))
	if err != nil {
		return nil, err
	}
	out := map[time.Time][]store.Group{}
	for _, g := range groups {
		last := g.Key[len(g.Key)-1]
		var at time.Time
		if hourBuckets {
			t, ok := store.ParseTime(last)
			if !ok {
				return nil, fmt.Errorf("hour key %q", last)
			}
			at = t.UTC().Truncate(time.Hour)
		} else {
			hh, err := strconv.Atoi(last)
			if err != nil || hh < 0 || hh > 23 || len(g.Key) < 2 {
				return nil, fmt.Errorf("hour %q of key %q", last, store.KeyString(g.Key))
			}
			at = d.Add(time.Duration(hh) * time.Hour)
			g.Key = g.Key[:len(g.Key)-1]
		}
		if !at.Truncate(day).Equal(d) {
			return nil, fmt.Errorf("hour %s outside the day", at.Format(time.RFC3339))
		}
		out[at] = append(out[at], g)
	}
	return out, nil
}

// hourFromTail returns the newest sealed hour as the tail counted it for
// every signature of the source (sealHour), or nil when the tail does not
// hold it.
func (c *Cache) hourFromTail(ctx context.Context, req store.CountRequest, id string, h time.Time) (*dayGroups, error) {
	q := req.Query
	q.Window = store.Window{From: h, To: h.Add(time.Hour)}
	if c.opts.Rebuild || !c.inTail(q.Window) {
		return nil, nil
	}
	err := c.withTail(ctx, q, func(*embedded.Store, store.Query) error { return nil })
	if errors.Is(err, errTailFull) {
		c.tailFallbacks.Add(1)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hours[id], nil
}

// internKey copies a group key with each value interned: the same
// identities, actions and addresses recur in every day and hour held, and
// would otherwise be held once per day and signature.
func internKey(key []string) []string {
	out := make([]string, len(key))
	for i, v := range key {
		out[i] = unique.Make(v).Value()
	}
	return out
}

// hourID keys one signature's hour in memory.
func hourID(sig string, h time.Time) string { return sig + "-" + h.UTC().Format("2006-01-02T15") }

// heldHours returns d's 24 hours when each is held in memory or can be
// counted from the tail, and nil otherwise. A running service counted the
// day's hours as they sealed, the last one from the tail at the day's own
// seal, so the day needs no count of its own from the engine. An hour
// seals Seal after it ends, as a day does, so a day summed from its hours
// holds what each hour held at its seal: an event delivered more than
// Seal late is left out either way.
func (c *Cache) heldHours(ctx context.Context, req store.CountRequest, sig string, d time.Time) ([]*dayGroups, error) {
	if c.opts.Rebuild {
		return nil, nil
	}
	hours := make([]*dayGroups, 0, 24)
	for h := d; h.Before(d.Add(day)); h = h.Add(time.Hour) {
		id := hourID(sig, h)
		c.mu.Lock()
		hg := c.hours[id]
		c.mu.Unlock()
		if hg == nil {
			var err error
			if hg, err = c.hourFromTail(ctx, req, id, h); err != nil || hg == nil {
				return nil, err
			}
		}
		hours = append(hours, hg)
	}
	return hours, nil
}

// sumHours is a day's groups: the sum of its hours'.
func sumHours(sig string, d time.Time, hours []*dayGroups) *dayGroups {
	return &dayGroups{signature: sig, day: d, groups: sumParts(hours...).groups}
}

// build counts one whole day over every entity, by hour, in one request:
// the day is the sum of its hours, and the hours are kept in its document
// for the day the day becomes a span's first. The restriction of the
// request that asked is applied on reading, so every later tick, whatever
// its active entities, can use the same document.
func (c *Cache) build(ctx context.Context, req store.CountRequest, sig string, d time.Time) ([]*dayGroups, error) {
	hours, err := c.countHours(ctx, req, sig, d)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(hours, func(a, b *dayGroups) int { return a.day.Compare(b.day) })
	c.built.Add(1)
	return hours, nil
}

// store writes a day's document. Another replica may have written it
// first: its counts are the same, so losing that race is fine.
func (c *Cache) store(ctx context.Context, id string, req store.CountRequest, dg *dayGroups, hours []*dayGroups, prev *store.Version) error {
	doc := dayDoc{Kind: dayKind, Signature: dg.signature, Day: dg.day.Format(time.DateOnly),
		Index: req.Query.Index, GroupBy: req.GroupBy, HourBuckets: req.HourBuckets, Built: c.opts.Now().UTC(),
		Count: len(dg.groups), Groups: encodeGroups(dg.groups), Escaped: true}
	if !req.HourBuckets {
		doc.Hours, doc.HoursKept = encodeHours(hours), true
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return wrap(err, "encode day %s", id)
	}
	if _, err := c.b.PutState(ctx, c.opts.StateIndex, id, raw, prev); err != nil && !errors.Is(err, store.ErrConflict) {
		c.stateError(err, "write", id)
	}
	return nil
}

// stateError logs the first failure to read or write day documents and
// counts every one: the answer stays right, only the saving is lost.
func (c *Cache) stateError(err error, op, id string) {
	if c.stateErrors.Add(1) == 1 {
		c.opts.Log.Warn().Err(err).Str("op", op).Str("id", id).Str("state_index", c.opts.StateIndex).
			Msg("baseline: cannot keep days in the state index; counting history raw (later failures are counted, not logged)")
	}
}

func decodeDay(raw json.RawMessage, sig string, d time.Time) (*dayGroups, error) {
	doc, err := readDayDoc(raw, sig, d)
	if err != nil {
		return nil, err
	}
	groups, err := decodeGroups(doc.str("groups"), doc.flag("escaped"))
	if err != nil {
		return nil, err
	}
	if n := doc.count(); len(groups) != n {
		return nil, fmt.Errorf("%d groups, the document says %d", len(groups), n)
	}
	return &dayGroups{signature: sig, day: d, groups: groups}, nil
}

// The line format: one group per line, its key (store.KeyString,
// escaped) then a tab and its count.
var (
	escapeKey   = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`)
	unescapeKey = strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n")
)

func encodeGroups(groups []store.Group) string {
	var b strings.Builder
	for _, g := range groups {
		writeGroup(&b, g, "")
	}
	return b.String()
}

// encodeHours writes each hour's groups with the hour of the day
// appended to the key.
func encodeHours(hours []*dayGroups) string {
	var b strings.Builder
	for _, hg := range hours {
		hh := store.KeySep + hg.day.UTC().Format("15")
		for _, g := range hg.groups {
			writeGroup(&b, g, hh)
		}
	}
	return b.String()
}

func writeGroup(b *strings.Builder, g store.Group, suffix string) {
	_, _ = escapeKey.WriteString(b, store.KeyString(g.Key))
	b.WriteString(suffix)
	b.WriteByte('\t')
	b.WriteString(strconv.FormatInt(g.Count, 10))
	b.WriteByte('\n')
}

// decodeGroups reads the line format; escaped says the keys were escaped.
func decodeGroups(s string, escaped bool) ([]store.Group, error) {
	var out []store.Group
	for line := range strings.Lines(s) {
		key, count, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		n, err := strconv.ParseInt(count, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad group line %q", line)
		}
		if escaped && strings.IndexByte(key, '\\') >= 0 { // most keys hold no escape: Replace would copy them
			key = unescapeKey.Replace(key)
		}
		out = append(out, store.Group{Key: internKey(store.SplitKey(key)), Count: n})
	}
	return out, nil
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
	if seen && w.To.Truncate(time.Hour).Equal(prev.Truncate(time.Hour)) {
		// Days and hours fall out at hour boundaries at the finest: the
		// sweep over every held day and hour waits for the next one.
		c.mu.Unlock()
		return
	}
	inMemory := w.To.Add(-c.span[sig] - day)
	for id, dg := range c.days {
		if dg.signature == sig && dg.day.Before(inMemory) {
			c.dropDay(id)
		}
	}
	// An hour is done with once the span's start passed it, or once its
	// day is whole and sealed within the span (a day document answers).
	sealedBy := c.opts.Now().Add(-c.opts.Seal)
	for id, hg := range c.hours {
		if hg.signature != sig {
			continue
		}
		d := hg.day.Truncate(day)
		// Two days of slack: rules replayed side by side (backtest) share
		// signatures and move through the span at their own pace.
		passed := hg.day.Before(w.From.Add(-2 * day))
		dayAnswers := !d.Before(w.From) && !d.Add(day).After(sealedBy) && !d.Add(day).After(w.To)
		if passed || dayAnswers {
			delete(c.hours, id)
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
