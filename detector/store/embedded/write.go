package embedded

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"golang.org/x/sys/unix"

	"github.com/offtrail/offtrail/detector/store"
)

// memFlush is how many documents an in-memory bulk writer buffers.
const memFlush = 10000

// compactSource checks that a document is a JSON object and compacts it to
// one line.
func compactSource(dst *bytes.Buffer, src json.RawMessage) error {
	dst.Reset()
	if err := json.Compact(dst, src); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if b := dst.Bytes(); len(b) == 0 || b[0] != '{' {
		return errors.New("source is not a JSON object")
	}
	return nil
}

// appendLine appends {"_id":..,"_source":..}\n.
func appendLine(dst []byte, id string, src []byte) []byte {
	q, _ := json.Marshal(id) // a string always marshals
	dst = append(dst, `{"_id":`...)
	dst = append(dst, q...)
	dst = append(dst, `,"_source":`...)
	dst = append(dst, src...)
	return append(dst, '}', '\n')
}

// NewBulkWriter implements store.Backend. On disk, a writer produces gzip
// segments of at most the store's SegmentDocs documents, each renamed into
// place when full and on Close; documents overwrite earlier ones with the
// same id.
func (s *Store) NewBulkWriter(_ context.Context, indexName string, onError func(id string, err error)) (store.BulkWriter, error) {
	if err := validIndexName(indexName); err != nil {
		return nil, fmt.Errorf("index %q: %w", indexName, err)
	}
	if onError == nil {
		onError = func(string, error) {}
	}
	ix := s.indexFor(indexName)
	w := &bulkWriter{ix: ix, onError: onError, segDocs: s.segDocs}
	if ix.dir == "" {
		return w, nil
	}
	if err := os.MkdirAll(ix.dir, 0o755); err != nil {
		return nil, fmt.Errorf("index %s: %w", indexName, err)
	}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

type bulkWriter struct {
	ix      *index
	onError func(id string, err error)
	segDocs int

	f     *os.File // nil in memory
	bw    *bufio.Writer
	zw    *gzip.Writer
	inSeg int64 // documents in the open segment

	buf      bytes.Buffer
	line     []byte
	kept     []rawDoc // in memory: documents not yet applied
	indexed  int64    // in closed segments (on disk) or applied (in memory)
	failed   int64
	closed   bool
	writeErr error
}

// open starts a new segment file.
func (w *bulkWriter) open() error {
	f, err := os.CreateTemp(w.ix.dir, ".seg-*.tmp")
	if err != nil {
		return fmt.Errorf("index %s: %w", w.ix.name, err)
	}
	w.f, w.inSeg = f, 0
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, 256<<10)
		w.zw = gzip.NewWriter(w.bw)
	} else {
		w.bw.Reset(f)
		w.zw.Reset(w.bw)
	}
	return nil
}

// seal finishes the open segment and renames it into place; a segment
// that fails is removed and its documents counted as failed.
func (w *bulkWriter) seal() error {
	tmp := w.f.Name()
	err := w.writeErr
	if err == nil {
		err = w.zw.Close()
	}
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err == nil && w.inSeg > 0 {
		err = os.Rename(tmp, filepath.Join(w.ix.dir, segmentName()))
	}
	if err != nil || w.inSeg == 0 {
		os.Remove(tmp)
	}
	if err != nil {
		w.failed += w.inSeg
		return fmt.Errorf("index %s: segment: %w", w.ix.name, err)
	}
	w.indexed += w.inSeg
	w.inSeg = 0
	return nil
}

