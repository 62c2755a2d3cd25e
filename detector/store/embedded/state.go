package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/offtrail/offtrail/detector/store"
)

// stateEntry is a state document as stored. A delete leaves a tombstone so
// that sequence numbers keep growing: a holder of a pre-delete version can
// never match a re-created document (as seq_no works on the engines).
type stateEntry struct {
	SeqNo       int64           `json:"seq_no"`
	PrimaryTerm int64           `json:"primary_term"`
	Doc         json.RawMessage `json:"doc,omitempty"`
	Deleted     bool            `json:"deleted,omitempty"`
}

func (e *stateEntry) version() store.Version {
	return store.Version{SeqNo: e.SeqNo, PrimaryTerm: e.PrimaryTerm}
}

func (e *stateEntry) live() bool { return e != nil && !e.Deleted }

// stateFile maps an id to a file name that cannot escape the directory.
func stateFile(id string) string {
	name := url.PathEscape(id)
	if strings.HasPrefix(name, ".") {
		name = "%2E" + name[1:]
	}
	return name + ".json"
}

func (s *Store) stateDirFor(index string) string {
	return filepath.Join(s.dir, stateDir, index)
}

func readState(name string) (*stateEntry, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e stateEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &e, nil
}

// GetState implements store.Backend.
func (s *Store) GetState(_ context.Context, index, id string) (json.RawMessage, store.Version, error) {
	if err := validIndexName(index); err != nil {
		return nil, store.Version{}, fmt.Errorf("state index %q: %w", index, err)
	}
	var e *stateEntry
	if s.dir == "" {
		s.mu.Lock()
		if cur := s.state[index][id]; cur != nil {
			c := *cur
			e = &c
		}
		s.mu.Unlock()
	} else {
		// Files are replaced by rename, so reading needs no lock.
		var err error
		if e, err = readState(filepath.Join(s.stateDirFor(index), stateFile(id))); err != nil {
			return nil, store.Version{}, fmt.Errorf("state %s/%s: %w", index, id, err)
		}
	}
	if !e.live() {
		return nil, store.Version{}, fmt.Errorf("state %s/%s: %w", index, id, store.ErrNotFound)
	}
	return append(json.RawMessage(nil), e.Doc...), e.version(), nil
}

// change runs fn on the current entry of a state document (nil when it
// never existed) under the index's lock, and stores what fn returns.
func (s *Store) change(index, id string, fn func(cur *stateEntry) (*stateEntry, error)) (*stateEntry, error) {
	if err := validIndexName(index); err != nil {
		return nil, fmt.Errorf("state index %q: %w", index, err)
	}
	if s.dir == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		next, err := fn(s.state[index][id])
		if err != nil {
			return nil, err
		}
		if s.state[index] == nil {
			s.state[index] = map[string]*stateEntry{}
		}
		s.state[index][id] = next
		return next, nil
	}
	dir := s.stateDirFor(index)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	name := filepath.Join(dir, stateFile(id))
	cur, err := readState(name)
	if err != nil {
		return nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(name, b); err != nil {
		return nil, err
	}
	return next, nil
}

// PutState implements store.Backend.
func (s *Store) PutState(_ context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return store.Version{}, fmt.Errorf("state %s/%s: %w", index, id, err)
	}
	next, err := s.change(index, id, func(cur *stateEntry) (*stateEntry, error) {
		switch {
		case ifVersion == nil && cur.live():
			return nil, store.ErrConflict
		case ifVersion != nil && (!cur.live() || cur.version() != *ifVersion):
			return nil, store.ErrConflict
		}
		var seq int64
		if cur != nil {
			seq = cur.SeqNo
		}
		return &stateEntry{SeqNo: seq + 1, PrimaryTerm: 1, Doc: buf.Bytes()}, nil
	})
	if err != nil {
		return store.Version{}, fmt.Errorf("state %s/%s: %w", index, id, err)
	}
	return next.version(), nil
}

// PutStates implements store.Backend: each write as PutState, in order.
func (s *Store) PutStates(ctx context.Context, index string, puts []store.StatePut) ([]store.StatePutResult, error) {
	out := make([]store.StatePutResult, len(puts))
	for i, p := range puts {
		out[i].Version, out[i].Err = s.PutState(ctx, index, p.ID, p.Doc, p.IfVersion)
	}
	return out, nil
}

// DeleteState implements store.Backend. A document that is gone or at
// another version is a conflict, as a conditional delete is on the engines.
func (s *Store) DeleteState(_ context.Context, index, id string, version store.Version) error {
	_, err := s.change(index, id, func(cur *stateEntry) (*stateEntry, error) {
		if !cur.live() || cur.version() != version {
			return nil, store.ErrConflict
		}
		return &stateEntry{SeqNo: cur.SeqNo + 1, PrimaryTerm: 1, Deleted: true}, nil
	})
	if err != nil {
		return fmt.Errorf("state %s/%s: %w", index, id, err)
	}
	return nil
}
