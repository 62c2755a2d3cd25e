// Package embedded is a store.Backend on a directory of NDJSON files (or in
// memory), for running offtrail without a cluster: CloudTrail files on disk
// in, signals as NDJSON out.
//
// Layout under the store's directory:
//
//	<index>/*.ndjson, <index>/*.ndjson.gz   documents, one {"_id":..,"_source":{..}} a line
//	<index>/seg-<ns>-<rand>.ndjson.gz       segments of a bulk writer, SegmentDocs documents at most
//	<index>/signals.ndjson                  create-only writes (WriteSignals), plain text
//	_state/<index>/<id>.json                {"seq_no":N,"primary_term":1,"doc":{..}}
//	_templates/<name>.json                  templates, kept for reference only
//	<index>/.fields.json                    fields queries read, to read them together
//	<index>/.cols/<segment>/*               built columns of a segment (see sidecar.go)
//
// Later files (by name) override earlier ones for the same id, so a segment
// written after another replaces its documents as an engine's index would.
//
// Memory on disk is bounded whatever the history: a bulk writer starts a new
// segment every Options.SegmentDocs documents; queries read only the files
// whose time range meets their window and keep the columns they build in a
// cache bounded by Options.CacheBytes (see disk.go), kept on disk beside the
// segment too so that reading them again is cheap. What stays resident
// besides is per file: its time ranges and 8 bytes of id hash a document,
// which tell whether a later file replaces a document.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
)

// Kind is what Store.Kind returns.
const Kind = "embedded"

const (
	stateDir    = "_state"
	templateDir = "_templates"
	signalsFile = "signals.ndjson"
)

// Options configure a Store.
type Options struct {
	// Logger reports skipped lines and unreadable files; the zero value
	// logs nothing.
	Logger zerolog.Logger
	// CacheBytes bounds the columns an on-disk store keeps between
	// queries; 0 reads CacheEnv, else DefaultCacheBytes.
	CacheBytes int64
	// SegmentDocs is how many documents a bulk writer puts in one segment
	// file; 0 means DefaultSegmentDocs.
	SegmentDocs int
	// Fields are value fields to read whenever a segment is first read,
	// with those queries used before (kept in <index>/.fields.json): a
	// field first asked for later costs a pass over the segments of its
	// window. The rule pack's fields are a good choice.
	Fields []string
	// MustExist makes Open fail on a missing directory instead of creating
	// it: commands that only read must not leave an empty store behind
	// (and report zero findings on it) after a typo.
	MustExist bool
}

// Store is a store.Backend on a directory, or in memory.
type Store struct {
	dir string // "" for an in-memory store
	log zerolog.Logger

	cache   *segCache // on disk only
	segDocs int
	fields  []string

	mu        sync.Mutex
	indices   map[string]*index
	templates map[string]json.RawMessage // in-memory store only
	state     map[string]map[string]*stateEntry
	docs      map[string]map[string][]byte // PutDocs of the in-memory store: index -> id -> source
}

var _ store.Backend = (*Store)(nil)

// Open returns a store on dir, creating the directory if needed.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("embedded: empty directory")
	}
	if opts.MustExist {
		if err := mustBeDir(dir); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", dir, err)
	}
	budget, err := cacheBudget(opts.CacheBytes)
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", dir, err)
	}
	segDocs := opts.SegmentDocs
	if segDocs <= 0 {
		segDocs = DefaultSegmentDocs
	}
	return &Store{dir: abs, log: opts.Logger, cache: newSegCache(budget), segDocs: segDocs, fields: slices.Clone(opts.Fields), indices: map[string]*index{}}, nil
}

// mustBeDir reports a store directory that is missing or not a directory.
func mustBeDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("embedded store %s does not exist (offtrail load --store file:%s creates it)", dir, dir)
	case err != nil:
		return fmt.Errorf("embedded store %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("embedded store %s is not a directory", dir)
	}
	return nil
}

// NewMemory returns a store that keeps everything in memory.
func NewMemory() *Store {
	return &Store{
		indices:   map[string]*index{},
		templates: map[string]json.RawMessage{},
		state:     map[string]map[string]*stateEntry{},
	}
}

// Dir returns the store's directory ("" in memory).
func (s *Store) Dir() string { return s.dir }

// Kind implements store.Backend.
func (s *Store) Kind() string { return Kind }

// Refresh implements store.Backend: writes are visible once they return.
func (s *Store) Refresh(context.Context, ...string) error { return nil }

// Close drops the caches; an in-memory store drops its data. The store may
// be used again after Close (a directory store reloads from disk).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indices = map[string]*index{}
	if s.cache != nil {
		s.cache.reset()
	}
	if s.dir == "" {
		s.templates = map[string]json.RawMessage{}
		s.state = map[string]map[string]*stateEntry{}
	}
	return nil
}