func (w *bulkWriter) Add(_ context.Context, doc store.Doc) error {
	if w.closed {
		return errors.New("bulk writer closed")
	}
	if w.writeErr != nil {
		return w.writeErr
	}
	if doc.ID == "" {
		w.failed++
		w.onError(doc.ID, errors.New("empty document id"))
		return nil
	}
	if err := compactSource(&w.buf, doc.Source); err != nil {
		w.failed++
		w.onError(doc.ID, err)
		return nil
	}
	src := w.buf.Bytes()
	if w.ix.dir == "" {
		w.kept = append(w.kept, rawDoc{id: doc.ID, src: append([]byte(nil), src...)})
		if len(w.kept) >= memFlush {
			w.ix.applyWritten(w.kept)
			w.indexed += int64(len(w.kept))
			w.kept = nil
		}
		return nil
	}
	w.line = appendLine(w.line[:0], doc.ID, src)
	if _, err := w.zw.Write(w.line); err != nil {
		w.writeErr = fmt.Errorf("index %s: write segment: %w", w.ix.name, err)
		return w.writeErr
	}
	w.inSeg++
	if w.inSeg >= int64(w.segDocs) {
		if err := w.seal(); err != nil {
			w.writeErr = err
			return err
		}
		if err := w.open(); err != nil {
			w.writeErr = err
			return err
		}
	}
	return nil
}

func (w *bulkWriter) Close(context.Context) (int64, int64, error) {
	if w.closed {
		return w.indexed, w.failed, nil
	}
	w.closed = true
	if w.ix.dir == "" {
		if len(w.kept) > 0 {
			w.ix.applyWritten(w.kept)
			w.indexed += int64(len(w.kept))
		}
		w.kept = nil
		return w.indexed, w.failed, nil
	}
	if w.f == nil { // a failed open after a seal
		return w.indexed, w.failed, w.writeErr
	}
	err := w.seal()
	return w.indexed, w.failed, err
}

var (
	segMu   sync.Mutex
	segLast int64
)

// segmentName sorts by creation time, so later segments override earlier
// ones when an index is read back; names from one process strictly increase
// even within a clock tick.
func segmentName() string {
	segMu.Lock()
	ns := max(time.Now().UnixNano(), segLast+1)
	segLast = ns
	segMu.Unlock()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("seg-%020d-%s.ndjson.gz", ns, hex.EncodeToString(b[:]))
}

// lockFile takes an exclusive flock on name, creating it; closing the
// returned file releases the lock. flock locks belong to the open file, so
// two Stores in one process exclude each other too.
func lockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return f, nil
}

// WriteSignals implements store.Backend: documents are appended to the
// index's signals.ndjson unless their id is already in the index.
func (s *Store) WriteSignals(_ context.Context, indexName string, docs []store.Doc) (store.WriteResult, error) {
	var res store.WriteResult
	if err := validIndexName(indexName); err != nil {
		return res, fmt.Errorf("index %q: %w", indexName, err)
	}
	if len(docs) == 0 {
		return res, nil
	}
	// Validate everything first: a bad signal writes nothing.
	srcs := make([][]byte, len(docs))
	var buf bytes.Buffer
	for i, d := range docs {
		if d.ID == "" {
			return res, fmt.Errorf("index %s: signal without id", indexName)
		}
		if err := compactSource(&buf, d.Source); err != nil {
			return res, fmt.Errorf("index %s: signal %s: %w", indexName, d.ID, err)
		}
		srcs[i] = append([]byte(nil), buf.Bytes()...)
	}
	ix := s.indexFor(indexName)
	if ix.dir != "" {
		if err := os.MkdirAll(ix.dir, 0o755); err != nil {
			return res, fmt.Errorf("index %s: %w", indexName, err)
		}
		lock, err := lockFile(filepath.Join(ix.dir, ".signals.lock"))
		if err != nil {
			return res, fmt.Errorf("index %s: %w", indexName, err)
		}
		defer lock.Close()
		// Under the lock, see what other processes wrote.
		if err := ix.refreshFiles(s.cache); err != nil {
			return res, err
		}
	}
	var fresh []rawDoc
	seen := map[string]bool{}
	pick := func(has func(id string) (bool, error)) error {
		for i, d := range docs {
			if seen[d.ID] {
				res.Existed++
				continue
			}
			found, err := has(d.ID)
			if err != nil {
				return fmt.Errorf("index %s: %w", indexName, err)
			}
			if found {
				res.Existed++
				continue
			}
			seen[d.ID] = true
			fresh = append(fresh, rawDoc{id: d.ID, src: srcs[i]})
		}
		return nil
	}
	if ix.dir == "" {
		// In memory the index lock makes check and insert one step.
		ix.mu.Lock()
		defer ix.mu.Unlock()
		_ = pick(func(id string) (bool, error) { return ix.hasIDLocked(id), nil })
		for _, d := range fresh {
			ix.putLocked(d)
		}
		if len(fresh) > 0 {
			ix.cols = newColCache()
		}
		return created(res, fresh), nil
	}
	if err := pick(func(id string) (bool, error) { return s.hasIDDisk(ix, id) }); err != nil {
		return res, err
	}
	if len(fresh) == 0 {
		return res, nil
	}
	var out []byte
	for _, d := range fresh {
		out = appendLine(out, d.id, d.src)
	}
	if err := appendFile(filepath.Join(ix.dir, signalsFile), out); err != nil {
		return res, fmt.Errorf("index %s: %w", indexName, err)
	}
	return created(res, fresh), nil
}

