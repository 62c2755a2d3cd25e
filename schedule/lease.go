package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// DefaultLeaseDuration is how long a lease and a heartbeat last; they are
// renewed every third of it.
const DefaultLeaseDuration = 60 * time.Second

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
}

// leaser acquires, renews and releases one replica's leases with
// compare-and-set on the state documents.
type leaser struct {
	st    StateStore
	index string
	id    string
	dur   time.Duration
	now   func() time.Time

	mu   sync.Mutex
	held map[string]heldLease
	// writes serialises this replica's writes of one lease document (a
	// renewal and a checkpoint), so that they never conflict with each
	// other: a conflict always means another replica.
	writes map[string]*sync.Mutex
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

// checkpoint reads rule's checkpoint, checking that this replica still
// holds the lease at the version it last wrote.
func (l *leaser) checkpoint(ctx context.Context, rule string) (*Checkpoint, error) {
	defer l.lock(rule)()
	h, ok := l.heldLease(rule)
	if !ok {
		return nil, errLeaseLost
	}
	var cur Lease
	ver, found, err := getDoc(ctx, l.st, l.index, leaseID(rule), &cur)
	if err != nil {
		return nil, err
	}
	if !found || ver != h.ver {
		l.forget(rule)
		return nil, errFenced
	}
	if cur.Checkpoint != nil {
		cp := *cur.Checkpoint
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
		l.forget(rule)
		return fmt.Errorf("checkpoint of %s: %w (%w)", rule, errFenced, err)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	if cur, ok := l.held[rule]; ok && cur.ver == h.ver {
		l.held[rule] = heldLease{ver: nv, lease: next, expires: cur.expires}
	}
	l.mu.Unlock()
	return nil
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

// acquire takes or renews the lease on rule: it succeeds when the lease
// does not exist, is ours, or has expired, and nobody else changed it in
// between. Losing the race is not an error.
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
		case cur.Owner == "" || !cur.Expires.After(now):
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
	_, err := putDoc(ctx, l.st, l.index, leaseID(rule), rel, &h.ver)
	if errors.Is(err, store.ErrConflict) {
		return nil // someone took it over already
	}
	return err
}

// heartbeat records this replica as live and returns how many replicas
// are live (at least 1: this one).
func (l *leaser) heartbeat(ctx context.Context) (int, error) {
	return l.updateReplicas(ctx, func(r *Replicas, now time.Time) { r.Members[l.id] = now.Add(l.dur) })
}

// leave removes this replica from the replica list.
func (l *leaser) leave(ctx context.Context) error {
	_, err := l.updateReplicas(ctx, func(r *Replicas, _ time.Time) { delete(r.Members, l.id) })
	return err
}

func (l *leaser) updateReplicas(ctx context.Context, change func(*Replicas, time.Time)) (int, error) {
	for attempt := 0; attempt < 5; attempt++ {
		var r Replicas
		ver, found, err := getDoc(ctx, l.st, l.index, replicasID, &r)
		if err != nil {
			return 0, err
		}
		if r.Members == nil {
			r.Members = map[string]time.Time{}
		}
		now := l.now()
		for id, exp := range r.Members {
			if !exp.After(now) {
				delete(r.Members, id)
			}
		}
		change(&r, now)
		var ifv *store.Version
		if found {
			ifv = &ver
		}
		_, err = putDoc(ctx, l.st, l.index, replicasID, r, ifv)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, err
		}
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
