// Package cloudtrail reads CloudTrail records as AWS delivers them to S3
// ({"Records":[…]} files, plain or gzip, in the AWSLogs/… tree), as JSON
// arrays, or one event per line as shippers write them, and shapes them
// into documents for Elasticsearch or OpenSearch: the ECS layout of
// Elastic's AWS integration, or raw CloudTrail with a little enrichment.
package cloudtrail

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Record is one CloudTrail event as read.
type Record struct {
	// Raw is the event as decoded (numbers as json.Number, so they
	// round-trip exactly).
	Raw map[string]any
	// Time is eventTime, or @timestamp for events shipped without it.
	Time time.Time
	// ID is eventID; for events without one, a stable hash of the event so
	// that loading the same file twice does not duplicate it.
	ID string
	// File and N locate the event: N counts records from 1 within a file.
	File string
	N    int
}

// Stats counts what a Read saw.
type Stats struct {
	Files    int // files opened
	BadFiles int // files that could not be read or parsed to the end
	Records  int // records passed to the callback
	Skipped  int // records skipped as invalid
}

// Reader reads CloudTrail files. The zero value is ready to use.
type Reader struct {
	// OnSkip, if set, is told about every skipped record (n ≥ 1) and every
	// file that could not be read to the end (n is the record number where
	// reading stopped, 0 for a file that could not be opened).
	OnSkip func(file string, n int, err error)
}

// Read reads paths (files or directory trees) with a zero Reader.
func Read(ctx context.Context, paths []string, fn func(Record) error) (Stats, error) {
	var r Reader
	return r.Read(ctx, paths, fn)
}

// Read calls fn for every valid record under paths, in file order (files
// of a directory in lexical order, which for the S3 layout is time order).
// A path that does not exist is an error; a bad file or record is reported
// through OnSkip, counted, and reading goes on. An error from fn or the
// context stops the read and is returned.
func (r *Reader) Read(ctx context.Context, paths []string, fn func(Record) error) (Stats, error) {
	var st Stats
	for _, p := range paths {
		files, err := listFiles(p)
		if err != nil {
			return st, err
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			if err := r.readFile(ctx, f, fn, &st); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// ReadStream reads one stream (a file's content, gzip or not) named name.
func (r *Reader) ReadStream(ctx context.Context, name string, in io.Reader, fn func(Record) error) (Stats, error) {
	var st Stats
	st.Files++
	err := r.readStream(ctx, name, in, fn, &st)
	return st, err
}

// listFiles expands a path: a file as itself, a directory into the event
// files below it. Digest files (CloudTrail-Digest) hold no events.
func listFiles(root string) ([]string, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		// WalkDir does not follow a symlinked root: resolve it first.
		if root, err = filepath.EvalSymlinks(root); err != nil {
			return nil, err
		}
	}
	if !fi.IsDir() {
		return []string{root}, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "CloudTrail-Digest") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || strings.Contains(name, "_CloudTrail-Digest_") {
			return nil
		}
		if isEventFile(name) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	sort.Strings(files)
	return files, nil
}

func isEventFile(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	for _, ext := range []string{".json", ".jsonl", ".ndjson"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// fileError is returned inside readStream for problems that end a file
// but not the whole read.
type fileError struct {
	n   int
	err error
}

func (e *fileError) Error() string { return e.err.Error() }

func (r *Reader) readFile(ctx context.Context, path string, fn func(Record) error, st *Stats) error {
	st.Files++
	f, err := os.Open(path)
	if err != nil {
		st.BadFiles++
		r.skip(path, 0, err)
		return nil
	}
	defer f.Close()
	return r.readStream(ctx, path, f, fn, st)
}

func (r *Reader) readStream(ctx context.Context, name string, in io.Reader, fn func(Record) error, st *Stats) error {
	p := parser{r: r, ctx: ctx, name: name, fn: fn, st: st}
	err := p.parse(in)
	var fe *fileError
	if errors.As(err, &fe) {
		st.BadFiles++
		r.skip(name, fe.n, fe.err)
		return nil
	}
	return err
}

func (r *Reader) skip(file string, n int, err error) {
	if r.OnSkip != nil {
		r.OnSkip(file, n, err)
	}
}

type parser struct {
	r    *Reader
	ctx  context.Context
	name string
	fn   func(Record) error
	st   *Stats
	n    int // records seen in this file
}

const gzipMagic = "\x1f\x8b"

// parse detects compression and layout and streams the records.
func (p *parser) parse(in io.Reader) error {
	br := bufio.NewReaderSize(in, 64<<10)
	if magic, _ := br.Peek(2); string(magic) == gzipMagic {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return &fileError{0, fmt.Errorf("gzip: %w", err)}
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	first, err := peekNonSpace(br)
	if err == io.EOF {
		return nil // empty file: nothing to do, nothing wrong
	}
	if err != nil {
		return &fileError{0, err}
	}
	switch first {
	case '[':
		return p.stream(br)
	case '{':
		if p.recordsFirst(br) {
			return p.stream(br)
		}
		return p.lines(br)
	default:
		return &fileError{0, fmt.Errorf("not JSON: starts with %q", first)}
	}
}

// peekNonSpace discards leading whitespace (and a UTF-8 BOM) and returns
// the next byte without consuming it.
func peekNonSpace(br *bufio.Reader) (byte, error) {
	if bom, _ := br.Peek(3); string(bom) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.Discard(1)
		default:
			return b[0], nil
		}
	}
}

// recordsFirst reports whether the object at the head of br opens with a
// "Records" key, as every file CloudTrail delivers does. Such files are
// often a single multi-megabyte line, so they must not be read by line.
func (p *parser) recordsFirst(br *bufio.Reader) bool {
	head, _ := br.Peek(256)
	head = bytes.TrimLeft(head[1:], " \t\r\n")
	return bytes.HasPrefix(head, []byte(`"Records"`))
}

// lines reads one JSON object per line (NDJSON, as Logstash, Fluent Bit
// and Firehose write events). A bad line is one bad record. If the first
// line is not a complete object the content is a pretty-printed document
// instead, and is streamed.
func (p *parser) lines(br *bufio.Reader) error {
	firstLine := true
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if firstLine && !json.Valid(line) {
				return p.stream(io.MultiReader(bytes.NewReader(line), br))
			}
			firstLine = false
			if err := p.ctx.Err(); err != nil {
				return err
			}
			var v any
			if uerr := unmarshal(line, &v); uerr != nil {
				p.n++
				p.bad(fmt.Errorf("invalid JSON: %w", uerr))
			} else if err := p.lineValue(v); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &fileError{p.n, err}
		}
	}
}

// lineValue handles one decoded line: an event, or a whole delivery file
// ({"Records":[…]}) flattened onto one line.
func (p *parser) lineValue(v any) error {
	if m, ok := v.(map[string]any); ok {
		if recs, ok := m["Records"].([]any); ok {
			for _, r := range recs {
				p.n++
				if err := p.record(r); err != nil {
					return err
				}
			}
			return nil
		}
	}
	p.n++
	return p.record(v)
}

func unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// stream reads a sequence of JSON values with a token decoder, so that a
// large Records array is never held whole: each value is a record, an
// array of records, or an object with a Records array.
func (p *parser) stream(in io.Reader) error {
	dec := json.NewDecoder(in)
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &fileError{p.n, fmt.Errorf("invalid JSON after record %d: %w", p.n, err)}
		}
		switch tok {
		case json.Delim('['):
			if err := p.array(dec); err != nil {
				return err
			}
		case json.Delim('{'):
			if err := p.object(dec); err != nil {
				return err
			}
		default:
			return &fileError{p.n, fmt.Errorf("unexpected %v at top level", tok)}
		}
	}
}

