package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// IndexPrefix starts every index the suite creates; Template matches it.
const IndexPrefix = "offtrail-conf-"

// Template is the composable index template the suite installs: every
// string is a keyword, the two time fields are dates, source.ip is an ip
// (as in ECS), one shard, no replica.
const Template = `{
  "index_patterns": ["offtrail-conf-*"],
  "priority": 200,
  "template": {
    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
    "mappings": {
      "dynamic_templates": [
        {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}
      ],
      "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"ingested": {"type": "date"}}},
        "source": {"properties": {"ip": {"type": "ip"}}}
      }
    }
  }
}`

// TemplateName is the name Template is installed under.
const TemplateName = "offtrail-conf"

// Field names of the fixture, as rules name them physically.
const (
	FieldTime     = "@timestamp"
	FieldIngested = "event.ingested"
	FieldAction   = "event.action"
	FieldProvider = "event.provider"
	FieldOutcome  = "event.outcome"
	FieldARN      = "aws.cloudtrail.user_identity.arn"
	FieldAccount  = "cloud.account.id" // a dotted key inside "cloud" in some docs
	FieldRegion   = "cloud.region"
	FieldUser     = "user.name" // a flat top-level key in some docs
	FieldMFA      = "aws.cloudtrail.console_login.additional_eventdata.mfa_used"
	FieldIP       = "source.ip"           // mapped as ip
	FieldRawIP    = "sourceIPAddress"     // a keyword, as in raw CloudTrail
	FieldAgent    = "user_agent.original" // a keyword
)

// randomPrefix returns a fresh index prefix for one test on b; the indices
// made under it are dropped when the test ends.
func randomPrefix(t *testing.T, b store.Backend) string {
	var r [5]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	prefix := IndexPrefix + hex.EncodeToString(r[:]) + "-"
	DropPrefixAfter(t, b, prefix)
	return prefix
}

