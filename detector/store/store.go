// Package store defines the vocabulary shared by offtrail's storage backends:
// windows, structured filters, grouped counts, events, signal and state
// documents. The detector and scheduler declare the small interfaces they
// need in their own packages; the backends (elastic, opensearch, embedded)
// implement them with these types.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrConflict is returned when a conditional state write loses a race: the
// document changed (or exists, for a create) since the caller read it.
var ErrConflict = errors.New("version conflict")

// ErrNotFound is returned when a state document does not exist.
var ErrNotFound = errors.New("not found")

// Window is the half-open time interval [From, To).
type Window struct {
	From, To time.Time
}

func (w Window) String() string {
	return w.From.UTC().Format(time.RFC3339) + "/" + w.To.UTC().Format(time.RFC3339)
}

// Contains reports whether t lies in the window.
func (w Window) Contains(t time.Time) bool {
	return !t.Before(w.From) && t.Before(w.To)
}

// Filter is a structured filter over physical field names. Within one field
// the values are alternatives (OR); fields combine with AND. A document
// missing a field in Terms does not match; a document missing a field in Not
// does match.
//
// Exclude drops the documents that satisfy any one of its clauses (a
// clause is a conjunction of conditions): exception entries, applied by the
// engine so excluded events never reach the jobs.
type Filter struct {
	Terms   map[string][]string `json:"terms,omitempty"`
	Not     map[string][]string `json:"not,omitempty"`
	Exclude []Clause            `json:"exclude,omitempty"`
}

// IsZero reports whether the filter matches everything.
func (f Filter) IsZero() bool { return len(f.Terms) == 0 && len(f.Not) == 0 && len(f.Exclude) == 0 }

// And returns a filter that matches what both f and g match. Where both
// constrain the same field, the values must satisfy both (intersection).
func (f Filter) And(g Filter) Filter {
	out := Filter{Terms: map[string][]string{}, Not: map[string][]string{}}
	for k, v := range f.Terms {
		out.Terms[k] = append([]string(nil), v...)
	}
	for k, v := range g.Terms {
		if cur, ok := out.Terms[k]; ok {
			out.Terms[k] = intersect(cur, v)
		} else {
			out.Terms[k] = append([]string(nil), v...)
		}
	}
	for k, v := range f.Not {
		out.Not[k] = append(out.Not[k], v...)
	}
	for k, v := range g.Not {
		out.Not[k] = append(out.Not[k], v...)
	}
	out.Exclude = append(append([]Clause(nil), f.Exclude...), g.Exclude...)
	return out
}

func intersect(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, v := range b {
		in[v] = true
	}
	out := []string{}
	for _, v := range a {
		if in[v] {
			out = append(out, v)
		}
	}
	return out
}

