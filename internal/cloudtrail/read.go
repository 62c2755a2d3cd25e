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
	// Line is the event's line for line-per-event input (NDJSON); 0 for
	// documents read as a stream ({"Records":[…]}, arrays).
	Line int
}

// Pos locates a problem: a file, and within it a record and, for NDJSON,
// a line (records and lines differ: blank lines, several records a line).
type Pos struct {
	File   string
	Record int // from 1; 0 for the file as a whole
	Line   int // from 1; 0 when not read by line
}

func (p Pos) String() string {
	switch {
	case p.Line > 0 && p.Record > 0:
		return fmt.Sprintf("%s:%d (record %d)", p.File, p.Line, p.Record)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	case p.Record > 0:
		return fmt.Sprintf("%s: record %d", p.File, p.Record)
	}
	return p.File
}

// Stats counts what a Read saw.
type Stats struct {
	Files    int // files opened
	BadFiles int // files that could not be read or parsed to the end
	Records  int // records passed to the callback
	Skipped  int // records skipped as invalid
	// Unreadable counts records known to exist that could not be decoded:
	// the one where a file broke, and those found after it. Records past
	// the end of a truncated file cannot be known and are not counted.
	Unreadable int
}

// Add sums two counts.
func (s *Stats) Add(o Stats) {
	s.Files += o.Files
	s.BadFiles += o.BadFiles
	s.Records += o.Records
	s.Skipped += o.Skipped
	s.Unreadable += o.Unreadable
}

// Reader reads CloudTrail files. The zero value is ready to use.
type Reader struct {
	// OnSkip, if set, is told about every skipped record and every file
	// that could not be read to the end (pos is where reading stopped;
	// Record is 0 for a file that could not be opened).
	OnSkip func(pos Pos, err error)
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
	n          int // the record where the file broke
	line       int // its line, when read by line
	unreadable int // records known but not decoded
	err        error
}

func (e *fileError) Error() string { return e.err.Error() }

func (r *Reader) readFile(ctx context.Context, path string, fn func(Record) error, st *Stats) error {
	st.Files++
	f, err := os.Open(path)
	if err != nil {
		st.BadFiles++
		r.skip(Pos{File: path}, err)
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
		st.Unreadable += fe.unreadable
		r.skip(Pos{File: name, Record: fe.n, Line: fe.line}, fe.err)
		return nil
	}
	return err
}

func (r *Reader) skip(pos Pos, err error) {
	if r.OnSkip != nil {
		r.OnSkip(pos, err)
	}
}

type parser struct {
	r    *Reader
	ctx  context.Context
	name string
	fn   func(Record) error
	st   *Stats
	n    int // records seen in this file
	line int // lines read, for line-per-event input
}

const gzipMagic = "\x1f\x8b"

// parse detects compression and layout and streams the records.
func (p *parser) parse(in io.Reader) error {
	br := bufio.NewReaderSize(in, 64<<10)
	if magic, _ := br.Peek(2); string(magic) == gzipMagic {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return &fileError{err: fmt.Errorf("gzip: %w", err)}
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	first, err := peekNonSpace(br)
	if err == io.EOF {
		return nil // empty file: nothing to do, nothing wrong
	}
	if err != nil {
		return &fileError{err: err}
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
		return &fileError{err: fmt.Errorf("not JSON: starts with %q", first)}
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
		blank := len(bytes.TrimSpace(line)) == 0
		if err != nil && err != io.EOF {
			// The file breaks here (a truncated gzip): a partial line is a
			// record that cannot be read; what follows cannot be known.
			fe := &fileError{n: p.n, line: p.line, err: err}
			if !blank {
				p.line++
				fe.n, fe.line, fe.unreadable = p.n+1, p.line, 1
			}
			return fe
		}
		p.line++
		if !blank {
			if firstLine && !json.Valid(line) {
				p.line = 0 // a pretty-printed document is streamed, not read by line
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
			return &fileError{n: p.n, err: fmt.Errorf("invalid JSON after record %d: %w", p.n, err)}
		}
		switch tok {
		case json.Delim('['):
			if err := p.array(dec, in); err != nil {
				return err
			}
		case json.Delim('{'):
			if err := p.object(dec, in); err != nil {
				return err
			}
		default:
			return &fileError{n: p.n, err: fmt.Errorf("unexpected %v at top level", tok)}
		}
	}
}

// array decodes the elements of an array whose '[' has been read; in is
// what dec reads, to count the records after a broken one.
func (p *parser) array(dec *json.Decoder, in io.Reader) error {
	for dec.More() {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		p.n++
		var v any
		if err := dec.Decode(&v); err != nil {
			// A decoder that failed keeps the broken value buffered.
			left := recordsFrom(io.MultiReader(dec.Buffered(), in))
			return &fileError{n: p.n, unreadable: max(left, 1), err: fmt.Errorf("invalid JSON in record %d (byte %d): %w", p.n, dec.InputOffset(), err)}
		}
		if err := p.record(v); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return &fileError{n: p.n, err: fmt.Errorf("invalid JSON after record %d: %w", p.n, err)}
	}
	return nil
}

// object reads an object whose '{' has been read. A Records array is
// streamed; an object without one is itself a record.
func (p *parser) object(dec *json.Decoder, in io.Reader) error {
	obj := map[string]any{}
	hasRecords := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &fileError{n: p.n, err: fmt.Errorf("invalid JSON: %w", err)}
		}
		key, _ := tok.(string)
		if key == "Records" && !hasRecords {
			t, err := dec.Token()
			if err != nil {
				return &fileError{n: p.n, err: fmt.Errorf("invalid JSON: %w", err)}
			}
			if t == json.Delim('[') {
				hasRecords = true
				if err := p.array(dec, in); err != nil {
					return err
				}
				continue
			}
			if t != nil {
				return &fileError{n: p.n, err: fmt.Errorf("the Records field is %v, not an array", t)}
			}
			hasRecords = true // "Records": null, a delivery of nothing
			continue
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return &fileError{n: p.n, err: fmt.Errorf("invalid JSON: %w", err)}
		}
		if !hasRecords {
			obj[key] = v
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return &fileError{n: p.n, err: fmt.Errorf("invalid JSON: %w", err)}
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
	rec.File, rec.N, rec.Line = p.name, p.n, p.line
	p.st.Records++
	return p.fn(rec)
}

func (p *parser) bad(err error) {
	p.st.Skipped++
	p.r.skip(Pos{File: p.name, Record: p.n, Line: p.line}, err)
}

// recordsFrom counts the objects of an array from a broken one on: braces
// outside strings, from the broken record's start to the array's end (or
// the end of what can be read). The records are known to exist though
// they are not decoded, so they are counted, not lost.
func recordsFrom(r io.Reader) int {
	br := bufio.NewReader(r)
	depth, n := 0, 0
	inString, escaped := false, false
	for {
		b, err := br.ReadByte()
		if err != nil {
			return n
		}
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth == 0 && b == '{' {
				n++
			}
			depth++
		case b == '}' || b == ']':
			if depth--; depth < 0 {
				return n
			}
		}
	}
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
