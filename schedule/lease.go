package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// DefaultLeaseDuration is how long a heartbeat lasts, and so how long a
// dead replica's rules stay unowned; the heartbeat is renewed every third
// of it. Five minutes, a third of the pack's 15-minute interval: a
// failover delays a window by at most that (catch-up runs it; a replica
// that replaces a lone one waits two, see joinWait), and one replica's
// upkeep is nine state writes per 15 minutes beside others, three reads
// while it is alone. (A write costs the engine about a millisecond of
// CPU, as much as a window's count; a read a third of that or less.)
const DefaultLeaseDuration = 5 * time.Minute

// DefaultCheckpointEvery is Options.CheckpointEvery's default.
const DefaultCheckpointEvery = time.Hour

// NewReplicaID returns hostname-pid-random, unique per process.
func NewReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "offtrail"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

type heldLease struct {
	ver     store.Version
	lease   Lease
	expires time.Time
	// pending is a checkpoint newer than the one written (lease.Checkpoint),
	// kept until one is due (see Manager.evaluate) or the lease is released.
	pending *Checkpoint
	written bool // a checkpoint was written on this lease since it was taken
}

// leaser acquires, holds and releases one replica's leases with
// compare-and-set on the state documents.
//
// A lease is held while its owner's heartbeat in the replicas document is
// live: one write renews every lease a replica holds, where renewing each
// lease document cost a read and a write per rule every sync (a 13-rule
// pack made 1,300 state requests per 15-minute tick). The lease's own
// Expires still counts, so that a lease just taken holds before the
// owner's heartbeat is seen, and leases of earlier versions (renewed one
// by one) hold as they did.
type leaser struct {
	st    StateStore
	index string
	id    string
	dur   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	held map[string]heldLease
	// writes serialises this replica's writes of one lease document (a
	// takeover, a checkpoint and a release), so that they never conflict
	// with each other: a conflict always means another replica.
	writes map[string]*sync.Mutex

	// replicas is the replicas document as this replica last wrote or
	// read it (at replicasVer when replicasFound), so a heartbeat is one
	// conditional write, read again only when another replica changed it.
	replicasMu    sync.Mutex
	replicas      Replicas
	replicasVer   store.Version
	replicasFound bool
	replicasRead  bool
	// until is this replica's heartbeat as it knows it: its leases hold
	// until then. A lone replica extends it by reading the replica list,
	// so it can run past the entry the list holds for it (see alone).
	until time.Time
	// liveSince is when this replica's heartbeat last began after a lapse
	// (its first write, or the first after until passed).
	liveSince time.Time
	// loneAt is when the replica list, last read, showed this replica
	// alone (zero once it wrote its heartbeat): the next read is due a
	// lease later (see heartbeat).
	loneAt time.Time
}

func newLeaser(st StateStore, index, id string, dur time.Duration, now func() time.Time) *leaser {
	return &leaser{st: st, index: index, id: id, dur: dur, now: now, held: map[string]heldLease{}, writes: map[string]*sync.Mutex{}}
}

// lock takes the write lock of rule's lease document; call the result to
// unlock.
func (l *leaser) lock(rule string) func() {
	l.mu.Lock()
	w, ok := l.writes[rule]
	if !ok {
		w = &sync.Mutex{}
		l.writes[rule] = w
	}
	l.mu.Unlock()
	w.Lock()
	return w.Unlock
}

func (l *leaser) heldLease(rule string) (heldLease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[rule]
	return h, ok
}

// errFenced: the lease document changed since this replica last wrote it,
// so another replica owns the rule now.
var errFenced = fmt.Errorf("%w: another replica took the lease", errLeaseLost)

// checkpoint returns rule's checkpoint as this replica last wrote or
// took it with the lease. It reads nothing: the checkpoint's write is the
// fence (saveCheckpoint), and a replica that lost the lease without
// knowing wastes one evaluation whose signals are create-only and whose
// incidents are idempotent. Only a lease without a checkpoint reads the
// document of earlier versions.
func (l *leaser) checkpoint(ctx context.Context, rule string) (*Checkpoint, error) {
	h, ok := l.heldLease(rule)
	if !ok {
		return nil, errLeaseLost
	}
	if h.pending != nil {
		cp := *h.pending
		return &cp, nil
	}
	if h.lease.Checkpoint != nil {
		cp := *h.lease.Checkpoint
		return &cp, nil
	}
	cp, err := legacyCheckpoint(ctx, l.st, l.index, rule)
	return &cp, err
}

