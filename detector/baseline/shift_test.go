package baseline_test

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// loadFourDays loads four whole days from base: the two-day fixture and a
// second one, of another seed, two days later.
func loadFourDays(t *testing.T, b store.Backend) (index, state string) {
	t.Helper()
	docs := storetest.FixtureN(3, 1500)
	for _, d := range storetest.FixtureN(4, 1500) {
		src := maps.Clone(d.Source)
		at, err := time.Parse(time.RFC3339Nano, src[storetest.FieldTime].(string))
		if err != nil {
			t.Fatal(err)
		}
		src[storetest.FieldTime] = at.Add(48 * time.Hour).UTC().Format(time.RFC3339Nano)
		if ev, ok := src["event"].(map[string]any); ok {
			ev = maps.Clone(ev)
			delete(ev, "ingested")
			src["event"] = ev
		}
		docs = append(docs, storetest.Doc{ID: "later-" + d.ID, Source: src})
	}
	return loadDocs(t, b, "shift-", docs)
}

// TestSumsFollowTheSpan: as a 74-hour span moves over four days in
// 15-minute ticks, its sums of days and hours are shifted by the parts
// that came and left (a day joins at its seal and leaves as the span's
// start passes it; an hour leaves at the start and one joins at the end
// every hour), and every answer still equals one aggregation over the
// span, on every backend. A shift that forgot to take off what left, or
// to add what came, would differ from the first tick it happens.
func TestSumsFollowTheSpan(t *testing.T) {
	const span = 74 * time.Hour
	for name, b := range equivalenceBackends(t) {
		t.Run(name, func(t *testing.T) {
			index, state := loadFourDays(t, b)
			now := base
			c, err := baseline.New(b, baseline.Options{StateIndex: state, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			for tick := base.Add(70 * time.Hour); tick.Before(base.Add(78 * time.Hour)); tick = tick.Add(15 * time.Minute) {
				now = tick
				// Each shape twice: a history that ends at the tick, and one
				// that ends a day back (a context history): the same
				// signature over other hours.
				for i, shape := range requests() {
					for _, end := range []time.Time{tick, tick.Add(-24 * time.Hour)} {
						req := shape
						req.Query.Index = []string{index}
						req.Query.Window = store.Window{From: end.Add(-span), To: end}
						if got, want := collect(t, c, req), collect(t, b, req); !maps.Equal(got, want) {
							t.Fatalf("tick %s request %d ending %s: %v", tick.Format(time.DateTime), i, end.Format(time.DateTime), diff(got, want))
						}
					}
				}
			}
			st := c.Stats()
			if st.DaySumsShifted == 0 || st.HourSumsShifted == 0 {
				t.Fatalf("stats %+v: want sums of days and of hours shifted, not only summed again", st)
			}
			// Eight hours seal during the ticks: each shape and series
			// shifts its hours at six of them at least (the others move
			// a day), though the two series share a signature.
			if want := int64(len(requests()) * 2 * 6); st.HourSumsShifted < want {
				t.Fatalf("hour sums shifted %d times, want at least %d: the two series of a signature undo each other's sums", st.HourSumsShifted, want)
			}
			// Each signature's two series (ending at the tick, a day back)
			// keep a sum each: a day's sum is made from all its days only
			// at its series' first request, then shifted or reused.
			sigs := map[string]bool{}
			for _, shape := range requests() {
				shape.Query.Index = []string{index}
				sigs[baseline.Signature(shape)] = true
			}
			t.Logf("day sums summed %d, shifted %d; signatures %d", st.DaySumsSummed, st.DaySumsShifted, len(sigs))
			if max := int64(2 * len(sigs)); st.DaySumsSummed > max {
				t.Fatalf("day sums summed from all their days %d times, want at most %d (two series per signature)", st.DaySumsSummed, max)
			}
			// The days that sealed during the ticks were followed hour by
			// hour: each is the sum of its hours, not counted again.
			if st.DaysFromHours == 0 {
				t.Fatalf("stats %+v: want the days that sealed during the ticks summed from their hours", st)
			}
			// The span's start entered a day counted at the first tick:
			// its hours come from that day's document.
			if st.HoursFromState == 0 {
				t.Fatalf("stats %+v: want the first day's hours read from its document, not counted again", st)
			}
		})
	}
}

// TestHoursFromDayDocuments: a day's document keeps its hours, so a later
// span starting inside that day reads them from it instead of counting
// them; a document written before days kept their hours is counted from
// the raw events, with the same answer.
func TestHoursFromDayDocuments(t *testing.T) {
	b := embedded.NewMemory()
	t.Cleanup(func() { b.Close() })
	index, state := loadFixture(t, b)
	now := base.Add(50 * time.Hour) // both days sealed
	opts := baseline.Options{StateIndex: state, Now: func() time.Time { return now }, NoTail: true}
	req := store.CountRequest{Query: store.Query{Index: []string{index}, TimeField: storetest.FieldTime,
		Window: store.Window{From: base, To: base.Add(48 * time.Hour)}}, GroupBy: []string{storetest.FieldARN, storetest.FieldAction}}
	first, _ := baseline.New(b, opts)
	collect(t, first, req) // builds both days

	// The first day's document as an older release wrote it.
	sig := baseline.Signature(req)
	id := baseline.DocID(sig, base)
	raw, v, err := b.GetState(t.Context(), state, id)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["hours_kept"] != true || doc["hours"] == "" {
		t.Fatalf("day document %s keeps no hours: %v", id, doc["hours_kept"])
	}
	delete(doc, "hours")
	delete(doc, "hours_kept")
	old, _ := json.Marshal(doc)
	if _, err := b.PutState(t.Context(), state, id, old, &v); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		from      time.Time
		fromState bool
	}{
		{"old document: counted", base.Add(5 * time.Hour), false},
		{"document with hours: read", base.Add(29 * time.Hour), true},
	} {
		c, _ := baseline.New(b, opts)
		r := req
		r.Query.Window.From = tc.from
		if got, want := collect(t, c, r), collect(t, b, r); !maps.Equal(got, want) {
			t.Fatalf("%s: %v", tc.name, diff(got, want))
		}
		st := c.Stats()
		if read := st.HoursFromState > 0; read != tc.fromState || tc.fromState && st.RawQueries != 0 {
			t.Fatalf("%s: stats %+v", tc.name, st)
		}
	}
}

// readCountedFixture loads the fixture into a new in-memory store and
// returns it, the same store counting its state reads, and the indices.
func readCountedFixture(t *testing.T) (mem *embedded.Store, b *readCounter, index, state string) {
	t.Helper()
	mem = embedded.NewMemory()
	t.Cleanup(func() { mem.Close() })
	index, state = loadFixture(t, mem)
	return mem, &readCounter{Backend: mem, reads: map[string]int{}}, index, state
}

// readCounter counts the state reads of day documents.
type readCounter struct {
	store.Backend
	reads map[string]int
}

func (r *readCounter) GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error) {
	r.reads[id]++
	return r.Backend.GetState(ctx, index, id)
}

