package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// StateStore is what the scheduler needs of a backend for its own state:
// documents read and written with optimistic concurrency.
type StateStore interface {
	GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error)
	PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error)
	PutStates(ctx context.Context, index string, puts []store.StatePut) ([]store.StatePutResult, error)
}

// DefaultStateIndex holds leases (with their rule's checkpoint), the
// replica list and the notifications' suppression state.
const DefaultStateIndex = "offtrail-state"

// Checkpoint is a rule's progress. It is kept in the rule's lease document
// so that writing it is conditional on the lease (see leaser.saveCheckpoint);
// the separate document "checkpoint:<rule id>" of earlier versions is only
// read, when a lease has no checkpoint yet.
type Checkpoint struct {
	Rule string `json:"rule"`
	// End is the last window end evaluated successfully.
	End     time.Time `json:"end"`
	Updated time.Time `json:"updated"`
	Owner   string    `json:"owner,omitempty"`
	// GivenUp records catch-up given up because it was older than max_gap.
	GivenUp        []Gap   `json:"given_up,omitempty"`
	GivenUpSeconds float64 `json:"given_up_seconds,omitempty"`
}

// Gap is a range of window ends that was never evaluated.
type Gap struct {
	FirstEnd time.Time `json:"first_end"`
	LastEnd  time.Time `json:"last_end"`
	Windows  int       `json:"windows"`
	Recorded time.Time `json:"recorded"`
}

// maxGapsKept bounds the gap history in a checkpoint.
const maxGapsKept = 20

func checkpointID(rule string) string { return "checkpoint:" + rule }
func leaseID(rule string) string      { return "lease:" + rule }

const replicasID = "replicas"

// getDoc reads and decodes a state document; found is false for a missing
// document.
func getDoc(ctx context.Context, s StateStore, index, id string, v any) (store.Version, bool, error) {
	raw, ver, err := s.GetState(ctx, index, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Version{}, false, nil
	}
	if err != nil {
		return store.Version{}, false, fmt.Errorf("state %s: %w", id, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return store.Version{}, false, fmt.Errorf("state %s: %w", id, err)
	}
	return ver, true, nil
}

// putDoc writes a state document, create-only when ver is nil.
func putDoc(ctx context.Context, s StateStore, index, id string, v any, ver *store.Version) (store.Version, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return store.Version{}, err
	}
	nv, err := s.PutState(ctx, index, id, raw, ver)
	if err != nil {
		return store.Version{}, fmt.Errorf("state %s: %w", id, err)
	}
	return nv, nil
}

// legacyCheckpoint reads the checkpoint document of earlier versions (a
// zero Checkpoint when there is none).
func legacyCheckpoint(ctx context.Context, s StateStore, index, rule string) (Checkpoint, error) {
	var cp Checkpoint
	if _, _, err := getDoc(ctx, s, index, checkpointID(rule), &cp); err != nil {
		return Checkpoint{}, err
	}
	cp.Rule = rule
	return cp, nil
}

// loadCheckpoint reads a rule's checkpoint from its lease document, or
// from the legacy document when the lease has none.
func loadCheckpoint(ctx context.Context, s StateStore, index, rule string) (Checkpoint, error) {
	var l Lease
	if _, _, err := getDoc(ctx, s, index, leaseID(rule), &l); err != nil {
		return Checkpoint{}, err
	}
	if l.Checkpoint != nil {
		return *l.Checkpoint, nil
	}
	return legacyCheckpoint(ctx, s, index, rule)
}

// recordGap notes given-up ends in the checkpoint.
func (cp *Checkpoint) recordGap(p Plan, interval time.Duration, now time.Time) {
	cp.GivenUp = append(cp.GivenUp, Gap{FirstEnd: p.SkippedFrom, LastEnd: p.SkippedTo, Windows: p.Skipped, Recorded: now})
	if len(cp.GivenUp) > maxGapsKept {
		cp.GivenUp = cp.GivenUp[len(cp.GivenUp)-maxGapsKept:]
	}
	cp.GivenUpSeconds += p.GapSeconds(interval)
}

// Lease is the state document "lease:<rule id>": the replica that may run
// the rule while its heartbeat in the replicas document is live, or until
// Expires (set when the lease is taken). Generation grows with every
// change of owner.
//
// The rule's checkpoint lives in the same document, which is what fences a
// replica that lost its lease: the engines compare-and-set one document at
// a time, and a checkpoint written on the lease's seq_no/primary_term
// fails once anyone else took the lease, however long the writer was
// paused and whatever its clock says.
type Lease struct {
	Rule       string      `json:"rule"`
	Owner      string      `json:"owner"`
	Expires    time.Time   `json:"expires"`
	Generation int64       `json:"generation"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// Replicas is the state document "replicas": every replica's heartbeat.
// One document updated with compare-and-set stands in for per-replica
// documents because the state seam reads by id and cannot list.
type Replicas struct {
	Members map[string]time.Time `json:"members"` // replica id -> heartbeat expiry
}

// Live counts the replicas whose heartbeat has not expired.
func (r Replicas) Live(now time.Time) int {
	n := 0
	for _, exp := range r.Members {
		if exp.After(now) {
			n++
		}
	}
	return n
}
