package dsl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// Transport sends one request to the engine and returns the status and the
// whole response body. path is already escaped. Each engine package adapts
// its official client (which adds auth, retries and node selection).
type Transport interface {
	Do(ctx context.Context, method, path string, query url.Values, body []byte) (status int, respBody []byte, err error)
}

// Store implements the engine-neutral methods of store.Backend over a
// Transport. Engine packages embed it and add NewBulkWriter and Close.
type Store struct {
	engine string
	t      Transport

	// capsMu guards caps: field mappings per (indices, fields), asked of
	// _field_caps at most once a capsTTL, so a rule's queries do not each
	// pay a second round trip. Mappings change rarely; a new daily index
	// is seen within the TTL.
	capsMu sync.Mutex
	caps   map[string]capsEntry
}

type capsEntry struct {
	swap    map[string]string
	ip      map[string]bool // fields mapped as ip in every index
	expires time.Time
}

// capsTTL is how long a field-caps answer is reused.
const capsTTL = time.Minute

// NewStore returns a Store for engine ("elasticsearch", "opensearch"),
// which names the engine in errors.
func NewStore(engine string, t Transport) *Store {
	return &Store{engine: engine, t: t, caps: map[string]capsEntry{}}
}

// Kind names the engine.
func (s *Store) Kind() string { return s.engine }

// Transport returns the transport the store sends requests through.
func (s *Store) Transport() Transport { return s.t }

// Errorf wraps err with the engine, the operation and the index, the shape
// every backend error has: "elasticsearch count logs-*: status 400: ...".
func (s *Store) Errorf(op string, index []string, err error) error {
	return fmt.Errorf("%s %s %s: %w", s.engine, op, strings.Join(index, ","), err)
}

// Path joins escaped path segments; a segment of several indices is
// comma-joined with each name escaped.
func Path(index []string, rest ...string) string {
	var b strings.Builder
	if len(index) > 0 {
		b.WriteByte('/')
		for i, name := range index {
			if i > 0 {
				b.WriteByte(',')
			}
			// Keep wildcards readable in logs; the engines decode either.
			b.WriteString(strings.ReplaceAll(url.PathEscape(name), "%2A", "*"))
		}
	}
	for _, r := range rest {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(r))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// lenient makes a request on index patterns succeed with no results when
// nothing matches, as the embedded store does for missing files.
func lenient() url.Values {
	return url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}}
}

// do sends a request and turns a non-2xx status into a ResponseError.
func (s *Store) do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	status, resp, err := s.t.Do(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return resp, decodeError(status, resp)
	}
	return resp, nil
}

func (s *Store) search(ctx context.Context, index []string, body []byte) ([]byte, error) {
	return s.do(ctx, http.MethodPost, Path(index, "_search"), lenient(), body)
}

// resolver asks _field_caps how fields are mapped and swaps a field that is
// only text (dynamic mapping of a JSON string) for its keyword sub-field,
// the one terms filters and aggregations need. Rules name "eventName"; a
// Logstash index without a template has eventName (text) and
// eventName.keyword.
func (s *Store) resolver(ctx context.Context, index []string, fields []string) (Resolver, error) {
	fields = slices.Compact(slices.Sorted(slices.Values(fields)))
	if len(fields) == 0 {
		return nil, nil
	}
	key := strings.Join(index, ",") + "|" + strings.Join(fields, ",")
	s.capsMu.Lock()
	e, ok := s.caps[key]
	s.capsMu.Unlock()
	if !ok || time.Now().After(e.expires) {
		swap, ip, known, err := s.fieldCaps(ctx, index, fields)
		if err != nil {
			return nil, err
		}
		e = capsEntry{swap: swap, ip: ip, expires: time.Now().Add(capsTTL)}
		if known { // nothing mapped yet (no index): ask again next time
			s.capsMu.Lock()
			s.caps[key] = e
			s.capsMu.Unlock()
		}
	}
	if len(e.swap) == 0 && len(e.ip) == 0 {
		return nil, nil
	}
	return func(f string) (string, bool) {
		if k, ok := e.swap[f]; ok {
			return k, false
		}
		return f, e.ip[f]
	}, nil
}

