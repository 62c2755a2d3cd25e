package dsl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// ResponseError is an engine's error response: its HTTP status and the
// error type and reason from the body.
type ResponseError struct {
	Status int
	Type   string
	Reason string
}

func (e *ResponseError) Error() string {
	switch {
	case e.Type == "" && e.Reason == "":
		return fmt.Sprintf("status %d", e.Status)
	case e.Type == "":
		return fmt.Sprintf("status %d: %s", e.Status, e.Reason)
	}
	return fmt.Sprintf("status %d: %s: %s", e.Status, e.Type, e.Reason)
}

type errorCause struct {
	Type      string       `json:"type"`
	Reason    string       `json:"reason"`
	RootCause []errorCause `json:"root_cause"`
	CausedBy  *errorCause  `json:"caused_by"`
}

// deepest follows caused_by to the innermost reason, which is the one
// that names the field or setting at fault (search_phase_execution_exception
// alone says only "all shards failed").
func (c errorCause) deepest() errorCause {
	for c.CausedBy != nil {
		c = *c.CausedBy
	}
	return c
}

// decodeError reads an error body: {"error":{...},"status":N}, or the
// {"found":false} and {"result":"not_found"} bodies of document APIs, or
// plain text.
func decodeError(status int, body []byte) *ResponseError {
	e := &ResponseError{Status: status}
	var v struct {
		Error  json.RawMessage `json:"error"`
		Result string          `json:"result"`
	}
	if json.Unmarshal(body, &v) != nil {
		e.Reason = strings.TrimSpace(string(truncate(body, 300)))
		return e
	}
	if len(v.Error) == 0 {
		e.Reason = v.Result
		return e
	}
	var c errorCause
	if json.Unmarshal(v.Error, &c) != nil {
		// Some proxies answer {"error":"text"}.
		var s string
		_ = json.Unmarshal(v.Error, &s)
		e.Reason = s
		return e
	}
	e.Type, e.Reason = c.Type, c.Reason
	inner := c.deepest()
	if inner.Reason == c.Reason && len(c.RootCause) > 0 {
		inner = c.RootCause[0].deepest()
	}
	if inner.Reason != "" && inner.Reason != c.Reason {
		e.Reason += " (caused by " + inner.Type + ": " + inner.Reason + ")"
	}
	return e
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// shards is the _shards header of a search response. Partial results would
// silently undercount, so any shard failure fails the request.
type shards struct {
	Failed   int `json:"failed"`
	Failures []struct {
		Index  string     `json:"index"`
		Reason errorCause `json:"reason"`
	} `json:"failures"`
}

func (s shards) err() error {
	if s.Failed == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d shards failed", s.Failed)
	if len(s.Failures) > 0 {
		f := s.Failures[0]
		r := f.Reason.deepest()
		msg += fmt.Sprintf(": %s: %s: %s", f.Index, r.Type, r.Reason)
	}
	return &ResponseError{Status: 200, Type: "shard_failure", Reason: msg}
}

// compositePage is one decoded page of a composite aggregation.
type compositePage struct {
	AfterKey json.RawMessage
	Buckets  []bucket
}

type bucket struct {
	Key      []string
	DocCount int64
	Distinct int64
}

// decodeComposite decodes the "groups" aggregation of a search response.
// nKeys is the number of terms sources; hour adds the hour source. A
// response without aggregations (no index matched) is an empty page.
func decodeComposite(body []byte, nKeys int, hour bool) (compositePage, error) {
	var resp struct {
		TimedOut     bool   `json:"timed_out"`
		Shards       shards `json:"_shards"`
		Aggregations struct {
			Groups struct {
				AfterKey json.RawMessage `json:"after_key"`
				Buckets  []struct {
					Key      map[string]any `json:"key"`
					DocCount int64          `json:"doc_count"`
					Distinct struct {
						Value int64 `json:"value"`
					} `json:"distinct"`
				} `json:"buckets"`
			} `json:"groups"`
		} `json:"aggregations"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep long keys exact
	if err := dec.Decode(&resp); err != nil {
		return compositePage{}, fmt.Errorf("decode aggregation: %w", err)
	}
	if err := resp.Shards.err(); err != nil {
		return compositePage{}, err
	}
	if resp.TimedOut {
		return compositePage{}, &ResponseError{Status: 200, Type: "timeout", Reason: "search timed out"}
	}
	g := resp.Aggregations.Groups
	page := compositePage{AfterKey: g.AfterKey, Buckets: make([]bucket, 0, len(g.Buckets))}
	for _, b := range g.Buckets {
		key := make([]string, 0, nKeys+1)
		for i := range nKeys {
			s, ok := keyString(b.Key[sourceName(i)])
			if !ok {
				return compositePage{}, fmt.Errorf("decode aggregation: bucket key %v: no value for %s", b.Key, sourceName(i))
			}
			key = append(key, s)
		}
		if hour {
			s, err := hourKey(b.Key[hourSource])
			if err != nil {
				return compositePage{}, err
			}
			key = append(key, s)
		}
		page.Buckets = append(page.Buckets, bucket{Key: key, DocCount: b.DocCount, Distinct: b.Distinct.Value})
	}
	return page, nil
}

// keyString renders a composite key like store.Stringify renders document
// values, so backends agree: a double field's 3.0 is "3", a long is exact.
func keyString(v any) (string, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return store.Stringify(v)
	}
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10), true
	}
	f, err := n.Float64()
	if err != nil {
		return n.String(), true
	}
	return store.Stringify(f)
}

// hourKey formats a date_histogram key (epoch millis, UTC) as RFC 3339.
func hourKey(v any) (string, error) {
	n, ok := v.(json.Number)
	if !ok {
		return "", fmt.Errorf("decode aggregation: hour key %v is not a number", v)
	}
	ms, err := n.Int64()
	if err != nil {
		return "", fmt.Errorf("decode aggregation: hour key %v: %w", v, err)
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339), nil
}

type hit struct {
	ID     string          `json:"_id"`
	Index  string          `json:"_index"`
	Source json.RawMessage `json:"_source"`
	Sort   []any           `json:"sort"`
}

// decodeHits decodes a search response into events. The time comes from
// the time field in _source; when that does not parse, from the sort value
// (epoch millis), so an event is never dropped for its time format. With
// raw, the source is kept undecoded and the time is the sort value's
// (milliseconds) when it lies in the window asked for (a date_nanos
// field sorts by nanoseconds: then the source is decoded for it).
func decodeHits(body []byte, timeField string, raw *store.Window) ([]store.Event, error) {
	var resp struct {
		TimedOut bool   `json:"timed_out"`
		Shards   shards `json:"_shards"`
		Hits     struct {
			Hits []hit `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decode hits: %w", err)
	}
	if err := resp.Shards.err(); err != nil {
		return nil, err
	}
	if resp.TimedOut {
		return nil, &ResponseError{Status: 200, Type: "timeout", Reason: "search timed out"}
	}
	out := make([]store.Event, 0, len(resp.Hits.Hits))
	for _, h := range resp.Hits.Hits {
		ev := store.Event{ID: h.ID, Index: h.Index}
		if raw != nil && len(h.Sort) > 0 {
			if t, ok := store.ParseTime(h.Sort[0]); ok && raw.Contains(t.Truncate(time.Millisecond)) {
				ev.Raw, ev.Time = h.Source, t
				out = append(out, ev)
				continue
			}
		}
		if err := json.Unmarshal(h.Source, &ev.Source); err != nil {
			return nil, fmt.Errorf("decode hit %s: %w", h.ID, err)
		}
		t, ok := time.Time{}, false
		if v, found := store.Lookup(ev.Source, timeField); found {
			t, ok = store.ParseTime(v)
		}
		if !ok && len(h.Sort) > 0 {
			t, ok = store.ParseTime(h.Sort[0])
		}
		if !ok {
			return nil, fmt.Errorf("decode hit %s: no parsable time in %s", h.ID, timeField)
		}
		ev.Time = t
		if raw != nil {
			ev.Raw, ev.Source = h.Source, nil
		}
		out = append(out, ev)
	}
	return out, nil
}

// decodeRawHits is decodeHits for a raw read, in one pass: each source is
// passed on byte for byte as the engine sent it (scanHits finds it
// without parsing it), and the time is the sort value. A hit without a
// source, or whose sort value is not a time in the window, sends the
// whole response the way decodeHits goes.
func decodeRawHits(body []byte, timeField string, raw store.Window) ([]store.Event, error) {
	resp, err := scanHits(body)
	if err != nil {
		return nil, fmt.Errorf("decode hits: %w", err)
	}
	if resp.shards != nil {
		var s shards
		if err := json.Unmarshal(resp.shards, &s); err != nil {
			return nil, fmt.Errorf("decode hits: %w", err)
		}
		if err := s.err(); err != nil {
			return nil, err
		}
	}
	if resp.timedOut {
		return nil, &ResponseError{Status: 200, Type: "timeout", Reason: "search timed out"}
	}
	out := make([]store.Event, 0, len(resp.hits))
	var lastIndex []byte
	index := ""
	for _, h := range resp.hits {
		t, ok := sortTime(h.sort)
		if len(h.source) == 0 || h.source[0] != '{' || !ok || !raw.Contains(t.Truncate(time.Millisecond)) {
			return decodeHits(body, timeField, &raw)
		}
		id, err := unquoteOrEmpty(h.id)
		if err != nil {
			return nil, fmt.Errorf("decode hit id %s: %w", h.id, err)
		}
		if lastIndex == nil || !bytes.Equal(h.index, lastIndex) { // a window's hits share a few indices
			if index, err = unquoteOrEmpty(h.index); err != nil {
				return nil, fmt.Errorf("decode hit index %s: %w", h.index, err)
			}
			lastIndex = h.index
		}
		// A copy: the events outlive the response (the tail holds them).
		out = append(out, store.Event{ID: id, Index: index, Time: t, Raw: bytes.Clone(h.source)})
	}
	return out, nil
}

// unquoteOrEmpty unquotes a JSON string; absent, or not a string, is ""
// (as a missing _id or _index was).
func unquoteOrEmpty(s []byte) (string, error) {
	if len(s) == 0 || s[0] != '"' {
		return "", nil
	}
	return unquote(s)
}

// sortTime reads a hit's first sort value as store.ParseTime would.
func sortTime(sort []byte) (time.Time, bool) {
	v, ok := firstSortValue(sort)
	if !ok {
		return time.Time{}, false
	}
	return store.ParseTime(v)
}
