package dsl

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

var (
	from = time.Date(2024, 3, 4, 8, 0, 0, 0, time.UTC)
	to   = time.Date(2024, 3, 4, 10, 0, 0, 0, time.UTC)
	q    = store.Query{
		Index:     []string{"logs-aws.cloudtrail-*"},
		TimeField: "@timestamp",
		Window:    store.Window{From: from, To: to},
		Filter: store.Filter{
			Terms: map[string][]string{"event.outcome": {"success"}, "event.provider": {"iam.amazonaws.com", "sts.amazonaws.com"}},
			Not:   map[string][]string{"event.action": {"ListUsers"}, "cloud.region": {}},
		},
	}
)

func values(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("arn:aws:iam::1:user/u%04d", i)
	}
	return out
}

func keywordResolver(f string) (string, bool) {
	if f == "eventName" {
		return "eventName.keyword", false
	}
	return f, false
}

func TestBodies(t *testing.T) {
	after := json.RawMessage(`{"k0":"alice","k1":"GetObject"}`)
	cases := []struct {
		name  string
		build func() ([]byte, error)
	}{
		{"count", func() ([]byte, error) {
			return CountBody(store.CountRequest{Query: q, GroupBy: []string{"user.name", "event.action"}}, nil, nil, nil)
		}},
		{"count_after_page", func() ([]byte, error) {
			return CountBody(store.CountRequest{Query: q, GroupBy: []string{"user.name", "event.action"}, PageSize: 250}, nil, after, nil)
		}},
		{"count_hours", func() ([]byte, error) {
			return CountBody(store.CountRequest{Query: q, GroupBy: []string{"user.name"}, HourBuckets: true}, nil, nil, nil)
		}},
		{"count_restrict_short", func() ([]byte, error) {
			return CountBody(store.CountRequest{Query: q, GroupBy: []string{"user.name"}}, map[string][]string{"user.name": {"alice", "bob"}}, nil, nil)
		}},
		{"count_restrict_chunked", func() ([]byte, error) {
			return CountBody(store.CountRequest{Query: q, GroupBy: []string{"user.name"}}, map[string][]string{"user.name": values(TermsChunk + 2)}, nil, nil)
		}},
		{"count_keyword_subfield", func() ([]byte, error) {
			raw := store.Query{Index: []string{"cloudtrail"}, TimeField: "eventTime", Window: store.Window{From: from, To: to},
				Filter: store.Filter{Terms: map[string][]string{"eventName": {"ConsoleLogin"}}}}
			return CountBody(store.CountRequest{Query: raw, GroupBy: []string{"eventName"}}, nil, nil, keywordResolver)
		}},
		{"count_exclude", func() ([]byte, error) {
			ex := q
			ex.Filter.Exclude = []store.Clause{
				{
					{Field: "aws.cloudtrail.user_identity.arn", Op: store.OpTerms, Values: []string{"arn:aws:iam::1:user/alice"}},
					{Field: "source.ip", Op: store.OpCIDR, Values: []string{"81.2.69.0/24", "2001:db8::/32"}},
					{Field: "user_agent.original", Op: store.OpWildcard, Values: []string{"aws-cli/*"}},
				},
				{{Field: "sourceIPAddress", Op: store.OpCIDR, Values: []string{"10.1.16.0/20", "10.1.2.0/30", "2001:db8::1"}}},
			}
			ipResolver := func(f string) (string, bool) { return f, f == "source.ip" }
			return CountBody(store.CountRequest{Query: ex, GroupBy: []string{"event.action"}}, nil, nil, ipResolver)
		}},
		{"stats", func() ([]byte, error) {
			return StatsBody(store.StatsRequest{Query: q, By: []string{"cloud.account.id"}, Distinct: "user.name"}, nil, nil, nil)
		}},
		{"events", func() ([]byte, error) { return EventsBody(q, 100, nil) }},
		{"bulk_create", func() ([]byte, error) {
			return BulkCreateBody("signals", []store.Doc{
				{ID: "a", Source: json.RawMessage("{\n  \"rule\": {\"id\": \"r1\"}\n}")},
				{ID: "b/1", Source: json.RawMessage(`{"rule":{"id":"r2"}}`)},
			})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			ext := ".json"
			if c.name == "bulk_create" {
				ext = ".ndjson"
			} else {
				var buf bytes.Buffer
				if err := json.Indent(&buf, got, "", "  "); err != nil {
					t.Fatal(err)
				}
				got = append(buf.Bytes(), '\n')
			}
			path := filepath.Join("testdata", c.name+ext)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file (run with -update):\n%s", path, got)
			}
		})
	}
}