// fieldCaps returns, for the fields that are only text, their keyword
// sub-field; the fields mapped as ip in every index (a CIDR condition on a
// field that is ip in some indices and keyword in others is rendered for
// keyword); and whether the engine knew any of the fields.
func (s *Store) fieldCaps(ctx context.Context, index []string, fields []string) (map[string]string, map[string]bool, bool, error) {
	ask := make([]string, 0, 2*len(fields))
	for _, f := range fields {
		ask = append(ask, f, f+".keyword")
	}
	q := lenient()
	q.Set("fields", strings.Join(ask, ","))
	body, err := s.do(ctx, http.MethodGet, Path(index, "_field_caps"), q, nil)
	if err != nil {
		return nil, nil, false, fmt.Errorf("field caps: %w", err)
	}
	var resp struct {
		Fields map[string]map[string]json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, nil, false, fmt.Errorf("field caps: %w", err)
	}
	swap, ip := map[string]string{}, map[string]bool{}
	for _, f := range fields {
		caps, ok := resp.Fields[f]
		if !ok {
			continue
		}
		if _, isIP := caps["ip"]; isIP && len(caps) == 1 {
			ip[f] = true
		}
		textOnly := true
		for typ := range caps {
			if typ != "text" && typ != "match_only_text" {
				textOnly = false
			}
		}
		if _, kw := resp.Fields[f+".keyword"]["keyword"]; textOnly && kw {
			swap[f] = f + ".keyword"
		}
	}
	return swap, ip, len(resp.Fields) > 0, nil
}

func filterFields(f store.Filter, restrict map[string][]string, more ...string) []string {
	out := append(f.Fields(), more...)
	for k := range restrict {
		out = append(out, k)
	}
	return out
}

// matchesNothing reports a restrict list that is present but empty.
func matchesNothing(restrict map[string][]string) bool {
	for _, vs := range restrict {
		if len(vs) == 0 {
			return true
		}
	}
	return false
}

// composite pages one composite aggregation by after_key until a page
// comes back short of size or without an after_key: the engines fill a
// page unless the keys ran out, and asking once more for the empty page
// cost as much as the page itself (most counts fit in one page).
func (s *Store) composite(ctx context.Context, index []string, size int, body func(after json.RawMessage) ([]byte, error), nKeys int, hour bool, fn func(bucket) error) error {
	var after json.RawMessage
	for {
		b, err := body(after)
		if err != nil {
			return err
		}
		resp, err := s.search(ctx, index, b)
		if err != nil {
			return err
		}
		page, err := decodeComposite(resp, nKeys, hour)
		if err != nil {
			return err
		}
		for _, bk := range page.Buckets {
			if err := fn(bk); err != nil {
				return callbackError{err}
			}
		}
		if len(page.Buckets) < size || len(page.AfterKey) == 0 {
			return nil
		}
		after = page.AfterKey
	}
}

// callbackError carries the caller's own error out of a paging loop so it
// is returned as it is, not wrapped as an engine failure.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// wrap wraps an engine failure; a callback's error passes through.
func (s *Store) wrap(op string, index []string, err error) error {
	var cb callbackError
	if errors.As(err, &cb) {
		return cb.err
	}
	return s.Errorf(op, index, err)
}

