package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/rules"
)

// stateCalls counts the state requests made through it, and apart the
// lease documents written (a checkpoint is written in its lease's).
type stateCalls struct {
	*embedded.Store
	gets, puts, leaseWrites atomic.Int64
}

func (s *stateCalls) GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error) {
	s.gets.Add(1)
	return s.Store.GetState(ctx, index, id)
}

func (s *stateCalls) PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error) {
	s.puts.Add(1)
	if strings.HasPrefix(id, "lease:") {
		s.leaseWrites.Add(1)
	}
	return s.Store.PutState(ctx, index, id, doc, ifVersion)
}

// PutStates counts as one write: it is one request.
func (s *stateCalls) PutStates(ctx context.Context, index string, puts []store.StatePut) ([]store.StatePutResult, error) {
	s.puts.Add(1)
	for _, p := range puts {
		if strings.HasPrefix(p.ID, "lease:") {
			s.leaseWrites.Add(1)
		}
	}
	return s.Store.PutStates(ctx, index, puts)
}

func (s *stateCalls) take() (gets, puts int64) { return s.gets.Swap(0), s.puts.Swap(0) }

// One replica's upkeep is at most one request per lease sync however many
// rules it holds (a read once a lease while it is alone, see
// TestLoneReplicaRenewsByReading),
// and a rule's tick writes its checkpoint without reading it: the write is
// the fence. (Renewing each lease read and wrote every lease document
// every sync: 1,300 state requests per tick for the pack.)
func TestLeaseUpkeepIsOneRequest(t *testing.T) {
	ctx := t.Context()
	st := &stateCalls{Store: embedded.NewMemory()}
	var rs []*rules.Rule
	for i := range 5 {
		rs = append(rs, cloneRule(testRules(t)[1], fmt.Sprintf("rule-%d", i)))
	}
	clock := newClock(ts("2024-03-05T10:05:00Z"))
	m := newTestManager(t, st, newRecorder(nil), clock, "only", nil)
	m.Reload(rs)
	if err := m.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := m.RunRule(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	st.take()
	sync := func() error { return m.SyncLeases(ctx) }
	joinWait(t, st, clock, sync)
	for clock.Now().Before(ts("2024-03-05T11:00:00Z")) {
		clock.Advance(20 * time.Second)
		if err := sync(); err != nil {
			t.Fatal(err)
		}
	}
	st.take()
	for hour := range 3 {
		// The hour's ticks, then its syncs every 20 s (a third of the
		// 1-minute lease): one read a lease, and the checkpoints' one write.
		tick := clock.Now().Truncate(time.Hour)
		for _, r := range rs {
			if !m.Holds(r.ID) {
				t.Fatalf("hour %d: %s not held", hour, r.ID)
			}
			if err := m.RunRule(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if gets, puts := st.take(); gets != 0 || puts != 0 {
				t.Fatalf("hour %d: %s's tick made %d reads and %d writes, want none (its checkpoint waits for the sync)", hour, r.ID, gets, puts)
			}
		}
		for range 180 {
			clock.Advance(20 * time.Second)
			if err := sync(); err != nil {
				t.Fatal(err)
			}
		}
		if gets, puts := st.take(); gets != 60 || puts != 1 {
			t.Fatalf("hour %d: a lone replica's 180 lease syncs made %d reads and %d writes, want 60 (one a lease) and 1 (all %d checkpoints in one)", hour, gets, puts, len(rs))
		}
		for _, r := range rs {
			if cp := readCheckpoint(t, st.Store, "offtrail-state-test", r.ID); !cp.End.Equal(tick) {
				t.Fatalf("hour %d: %s's stored checkpoint %s, want %s", hour, r.ID, cp.End, tick)
			}
		}
	}
}

// A lease is held while its owner's heartbeat is live, though the lease's
// own expiry has long passed; once the heartbeat lapses another replica
// takes it, and the first finds that out at its next heartbeat.
func TestLeaseHeldByHeartbeat(t *testing.T) {
	ctx := t.Context()
	st := embedded.NewMemory()
	clock := newClock(ts("2024-03-05T10:00:00Z"))
	a := newLeaser(st, "s", "a", time.Minute, clock.Now)
	b := newLeaser(st, "s", "b", time.Minute, clock.Now)
	beat(t, a)
	mustAcquire(t, a, "r")
	for range 9 { // three minutes of a's heartbeats
		clock.Advance(20 * time.Second)
		beat(t, a)
	}
	beat(t, b)
	if ok, err := b.acquire(ctx, "r"); ok || err != nil {
		t.Fatalf("b took a lease whose owner is live: %v %v", ok, err)
	}
	if !a.holds("r") {
		t.Fatal("a's heartbeat did not renew its lease")
	}
	beat(t, a)    // a sees b in the list and writes its heartbeat again
	for range 6 { // a stops (paused, partitioned); b keeps its heartbeat two leases
		clock.Advance(20 * time.Second)
		beat(t, b)
	}
	if a.holds("r") {
		t.Fatal("a holds a lease past its own heartbeat")
	}
	if ok, err := b.acquire(ctx, "r"); !ok || err != nil {
		t.Fatalf("b did not take the lease of a dead owner: %v %v", ok, err)
	}
	// a comes back: its heartbeat had lapsed, so it checks its leases, and
	// names the one it lost.
	if _, lost, err := a.heartbeat(ctx); err != nil || !slices.Equal(lost, []string{"r"}) {
		t.Fatalf("a's heartbeat after its lapse: lost %q, %v; want [r]", lost, err)
	}
	if a.holds("r") {
		t.Fatal("a still holds the lease b took")
	}
	if !b.holds("r") {
		t.Fatal("b lost the lease")
	}
}

// A replica alone in the list renews its leases by reading the list once
// a lease, and one that joins waits two leases before taking a lapsed
// owner's lease: the lone owner sees it at its next read, writes its
// heartbeat again and keeps its leases. A lone owner that dies is taken
// over two leases after the newcomer joined.
func TestLoneReplicaRenewsByReading(t *testing.T) {
	ctx := t.Context()
	st, clock, a := joined(t)
	mustAcquire(t, a, "r")
	st.take()
	joinWait(t, st, clock, func() error { _, _, err := a.heartbeat(ctx); return err })
	for i := range 7 {
		clock.Advance(20 * time.Second)
		beat(t, a)
		want := int64(0)
		if i%3 == 0 {
			want = 1 // one read a lease; the syncs between read nothing
		}
		if gets, puts := st.take(); gets != want || puts != 0 {
			t.Fatalf("lone heartbeat %d made %d reads and %d writes, want %d and 0", i, gets, puts, want)
		}
	}
	if !a.holds("r") {
		t.Fatal("a's reads did not renew its lease")
	}
	// b joins just after a's read (a's entry in the list lapsed minutes
	// ago), and a's next sync comes a third of a lease late: a sees b only
	// 80 s later, and b must not take the lease in between.
	b := newLeaser(st, "s", "b", time.Minute, clock.Now)
	beat(t, b)
	for range 4 {
		if ok, err := b.acquire(ctx, "r"); ok || err != nil {
			t.Fatalf("b took a live lone replica's lease before its next read: %v %v", ok, err)
		}
		clock.Advance(20 * time.Second)
		beat(t, b)
	}
	for i := range 6 { // two leases of both replicas' syncs
		st.take()
		beat(t, a)
		if _, puts := st.take(); puts != 1 {
			t.Fatalf("a, no longer alone, wrote %d heartbeats at sync %d, want 1", puts, i)
		}
		if ok, err := b.acquire(ctx, "r"); ok || err != nil {
			t.Fatalf("b took a live replica's lease: %v %v", ok, err)
		}
		clock.Advance(20 * time.Second)
		beat(t, b)
	}
	if !a.holds("r") {
		t.Fatal("a lost its lease to a newcomer")
	}

	// a dies; once its heartbeat lapses b is alone, and takes the lease.
	for range 4 {
		clock.Advance(20 * time.Second)
		beat(t, b)
	}
	if ok, err := b.acquire(ctx, "r"); !ok || err != nil {
		t.Fatalf("b did not take a dead replica's lease: %v %v", ok, err)
	}

	// b, now alone, dies too; c starts later and waits two leases after
	// it joined, though b's entry lapsed long before.
	clock.Advance(10 * time.Minute)
	c := newLeaser(st, "s", "c", time.Minute, clock.Now)
	beat(t, c)
	for range 5 {
		if ok, err := c.acquire(ctx, "r"); ok || err != nil {
			t.Fatalf("c took the lease before it had been live for two leases: %v %v", ok, err)
		}
		clock.Advance(20 * time.Second)
		beat(t, c)
	}
	clock.Advance(20 * time.Second)
	beat(t, c)
	if ok, err := c.acquire(ctx, "r"); !ok || err != nil {
		t.Fatalf("c did not take the lease two leases after joining: %v %v", ok, err)
	}
}

// Windows write the checkpoint at most every CheckpointEvery; a release
// writes the one kept, and a replica that dies without one costs its
// successor at most that span evaluated again.
func TestCheckpointWrittenWhenDue(t *testing.T) {
	ctx := t.Context()
	st := &stateCalls{Store: embedded.NewMemory()}
	r := cloneRule(testRules(t)[1], "quarter")
	r.Schedule.Interval = rules.Duration(15 * time.Minute)
	clock := newClock(ts("2024-03-05T10:01:00Z"))
	rec := newRecorder(nil)
	mk := func(id string) *Manager {
		m := newTestManager(t, st, rec, clock, id, func(o *Options) { o.CheckpointEvery = time.Hour })
		m.Reload([]*rules.Rule{r})
		if err := m.SyncLeases(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}
	run := func(m *Manager, ticks int) (checkpoints int64) {
		st.leaseWrites.Store(0)
		for range ticks {
			if err := m.RunRule(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			clock.Advance(15 * time.Minute)
			if err := m.SyncLeases(ctx); err != nil { // writes the checkpoint due
				t.Fatal(err)
			}
		}
		return st.leaseWrites.Load()
	}
	a := mk("a")
	if n := run(a, 8); n != 2 { // 10:00 (the lease's first) and 11:00
		t.Fatalf("8 quarter-hour windows wrote %d checkpoints, want 2", n)
	}
	if cp := readCheckpoint(t, st, "offtrail-state-test", r.ID); !cp.End.Equal(ts("2024-03-05T11:00:00Z")) {
		t.Fatalf("written checkpoint %s, want 11:00", cp.End)
	}
	a.Stop(ctx) // a release writes the checkpoint kept
	if cp := readCheckpoint(t, st, "offtrail-state-test", r.ID); !cp.End.Equal(ts("2024-03-05T11:45:00Z")) {
		t.Fatalf("checkpoint after the release %s, want 11:45", cp.End)
	}
	b := mk("b")
	if n := run(b, 4); n != 1 { // 12:00, the first of b's lease; 12:15 .. 12:45 kept
		t.Fatalf("b wrote %d checkpoints, want 1", n)
	}
	// b dies without a release; c takes over once b's heartbeat lapses and
	// evaluates again what followed b's last written checkpoint (12:00).
	// c has just joined, so it waits two leases first (b may have been a lone
	// replica that renews by reading; see free).
	clock.Advance(2 * time.Minute)
	c := mk("c")
	if c.Holds(r.ID) {
		t.Fatal("c took a lapsed owner's rule before it had been live for two leases")
	}
	for range 6 { // two leases of c's syncs
		clock.Advance(20 * time.Second)
		if err := c.SyncLeases(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !c.Holds(r.ID) {
		t.Fatal("c did not take the dead replica's rule")
	}
	run(c, 1)
	again := 0
	for k, runs := range rec.calls {
		if len(runs) > 1 {
			again++
			if k < r.ID+"@2024-03-05T12:15:00Z" {
				t.Errorf("%s evaluated again: older than the written checkpoint", k)
			}
		}
	}
	if again != 3 { // 12:15, 12:30, 12:45
		t.Fatalf("%d windows evaluated again after the crash, want 3", again)
	}
}

// A process restarted with the same replica id (run --replica-id) takes
// its leases back at once, its predecessor's heartbeat still live.
func TestLeaseTakenBackBySameReplicaID(t *testing.T) {
	ctx := t.Context()
	st := embedded.NewMemory()
	clock := newClock(ts("2024-03-05T10:00:00Z"))
	before := newLeaser(st, "s", "pod-0", time.Minute, clock.Now)
	if _, _, err := before.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := before.acquire(ctx, "r"); !ok || err != nil {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	clock.Advance(10 * time.Second) // crashed; restarted under the same id
	after := newLeaser(st, "s", "pod-0", time.Minute, clock.Now)
	if _, _, err := after.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := after.acquire(ctx, "r"); !ok || err != nil {
		t.Fatalf("the restarted replica waits for its own lease: %v %v", ok, err)
	}
	other := newLeaser(st, "s", "pod-1", time.Minute, clock.Now)
	if _, _, err := other.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.acquire(ctx, "r"); ok || err != nil {
		t.Fatalf("another replica took a live replica's lease: %v %v", ok, err)
	}
}

// The checkpoints due are written in one request, each on its lease's
// version: one whose lease another replica changed is refused alone, and
// that lease is given up, while the others are written.
func TestFlushDueIsOneFencedWrite(t *testing.T) {
	ctx := t.Context()
	st, _, a := joined(t)
	for _, r := range []string{"r1", "r2", "r3"} {
		mustAcquire(t, a, r)
		if err := a.saveCheckpoint(ctx, r, Checkpoint{Rule: r, End: ts("2024-03-05T10:00:00Z")}); err != nil {
			t.Fatal(err)
		}
	}
	a.keep("r1", Checkpoint{Rule: "r1", End: ts("2024-03-05T11:00:00Z")})
	a.keep("r2", Checkpoint{Rule: "r2", End: ts("2024-03-05T11:00:00Z")})
	a.keep("r3", Checkpoint{Rule: "r3", End: ts("2024-03-05T10:45:00Z")}) // not due, goes along
	// Another replica changes r2's lease document behind a's back.
	_, ver, err := st.GetState(ctx, "s", leaseID("r2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutState(ctx, "s", leaseID("r2"), json.RawMessage(`{"rule":"r2","owner":"b"}`), &ver); err != nil {
		t.Fatal(err)
	}
	st.take()
	err = a.flushDue(ctx, time.Hour)
	if !errors.Is(err, errLeaseLost) {
		t.Fatalf("flush: %v, want r2's lease lost", err)
	}
	if gets, puts := st.take(); gets != 0 || puts != 1 {
		t.Fatalf("flush made %d reads and %d writes, want 0 and 1", gets, puts)
	}
	if cp := readCheckpoint(t, st.Store, "s", "r1"); !cp.End.Equal(ts("2024-03-05T11:00:00Z")) {
		t.Errorf("r1's stored checkpoint %s, want 11:00", cp.End)
	}
	if cp := readCheckpoint(t, st.Store, "s", "r3"); !cp.End.Equal(ts("2024-03-05T10:45:00Z")) {
		t.Errorf("r3's stored checkpoint %s, want 10:45 (kept, not due, written with the due ones)", cp.End)
	}
	if a.holds("r2") || !a.holds("r1") || !a.holds("r3") {
		t.Errorf("held after the flush: r1 %v r2 %v r3 %v, want r2 given up", a.holds("r1"), a.holds("r2"), a.holds("r3"))
	}
	if err := a.flushDue(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, puts := st.take(); puts != 0 {
		t.Errorf("a second flush wrote %d times, want none due", puts)
	}
	// A kept checkpoint not due alone is not written.
	a.keep("r3", Checkpoint{Rule: "r3", End: ts("2024-03-05T11:00:00Z")})
	if err := a.flushDue(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, puts := st.take(); puts != 0 {
		t.Errorf("a flush with nothing due wrote %d times", puts)
	}
	if cp, err := a.checkpoint(ctx, "r3"); err != nil || !cp.End.Equal(ts("2024-03-05T11:00:00Z")) {
		t.Errorf("r3's kept checkpoint %v, %v; want 11:00", cp, err)
	}
}

// joinWait runs the five syncs (every 20 s, a third of the 1-minute lease)
// after a replica's first heartbeat that still write it: a newcomer writes
// its entry for two leases, so that a lone replica reading the list once a
// lease sees it before the newcomer may take its leases.
func joinWait(t *testing.T, st *stateCalls, clock *fakeClock, sync func() error) {
	t.Helper()
	for i := range 5 {
		clock.Advance(20 * time.Second)
		if err := sync(); err != nil {
			t.Fatal(err)
		}
		if gets, puts := st.take(); gets != 0 || puts != 1 {
			t.Fatalf("newcomer's sync %d made %d reads and %d writes, want its heartbeat written (0 and 1)", i, gets, puts)
		}
	}
}

// beat records l's heartbeat (a read when l is alone), failing on an error.
func beat(t *testing.T, l *leaser) {
	t.Helper()
	if _, _, err := l.heartbeat(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func mustAcquire(t *testing.T, l *leaser, rule string) {
	t.Helper()
	if ok, err := l.acquire(t.Context(), rule); !ok || err != nil {
		t.Fatalf("%s acquire %s: %v %v", l.id, rule, ok, err)
	}
}

// joined returns replica a (1-minute lease, state index "s") after its
// first heartbeat, on a counted in-memory store and a fake clock.
func joined(t *testing.T) (*stateCalls, *fakeClock, *leaser) {
	t.Helper()
	st := &stateCalls{Store: embedded.NewMemory()}
	clock := newClock(ts("2024-03-05T10:00:00Z"))
	a := newLeaser(st, "s", "a", time.Minute, clock.Now)
	beat(t, a)
	return st, clock, a
}