// TestDaySealedFromHeldHoursReadsNoDocument: a running cache that held a
// day's hours as they sealed writes the day's document from them when the
// day seals, without reading it first, and the answers stay those of one
// aggregation.
func TestDaySealedFromHeldHoursReadsNoDocument(t *testing.T) {
	mem, b, index, state := readCountedFixture(t)
	now := base.Add(2 * time.Hour)
	c, err := baseline.New(b, baseline.Options{StateIndex: state, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := store.CountRequest{Query: store.Query{Index: []string{index}, TimeField: storetest.FieldTime},
		GroupBy: []string{storetest.FieldARN, storetest.FieldAction}}
	for ; now.Before(base.Add(28 * time.Hour)); now = now.Add(15 * time.Minute) {
		req.Query.Window = store.Window{From: base.Add(-time.Hour), To: now}
		if got, want := collect(t, c, req), collect(t, mem, req); !maps.Equal(got, want) {
			t.Fatalf("tick %s: %v", now.Format(time.DateTime), diff(got, want))
		}
	}
	st := c.Stats()
	if st.DaysFromHours != 1 {
		t.Fatalf("stats %+v: want the first day summed from its held hours", st)
	}
	id := baseline.DocID(baseline.Signature(req), base)
	if n := b.reads[id]; n != 0 {
		t.Errorf("the day's document was read %d times before it was written from held hours", n)
	}
	if _, _, err := mem.GetState(t.Context(), state, id); err != nil {
		t.Errorf("the day's document was not written: %v", err)
	}
}

// TestDaySealedWhileLiveIsCountedWithoutARead: a day that seals while the
// cache runs, asked for whole (a span ending at a day boundary, so its
// hours were never held), is counted and written without reading its
// document first; a cache started after the seal reads that document and
// counts nothing, and both answer as one aggregation.
func TestDaySealedWhileLiveIsCountedWithoutARead(t *testing.T) {
	mem, b, index, state := readCountedFixture(t)
	now := base.Add(20 * time.Hour)
	opts := baseline.Options{StateIndex: state, Now: func() time.Time { return now }}
	req := store.CountRequest{Query: store.Query{Index: []string{index}, TimeField: storetest.FieldTime},
		GroupBy: []string{storetest.FieldARN, storetest.FieldAction}}
	ask := func(c *baseline.Cache) {
		t.Helper()
		req.Query.Window = store.Window{From: base.Add(-24 * time.Hour), To: now.Add(-baseline.DefaultSeal).Truncate(24 * time.Hour)}
		if got, want := collect(t, c, req), collect(t, mem, req); !maps.Equal(got, want) {
			t.Fatalf("%s: %v", now.Format(time.DateTime), diff(got, want))
		}
	}
	live, err := baseline.New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	for ; now.Before(base.Add(30 * time.Hour)); now = now.Add(15 * time.Minute) {
		ask(live)
	}
	id, before := baseline.DocID(baseline.Signature(req), base), baseline.DocID(baseline.Signature(req), base.Add(-24*time.Hour))
	// The day before had sealed when the cache started: it is looked
	// for first (none there), then counted.
	if st := live.Stats(); st.DaysBuilt != 2 || b.reads[id] != 0 || b.reads[before] != 1 {
		t.Fatalf("live cache: %d reads of the day sealed while it ran, %d of the one before, stats %+v; want both built, only the older looked for",
			b.reads[id], b.reads[before], st)
	}
	if _, _, err := mem.GetState(t.Context(), state, id); err != nil {
		t.Fatalf("the day's document was not written: %v", err)
	}
	restarted, err := baseline.New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	ask(restarted)
	if st := restarted.Stats(); st.DaysBuilt != 0 || st.DaysState != 2 || b.reads[id] != 1 {
		t.Fatalf("restarted cache: %d reads, stats %+v; want the day read from its document, not counted", b.reads[id], st)
	}
}