// saveCheckpoint writes cp into rule's lease document, conditional on the
// version this replica last wrote (the fence). The lease's expiry is not
// consulted: a replica's clock after a pause proves nothing, the version
// does; and an expired lease nobody took is still the writer's to use.
func (l *leaser) saveCheckpoint(ctx context.Context, rule string, cp Checkpoint) error {
	defer l.lock(rule)()
	h, ok := l.heldLease(rule)
	if !ok {
		return errLeaseLost
	}
	next := h.lease
	next.Checkpoint = &cp
	nv, err := putDoc(ctx, l.st, l.index, leaseID(rule), next, &h.ver)
	if errors.Is(err, store.ErrConflict) {
		return l.fenced(rule, err)
	}
	if err != nil {
		return err
	}
	h.lease = next
	l.wrote(rule, h, nv)
	return nil
}

// unwritten reports whether no checkpoint was written on rule's lease
// since it was taken: the first must be written at once, since the write
// fences a predecessor still running.
func (l *leaser) unwritten(rule string) bool {
	h, ok := l.heldLease(rule)
	return !ok || !h.written
}

// flushDue writes, in one request, the kept checkpoints once one of them
// trails the written one by every or more: an hour's checkpoints of all
// the rules a replica holds cost one write, not one each. The kept ones
// not yet due go along, so the rules' checkpoints fall due together and
// not each at its own tick. Each is conditional on its lease's version,
// as saveCheckpoint's; one that lost its race forgets its lease, and one
// that failed otherwise stays kept for the next flush.
func (l *leaser) flushDue(ctx context.Context, every time.Duration) error {
	var (
		rules []string
		was   []heldLease
		puts  []store.StatePut
	)
	held := l.heldRules() // sorted: the write locks are taken in order
	if !slices.ContainsFunc(held, func(rule string) bool { h, ok := l.heldLease(rule); return ok && h.due(every) }) {
		return nil
	}
	for _, rule := range held {
		if h, ok := l.heldLease(rule); !ok || !h.kept() {
			continue
		}
		defer l.lock(rule)()
		h, ok := l.heldLease(rule) // again, under the lease's write lock
		if !ok || !h.kept() {
			continue
		}
		next := h.lease
		cp := *h.pending
		next.Checkpoint = &cp
		raw, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("checkpoint of %s: %w", rule, err)
		}
		h.lease = next
		rules, was, puts = append(rules, rule), append(was, h), append(puts, store.StatePut{ID: leaseID(rule), Doc: raw, IfVersion: &h.ver})
	}
	if len(puts) == 0 {
		return nil
	}
	res, err := l.st.PutStates(ctx, l.index, puts)
	if err != nil {
		return fmt.Errorf("checkpoints of %d rules: %w", len(puts), err)
	}
	var errs []error
	for i, r := range res {
		switch {
		case errors.Is(r.Err, store.ErrConflict):
			errs = append(errs, l.fenced(rules[i], r.Err))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("checkpoint of %s: %w", rules[i], r.Err))
		default:
			l.wrote(rules[i], was[i], r.Version)
		}
	}
	return errors.Join(errs...)
}

// kept reports whether h holds a checkpoint not written yet, after the
// lease's first written one.
func (h heldLease) kept() bool { return h.written && h.pending != nil }

// due reports whether h's kept checkpoint trails the written one by every.
func (h heldLease) due(every time.Duration) bool {
	return h.kept() && h.pending.End.Sub(h.lease.Checkpoint.End) >= every
}

// fenced forgets rule's lease, whose checkpoint write lost to another
// replica's change (err), and says so.
func (l *leaser) fenced(rule string, err error) error {
	l.forget(rule)
	return fmt.Errorf("checkpoint of %s: %w (%w)", rule, errFenced, err)
}

// wrote records that h.lease was written at version nv, unless the lease
// changed in between; a checkpoint kept after h was read stays kept.
func (l *leaser) wrote(rule string, h heldLease, nv store.Version) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.held[rule]
	if !ok || cur.ver != h.ver {
		return
	}
	cur.ver, cur.lease, cur.written = nv, h.lease, true
	if cur.pending == h.pending {
		cur.pending = nil
	}
	l.held[rule] = cur
}

// keep holds cp as rule's checkpoint without writing it; the next written
// checkpoint or the lease's release writes it.
func (l *leaser) keep(rule string, cp Checkpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.held[rule]; ok {
		h.pending = &cp
		l.held[rule] = h
	}
}

// holds reports whether the replica holds an unexpired lease on rule.
func (l *leaser) holds(rule string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[rule]
	return ok && h.expires.After(l.now())
}

