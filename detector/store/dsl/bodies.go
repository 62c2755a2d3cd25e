// Package dsl holds what the Elasticsearch and OpenSearch backends share:
// the request bodies (both engines speak the same query DSL for the
// searches and aggregations offtrail needs), response decoding, and a
// Store that implements store.Backend over a minimal Transport. The engine
// packages only adapt their official client to Transport and add the bulk
// indexer, which each client provides in its own helper package.
package dsl

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

const (
	// DefaultPageSize is the composite aggregation page size when the
	// request does not set one.
	DefaultPageSize = 1000
	// TermsChunk is how many values one terms clause carries. Both engines
	// cap a terms query at index.max_terms_count (65,536); small clauses
	// also keep the request readable in slow logs.
	TermsChunk = 1000
	// ChunksPerRequest is how many terms clauses one restricted field may
	// contribute to a request (a bool.should of chunks). 64 clauses stay
	// far below max_clause_count (1,024 on OpenSearch, heap-derived and
	// larger on Elasticsearch 8) whatever else the query holds. Longer
	// restrict lists are run as several passes; see restrictPasses.
	ChunksPerRequest = 64
	// PrecisionThreshold is the cardinality aggregation's exact-count
	// threshold: below it distinct counts are (near) exact; 40,000 is the
	// engines' maximum.
	PrecisionThreshold = 40000
	// MaxWindow is the engines' default index.max_result_window: the
	// largest page one plain search may return.
	MaxWindow = 10000

	// Composite aggregation and source names used in bodies and decoding.
	aggName      = "groups"
	distinctName = "distinct"
	hourSource   = "hour"
)

// sourceName names the i-th composite source; the hour source is separate.
func sourceName(i int) string { return fmt.Sprintf("k%d", i) }

// formatTime renders a window bound for a range query with
// format strict_date_optional_time. The engines store dates in
// milliseconds (date) or nanoseconds (date_nanos); RFC 3339 with up to
// nine fraction digits is accepted by both.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Resolver maps a field named in a request to the field to query; the Store
// uses it to swap a dynamically mapped text field for its keyword
// sub-field. It also says whether the field is mapped as ip, where a term
// query takes a CIDR. nil means identity, and no ip fields.
type Resolver func(field string) (name string, ip bool)

func (r Resolver) field(f string) string {
	if r == nil {
		return f
	}
	name, _ := r(f)
	return name
}

func (r Resolver) ip(f string) bool {
	if r == nil {
		return false
	}
	_, ip := r(f)
	return ip
}

// Query builds the bool query for q: a range on the time field, a terms
// filter per Filter.Terms field, must_not terms per Filter.Not field, and
// the restrict lists (each one field, values ORed in chunks).
func Query(q store.Query, restrict map[string][]string, r Resolver) map[string]any {
	filter := []any{map[string]any{
		"range": map[string]any{q.TimeField: map[string]any{
			"gte":    formatTime(q.Window.From),
			"lt":     formatTime(q.Window.To),
			"format": "strict_date_optional_time",
		}},
	}}
	for _, f := range sortedKeys(q.Filter.Terms) {
		// An empty list matches nothing, as in the embedded store:
		// terms with [] matches no document on both engines.
		filter = append(filter, terms(r.field(f), q.Filter.Terms[f]))
	}
	for _, f := range sortedKeys(restrict) {
		filter = append(filter, chunkedTerms(r.field(f), restrict[f]))
	}
	b := map[string]any{"filter": filter}
	var not []any
	for _, f := range sortedKeys(q.Filter.Not) {
		if len(q.Filter.Not[f]) > 0 {
			not = append(not, terms(r.field(f), q.Filter.Not[f]))
		}
	}
	for _, c := range q.Filter.Exclude {
		not = append(not, clause(c, r))
	}
	if len(not) > 0 {
		b["must_not"] = not
	}
	return map[string]any{"bool": b}
}

func terms(field string, values []string) map[string]any {
	if values == nil {
		values = []string{}
	}
	return map[string]any{"terms": map[string]any{field: values}}
}

