package embedded

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/offtrail/offtrail/detector/store"
)

// keepLimit is how many written documents a bulk writer keeps to update a
// loaded index in place; past it, the index reloads on the next read.
const keepLimit = 20000

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

// NewBulkWriter implements store.Backend. On disk, each writer produces one
// gzip segment, renamed into place on Close; documents overwrite earlier
// ones with the same id.
func (s *Store) NewBulkWriter(_ context.Context, indexName string, onError func(id string, err error)) (store.BulkWriter, error) {
	if err := validName(indexName); err != nil {
		return nil, fmt.Errorf("index %q: %w", indexName, err)
	}
	if onError == nil {
		onError = func(string, error) {}
	}
	ix := s.indexFor(indexName)
	w := &bulkWriter{ix: ix, onError: onError}
	if ix.dir == "" {
		return w, nil
	}
	if err := os.MkdirAll(ix.dir, 0o755); err != nil {
		return nil, fmt.Errorf("index %s: %w", indexName, err)
	}
	f, err := os.CreateTemp(ix.dir, ".seg-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", indexName, err)
	}
	w.f = f
	w.bw = bufio.NewWriterSize(f, 256<<10)
	w.zw = gzip.NewWriter(w.bw)
	return w, nil
}

type bulkWriter struct {
	ix      *index
	onError func(id string, err error)

	f  *os.File // nil in memory
	bw *bufio.Writer
	zw *gzip.Writer

	buf      bytes.Buffer
	line     []byte
	kept     []rawDoc // for applyWritten; nil once past keepLimit on disk
	tooMany  bool
	indexed  int64
	failed   int64
	closed   bool
	writeErr error
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
	if w.f == nil {
		w.kept = append(w.kept, rawDoc{id: doc.ID, src: append([]byte(nil), src...)})
		w.indexed++
		if len(w.kept) >= memFlush {
			w.ix.applyWritten("", w.kept)
			w.kept = nil
		}
		return nil
	}
	w.line = appendLine(w.line[:0], doc.ID, src)
	if _, err := w.zw.Write(w.line); err != nil {
		w.writeErr = fmt.Errorf("index %s: write segment: %w", w.ix.name, err)
		return w.writeErr
	}
	w.indexed++
	if !w.tooMany {
		if len(w.kept) < keepLimit {
			w.kept = append(w.kept, rawDoc{id: doc.ID, src: append([]byte(nil), src...)})
		} else {
			w.tooMany, w.kept = true, nil
		}
	}
	return nil
}

func (w *bulkWriter) Close(context.Context) (int64, int64, error) {
	if w.closed {
		return w.indexed, w.failed, nil
	}
	w.closed = true
	if w.f == nil {
		if len(w.kept) > 0 {
			w.ix.applyWritten("", w.kept)
		}
		w.kept = nil
		return w.indexed, w.failed, nil
	}
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
	if err != nil || w.indexed == 0 {
		os.Remove(tmp)
		if err != nil {
			return 0, w.failed + w.indexed, fmt.Errorf("index %s: segment: %w", w.ix.name, err)
		}
		return 0, w.failed, nil
	}
	name := segmentName()
	if err := os.Rename(tmp, filepath.Join(w.ix.dir, name)); err != nil {
		os.Remove(tmp)
		return 0, w.failed + w.indexed, fmt.Errorf("index %s: segment: %w", w.ix.name, err)
	}
	var kept []rawDoc
	if !w.tooMany {
		kept = w.kept
	}
	w.ix.applyWritten(name, kept)
	w.kept = nil
	return w.indexed, w.failed, nil
}

// segmentName sorts by creation time, so later writers override earlier
// ones when an index is read back.
func segmentName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("seg-%020d-%s.ndjson.gz", time.Now().UnixNano(), hex.EncodeToString(b[:]))
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
	if err := validName(indexName); err != nil {
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
		if err := ix.refresh(); err != nil {
			return res, err
		}
	}
	var fresh []rawDoc
	seen := map[string]bool{}
	pick := func() {
		for i, d := range docs {
			if seen[d.ID] || ix.hasIDLocked(d.ID) {
				res.Existed++
				continue
			}
			seen[d.ID] = true
			fresh = append(fresh, rawDoc{id: d.ID, src: srcs[i]})
		}
	}
	if ix.dir == "" {
		// In memory the index lock makes check and insert one step.
		ix.mu.Lock()
		defer ix.mu.Unlock()
		pick()
		for _, d := range fresh {
			ix.putLocked(d)
		}
		if len(fresh) > 0 {
			ix.cols = newColCache()
		}
		res.Created = len(fresh)
		return res, nil
	}
	ix.mu.RLock()
	pick()
	ix.mu.RUnlock()
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
	ix.applyWritten(signalsFile, fresh)
	res.Created = len(fresh)
	return res, nil
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