// created completes res with the documents a write added.
func created(res store.WriteResult, fresh []rawDoc) store.WriteResult {
	res.Created = len(fresh)
	for _, d := range fresh {
		res.CreatedIDs = append(res.CreatedIDs, d.id)
	}
	return res
}

func appendFile(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// KeepSources puts documents into an in-memory index as they are, without
// compacting them: for sources an engine has just returned (valid JSON it
// parsed when they were indexed), which the tail only passes on. Only
// their shape is checked: a source that is not one line from '{' to '}'
// is compacted as Add would, and refused if it is not a JSON object.
func (s *Store) KeepSources(indexName string, docs []store.Doc) error {
	if err := validIndexName(indexName); err != nil {
		return fmt.Errorf("index %q: %w", indexName, err)
	}
	ix := s.indexFor(indexName)
	if ix.dir != "" {
		return fmt.Errorf("index %s: KeepSources is for in-memory stores", indexName)
	}
	kept := make([]rawDoc, 0, len(docs))
	var buf bytes.Buffer
	for _, d := range docs {
		if d.ID == "" {
			return errors.New("empty document id")
		}
		src := []byte(d.Source)
		if len(src) < 2 || src[0] != '{' || src[len(src)-1] != '}' || bytes.IndexByte(src, '\n') >= 0 {
			if err := compactSource(&buf, d.Source); err != nil {
				return fmt.Errorf("document %s: %w", d.ID, err)
			}
			src = bytes.Clone(buf.Bytes())
		}
		kept = append(kept, rawDoc{id: d.ID, src: src})
	}
	ix.applyWritten(kept)
	return nil
}

// DeleteBefore drops the documents of an in-memory index whose time on
// timeField is before t, or that have no time there, and reports how many
// went. The columns built for the rest are kept, renumbered, not parsed
// again: the baseline tail drops its oldest hour every hour, and copying
// what remained into a new store parsed every event it held once more.
func (s *Store) DeleteBefore(indexName, timeField string, t time.Time) (int, error) {
	if err := validIndexName(indexName); err != nil {
		return 0, fmt.Errorf("index %q: %w", indexName, err)
	}
	if timeField == "" {
		return 0, fmt.Errorf("index %s: delete before %s: no time field", indexName, t.Format(time.RFC3339))
	}
	ix := s.indexFor(indexName)
	if ix.dir != "" {
		return 0, fmt.Errorf("index %s: DeleteBefore is for in-memory stores", indexName)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	_, times := ix.cols.ensure(ix, nil, []string{timeField})
	cut := t.UnixNano()
	kept := make([]int32, 0, len(ix.docs))
	for i, v := range times[timeField] {
		if v != noTime && v >= cut {
			kept = append(kept, int32(i))
		}
	}
	gone := len(ix.docs) - len(kept)
	if gone == 0 {
		return 0, nil
	}
	docs := make([]rawDoc, len(kept))
	byID := make(map[string]int32, len(kept))
	for n, i := range kept {
		docs[n] = ix.docs[i]
		byID[docs[n].id] = int32(n)
	}
	ix.cols = ix.cols.retain(kept, len(ix.docs))
	ix.docs, ix.byID = docs, byID
	return gone, nil
}