// chunkedTerms ORs values in clauses of at most TermsChunk values.
func chunkedTerms(field string, values []string) map[string]any {
	if len(values) <= TermsChunk {
		return terms(field, values)
	}
	var should []any
	for c := range slices.Chunk(values, TermsChunk) {
		should = append(should, terms(field, c))
	}
	return map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}}
}

// CountBody is one page of a CountRequest: a composite aggregation with a
// terms source per GroupBy field (plus an hourly date_histogram source on
// the time field with HourBuckets), after the given after_key.
func CountBody(req store.CountRequest, restrict map[string][]string, after json.RawMessage, r Resolver) ([]byte, error) {
	sources := termsSources(req.GroupBy, r)
	if req.HourBuckets {
		// The key comes back as epoch millis (UTC); decodeKey formats it.
		sources = append(sources, map[string]any{hourSource: map[string]any{
			"date_histogram": map[string]any{"field": req.Query.TimeField, "fixed_interval": "1h"},
		}})
	}
	return compositeBody(req.Query, restrict, sources, pageSize(req.PageSize), after, nil, r)
}

// StatsBody is one page of a StatsRequest: a composite over By with a
// cardinality sub-aggregation on Distinct; doc_count gives the total.
func StatsBody(req store.StatsRequest, restrict map[string][]string, after json.RawMessage, r Resolver) ([]byte, error) {
	sub := map[string]any{distinctName: map[string]any{"cardinality": map[string]any{
		"field": r.field(req.Distinct), "precision_threshold": PrecisionThreshold,
	}}}
	return compositeBody(req.Query, restrict, termsSources(req.By, r), DefaultPageSize, after, sub, r)
}

func pageSize(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return n
}

func termsSources(fields []string, r Resolver) []any {
	out := make([]any, 0, len(fields)+1)
	for i, f := range fields {
		out = append(out, map[string]any{sourceName(i): map[string]any{"terms": map[string]any{"field": r.field(f)}}})
	}
	return out
}

func compositeBody(q store.Query, restrict map[string][]string, sources []any, size int, after json.RawMessage, sub map[string]any, r Resolver) ([]byte, error) {
	composite := map[string]any{"size": size, "sources": sources}
	if len(after) > 0 {
		composite["after"] = after
	}
	agg := map[string]any{"composite": composite}
	if sub != nil {
		agg["aggs"] = sub
	}
	return json.Marshal(map[string]any{
		"size":             0,
		"track_total_hits": false,
		"query":            Query(q, restrict, r),
		"aggs":             map[string]any{aggName: agg},
	})
}

// EventsBody searches q sorted by time, oldest first. unmapped_type keeps
// indices that lack the time field (wildcard patterns) from failing the
// sort. Ties are ordered by id after fetching: sorting on _id needs
// fielddata that Elasticsearch 8 disables.
func EventsBody(q store.Query, size int, r Resolver) ([]byte, error) {
	return json.Marshal(map[string]any{
		"size":             size,
		"track_total_hits": false,
		"query":            Query(q, nil, r),
		"sort": []any{map[string]any{q.TimeField: map[string]any{
			"order": "asc", "unmapped_type": "date",
		}}},
	})
}

// restrictPasses splits a restrict map into the requests it needs. Each
// field's values are deduplicated and sorted. A field with more than
// ChunksPerRequest*TermsChunk values is split across passes; at most one
// field may be that long. split names that field ("" for one pass).
func restrictPasses(restrict map[string][]string) (passes []map[string][]string, split string, err error) {
	const budget = ChunksPerRequest * TermsChunk
	base := make(map[string][]string, len(restrict))
	for f, vs := range restrict {
		vs = slices.Clone(vs)
		sort.Strings(vs)
		vs = slices.Compact(vs)
		if len(vs) > budget {
			if split != "" {
				return nil, "", fmt.Errorf("restrict: %s and %s both have more than %d values", split, f, budget)
			}
			split = f
		}
		base[f] = vs
	}
	if split == "" {
		return []map[string][]string{base}, "", nil
	}
	for c := range slices.Chunk(base[split], budget) {
		p := make(map[string][]string, len(base))
		for f, vs := range base {
			p[f] = vs
		}
		p[split] = c
		passes = append(passes, p)
	}
	return passes, split, nil
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