func TestRestrictPasses(t *testing.T) {
	const budget = ChunksPerRequest * TermsChunk
	cases := []struct {
		name      string
		restrict  map[string][]string
		passes    int
		split     string
		wantError bool
	}{
		{"none", nil, 1, "", false},
		{"short", map[string][]string{"a": {"x", "y", "x"}}, 1, "", false},
		{"at budget", map[string][]string{"a": values(budget)}, 1, "", false},
		{"over budget", map[string][]string{"a": values(budget + 1), "b": {"x"}}, 2, "a", false},
		{"two over budget", map[string][]string{"a": values(budget + 1), "b": values(budget + 1)}, 0, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			passes, split, err := restrictPasses(c.restrict)
			if (err != nil) != c.wantError {
				t.Fatalf("err = %v", err)
			}
			if len(passes) != c.passes || split != c.split {
				t.Fatalf("%d passes split on %q, want %d on %q", len(passes), split, c.passes, c.split)
			}
			total := 0
			for _, p := range passes {
				total += len(p[split])
				if len(p["b"]) != len(c.restrict["b"]) && split != "b" {
					t.Errorf("pass lost values of b")
				}
			}
			if split != "" && total != len(c.restrict[split]) {
				t.Errorf("passes carry %d values of %s, want %d", total, split, len(c.restrict[split]))
			}
		})
	}
	if p, _, _ := restrictPasses(map[string][]string{"a": {"y", "x", "y"}}); len(p[0]["a"]) != 2 {
		t.Errorf("duplicates kept: %v", p[0]["a"])
	}
}

func TestDecodeComposite(t *testing.T) {
	body := []byte(`{"_shards":{"failed":0},"aggregations":{"groups":{
		"after_key":{"k0":"x","k1":3.0,"hour":1709539200000},
		"buckets":[
			{"key":{"k0":"alice","k1":true,"hour":1709539200000},"doc_count":4,"distinct":{"value":2}},
			{"key":{"k0":"bob","k1":3.0,"hour":1709542800000},"doc_count":1},
			{"key":{"k0":"carol","k1":9007199254740993,"hour":1709542800000},"doc_count":1}
		]}}}`)
	page, err := decodeComposite(body, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []bucket{
		{Key: []string{"alice", "true", "2024-03-04T08:00:00Z"}, DocCount: 4, Distinct: 2},
		{Key: []string{"bob", "3", "2024-03-04T09:00:00Z"}, DocCount: 1},
		{Key: []string{"carol", "9007199254740993", "2024-03-04T09:00:00Z"}, DocCount: 1},
	}
	if fmt.Sprint(page.Buckets) != fmt.Sprint(want) {
		t.Errorf("buckets %v, want %v", page.Buckets, want)
	}
	if len(page.AfterKey) == 0 {
		t.Error("after_key lost")
	}
	// No index matched: no aggregations at all.
	if page, err := decodeComposite([]byte(`{"_shards":{"total":0,"failed":0},"hits":{"hits":[]}}`), 1, false); err != nil || len(page.Buckets) != 0 {
		t.Errorf("empty response: %v, %v", page, err)
	}
	if _, err := decodeComposite([]byte(`{"_shards":{"failed":1,"failures":[{"index":"i","reason":{"type":"illegal_argument_exception","reason":"bad field"}}]}}`), 1, false); err == nil {
		t.Error("shard failure not reported")
	}
}

func TestDecodeError(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   string
	}{
		{400, `{"error":{"type":"search_phase_execution_exception","reason":"all shards failed","root_cause":[{"type":"illegal_argument_exception","reason":"Text fields are not optimised"}]},"status":400}`,
			"status 400: search_phase_execution_exception: all shards failed (caused by illegal_argument_exception: Text fields are not optimised)"},
		{404, `{"_index":"s","_id":"x","found":false}`, "status 404"},
		{404, `{"result":"not_found"}`, "status 404: not_found"},
		{502, `Bad Gateway`, "status 502: Bad Gateway"},
	}
	for _, c := range cases {
		if got := decodeError(c.status, []byte(c.body)).Error(); got != c.want {
			t.Errorf("decodeError(%s) = %q, want %q", c.body, got, c.want)
		}
	}
}

func TestPath(t *testing.T) {
	cases := []struct {
		index []string
		rest  []string
		want  string
	}{
		{[]string{"logs-*", "a"}, []string{"_search"}, "/logs-*,a/_search"},
		{[]string{"state"}, []string{"_doc", "checkpoint:r/1"}, "/state/_doc/checkpoint:r%2F1"},
		{nil, []string{"_index_template", "t"}, "/_index_template/t"},
		{nil, nil, "/"},
	}
	for _, c := range cases {
		if got := Path(c.index, c.rest...); got != c.want {
			t.Errorf("Path(%v, %v) = %q, want %q", c.index, c.rest, got, c.want)
		}
	}
}