// Load bulk-indexes docs into index through b and fails t on any error.
func Load(t testing.TB, b store.Backend, index string, docs []Doc) {
	t.Helper()
	ctx := t.Context()
	// The writer reports failures from its own flush goroutines.
	var (
		mu       sync.Mutex
		failures []string
	)
	w, err := b.NewBulkWriter(ctx, index, func(id string, err error) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf("%s: %v", id, err))
	})
	if err != nil {
		t.Fatalf("NewBulkWriter(%s): %v", index, err)
	}
	for _, d := range docs {
		if err := w.Add(ctx, d.StoreDoc()); err != nil {
			t.Fatalf("Add(%s): %v", d.ID, err)
		}
	}
	indexed, failed, err := w.Close(ctx)
	if err != nil {
		t.Fatalf("bulk Close(%s): %v", index, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if indexed != int64(len(docs)) || failed != 0 || len(failures) > 0 {
		t.Fatalf("bulk into %s: indexed %d failed %d of %d: %v", index, indexed, failed, len(docs), failures)
	}
}

// fullWindow covers the whole fixture.
var fullWindow = store.Window{From: FixtureBase.Add(-time.Hour), To: FixtureBase.Add(50 * time.Hour)}

// Run runs the conformance suite against the backend open returns. open is
// called once for the shared, read-only fixture and once per writing
// subtest; every subtest uses fresh index names, dropped when it ends.
func Run(t *testing.T, open func(t *testing.T) store.Backend) {
	ctx := t.Context()
	b := open(t)
	prefix := randomPrefix(t, b)
	if k := b.Kind(); k == "" {
		t.Fatal("Kind() is empty")
	}
	for range 2 { // idempotent
		if err := b.EnsureTemplate(ctx, TemplateName, json.RawMessage(Template)); err != nil {
			t.Fatalf("EnsureTemplate: %v", err)
		}
	}

	fx := Fixture(1)
	idxA, idxB := prefix+"logs-a", prefix+"logs-b"
	var partA, partB []Doc
	for i, d := range fx {
		if i%3 == 2 {
			partB = append(partB, d)
		} else {
			partA = append(partA, d)
		}
	}
	Load(t, b, idxA, partA)
	Load(t, b, idxB, partB)
	if err := b.Refresh(ctx, idxA, idxB); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	ref := reference{indices: map[string][]Doc{idxA: partA, idxB: partB}}
	all := store.Query{Index: []string{idxA, idxB}, TimeField: FieldTime, Window: fullWindow}

	t.Run("CountGroups", func(t *testing.T) { testCountGroups(t, b, ref, all, prefix) })
	t.Run("Stats", func(t *testing.T) { testStats(t, b, ref, all) })
	t.Run("Events", func(t *testing.T) { testEvents(t, b, ref, all, fx) })
	t.Run("WriteSignals", func(t *testing.T) { b := open(t); testWriteSignals(t, b, randomPrefix(t, b)) })
	t.Run("State", func(t *testing.T) { b := open(t); testState(t, b, randomPrefix(t, b)) })
	t.Run("PutStates", func(t *testing.T) { b := open(t); testPutStates(t, b, randomPrefix(t, b)) })
	t.Run("PutDocs", func(t *testing.T) { b := open(t); testPutDocs(t, b, randomPrefix(t, b)) })
	t.Run("BulkOverwrite", func(t *testing.T) { b := open(t); testBulkOverwrite(t, b, randomPrefix(t, b), fx) })
}

// collectGroups runs CountGroups and checks each group is well formed and
// reported once.
func collectGroups(t *testing.T, b store.Backend, req store.CountRequest) map[string]int64 {
	t.Helper()
	width := len(req.GroupBy)
	if req.HourBuckets {
		width++
	}
	got := map[string]int64{}
	err := b.CountGroups(t.Context(), req, func(g store.Group) error {
		if len(g.Key) != width {
			return fmt.Errorf("group key %q has %d parts, want %d", g.Key, len(g.Key), width)
		}
		k := store.KeyString(g.Key)
		if _, dup := got[k]; dup {
			return fmt.Errorf("group %q reported twice", g.Key)
		}
		if g.Count <= 0 {
			return fmt.Errorf("group %q has count %d", g.Key, g.Count)
		}
		got[k] = g.Count
		return nil
	})
	if err != nil {
		t.Fatalf("CountGroups: %v", err)
	}
	return got
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func diffCounts[V comparable](t *testing.T, got, want map[string]V) {
	t.Helper()
	var problems []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %q (want %v)", store.SplitKey(k), w))
		case g != w:
			problems = append(problems, fmt.Sprintf("%q: got %v, want %v", store.SplitKey(k), g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %q = %v", store.SplitKey(k), g))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		t.Errorf("%d groups differ (%d got, %d want):\n  %s", len(problems), len(got), len(want), strings.Join(problems, "\n  "))
	}
}

// tieInstant returns a time several fixture documents share exactly.
func tieInstant(ref reference) (time.Time, int) {
	n := map[time.Time]int{}
	for _, docs := range ref.indices {
		for _, d := range docs {
			t, _ := store.ParseTime(d.Source[FieldTime])
			n[t]++
		}
	}
	var best time.Time
	for t, c := range n {
		if c > n[best] || (c == n[best] && t.Before(best)) {
			best = t
		}
	}
	return best, n[best]
}

func testCountGroups(t *testing.T, b store.Backend, ref reference, all store.Query, prefix string) {
	tie, tieN := tieInstant(ref)
	if tieN < 3 {
		t.Fatalf("fixture: largest timestamp tie has %d docs, want >= 3", tieN)
	}
	withFilter := func(f store.Filter) store.Query { q := all; q.Filter = f; return q }
	withWindow := func(from, to time.Time) store.Query { q := all; q.Window = store.Window{From: from, To: to}; return q }
	withIndex := func(idx ...string) store.Query { q := all; q.Index = idx; return q }

	// 2,500 identities of which only some exist: backends must chunk.
	var arns []string
	for i := range 2490 {
		arns = append(arns, fmt.Sprintf("arn:aws:iam::999999999999:user/nobody-%04d", i))
	}
	for i, id := range fixtureIdentities {
		if i%2 == 0 {
			arns = append(arns, id.arn)
		}
	}

	cases := []struct {
		name string
		req  store.CountRequest
	}{
		{"single", store.CountRequest{Query: all, GroupBy: []string{FieldAction}}},
		{"single/missing excluded", store.CountRequest{Query: all, GroupBy: []string{FieldOutcome}}},
		{"single/dotted key in nested object", store.CountRequest{Query: all, GroupBy: []string{FieldAccount}}},
		{"single/flat dotted key", store.CountRequest{Query: all, GroupBy: []string{FieldUser}}},
		{"single/boolean", store.CountRequest{Query: all, GroupBy: []string{FieldMFA}}},
		{"tuple2", store.CountRequest{Query: all, GroupBy: []string{FieldARN, FieldAction}}},
		{"tuple3", store.CountRequest{Query: all, GroupBy: []string{FieldAccount, FieldRegion, FieldOutcome}}},
		{"filter/terms", store.CountRequest{
			Query: withFilter(store.Filter{Terms: map[string][]string{
				FieldProvider: {"iam.amazonaws.com", "s3.amazonaws.com"},
				FieldOutcome:  {"success"},
			}}),
			GroupBy: []string{FieldAction},
		}},
		{"filter/not keeps missing", store.CountRequest{
			Query:   withFilter(store.Filter{Not: map[string][]string{FieldOutcome: {"failure"}}}),
			GroupBy: []string{FieldAction},
		}},
		{"filter/terms and not", store.CountRequest{
			Query: withFilter(store.Filter{
				Terms: map[string][]string{FieldProvider: {"iam.amazonaws.com", "sts.amazonaws.com"}},
				Not:   map[string][]string{FieldAction: {"ListUsers"}, FieldRegion: {"us-east-1", "eu-west-1"}},
			}),
			GroupBy: []string{FieldARN, FieldAction},
		}},
		{"filter/boolean", store.CountRequest{
			Query:   withFilter(store.Filter{Terms: map[string][]string{FieldMFA: {"false"}}}),
			GroupBy: []string{FieldUser},
		}},
		{"filter/dotted key in nested object", store.CountRequest{
			Query:   withFilter(store.Filter{Terms: map[string][]string{FieldAccount: {"222222222222"}}}),
			GroupBy: []string{FieldUser, FieldAction},
		}},
		{"filter/no match", store.CountRequest{
			Query:   withFilter(store.Filter{Terms: map[string][]string{FieldAction: {"NoSuchAction"}}}),
			GroupBy: []string{FieldAction},
		}},
		// Exclusions (exception entries): must_not of conjunctions.
		{"exclude/terms", store.CountRequest{
			Query:   withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldAction, Op: store.OpTerms, Values: []string{"ListUsers", "GetObject"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/conjunction", store.CountRequest{
			Query: withFilter(store.Filter{Exclude: []store.Clause{{
				{Field: FieldARN, Op: store.OpTerms, Values: []string{fixtureIdentities[0].arn}},
				{Field: FieldRegion, Op: store.OpTerms, Values: []string{"us-east-1"}},
			}}}),
			GroupBy: []string{FieldARN, FieldRegion},
		}},
		{"exclude/two clauses", store.CountRequest{
			Query: withFilter(store.Filter{Exclude: []store.Clause{
				{{Field: FieldProvider, Op: store.OpTerms, Values: []string{"s3.amazonaws.com"}}},
				{{Field: FieldOutcome, Op: store.OpTerms, Values: []string{"failure"}}, {Field: FieldAccount, Op: store.OpTerms, Values: []string{"222222222222"}}},
			}}),
			GroupBy: []string{FieldProvider, FieldOutcome},
		}},
		{"exclude/missing field not excluded", store.CountRequest{
			Query:   withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldOutcome, Op: store.OpTerms, Values: []string{"success"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/with terms and not", store.CountRequest{
			Query: withFilter(store.Filter{
				Terms:   map[string][]string{FieldProvider: {"iam.amazonaws.com", "sts.amazonaws.com"}},
				Not:     map[string][]string{FieldAction: {"ListUsers"}},
				Exclude: []store.Clause{{{Field: FieldUser, Op: store.OpTerms, Values: []string{"alice", "bob"}}}},
			}),
			GroupBy: []string{FieldUser, FieldAction},
		}},
		{"exclude/boolean", store.CountRequest{
			Query:   withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldMFA, Op: store.OpTerms, Values: []string{"true"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/cidr on ip field", store.CountRequest{
			Query:   withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldIP, Op: store.OpCIDR, Values: []string{"10.1.16.0/20", "192.168.7.9"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/cidr ipv6 on ip field", store.CountRequest{
			Query:   withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldIP, Op: store.OpCIDR, Values: []string{"2001:db8::/32"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/cidr on keyword field", store.CountRequest{
			Query: withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldRawIP, Op: store.OpCIDR, Values: []string{
				"10.1.16.0/20", "10.1.2.0/26", "81.2.69.160", "2001:db8::/32", "2a02:1810:abcd::7"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/cidr short prefixes on keyword field", store.CountRequest{
			Query:   withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldRawIP, Op: store.OpCIDR, Values: []string{"10.0.0.0/7", "192.168.0.0/16"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/wildcard", store.CountRequest{
			Query:   withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldAgent, Op: store.OpWildcard, Values: []string{"aws-cli/2.*", "Boto3/1.3?.0 *"}}}}}),
			GroupBy: []string{FieldAction},
		}},
		{"exclude/wildcard and cidr and terms", store.CountRequest{
			Query: withFilter(store.Filter{Exclude: []store.Clause{{
				{Field: FieldAgent, Op: store.OpWildcard, Values: []string{"*Python*"}},
				{Field: FieldIP, Op: store.OpCIDR, Values: []string{"10.0.0.0/8"}},
				{Field: FieldAccount, Op: store.OpTerms, Values: []string{"111111111111", "333333333333"}},
			}}}),
			GroupBy: []string{FieldARN},
		}},
		{"exclude/with restrict paged", store.CountRequest{
			Query:    withFilter(store.Filter{Exclude: []store.Clause{{{Field: FieldAgent, Op: store.OpWildcard, Values: []string{"aws-sdk-*"}}}}}),
			GroupBy:  []string{FieldARN, FieldAction},
			Restrict: map[string][]string{FieldARN: arns},
			PageSize: 5,
		}},
		{"window/includes from", store.CountRequest{Query: withWindow(tie, tie.Add(time.Millisecond)), GroupBy: []string{FieldProvider}}},
		{"window/excludes to", store.CountRequest{Query: withWindow(tie.Add(-6*time.Hour), tie), GroupBy: []string{FieldProvider}}},
		{"window/middle", store.CountRequest{Query: withWindow(FixtureBase.Add(7*time.Hour), FixtureBase.Add(31*time.Hour)), GroupBy: []string{FieldARN}}},
		{"window/event.ingested", store.CountRequest{
			Query: func() store.Query {
				q := withWindow(FixtureBase.Add(5*time.Hour), FixtureBase.Add(40*time.Hour))
				q.TimeField = FieldIngested
				return q
			}(),
			GroupBy: []string{FieldAction},
		}},
		{"restrict/many values", store.CountRequest{Query: all, GroupBy: []string{FieldARN, FieldAction}, Restrict: map[string][]string{FieldARN: arns}}},
		{"restrict/many values paged", store.CountRequest{Query: all, GroupBy: []string{FieldARN, FieldAction}, Restrict: map[string][]string{FieldARN: arns}, PageSize: 7}},
		{"restrict/with filter", store.CountRequest{
			Query:    withFilter(store.Filter{Terms: map[string][]string{FieldOutcome: {"success"}}}),
			GroupBy:  []string{FieldARN},
			Restrict: map[string][]string{FieldARN: arns},
		}},
		{"restrict/field not grouped", store.CountRequest{Query: all, GroupBy: []string{FieldAction}, Restrict: map[string][]string{FieldRegion: {"us-east-1", "eu-west-1"}}}},
		{"hour buckets", store.CountRequest{Query: all, GroupBy: []string{FieldARN}, HourBuckets: true}},
		{"hour buckets/tuple and filter", store.CountRequest{
			Query:       withFilter(store.Filter{Not: map[string][]string{FieldProvider: {"s3.amazonaws.com"}}}),
			GroupBy:     []string{FieldAccount, FieldAction},
			HourBuckets: true,
		}},
		{"hour buckets/restrict paged", store.CountRequest{Query: all, GroupBy: []string{FieldUser}, HourBuckets: true, Restrict: map[string][]string{FieldARN: arns}, PageSize: 3}},
		{"paging/single", store.CountRequest{Query: all, GroupBy: []string{FieldAction}, PageSize: 3}},
		{"paging/tuple3", store.CountRequest{Query: all, GroupBy: []string{FieldAccount, FieldRegion, FieldOutcome}, PageSize: 3}},
		{"index/one", store.CountRequest{Query: withIndex(prefix + "logs-b"), GroupBy: []string{FieldAction}}},
		{"index/wildcard", store.CountRequest{Query: withIndex(prefix + "logs-*"), GroupBy: []string{FieldARN, FieldAction}}},
		{"index/overlapping patterns", store.CountRequest{Query: withIndex(prefix+"logs-a", prefix+"*-a", prefix+"logs-*"), GroupBy: []string{FieldAction}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := ref.count(c.req)
			got := collectGroups(t, b, c.req)
			diffCounts(t, got, want)
			if len(c.req.Query.Filter.Exclude) > 0 {
				// An exclusion that drops nothing proves nothing.
				without := c.req
				without.Query.Filter.Exclude = nil
				if total(want) >= total(ref.count(without)) {
					t.Errorf("fixture: %s excludes no document", c.name)
				}
			}
		})
	}

	// The window cases only mean something if the tie is where we think.
	t.Run("window/sanity", func(t *testing.T) {
		var n int64
		for _, c := range ref.count(store.CountRequest{Query: withWindow(tie, tie.Add(time.Millisecond)), GroupBy: []string{FieldProvider}}) {
			n += c
		}
		if n != int64(tieN) {
			t.Fatalf("reference: %d docs at %s, want %d", n, tie, tieN)
		}
	})

	// Paging must not change the answer.
	t.Run("paging/same as one page", func(t *testing.T) {
		for _, gb := range [][]string{{FieldARN, FieldAction}, {FieldAccount, FieldRegion}} {
			one := collectGroups(t, b, store.CountRequest{Query: all, GroupBy: gb, HourBuckets: true})
			paged := collectGroups(t, b, store.CountRequest{Query: all, GroupBy: gb, HourBuckets: true, PageSize: 3})
			diffCounts(t, paged, one)
		}
	})

	t.Run("hour key format", func(t *testing.T) {
		got := collectGroups(t, b, store.CountRequest{Query: withWindow(tie, tie.Add(time.Millisecond)), GroupBy: []string{FieldProvider}, HourBuckets: true})
		want := tie.UTC().Truncate(time.Hour).Format("2006-01-02T15:04:05Z")
		for k := range got {
			if key := store.SplitKey(k); key[len(key)-1] != want {
				t.Errorf("hour component %q, want %q", key[len(key)-1], want)
			}
		}
	})

	t.Run("boolean values", func(t *testing.T) {
		got := collectGroups(t, b, store.CountRequest{Query: all, GroupBy: []string{FieldMFA}})
		if len(got) != 2 || got["true"] == 0 || got["false"] == 0 {
			t.Errorf("boolean keys %v, want true and false", got)
		}
	})

	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := b.CountGroups(t.Context(), store.CountRequest{Query: all, GroupBy: []string{FieldAction}, PageSize: 2}, func(store.Group) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("CountGroups after callback error: err=%v calls=%d, want the callback's error after 1 call", err, calls)
		}
	})
}

func testStats(t *testing.T, b store.Backend, ref reference, all store.Query) {
	cases := []struct {
		name string
		req  store.StatsRequest
	}{
		{"actions per identity", store.StatsRequest{Query: all, By: []string{FieldARN}, Distinct: FieldAction}},
		{"identities per account and region", store.StatsRequest{
			Query: func() store.Query {
				q := all
				q.Filter = store.Filter{Not: map[string][]string{FieldOutcome: {"failure"}}}
				return q
			}(),
			By: []string{FieldAccount, FieldRegion}, Distinct: FieldARN,
		}},
		{"distinct field sometimes missing", store.StatsRequest{Query: all, By: []string{FieldUser}, Distinct: FieldOutcome}},
		{"restrict", store.StatsRequest{Query: all, By: []string{FieldARN}, Distinct: FieldProvider,
			Restrict: map[string][]string{FieldARN: {fixtureIdentities[0].arn, fixtureIdentities[4].arn, "arn:aws:iam::999999999999:user/nobody"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := ref.stats(c.req)
			got := map[string][2]int64{}
			err := b.Stats(t.Context(), c.req, func(s store.Stats) error {
				if len(s.Key) != len(c.req.By) {
					return fmt.Errorf("stats key %q has %d parts, want %d", s.Key, len(s.Key), len(c.req.By))
				}
				k := store.KeyString(s.Key)
				if _, dup := got[k]; dup {
					return fmt.Errorf("stats group %q reported twice", s.Key)
				}
				got[k] = [2]int64{s.Total, s.Distinct}
				return nil
			})
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			diffCounts(t, got, want)
		})
	}
}

func testEvents(t *testing.T, b store.Backend, ref reference, all store.Query, fx []Doc) {
	tie, _ := tieInstant(ref)
	// A limit that cuts through the tie group checks tie-breaking by id.
	cut := 0
	for i, h := range ref.events(all, len(fx)) {
		if h.t.Equal(tie) {
			cut = i + 2
			break
		}
	}
	filtered := all
	filtered.Filter = store.Filter{Terms: map[string][]string{FieldProvider: {"iam.amazonaws.com", "signin.amazonaws.com"}}}
	wild := all
	wild.Index = []string{strings.TrimSuffix(all.Index[0], "a") + "*"}
	ingested := all
	ingested.TimeField = FieldIngested
	excluded := all
	excluded.Filter = store.Filter{Exclude: []store.Clause{
		{{Field: FieldIP, Op: store.OpCIDR, Values: []string{"10.1.0.0/16"}}, {Field: FieldAgent, Op: store.OpWildcard, Values: []string{"aws-cli/*"}}},
		{{Field: FieldRawIP, Op: store.OpTerms, Values: []string{"ec2.amazonaws.com"}}},
	}}

	cases := []struct {
		name  string
		q     store.Query
		limit int
	}{
		{"all", all, 1000},
		{"limit", all, 10},
		{"limit inside a tie", all, cut},
		{"filter", filtered, 1000},
		{"wildcard", wild, 50},
		{"event.ingested", ingested, 1000},
		{"exclude", excluded, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := ref.events(c.q, c.limit)
			got, err := b.Events(t.Context(), c.q, c.limit)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("Events returned %d, want %d", len(got), len(want))
			}
			for i, w := range want {
				g := got[i]
				if g.ID != w.doc.ID || g.Index != w.index || !g.Time.Equal(w.t) {
					t.Fatalf("event %d: got id=%s index=%s time=%s, want id=%s index=%s time=%s",
						i, g.ID, g.Index, g.Time.Format(time.RFC3339Nano), w.doc.ID, w.index, w.t.Format(time.RFC3339Nano))
				}
				if !reflect.DeepEqual(g.Source, w.doc.Source) {
					t.Fatalf("event %d (%s): source does not round-trip:\n got %v\nwant %v", i, g.ID, g.Source, w.doc.Source)
				}
			}
			// A backend that counts events (the baseline tail's check of
			// a sealed hour) counts what Events returns without a limit.
			if ec, ok := b.(interface {
				CountEvents(context.Context, store.Query) (int64, error)
			}); ok {
				n, err := ec.CountEvents(t.Context(), c.q)
				if err != nil {
					t.Fatalf("CountEvents: %v", err)
				}
				if all := len(ref.events(c.q, len(fx)+1)); n != int64(all) {
					t.Fatalf("CountEvents = %d, want %d", n, all)
				}
			}
		})
	}
}

func signalDoc(id, rule, note string) store.Doc {
	src, _ := json.Marshal(map[string]any{
		"@timestamp": "2024-03-05T10:00:00.000Z",
		"event":      map[string]any{"kind": "alert", "severity": "21"},
		"rule":       map[string]any{"id": rule},
		"offtrail":   map[string]any{"note": note},
	})
	return store.Doc{ID: id, Source: src}
}

// sameWrite reports whether res has these counts and created ids (in order).
func sameWrite(res store.WriteResult, created, existed int, ids ...string) bool {
	return res.Created == created && res.Existed == existed && slices.Equal(res.CreatedIDs, ids)
}

func testWriteSignals(t *testing.T, b store.Backend, prefix string) {
	ctx := t.Context()
	if err := b.EnsureTemplate(ctx, TemplateName, json.RawMessage(Template)); err != nil {
		t.Fatalf("EnsureTemplate: %v", err)
	}
	idx := prefix + "signals"
	var first []store.Doc
	for i := range 5 {
		first = append(first, signalDoc(fmt.Sprintf("sig-%d", i), "r1", "first"))
	}
	res, err := b.WriteSignals(ctx, idx, first)
	if err != nil || !sameWrite(res, 5, 0, "sig-0", "sig-1", "sig-2", "sig-3", "sig-4") {
		t.Fatalf("first WriteSignals: %+v, %v; want 5 created", res, err)
	}
	// Ids 3 and 4 exist; 5 and 6 are new; 6 appears twice in one call.
	var second []store.Doc
	for i := 3; i < 7; i++ {
		second = append(second, signalDoc(fmt.Sprintf("sig-%d", i), "r2", "second"))
	}
	second = append(second, signalDoc("sig-6", "r2", "second again"))
	res, err = b.WriteSignals(ctx, idx, second)
	if err != nil || !sameWrite(res, 2, 3, "sig-5", "sig-6") {
		t.Fatalf("second WriteSignals: %+v, %v; want sig-5 and sig-6 created, 3 existed", res, err)
	}
	if res, err := b.WriteSignals(ctx, idx, nil); err != nil || !sameWrite(res, 0, 0) {
		t.Fatalf("empty WriteSignals: %+v, %v", res, err)
	}
	if err := b.Refresh(ctx, idx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	q := store.Query{Index: []string{idx}, TimeField: FieldTime, Window: fullWindow}
	got := collectGroups(t, b, store.CountRequest{Query: q, GroupBy: []string{"rule.id", "offtrail.note"}})
	diffCounts(t, got, map[string]int64{
		store.KeyString([]string{"r1", "first"}):  5,
		store.KeyString([]string{"r2", "second"}): 2,
	})
	evs, err := b.Events(ctx, q, 100)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(evs) != 7 {
		t.Fatalf("Events on signals: %d, want 7", len(evs))
	}
	for _, e := range evs {
		if e.Index != idx {
			t.Errorf("signal %s index %q, want %q", e.ID, e.Index, idx)
		}
	}
}

func sameJSON(t *testing.T, got, want json.RawMessage) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("state doc %q: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("state doc %s, want %s", got, want)
	}
}

func testState(t *testing.T, b store.Backend, prefix string) {
	ctx := t.Context()
	idx := prefix + "state"
	const id = "checkpoint:aws-rare-method-for-user"
	if _, _, err := b.GetState(ctx, idx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetState before the index exists: %v, want ErrNotFound", err)
	}
	doc1 := json.RawMessage(`{"rule":"r1","end":"2024-03-04T10:00:00Z"}`)
	v1, err := b.PutState(ctx, idx, id, doc1, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, _, err := b.GetState(ctx, idx, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetState missing id: %v, want ErrNotFound", err)
	}
	got, gv, err := b.GetState(ctx, idx, id)
	if err != nil || gv != v1 {
		t.Fatalf("GetState: version %+v, %v; want %+v", gv, err, v1)
	}
	sameJSON(t, got, doc1)

	if _, err := b.PutState(ctx, idx, id, doc1, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	doc2 := json.RawMessage(`{"rule":"r1","end":"2024-03-04T10:15:00Z"}`)
	v2, err := b.PutState(ctx, idx, id, doc2, &v1)
	if err != nil {
		t.Fatalf("update at current version: %v", err)
	}
	if v2 == v1 {
		t.Fatalf("update kept version %+v", v2)
	}
	if _, err := b.PutState(ctx, idx, id, doc1, &v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update at stale version: %v, want ErrConflict", err)
	}
	got, gv, err = b.GetState(ctx, idx, id)
	if err != nil || gv != v2 {
		t.Fatalf("GetState after update: %+v, %v; want %+v", gv, err, v2)
	}
	sameJSON(t, got, doc2)

	if err := b.DeleteState(ctx, idx, id, v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete at stale version: %v, want ErrConflict", err)
	}
	if err := b.DeleteState(ctx, idx, id, v2); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, _, err := b.GetState(ctx, idx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetState after delete: %v, want ErrNotFound", err)
	}
	if _, err := b.PutState(ctx, idx, id, doc2, &v2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update of a deleted doc: %v, want ErrConflict", err)
	}
	// Re-creating must not reuse an old version, or a stale holder could
	// overwrite the new document.
	v3, err := b.PutState(ctx, idx, id, doc1, nil)
	if err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
	if v3 == v1 || v3 == v2 {
		t.Fatalf("re-created doc reuses version %+v", v3)
	}
	if _, err := b.PutState(ctx, idx, id, doc2, &v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update at pre-delete version: %v, want ErrConflict", err)
	}
}

// testPutStates: one request's writes each succeed or fail as PutState
// would, in order, and a lost race fails its item alone.
func testPutStates(t *testing.T, b store.Backend, prefix string) {
	ctx := t.Context()
	idx := prefix + "state"
	doc := func(end string) json.RawMessage { return json.RawMessage(`{"rule":"r","end":"` + end + `"}`) }
	va, err := b.PutState(ctx, idx, "a", doc("10:00"), nil)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.PutState(ctx, idx, "b", doc("10:00"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutState(ctx, idx, "b", doc("10:05"), &vb); err != nil { // b moves on: vb is stale
		t.Fatal(err)
	}
	if res, err := b.PutStates(ctx, idx, nil); err != nil || len(res) != 0 {
		t.Fatalf("no writes: %v %v", res, err)
	}
	res, err := b.PutStates(ctx, idx, []store.StatePut{
		{ID: "a", Doc: doc("11:00"), IfVersion: &va},  // at its version
		{ID: "b", Doc: doc("11:00"), IfVersion: &vb},  // stale
		{ID: "c", Doc: doc("11:00")},                  // new
		{ID: "a2", Doc: doc("11:00"), IfVersion: &va}, // never created
	})
	if err != nil || len(res) != 4 {
		t.Fatalf("PutStates: %d results, %v", len(res), err)
	}
	if res[0].Err != nil || res[0].Version == va {
		t.Fatalf("a at its version: %+v", res[0])
	}
	if !errors.Is(res[1].Err, store.ErrConflict) || !errors.Is(res[3].Err, store.ErrConflict) {
		t.Fatalf("stale and missing: %v, %v; want ErrConflict", res[1].Err, res[3].Err)
	}
	if res[2].Err != nil {
		t.Fatalf("create: %v", res[2].Err)
	}
	for _, c := range []struct {
		id  string
		ver store.Version
		end string
	}{{"a", res[0].Version, "11:00"}, {"c", res[2].Version, "11:00"}} {
		got, gv, err := b.GetState(ctx, idx, c.id)
		if err != nil || gv != c.ver {
			t.Fatalf("%s: version %+v, %v; want %+v", c.id, gv, err, c.ver)
		}
		sameJSON(t, got, doc(c.end))
	}
	if got, _, err := b.GetState(ctx, idx, "b"); err != nil {
		t.Fatal(err)
	} else {
		sameJSON(t, got, doc("10:05"))
	}
	res, err = b.PutStates(ctx, idx, []store.StatePut{{ID: "c", Doc: doc("12:00")}})
	if err != nil || !errors.Is(res[0].Err, store.ErrConflict) {
		t.Fatalf("second create of c: %+v, %v; want ErrConflict", res, err)
	}
}

func testBulkOverwrite(t *testing.T, b store.Backend, prefix string, fx []Doc) {
	ctx := t.Context()
	if err := b.EnsureTemplate(ctx, TemplateName, json.RawMessage(Template)); err != nil {
		t.Fatalf("EnsureTemplate: %v", err)
	}
	idx := prefix + "bulk"
	docs := fx[:60]
	ref := reference{indices: map[string][]Doc{idx: docs}}
	q := store.Query{Index: []string{idx}, TimeField: FieldTime, Window: fullWindow}
	req := store.CountRequest{Query: q, GroupBy: []string{FieldAction}}

	for range 2 {
		Load(t, b, idx, docs)
		if err := b.Refresh(ctx, idx); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		diffCounts(t, collectGroups(t, b, req), ref.count(req))
	}

	// A changed document replaces the old one.
	changed := make([]Doc, len(docs))
	copy(changed, docs)
	src := map[string]any{}
	for k, v := range docs[0].Source {
		src[k] = v
	}
	src["event"] = map[string]any{"action": "Overwritten", "provider": "test.amazonaws.com"}
	changed[0] = Doc{ID: docs[0].ID, Source: src}
	Load(t, b, idx, changed[:1])
	if err := b.Refresh(ctx, idx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	ref.indices[idx] = changed
	diffCounts(t, collectGroups(t, b, req), ref.count(req))
}