// CountGroups runs a composite aggregation per restrict pass. Passes split
// on a field of the group key yield disjoint groups and stream; otherwise
// the counts are summed in memory (bounded by the number of groups).
func (s *Store) CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	index := req.Query.Index
	if err := req.Query.Validate(); err != nil {
		return s.Errorf("count", index, err)
	}
	if len(req.GroupBy) == 0 {
		return s.Errorf("count", index, errors.New("no group-by field"))
	}
	if matchesNothing(req.Restrict) {
		return nil
	}
	passes, split, err := restrictPasses(req.Restrict)
	if err != nil {
		return s.Errorf("count", index, err)
	}
	r, err := s.resolver(ctx, index, filterFields(req.Query.Filter, req.Restrict, req.GroupBy...))
	if err != nil {
		return s.Errorf("count", index, err)
	}
	stream := len(passes) == 1 || slices.Contains(req.GroupBy, split)
	merged := map[string]int64{}
	for _, p := range passes {
		err := s.composite(ctx, index, pageSize(req.PageSize), func(after json.RawMessage) ([]byte, error) {
			return CountBody(req, p, after, r)
		}, len(req.GroupBy), req.HourBuckets, func(b bucket) error {
			if stream {
				return fn(store.Group{Key: b.Key, Count: b.DocCount})
			}
			merged[store.KeyString(b.Key)] += b.DocCount
			return nil
		})
		if err != nil {
			return s.wrap("count", index, err)
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(store.Group{Key: store.SplitKey(k), Count: merged[k]}); err != nil {
			return err
		}
	}
	return nil
}

// Stats runs a composite over By with a cardinality sub-aggregation.
// Distinct counts cannot be added across passes, so a restrict list long
// enough to need several passes must be on a field of By.
func (s *Store) Stats(ctx context.Context, req store.StatsRequest, fn func(store.Stats) error) error {
	index := req.Query.Index
	if err := req.Query.Validate(); err != nil {
		return s.Errorf("stats", index, err)
	}
	if len(req.By) == 0 || req.Distinct == "" {
		return s.Errorf("stats", index, errors.New("stats needs by fields and a distinct field"))
	}
	if matchesNothing(req.Restrict) {
		return nil
	}
	passes, split, err := restrictPasses(req.Restrict)
	if err != nil {
		return s.Errorf("stats", index, err)
	}
	if len(passes) > 1 && !slices.Contains(req.By, split) {
		return s.Errorf("stats", index, fmt.Errorf("restrict on %s has more than %d values and %s is not a by field", split, ChunksPerRequest*TermsChunk, split))
	}
	r, err := s.resolver(ctx, index, filterFields(req.Query.Filter, req.Restrict, append(req.By, req.Distinct)...))
	if err != nil {
		return s.Errorf("stats", index, err)
	}
	for _, p := range passes {
		err := s.composite(ctx, index, DefaultPageSize, func(after json.RawMessage) ([]byte, error) {
			return StatsBody(req, p, after, r)
		}, len(req.By), false, func(b bucket) error {
			return fn(store.Stats{Key: b.Key, Total: b.DocCount, Distinct: b.Distinct})
		})
		if err != nil {
			return s.wrap("stats", index, err)
		}
	}
	return nil
}

// Events returns up to limit events oldest first, ties by id. The engines
// sort by time only, so each page is cut at its last millisecond and every
// event of that millisecond is fetched and ordered here: which events make
// the limit never depends on shard order. Pages advance by time, so limit
// is not bounded by max_result_window (one millisecond is: 10,000 events).
func (s *Store) Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	return s.events(ctx, q, limit, false)
}

// CountEvents counts q's events with the _count API: the tail checks a
// sealed hour with it before reading the hour again.
func (s *Store) CountEvents(ctx context.Context, q store.Query) (int64, error) {
	if err := q.Validate(); err != nil {
		return 0, s.Errorf("count events", q.Index, err)
	}
	r, err := s.resolver(ctx, q.Index, q.Filter.Fields())
	if err != nil {
		return 0, s.Errorf("count events", q.Index, err)
	}
	body, err := json.Marshal(map[string]any{"query": Query(q, nil, r)})
	if err != nil {
		return 0, s.Errorf("count events", q.Index, err)
	}
	resp, err := s.do(ctx, http.MethodPost, Path(q.Index, "_count"), lenient(), body)
	if err != nil {
		return 0, s.wrap("count events", q.Index, err)
	}
	var out struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || out.Count == nil {
		return 0, s.Errorf("count events", q.Index, fmt.Errorf("no count in %.200s", resp))
	}
	return *out.Count, nil
}