// Fields returns every field the filter names, sorted.
func (f Filter) Fields() []string {
	seen := map[string]bool{}
	for k := range f.Terms {
		seen[k] = true
	}
	for k := range f.Not {
		seen[k] = true
	}
	for _, c := range f.Exclude {
		for _, cond := range c {
			seen[cond.Field] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Query selects documents: indices (names or wildcard patterns), the field
// that holds the event time, a window on it, and a filter.
type Query struct {
	Index     []string `json:"index"`
	TimeField string   `json:"time_field"`
	Window    Window   `json:"window"`
	Filter    Filter   `json:"filter"`
}

// Validate reports a query that no backend could run.
func (q Query) Validate() error {
	switch {
	case len(q.Index) == 0:
		return errors.New("query: no index")
	case q.TimeField == "":
		return errors.New("query: no time field")
	case !q.Window.From.Before(q.Window.To):
		return fmt.Errorf("query: empty window %s", q.Window)
	}
	return nil
}

// CountRequest groups the documents of a query by a tuple of fields and
// counts each group. Documents missing any of the fields are not counted.
//
// Restrict limits the groups to documents whose field has one of the given
// values (the active entities of a window); backends chunk long lists.
//
// HourBuckets adds the event hour (UTC, truncated) as a last key component,
// formatted as RFC 3339; off-hours learning counts activity per hour this way.
type CountRequest struct {
	Query       Query               `json:"query"`
	GroupBy     []string            `json:"group_by"`
	Restrict    map[string][]string `json:"restrict,omitempty"`
	HourBuckets bool                `json:"hour_buckets,omitempty"`
	// PageSize is the composite aggregation page size; 0 means the default.
	PageSize int `json:"page_size,omitempty"`
}

// Group is one counted group of a CountRequest. Key has one string per
// GroupBy field (plus the hour when HourBuckets is set).
type Group struct {
	Key   []string `json:"key"`
	Count int64    `json:"count"`
}

// StatsRequest asks, per group of By, for the number of documents and the
// number of distinct values of Distinct.
type StatsRequest struct {
	Query    Query               `json:"query"`
	By       []string            `json:"by"`
	Distinct string              `json:"distinct"`
	Restrict map[string][]string `json:"restrict,omitempty"`
}

// Stats is one group of a StatsRequest.
type Stats struct {
	Key      []string `json:"key"`
	Total    int64    `json:"total"`
	Distinct int64    `json:"distinct"`
}

// Event is one stored document with its id, index and parsed time.
type Event struct {
	ID     string         `json:"id"`
	Index  string         `json:"index"`
	Time   time.Time      `json:"time"`
	Source map[string]any `json:"source"`
	// Raw is the source as stored, undecoded, from RawEvents (Source is
	// then nil): for a reader that only passes documents on.
	Raw json.RawMessage `json:"-"`
}

// Doc is a document to write with a caller-given id.
type Doc struct {
	ID     string
	Source json.RawMessage
}

// WriteResult is the outcome of a create-only write.
type WriteResult struct {
	Created int // newly written
	Existed int // already present with that id: not an error
	// CreatedIDs are the ids this write created, in the order of the docs.
	// Exactly one writer of an id is told it created it, however many
	// replicas, restarts or re-runs write it: notifications hang on this.
	// After a failed write it still lists what was created before the
	// failure.
	CreatedIDs []string
}

// StatePut is one write of PutStates: create-only when IfVersion is nil.
type StatePut struct {
	ID        string
	Doc       json.RawMessage
	IfVersion *Version
}

// StatePutResult is one write's outcome: its new version, or its error.
type StatePutResult struct {
	Version Version
	Err     error
}

// Version identifies one revision of a state document for optimistic
// concurrency (seq_no and primary_term on the engines).
type Version struct {
	SeqNo       int64 `json:"seq_no"`
	PrimaryTerm int64 `json:"primary_term"`
}

// Backend is everything a backend offers. Consumers should depend on the
// narrow interfaces they need; this one exists for wiring and for the
// conformance suite.
type Backend interface {
	// Kind names the engine ("elasticsearch", "opensearch", "embedded").
	Kind() string
	CountGroups(ctx context.Context, req CountRequest, fn func(Group) error) error
	Stats(ctx context.Context, req StatsRequest, fn func(Stats) error) error
	// Events returns up to limit events of q, oldest first (ties by id).
	Events(ctx context.Context, q Query, limit int) ([]Event, error)
	// WriteSignals creates docs in index in one request; ids already present
	// count as Existed, and the result names the ids it created.
	WriteSignals(ctx context.Context, index string, docs []Doc) (WriteResult, error)
	// PutDocs indexes docs by id, replacing earlier versions (incidents,
	// updated in place as their session grows).
	PutDocs(ctx context.Context, index string, docs []Doc) error
	// GetState reads a state document.
	GetState(ctx context.Context, index, id string) (json.RawMessage, Version, error)
	// PutState writes a state document. With ifVersion nil the document must
	// not exist yet; otherwise it must still be at ifVersion. Losing either
	// race returns ErrConflict.
	PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *Version) (Version, error)
	// PutStates writes several state documents in one request, each as
	// PutState would (a lost race is that item's ErrConflict); the results
	// are in the order of puts. An error means none is known written.
	PutStates(ctx context.Context, index string, puts []StatePut) ([]StatePutResult, error)
	// DeleteState removes a state document when it is still at version.
	DeleteState(ctx context.Context, index, id string, version Version) error
	// EnsureTemplate installs an index template (idempotent).
	EnsureTemplate(ctx context.Context, name string, body json.RawMessage) error
	// NewBulkWriter returns a writer that indexes documents into index,
	// overwriting by id (loading the same events twice does not duplicate).
	NewBulkWriter(ctx context.Context, index string, onError func(id string, err error)) (BulkWriter, error)
	// Refresh makes recent writes to the indices visible to search.
	Refresh(ctx context.Context, index ...string) error
	Close() error
}

// BulkWriter indexes documents in bulk.
type BulkWriter interface {
	Add(ctx context.Context, doc Doc) error
	// Close flushes and returns how many documents were indexed and failed.
	Close(ctx context.Context) (indexed, failed int64, err error)
}

// KeyString joins a group key for use as a map key. A part holding the
// separator or the escape byte has them escaped, so that different keys
// never join alike: the parts are field values, and a user agent or a
// request parameter is the caller's to choose.
func KeyString(key []string) string {
	for _, k := range key {
		if !plainPart(k) {
			return string(AppendKey(nil, key))
		}
	}
	return strings.Join(key, KeySep)
}

// AppendKey appends KeyString(key) to dst: a caller joining many keys
// into one buffer looks each up without allocating.
func AppendKey(dst []byte, key []string) []byte {
	for i, k := range key {
		if i > 0 {
			dst = append(dst, KeySep...)
		}
		if plainPart(k) {
			dst = append(dst, k...)
			continue
		}
		for j := 0; j < len(k); j++ {
			if k[j] == keySepByte || k[j] == keyEscByte {
				dst = append(dst, keyEscByte)
			}
			dst = append(dst, k[j])
		}
	}
	return dst
}

// KeySep separates a key's parts in KeyString; keyEsc escapes a
// separator or an escape byte inside a part.
const (
	KeySep     = "\x1f"
	keySepByte = 0x1f
	keyEscByte = 0x1e
)

func plainPart(s string) bool {
	return strings.IndexByte(s, keySepByte) < 0 && strings.IndexByte(s, keyEscByte) < 0
}

// SplitKey undoes KeyString.
func SplitKey(s string) []string {
	if strings.IndexByte(s, keyEscByte) < 0 {
		return strings.Split(s, KeySep)
	}
	var parts []string
	var part []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == keyEscByte && i+1 < len(s):
			i++
			part = append(part, s[i])
		case c == keySepByte:
			parts = append(parts, string(part))
			part = part[:0]
		default:
			part = append(part, c)
		}
	}
	return append(parts, string(part))
}

// Stringify renders a document value the way the engines render keyword
// aggregation keys: strings as they are, booleans as true/false, whole
// numbers without a fraction.
func Stringify(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x)), true
		}
		return fmt.Sprintf("%g", x), true
	case json.Number:
		return x.String(), true
	case int, int64, int32:
		return fmt.Sprintf("%d", x), true
	default:
		return "", false
	}
}

// Lookup finds a dotted field in a document that may be nested
// ({"event":{"action":..}}), flat ({"event.action":..}) or a mix.
func Lookup(doc map[string]any, field string) (any, bool) {
	if v, ok := doc[field]; ok {
		return v, true
	}
	for i := 0; i < len(field); i++ {
		if field[i] != '.' {
			continue
		}
		head, rest := field[:i], field[i+1:]
		if sub, ok := doc[head].(map[string]any); ok {
			if v, ok := Lookup(sub, rest); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// ParseTime reads an event time as the engines' date fields accept it.
func ParseTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05.000Z0700"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t.UTC(), true
			}
		}
	case float64:
		return time.UnixMilli(int64(x)).UTC(), true
	}
	return time.Time{}, false
}
