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
}

// DefaultStateIndex holds checkpoints, leases and the replica list.
const DefaultStateIndex = "offtrail-state"

// Checkpoint is the state document "checkpoint:<rule id>".
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

// checkpoint is a Checkpoint with the version it was read at.
type checkpoint struct {
	Checkpoint
	ver   store.Version
	found bool
}

func loadCheckpoint(ctx context.Context, s StateStore, index, rule string) (*checkpoint, error) {
	cp := &checkpoint{}
	ver, found, err := getDoc(ctx, s, index, checkpointID(rule), &cp.Checkpoint)
	if err != nil {
		return nil, err
	}
	cp.ver, cp.found = ver, found
	cp.Rule = rule
	return cp, nil
}

// save writes the checkpoint conditionally on the version it was read at.
// A conflict means another replica advanced it (after taking over the
// lease): the caller must stop and not overwrite.
func (cp *checkpoint) save(ctx context.Context, s StateStore, index string) error {
	var ifv *store.Version
	if cp.found {
		v := cp.ver
		ifv = &v
	}
	ver, err := putDoc(ctx, s, index, checkpointID(cp.Rule), cp.Checkpoint, ifv)
	if err != nil {
		return err
	}
	cp.ver, cp.found = ver, true
	return nil
}

// recordGap notes given-up ends in the checkpoint.
func (cp *checkpoint) recordGap(p Plan, interval time.Duration, now time.Time) {
	cp.GivenUp = append(cp.GivenUp, Gap{FirstEnd: p.SkippedFrom, LastEnd: p.SkippedTo, Windows: p.Skipped, Recorded: now})
	if len(cp.GivenUp) > maxGapsKept {
		cp.GivenUp = cp.GivenUp[len(cp.GivenUp)-maxGapsKept:]
	}
	cp.GivenUpSeconds += p.GapSeconds(interval)
}

// Lease is the state document "lease:<rule id>": the replica that may run
// the rule until Expires. Generation grows with every change of owner.
type Lease struct {
	Rule       string    `json:"rule"`
	Owner      string    `json:"owner"`
	Expires    time.Time `json:"expires"`
	Generation int64     `json:"generation"`
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