// RawEvents is Events with each _source left undecoded (Event.Raw) and
// the time taken from the sort value.
func (s *Store) RawEvents(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	return s.events(ctx, q, limit, true)
}

func (s *Store) events(ctx context.Context, q store.Query, limit int, raw bool) ([]store.Event, error) {
	if err := q.Validate(); err != nil {
		return nil, s.Errorf("events", q.Index, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	r, err := s.resolver(ctx, q.Index, q.Filter.Fields())
	if err != nil {
		return nil, s.Errorf("events", q.Index, err)
	}
	fetch := func(q store.Query, size int) ([]store.Event, error) {
		body, err := EventsBody(q, size, r)
		if err != nil {
			return nil, err
		}
		resp, err := s.search(ctx, q.Index, body)
		if err != nil {
			return nil, err
		}
		if raw {
			// A millisecond's slack: the window may start inside one.
			return decodeRawHits(resp, q.TimeField, store.Window{From: q.Window.From.Truncate(time.Millisecond), To: q.Window.To})
		}
		return decodeHits(resp, q.TimeField, nil)
	}
	var out []store.Event
	cur := q
	for len(out) < limit && cur.Window.From.Before(cur.Window.To) {
		want := min(limit-len(out), MaxWindow)
		evs, err := fetch(cur, want)
		if err != nil {
			return nil, s.Errorf("events", q.Index, err)
		}
		if len(evs) < want {
			out = append(out, evs...)
			break
		}
		edge := evs[len(evs)-1].Time.Truncate(time.Millisecond)
		for _, ev := range evs {
			if ev.Time.Before(edge) {
				out = append(out, ev)
			}
		}
		tie := cur
		tie.Window = store.Window{From: maxTime(edge, cur.Window.From), To: minTime(edge.Add(time.Millisecond), cur.Window.To)}
		ties, err := fetch(tie, MaxWindow)
		if err != nil {
			return nil, s.Errorf("events", q.Index, err)
		}
		out = append(out, ties...)
		cur.Window.From = edge.Add(time.Millisecond)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// BulkCreateBody is an NDJSON _bulk body of create actions. Sources are
// compacted: a newline inside one would end the action early.
func BulkCreateBody(index string, docs []store.Doc) ([]byte, error) {
	var b bytes.Buffer
	for _, d := range docs {
		if err := writeBulkItem(&b, "create", map[string]any{"_index": index, "_id": d.ID}, d.Source); err != nil {
			return nil, fmt.Errorf("doc %s: %w", d.ID, err)
		}
	}
	return b.Bytes(), nil
}

// WriteSignals creates docs in one _bulk request. An id that exists
// already (409) counts as Existed: re-running a window is not an error.
// Items answer in request order; 201 is the one that created its id.
func (s *Store) WriteSignals(ctx context.Context, index string, docs []store.Doc) (store.WriteResult, error) {
	var res store.WriteResult
	if len(docs) == 0 {
		return res, nil
	}
	idx := []string{index}
	body, err := BulkCreateBody(index, docs)
	if err != nil {
		return res, s.Errorf("write signals", idx, err)
	}
	resp, err := s.do(ctx, http.MethodPost, "/_bulk", url.Values{"refresh": {"false"}}, body)
	if err != nil {
		return res, s.Errorf("write signals", idx, err)
	}
	items, err := bulkItems(resp)
	if err != nil {
		return res, s.Errorf("write signals", idx, err)
	}
	var errs []error
	for _, it := range items {
		switch {
		case it.Status == http.StatusConflict:
			res.Existed++
		case it.Status >= 200 && it.Status <= 299:
			res.Created++
			res.CreatedIDs = append(res.CreatedIDs, it.ID)
		default:
			errs = append(errs, it.err())
		}
	}
	if len(errs) > 0 {
		return res, s.Errorf("write signals", idx, errors.Join(errs...))
	}
	return res, nil
}

type docResponse struct {
	Found       *bool           `json:"found"`
	SeqNo       int64           `json:"_seq_no"`
	PrimaryTerm int64           `json:"_primary_term"`
	Source      json.RawMessage `json:"_source"`
}

// stateErr maps the document API's 404 and 409 to the store's sentinels.
func (s *Store) stateErr(op, index string, err error) error {
	var re *ResponseError
	if errors.As(err, &re) {
		switch re.Status {
		case http.StatusNotFound:
			err = fmt.Errorf("%w: %w", store.ErrNotFound, err)
		case http.StatusConflict:
			err = fmt.Errorf("%w: %w", store.ErrConflict, err)
		}
	}
	return s.Errorf(op, []string{index}, err)
}

// GetState reads a document by id. GET is realtime: a document written
// moments ago is returned without a refresh.
func (s *Store) GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error) {
	resp, err := s.do(ctx, http.MethodGet, Path([]string{index}, "_doc", id), nil, nil)
	if err != nil {
		return nil, store.Version{}, s.stateErr("get state", index, err)
	}
	var d docResponse
	if err := json.Unmarshal(resp, &d); err != nil {
		return nil, store.Version{}, s.Errorf("get state", []string{index}, err)
	}
	if d.Found != nil && !*d.Found {
		return nil, store.Version{}, s.Errorf("get state", []string{index}, store.ErrNotFound)
	}
	return d.Source, store.Version{SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}, nil
}

// PutState writes a document: create-only without a version, otherwise
// conditional on seq_no and primary_term.
func (s *Store) PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error) {
	q := url.Values{}
	if ifVersion == nil {
		q.Set("op_type", "create")
	} else {
		q.Set("if_seq_no", strconv.FormatInt(ifVersion.SeqNo, 10))
		q.Set("if_primary_term", strconv.FormatInt(ifVersion.PrimaryTerm, 10))
	}
	resp, err := s.do(ctx, http.MethodPut, Path([]string{index}, "_doc", id), q, doc)
	if err != nil {
		return store.Version{}, s.stateErr("put state", index, err)
	}
	var d docResponse
	if err := json.Unmarshal(resp, &d); err != nil {
		return store.Version{}, s.Errorf("put state", []string{index}, err)
	}
	return store.Version{SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}, nil
}

// DeleteState deletes a document if it is still at version.
func (s *Store) DeleteState(ctx context.Context, index, id string, version store.Version) error {
	q := url.Values{
		"if_seq_no":       {strconv.FormatInt(version.SeqNo, 10)},
		"if_primary_term": {strconv.FormatInt(version.PrimaryTerm, 10)},
	}
	if _, err := s.do(ctx, http.MethodDelete, Path([]string{index}, "_doc", id), q, nil); err != nil {
		return s.stateErr("delete state", index, err)
	}
	return nil
}

// EnsureTemplate installs a composable index template; PUT replaces it, so
// running it on every start is idempotent.
func (s *Store) EnsureTemplate(ctx context.Context, name string, body json.RawMessage) error {
	if _, err := s.do(ctx, http.MethodPut, Path(nil, "_index_template", name), nil, body); err != nil {
		return s.Errorf("ensure template", []string{name}, err)
	}
	return nil
}

// Refresh makes recent writes searchable; missing indices are ignored.
func (s *Store) Refresh(ctx context.Context, index ...string) error {
	if _, err := s.do(ctx, http.MethodPost, Path(index, "_refresh"), lenient(), nil); err != nil {
		return s.Errorf("refresh", index, err)
	}
	return nil
}

// Delete sends DELETE for each path (indices, index templates) through t.
// A path that is not there is not an error; the others' failures are
// joined, and every path is tried.
func Delete(ctx context.Context, t Transport, paths ...string) error {
	var errs []error
	for _, p := range paths {
		status, body, err := t.Do(ctx, http.MethodDelete, p, nil, nil)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("DELETE %s: %w", p, err))
		case status >= 300 && status != http.StatusNotFound:
			errs = append(errs, fmt.Errorf("DELETE %s: status %d: %.200s", p, status, body))
		}
	}
	return errors.Join(errs...)
}