func (l *leaser) heldRules() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.held))
	for r := range l.held {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func (l *leaser) forget(rule string) {
	l.mu.Lock()
	delete(l.held, rule)
	l.mu.Unlock()
}

// acquire takes the lease on rule: it succeeds when the lease does not
// exist, is ours (a write of ours whose answer was lost), or is free (see
// free), and nobody else changed it in between. Losing the race is not an
// error.
func (l *leaser) acquire(ctx context.Context, rule string) (bool, error) {
	defer l.lock(rule)()
	var cur Lease
	ver, found, err := getDoc(ctx, l.st, l.index, leaseID(rule), &cur)
	if err != nil {
		return false, err
	}
	now := l.now()
	next := Lease{Rule: rule, Owner: l.id, Expires: now.Add(l.dur), Generation: 1, Checkpoint: cur.Checkpoint}
	var ifv *store.Version
	if found {
		switch {
		case cur.Owner == l.id:
			next.Generation = cur.Generation
		case l.free(cur, now):
			next.Generation = cur.Generation + 1
		default:
			l.forget(rule)
			return false, nil
		}
		ifv = &ver
	}
	nv, err := putDoc(ctx, l.st, l.index, leaseID(rule), next, ifv)
	if errors.Is(err, store.ErrConflict) {
		l.forget(rule)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	l.held[rule] = heldLease{ver: nv, lease: next, expires: next.Expires}
	l.mu.Unlock()
	return true, nil
}

// joinWait is how long a replica's heartbeat must have been live before
// it takes a lease whose owner's heartbeat lapsed: two leases. The wait is
// for a lone owner, which renews its leases by reading the list once a
// lease (see heartbeat): its entry has lapsed while it lives, and it sees
// a newcomer's within a lease (and a third, a late sync) and writes its
// heartbeat again. A lone owner's leases hold for a joinWait after its
// read, since no newcomer missed by it can take them sooner.
func (l *leaser) joinWait() time.Duration { return 2 * l.dur }

// free reports whether a lease another replica wrote may be taken: it was
// released, or its own expiry and its owner's heartbeat (as of this
// replica's last look at the replica list) have passed and this replica's
// heartbeat has been live for a joinWait.
func (l *leaser) free(cur Lease, now time.Time) bool {
	if cur.Owner == "" {
		return true
	}
	if cur.Expires.After(now) {
		return false
	}
	l.replicasMu.Lock()
	defer l.replicasMu.Unlock()
	if l.replicas.Members[cur.Owner].After(now) || l.liveSince.IsZero() {
		return false
	}
	return !now.Before(l.liveSince.Add(l.joinWait()))
}

// release gives a lease up at once so that another replica may take it
// without waiting for it to expire.
func (l *leaser) release(ctx context.Context, rule string) error {
	defer l.lock(rule)()
	l.mu.Lock()
	h, ok := l.held[rule]
	delete(l.held, rule)
	l.mu.Unlock()
	if !ok {
		return nil
	}
	rel := h.lease
	rel.Owner, rel.Expires = "", l.now()
	if h.pending != nil {
		rel.Checkpoint = h.pending // the next owner starts where this one stopped
	}
	_, err := putDoc(ctx, l.st, l.index, leaseID(rule), rel, &h.ver)
	if errors.Is(err, store.ErrConflict) {
		return nil // someone took it over already
	}
	return err
}

// heartbeat records this replica as live, which renews every lease it
// holds, and returns how many replicas are live (at least 1: this one).
// A replica alone in the list renews by reading it (alone), one read where
// a write costs the engine three times as much or more, and only once a
// lease: the syncs between read nothing (three reads per 15 minutes at
// 5m, where a read every sync made nine; a newcomer waits for it, see
// joinWait). When
// this replica's own heartbeat had lapsed, others may have taken its
// leases: those are checked before they are renewed, the ones taken are
// given up and named in lost, and an error of that check comes back with
// the count (the heartbeat itself was written).
func (l *leaser) heartbeat(ctx context.Context) (live int, lost []string, err error) {
	start := l.now()
	if l.readLately(start) {
		return 1, nil, nil
	}
	lone, err := l.alone(ctx, start)
	if err != nil {
		return 0, nil, err
	}
	if lone {
		l.renew(start.Add(l.joinWait()), false)
		return 1, nil, nil
	}
	var expires time.Time
	live, err = l.updateReplicas(ctx, func(r *Replicas, now time.Time) {
		expires = now.Add(l.dur)
		r.Members[l.id] = expires
	})
	if err != nil {
		return 0, nil, err
	}
	l.replicasMu.Lock()
	lapsed := !l.until.After(l.now())
	l.replicasMu.Unlock()
	if lapsed {
		lost, err = l.verifyHeld(ctx)
	}
	l.renew(expires, true)
	return live, lost, err
}

// readLately reports whether this replica read the list alone less than a
// lease before start, its leases still held: nothing to do yet.
func (l *leaser) readLately(start time.Time) bool {
	l.replicasMu.Lock()
	defer l.replicasMu.Unlock()
	return !l.loneAt.IsZero() && start.Sub(l.loneAt) < l.dur && l.until.After(start)
}

// alone reports whether this replica may renew its leases by reading the
// replica list, not writing it: it joined (wrote its entry) a joinWait
// ago and its heartbeat has not lapsed, and the list, read now, has no
// other live replica. A replica that joins writes its heartbeat for a
// joinWait before it takes a lapsed owner's lease (free), and a lone one
// reads the list once a lease: it sees the newcomer's entry, live all
// that time, and writes its heartbeat before.
func (l *leaser) alone(ctx context.Context, start time.Time) (bool, error) {
	l.replicasMu.Lock()
	defer l.replicasMu.Unlock()
	if !l.replicasRead || !l.until.After(start) || start.Before(l.liveSince.Add(l.joinWait())) {
		return false, nil
	}
	var r Replicas
	ver, found, err := getDoc(ctx, l.st, l.index, replicasID, &r)
	if err != nil {
		return false, err
	}
	if !found {
		l.replicasRead = false // removed: write it again
		return false, nil
	}
	if ver != l.replicasVer {
		l.replicas, l.replicasVer, l.replicasFound = r, ver, true
	}
	for id, exp := range l.replicas.Members {
		if id != l.id && exp.After(start) {
			l.loneAt = time.Time{}
			return false, nil
		}
	}
	l.loneAt = start
	return true, nil
}

// renew moves this replica's heartbeat, and so every lease it holds, to
// until. A written heartbeat (wrote) after a lapse starts liveSince again.
func (l *leaser) renew(until time.Time, wrote bool) {
	l.replicasMu.Lock()
	now := l.now()
	if wrote && (!l.until.After(now) || l.liveSince.IsZero()) {
		l.liveSince = now
	}
	l.until = until
	l.replicasMu.Unlock()
	l.mu.Lock()
	for rule, h := range l.held {
		h.expires = until
		l.held[rule] = h
	}
	l.mu.Unlock()
}

// verifyHeld forgets the held leases whose documents changed since this
// replica wrote them, and returns their rules. A lease it cannot read
// stays held: the fence still guards its checkpoint.
func (l *leaser) verifyHeld(ctx context.Context) (lost []string, err error) {
	var errs []error
	for _, rule := range l.heldRules() {
		unlock := l.lock(rule)
		h, ok := l.heldLease(rule)
		var cur Lease
		ver, found, err := getDoc(ctx, l.st, l.index, leaseID(rule), &cur)
		if err != nil {
			errs = append(errs, err)
		} else if ok && (!found || ver != h.ver) {
			l.forget(rule)
			lost = append(lost, rule)
		}
		unlock()
	}
	return lost, errors.Join(errs...)
}

// leave removes this replica from the replica list.
func (l *leaser) leave(ctx context.Context) error {
	_, err := l.updateReplicas(ctx, func(r *Replicas, _ time.Time) { delete(r.Members, l.id) })
	return err
}

// updateReplicas applies change to the replicas document with
// compare-and-set, starting from the copy this replica last wrote: with
// one replica that is one write; another replica's heartbeat in between
// costs a read and a second write.
func (l *leaser) updateReplicas(ctx context.Context, change func(*Replicas, time.Time)) (int, error) {
	l.replicasMu.Lock()
	defer l.replicasMu.Unlock()
	for attempt := 0; attempt < 5; attempt++ {
		if !l.replicasRead {
			var r Replicas
			ver, found, err := getDoc(ctx, l.st, l.index, replicasID, &r)
			if err != nil {
				return 0, err
			}
			l.replicas, l.replicasVer, l.replicasFound, l.replicasRead = r, ver, found, true
		}
		r := Replicas{Members: make(map[string]time.Time, len(l.replicas.Members)+1)}
		now := l.now()
		for id, exp := range l.replicas.Members {
			if exp.After(now) {
				r.Members[id] = exp
			}
		}
		change(&r, now)
		var ifv *store.Version
		if l.replicasFound {
			ifv = &l.replicasVer
		}
		nv, err := putDoc(ctx, l.st, l.index, replicasID, r, ifv)
		if err != nil {
			l.replicasRead = false // read it again: the write may have landed
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return 0, err
		}
		l.replicas, l.replicasVer, l.replicasFound = r, nv, true
		l.loneAt = time.Time{} // written: the next heartbeat reads the list again
		return max(r.Live(now), 1), nil
	}
	return 0, fmt.Errorf("state %s: too many concurrent updates", replicasID)
}

// preference orders rules differently on each replica (rendezvous
// hashing), so replicas racing for free leases mostly try different ones.
func preference(replica, rule string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(replica))
	h.Write([]byte{0})
	h.Write([]byte(rule))
	return h.Sum64()
}

// fairShare is how many leases one replica may hold.
func fairShare(rules, live int) int {
	if live < 1 {
		live = 1
	}
	return (rules + live - 1) / live
}
