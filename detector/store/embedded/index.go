package embedded

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/rs/zerolog"
)

// rawDoc is one document as stored: its id and compact JSON source. Sources
// are decoded only to build columns and to return events, which keeps a
// loaded index a few times smaller than decoded maps would be.
type rawDoc struct {
	id  string
	src []byte
}

// fileStamp identifies a file's content well enough to notice changes.
type fileStamp struct {
	size  int64
	mtime int64
}

// index is one index: in memory, its documents and their columns; on
// disk, its files' metadata (the columns live in the store's segment cache).
type index struct {
	name string
	dir  string // "" in memory
	log  zerolog.Logger

	mu sync.RWMutex // guards everything below; in memory, queries hold RLock

	// In memory.
	loaded bool
	docs   []rawDoc
	byID   map[string]int32
	cols   *colCache // extended by appends, rebuilt when docs are replaced

	// On disk.
	files     []*fileMeta // by name; replaced, never modified
	gen       int64       // counts changes of files (from 1)
	known     []string    // value fields queries asked for
	knownTime []string    // time fields queries asked for
}

// isDataFile reports whether a directory entry holds documents.
func isDataFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	return strings.HasSuffix(name, ".ndjson") || strings.HasSuffix(name, ".ndjson.gz")
}

// listStamps stats the index directory's data files.
func (ix *index) listStamps() (map[string]fileStamp, error) {
	entries, err := os.ReadDir(ix.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]fileStamp{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", ix.name, err)
	}
	out := make(map[string]fileStamp, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() || !isDataFile(e.Name()) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", ix.name, err)
		}
		out[e.Name()] = fileStamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
	}
	return out, nil
}

// putLocked adds a document or replaces the one with its id.
func (ix *index) putLocked(d rawDoc) {
	if i, ok := ix.byID[d.id]; ok {
		ix.docs[i] = d
		return
	}
	ix.byID[d.id] = int32(len(ix.docs))
	ix.docs = append(ix.docs, d)
}

// applyWritten adds documents to an in-memory index.
func (ix *index) applyWritten(docs []rawDoc) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	from, replaced := len(ix.docs), false
	for _, d := range docs {
		if i, ok := ix.byID[d.id]; ok {
			if bytes.Equal(ix.docs[i].src, d.src) {
				continue // the same document again: nothing changes
			}
			replaced = true
		}
		ix.putLocked(d)
	}
	ix.cols = ix.cols.grown(ix, from, replaced)
}

// hasIDLocked reports whether an in-memory index holds a document with id.
func (ix *index) hasIDLocked(id string) bool {
	_, ok := ix.byID[id]
	return ok
}

// readDataFile calls fn for each document of an NDJSON file, gzipped when
// its name ends in .gz. fn must copy d.src if it keeps it.
func readDataFile(name string, fn func(rawDoc), bad func(line int, err error)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 256<<10)
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	return scanLines(r, filepath.Base(name), fn, bad)
}

func scanLines(r io.Reader, file string, fn func(rawDoc), bad func(line int, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256<<10), 512<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		d, err := parseLine(b)
		if err != nil {
			bad(line, err)
			continue
		}
		if d.id == "" {
			// A bare document without the _id/_source wrapper: give it a
			// stable id from where it is.
			d.id = fmt.Sprintf("%s:%d", file, line)
		}
		fn(d)
	}
	return sc.Err()
}

var (
	linePrefix = []byte(`{"_id":"`)
	lineMiddle = []byte(`","_source":`)
)

// parseLine reads {"_id":"..","_source":{..}}. Lines in exactly the form
// this package writes take a fast path that does not scan the source (it is
// validated when first decoded); anything else is parsed in full.
func parseLine(b []byte) (rawDoc, error) {
	if bytes.HasPrefix(b, linePrefix) && b[len(b)-1] == '}' {
		rest := b[len(linePrefix):]
		if i := bytes.Index(rest, lineMiddle); i >= 0 && bytes.IndexByte(rest[:i], '\\') < 0 {
			src := bytes.TrimSpace(rest[i+len(lineMiddle) : len(rest)-1])
			if len(src) > 1 && src[0] == '{' && src[len(src)-1] == '}' {
				return rawDoc{id: string(rest[:i]), src: src}, nil
			}
		}
	}
	var w struct {
		ID     *string         `json:"_id"`
		Source json.RawMessage `json:"_source"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return rawDoc{}, err
	}
	if w.Source == nil {
		if b[0] != '{' {
			return rawDoc{}, errors.New("not a JSON object")
		}
		// No wrapper: the line is the document.
		return rawDoc{src: b}, nil
	}
	if len(w.Source) == 0 || w.Source[0] != '{' {
		return rawDoc{}, errors.New("_source is not a JSON object")
	}
	var id string
	if w.ID != nil {
		id = *w.ID
	}
	return rawDoc{id: id, src: w.Source}, nil
}
