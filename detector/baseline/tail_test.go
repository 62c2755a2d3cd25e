package baseline_test

import (
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// TestTailFollowsTicks: a service's ticks, each asking for its window and
// the history before it, get from the cache (days, hours and the tail)
// what one aggregation gives, on every backend; the tail reads each
// source a few times per tick however many counts it answers. An event
// delivered late into an hour the tail already read is counted once that
// hour seals. Events read for a signal's timeline are the backend's.
func TestTailFollowsTicks(t *testing.T) {
	const min, h = time.Minute, time.Hour
	for name, b := range equivalenceBackends(t) {
		t.Run(name, func(t *testing.T) {
			index, state := loadFixture(t, b)
			now := base.Add(30 * h)
			c, err := baseline.New(b, baseline.Options{StateIndex: state, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			lateAt := base.Add(33*h + 10*min)
			lateSealed := lateAt.Truncate(h).Add(h + baseline.DefaultSeal)
			late, lateCompared, ticks := false, false, 0
			for tick := base.Add(30 * h); tick.Before(base.Add(40 * h)); tick = tick.Add(15 * min) {
				now, ticks = tick, ticks+1
				if !late && !tick.Before(base.Add(34*h)) {
					storetest.Load(t, b, index, []storetest.Doc{{ID: "late", Source: map[string]any{
						storetest.FieldTime: lateAt.Format(time.RFC3339), storetest.FieldARN: "arn:aws:iam::111111111111:user/alice",
						"event": map[string]any{"action": "ListUsers", "provider": "iam.amazonaws.com", "kind": "event"}}}})
					if err := b.Refresh(t.Context(), index); err != nil {
						t.Fatal(err)
					}
					late = true
				}
				for _, f := range []store.Filter{{}, {Terms: map[string][]string{storetest.FieldARN: {"arn:aws:iam::111111111111:user/alice"}}}} {
					q := store.Query{Index: []string{index}, TimeField: storetest.FieldTime, Window: store.Window{From: tick.Add(-2 * h), To: tick}, Filter: f}
					if late && q.Window.Contains(lateAt) && tick.Before(lateSealed) {
						continue
					}
					got, err := c.Events(t.Context(), q, 25)
					if err != nil {
						t.Fatal(err)
					}
					want, err := b.Events(t.Context(), q, 25)
					if err != nil {
						t.Fatal(err)
					}
					if len(want) == 0 || !reflect.DeepEqual(got, want) {
						t.Fatalf("tick %s: events of %s from the cache differ from the backend's (%d, %d events)", tick.Format(time.TimeOnly), q.Window, len(got), len(want))
					}
				}
				windows := []store.Window{{From: tick.Add(-15 * min), To: tick}, {From: tick.Add(-15*min - 20*h).Truncate(h), To: tick.Add(-15 * min)}}
				for i, shape := range requests() {
					for _, w := range windows {
						req := shape
						req.Query.Index, req.Query.Window = []string{index}, w
						if late && w.Contains(lateAt) && tick.Before(lateSealed) {
							continue // not sealed yet: the tail may not have seen it
						}
						lateCompared = lateCompared || (late && w.Contains(lateAt))
						if got, want := collect(t, c, req), collect(t, b, req); !maps.Equal(got, want) {
							t.Fatalf("tick %s request %d window %s: %v", tick.Format(time.TimeOnly), i, w, diff(got, want))
						}
					}
				}
			}
			st := c.Stats()
			if !lateCompared {
				t.Fatal("no window holding the late event was compared after its hour sealed")
			}
			// The late event's hour, and only it, was read again: every
			// other sealed hour held what the source held.
			if st.TailRereads != 1 {
				t.Fatalf("stats %+v: want the one hour with a late event read again, no other", st)
			}
			if st.TailAnswers == 0 || st.TailFallbacks != 0 {
				t.Fatalf("stats %+v: want counts answered from the tail, none sent back to the engine", st)
			}
			// A read per tick for the new window, one more per sealing hour,
			// and the first reads back to the floor.
			if max := int64(ticks + ticks/4 + 4); st.TailReads > max {
				t.Fatalf("the tail read the backend %d times in %d ticks, want at most %d", st.TailReads, ticks, max)
			}
		})
	}
}