// array decodes the elements of an array whose '[' has been read.
func (p *parser) array(dec *json.Decoder) error {
	for dec.More() {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		p.n++
		var v any
		if err := dec.Decode(&v); err != nil {
			return &fileError{p.n, fmt.Errorf("invalid JSON in record %d: %w", p.n, err)}
		}
		if err := p.record(v); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return &fileError{p.n, fmt.Errorf("invalid JSON after record %d: %w", p.n, err)}
	}
	return nil
}

// object reads an object whose '{' has been read. A Records array is
// streamed; an object without one is itself a record.
func (p *parser) object(dec *json.Decoder) error {
	obj := map[string]any{}
	hasRecords := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &fileError{p.n, fmt.Errorf("invalid JSON: %w", err)}
		}
		key, _ := tok.(string)
		if key == "Records" && !hasRecords {
			t, err := dec.Token()
			if err != nil {
				return &fileError{p.n, fmt.Errorf("invalid JSON: %w", err)}
			}
			if t == json.Delim('[') {
				hasRecords = true
				if err := p.array(dec); err != nil {
					return err
				}
				continue
			}
			if t != nil {
				return &fileError{p.n, fmt.Errorf("the Records field is %v, not an array", t)}
			}
			hasRecords = true // "Records": null, a delivery of nothing
			continue
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return &fileError{p.n, fmt.Errorf("invalid JSON: %w", err)}
		}
		if !hasRecords {
			obj[key] = v
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return &fileError{p.n, fmt.Errorf("invalid JSON: %w", err)}
	}
	if hasRecords {
		return nil
	}
	p.n++
	return p.record(obj)
}

// record validates one decoded value and hands it on.
func (p *parser) record(v any) error {
	raw, ok := v.(map[string]any)
	if !ok {
		p.bad(fmt.Errorf("record is a JSON %s, not an object", jsonKind(v)))
		return nil
	}
	rec, err := NewRecord(raw)
	if err != nil {
		p.bad(err)
		return nil
	}
	rec.File, rec.N = p.name, p.n
	p.st.Records++
	return p.fn(rec)
}

func (p *parser) bad(err error) {
	p.st.Skipped++
	p.r.skip(p.name, p.n, err)
}

// NewRecord checks that raw is a usable CloudTrail event (it has a time
// and an eventName) and fills in its parsed time and id.
func NewRecord(raw map[string]any) (Record, error) {
	name, _ := raw["eventName"].(string)
	if name == "" {
		return Record{}, errors.New("no eventName")
	}
	t, err := eventTime(raw)
	if err != nil {
		return Record{}, err
	}
	id, _ := raw["eventID"].(string)
	if id == "" {
		id = hashID(raw)
	}
	return Record{Raw: raw, Time: t, ID: id}, nil
}

// timeLayouts are the forms event times take: CloudTrail's own RFC 3339,
// and the space-separated form of Athena and Panther exports (UTC).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

func eventTime(raw map[string]any) (time.Time, error) {
	for _, key := range []string{"eventTime", "@timestamp"} {
		v, ok := raw[key]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return time.Time{}, fmt.Errorf("%s is not a string", key)
		}
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("%s %q is not a time", key, truncate(s, 40))
	}
	return time.Time{}, errors.New("no eventTime or @timestamp")
}

// hashID derives an id from the event's canonical JSON (encoding/json
// sorts map keys), so it does not depend on how the file was laid out.
func hashID(raw map[string]any) string {
	b, err := json.Marshal(raw)
	if err != nil {
		b = fmt.Appendf(nil, "%v", raw)
	}
	sum := sha256.Sum256(b)
	return "sha256-" + hex.EncodeToString(sum[:16])
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	default:
		return "value"
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
