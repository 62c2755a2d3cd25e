package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/offtrail/offtrail/detector/store"
)

// incidentsFile holds the documents written by PutDocs (incidents): one
// line per id, the latest version, so a reader sees each incident once.
const incidentsFile = "incidents.ndjson"

// PutDocs writes docs into index by id, replacing earlier versions: the
// engines' index operation. On disk the index's incidents.ndjson is
// rewritten whole (it holds one line per live incident) under the
// signals lock, through a temporary file, so readers never see half.
func (s *Store) PutDocs(_ context.Context, indexName string, docs []store.Doc) error {
	if err := validName(indexName); err != nil {
		return fmt.Errorf("index %q: %w", indexName, err)
	}
	if len(docs) == 0 {
		return nil
	}
	ix := s.indexFor(indexName)
	if ix.dir == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.docs == nil {
			s.docs = map[string]map[string][]byte{}
		}
		if s.docs[indexName] == nil {
			s.docs[indexName] = map[string][]byte{}
		}
		for _, d := range docs {
			s.docs[indexName][d.ID] = append([]byte(nil), d.Source...)
		}
		return nil
	}
	if err := os.MkdirAll(ix.dir, 0o755); err != nil {
		return fmt.Errorf("index %s: %w", indexName, err)
	}
	lock, err := lockFile(filepath.Join(ix.dir, ".signals.lock"))
	if err != nil {
		return fmt.Errorf("index %s: %w", indexName, err)
	}
	defer lock.Close()
	name := filepath.Join(ix.dir, incidentsFile)
	cur, err := readDocs(name)
	if err != nil {
		return fmt.Errorf("index %s: %w", indexName, err)
	}
	var buf bytes.Buffer
	for _, d := range docs {
		if err := compactSource(&buf, d.Source); err != nil {
			return fmt.Errorf("index %s: document %s: %w", indexName, d.ID, err)
		}
		cur[d.ID] = append([]byte(nil), buf.Bytes()...)
	}
	ids := make([]string, 0, len(cur))
	for id := range cur {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []byte
	for _, id := range ids {
		out = appendLine(out, id, cur[id])
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return fmt.Errorf("index %s: %w", indexName, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("index %s: %w", indexName, err)
	}
	return nil
}

// Docs returns the PutDocs documents of index by id (tests, `offtrail`
// commands that print incidents).
func (s *Store) Docs(indexName string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	ix := s.indexFor(indexName)
	if ix.dir == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		for id, src := range s.docs[indexName] {
			out[id] = append(json.RawMessage(nil), src...)
		}
		return out, nil
	}
	cur, err := readDocs(filepath.Join(ix.dir, incidentsFile))
	for id, src := range cur {
		out[id] = src
	}
	return out, err
}

func readDocs(name string) (map[string][]byte, error) {
	out := map[string][]byte{}
	f, err := os.Open(name)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out[rec.ID] = rec.Source
	}
	return out, sc.Err()
}