// EnsureTemplate keeps the template; documents are not typed by it.
func (s *Store) EnsureTemplate(_ context.Context, name string, body json.RawMessage) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("template %q: %w", name, err)
	}
	if !json.Valid(body) {
		return fmt.Errorf("template %s: invalid JSON", name)
	}
	if s.dir == "" {
		s.mu.Lock()
		s.templates[name] = append(json.RawMessage(nil), body...)
		s.mu.Unlock()
		return nil
	}
	dir := filepath.Join(s.dir, templateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("template %s: %w", name, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, name+".json"), body); err != nil {
		return fmt.Errorf("template %s: %w", name, err)
	}
	return nil
}

// validName rejects index and template names that are not a single
// ordinary directory entry (and the store's own "_" directories).
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case strings.ContainsAny(name, `/\*?[],`) || strings.ContainsRune(name, 0):
		return errors.New("name contains a path separator, wildcard or comma")
	case name[0] == '_' || name[0] == '.':
		return errors.New("name starts with an underscore or a dot")
	}
	return nil
}

// maxIndexBytes is the engines' limit on an index name.
const maxIndexBytes = 255

// validIndexName rejects the index names Elasticsearch and OpenSearch
// reject, so that what works on the embedded store works on a cluster
// (and the other way round), plus the names the store keeps for itself
// (leading "_" or "."). Colons are refused too: the engines reject them
// since 7.0.
func validIndexName(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	switch {
	case len(name) > maxIndexBytes:
		return fmt.Errorf("name is %d bytes long, more than %d", len(name), maxIndexBytes)
	case strings.ToLower(name) != name:
		return errors.New("name must be lower case")
	case strings.ContainsAny(name, `"<>| #:`):
		return errors.New(`name contains one of \ / * ? " < > | space , # or colon`)
	case strings.ContainsAny(name[:1], "-+"):
		return errors.New("name starts with - or +")
	}
	return nil
}

// indexFor returns the cached index handle for name, creating it.
func (s *Store) indexFor(name string) *index {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[name]
	if ix == nil {
		ix = &index{name: name, log: s.log}
		if s.dir != "" {
			ix.dir = filepath.Join(s.dir, name)
			ix.loadKnownFields()
			for _, f := range s.fields {
				if !slices.Contains(ix.known, f) {
					ix.known = append(ix.known, f)
				}
			}
		} else {
			ix.loaded = true
			ix.byID = map[string]int32{}
			ix.cols = newColCache()
		}
		s.indices[name] = ix
	}
	return ix
}

// resolve expands the query's index names and patterns (path.Match
// semantics, as the engines' wildcards) into fresh index handles. Names
// starting with _ or . only match patterns that start the same way, as
// hidden indices on the engines. Missing indices are skipped.
func (s *Store) resolve(patterns []string) ([]*index, error) {
	var names []string
	if s.dir != "" {
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			return nil, fmt.Errorf("list indices: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
	} else {
		s.mu.Lock()
		for n := range s.indices {
			names = append(names, n)
		}
		s.mu.Unlock()
	}
	chosen := map[string]bool{}
	for _, p := range patterns {
		for _, p := range strings.Split(p, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("index pattern %q: %w", p, err)
			}
			for _, n := range names {
				if (n[0] == '_' || n[0] == '.') && n[0] != p[0] {
					continue
				}
				if ok, _ := path.Match(p, n); ok {
					chosen[n] = true
				}
			}
		}
	}
	out := make([]*index, 0, len(chosen))
	for n := range chosen {
		if n == stateDir || n == templateDir {
			continue
		}
		ix := s.indexFor(n)
		if s.dir != "" {
			if err := ix.refreshFiles(s.cache); err != nil {
				return nil, err
			}
		}
		out = append(out, ix)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// writeFileAtomic writes data to a temporary file next to name, syncs it and
// renames it into place, so readers see the old or the new file, never half.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Delete removes indices (event, signal and state indices of those names)
// and templates, as DELETE /<index> and DELETE /_index_template/<name> do
// on the engines; a name that does not exist is no error. A kept store
// (offtrail bench --keep-indices) needs it: the state a run leaves behind
// would otherwise hold the next run's leases and checkpoints.
func (s *Store) Delete(indices, templates []string) error {
	for _, name := range indices {
		if err := validIndexName(name); err != nil {
			return fmt.Errorf("delete index %q: %w", name, err)
		}
	}
	for _, name := range templates {
		if err := validName(name); err != nil {
			return fmt.Errorf("delete template %q: %w", name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range indices {
		if ix := s.indices[name]; ix != nil && s.cache != nil {
			// Its segments would hold the column budget until evicted.
			var keys []string
			for _, m := range ix.snapshotFiles() {
				keys = append(keys, m.key())
			}
			s.cache.drop(keys)
		}
		delete(s.indices, name)
		if s.dir == "" {
			delete(s.state, name)
			delete(s.docs, name)
			continue
		}
		for _, dir := range []string{filepath.Join(s.dir, name), s.stateDirFor(name)} {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("delete index %s: %w", name, err)
			}
		}
	}
	for _, name := range templates {
		if s.dir == "" {
			delete(s.templates, name)
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, templateDir, name+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete template %s: %w", name, err)
		}
	}
	return nil
}
