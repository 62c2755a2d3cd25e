package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// StateStore keeps the suppression state where every replica and every
// restart sees it: the scheduler's state index, read and written by id
// with compare-and-set (any store.Backend).
type StateStore interface {
	GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error)
	PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error)
}

// Suppression is the state document "suppress:<channel>:<hash of the
// group>" of one group on one channel.
type Suppression struct {
	Channel string `json:"channel"`
	Group   string `json:"group"`
	// Until: messages of the group before it are held back.
	Until time.Time `json:"until"`
	// Suppressed counts the messages held back since the last one sent.
	Suppressed int `json:"suppressed,omitempty"`
	// Seen are the latest message ids counted, so one enqueued twice
	// (a window re-run by a second replica) counts once.
	Seen    []string  `json:"seen,omitempty"`
	Updated time.Time `json:"updated"`
}

const (
	// keepCount: a window that held messages back keeps its count for a
	// day after it ends, so the count goes out with the next message.
	keepCount = 24 * time.Hour
	maxSeen   = 64
	// casAttempts bounds the compare-and-set loop of one claim; replicas
	// race on a group only when both handle its messages at once.
	casAttempts = 5
)

// SuppressionID is the state document id of group on channel. The group is
// hashed: identities (ARNs) can be longer than an engine id or a file name
// allows.
func SuppressionID(channel, group string) string {
	h := sha256.Sum256([]byte(group))
	return "suppress:" + channel + ":" + hex.EncodeToString(h[:16])
}

type suppressor struct {
	st    StateStore
	index string
}

func newSuppressor(st StateStore, index string) *suppressor {
	if index == "" {
		index = DefaultStateIndex
	}
	return &suppressor{st: st, index: index}
}

// DefaultStateIndex is the scheduler's default state index.
const DefaultStateIndex = "offtrail-state"

// claim is the decision for one message on one channel.
type claim struct {
	send bool // the message opens the group's window: send it
	dup  bool // already counted: neither sent nor counted again
	held int  // messages held back in the previous window, reported with it

	id    string
	prev  *Suppression  // the state before the claim, restored by unclaim
	wrote store.Version // the version the claim wrote
}

// claim decides whether m goes out on channel and records the decision
// with compare-and-set, so of two replicas deciding at once only one opens
// the window (and sends).
func (s *suppressor) claim(ctx context.Context, channel string, every time.Duration, m *Message, now time.Time) (claim, error) {
	id := SuppressionID(channel, m.GroupKey())
	for range casAttempts {
		cur, ver, err := s.get(ctx, id)
		if err != nil {
			return claim{}, err
		}
		next, cl := decide(cur, channel, m, every, now)
		if next == nil {
			return cl, nil
		}
		var ifv *store.Version
		if cur != nil {
			ifv = &ver
		}
		nv, err := s.put(ctx, id, next, ifv)
		if errors.Is(err, store.ErrConflict) {
			continue // another replica decided first: decide again on its state
		}
		if err != nil {
			return claim{}, err
		}
		cl.id, cl.prev, cl.wrote = id, cur, nv
		return cl, nil
	}
	return claim{}, fmt.Errorf("suppression %s: too many concurrent updates", id)
}

// decide applies the suppression rule to the current state (nil: none)
// and returns the state to write (nil: nothing to write).
func decide(cur *Suppression, channel string, m *Message, every time.Duration, now time.Time) (*Suppression, claim) {
	if cur != nil && now.Before(cur.Until) {
		if slices.Contains(cur.Seen, m.SignalID) {
			return nil, claim{dup: true}
		}
		next := *cur
		next.Suppressed++
		next.Seen = append(slices.Clone(cur.Seen), m.SignalID)
		if len(next.Seen) > maxSeen {
			next.Seen = next.Seen[len(next.Seen)-maxSeen:]
		}
		next.Updated = now
		return &next, claim{}
	}
	held := 0
	if cur != nil && now.Before(cur.Until.Add(keepCount)) {
		held = cur.Suppressed
	}
	next := &Suppression{Channel: channel, Group: m.GroupKey(), Until: now.Add(every), Seen: []string{m.SignalID}, Updated: now}
	return next, claim{send: true, held: held}
}

// unclaim closes the window a claim opened when its message could not be
// sent, keeping the held-back count: the group's next message tries again
// and reports it. Losing the race means the group moved on: nothing to do.
func (s *suppressor) unclaim(ctx context.Context, cl claim, now time.Time) {
	back := Suppression{Until: now, Updated: now}
	if cl.prev != nil {
		back = *cl.prev
		if back.Until.After(now) {
			back.Until = now
		}
		back.Updated = now
	}
	_, _ = s.put(ctx, cl.id, &back, &cl.wrote)
}

func (s *suppressor) get(ctx context.Context, id string) (*Suppression, store.Version, error) {
	raw, ver, err := s.st.GetState(ctx, s.index, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Version{}, nil
	}
	if err != nil {
		return nil, store.Version{}, fmt.Errorf("suppression %s: %w", id, err)
	}
	var cur Suppression
	if err := json.Unmarshal(raw, &cur); err != nil {
		return nil, store.Version{}, fmt.Errorf("suppression %s: %w", id, err)
	}
	return &cur, ver, nil
}

func (s *suppressor) put(ctx context.Context, id string, v *Suppression, ifv *store.Version) (store.Version, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return store.Version{}, err
	}
	nv, err := s.st.PutState(ctx, s.index, id, b, ifv)
	if err != nil {
		return store.Version{}, fmt.Errorf("suppression %s: %w", id, err)
	}
	return nv, nil
}

// memState is a StateStore in memory, for a dispatcher started without
// one (tests, one-shot commands): suppression then lasts as the process.
type memState struct {
	mu   sync.Mutex
	docs map[string]memDoc
}

type memDoc struct {
	raw json.RawMessage
	seq int64
}

func newMemState() *memState { return &memState{docs: map[string]memDoc{}} }

func (s *memState) GetState(_ context.Context, index, id string) (json.RawMessage, store.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[index+"/"+id]
	if !ok {
		return nil, store.Version{}, store.ErrNotFound
	}
	return d.raw, store.Version{SeqNo: d.seq, PrimaryTerm: 1}, nil
}

func (s *memState) PutState(_ context.Context, index, id string, doc json.RawMessage, ifv *store.Version) (store.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := index + "/" + id
	d, ok := s.docs[k]
	if (ifv == nil && ok) || (ifv != nil && (!ok || ifv.SeqNo != d.seq)) {
		return store.Version{}, store.ErrConflict
	}
	next := memDoc{raw: append(json.RawMessage(nil), doc...), seq: d.seq + 1}
	s.docs[k] = next
	return store.Version{SeqNo: next.seq, PrimaryTerm: 1}, nil
}
