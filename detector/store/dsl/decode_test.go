package dsl

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// TestDecodeRawHits: the one-pass raw decoding gives what decodeHits
// gives, byte for byte in the sources (escapes, numbers and key order as
// the engine sent them), and falls back to it where it cannot.
func TestDecodeRawHits(t *testing.T) {
	w := store.Window{From: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)}
	const src1 = `{"@timestamp":"2026-11-01T10:00:00.250Z","b":1.50e3,"a":"caf\u00e9 \"x\"\\n","k\u00e9y":[true,null,{"z":-0.0}]}`
	const src2 = `{"@timestamp":"2026-11-01T10:59:59Z","n":{"deep":{"s":"\ud83d\ude00"}}}`
	hit := func(id, src, sort string) string {
		return `{"_index":"logs-1","_id":"` + id + `","_score":null,"_source":` + src + `,"sort":[` + sort + `]}`
	}
	body := func(hits ...string) []byte {
		return []byte(`{"took":3,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"max_score":null,"hits":[` +
			strings.Join(hits, ",") + `]}}`)
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"plain", body(hit("a\\u0031", src1, "1793527200250"), hit("b", src2, "1793530799000"))},
		{"empty", body()},
		{"sort value a string", body(hit("a", src1, `"2026-11-01T10:00:00.250Z"`))},
		{"sort outside the window: decoded from the source", body(hit("a", src1, "1"))},
		{"white space between tokens", []byte(" {\n \"timed_out\" : false ,\"hits\":{ \"hits\" : [ " + hit("a", src1, " 1793527200250 ") + " ] } }\n")},
		{"keys in another order, unknown keys skipped", []byte(`{"hits":{"hits":[{"sort":[1793530799000,"x"],"_source":` + src2 + `,"extra":[{"a":[1,{"b":"]}"}]}],"_id":"c","_index":"i"}],"total":{"value":1}},"_shards":{"failed":0},"took":1}`)},
		{"keys escaped, and repeated: the last one counts", []byte(`{"hits":{"hits":[{"_id":"x","\u005fid":"e","_index":"i","_source":{"a":1},"_source":` + src2 + `,"sort":[1793530799000]}]}}`)},
		{"no _shards, no timed_out", []byte(`{"hits":{"hits":[` + hit("d", src2, "1793530799000") + `]}}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, werr := decodeHits(tc.body, "@timestamp", &w)
			got, gerr := decodeRawHits(tc.body, "@timestamp", w)
			if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("raw decoding:\n%+v, %v\nwant\n%+v, %v", got, gerr, want, werr)
			}
			for _, e := range got {
				if !strings.Contains(string(tc.body), string(e.Raw)) {
					t.Errorf("source of %s changed: %s", e.ID, e.Raw)
				}
			}
		})
	}
	failed := []byte(`{"timed_out":false,"_shards":{"total":2,"successful":1,"failed":1,"failures":[{"index":"logs-1","reason":{"type":"query_shard_exception","reason":"bad"}}]},"hits":{"hits":[]}}`)
	if _, err := decodeRawHits(failed, "@timestamp", w); err == nil || !strings.Contains(err.Error(), "query_shard_exception") {
		t.Errorf("shard failure: %v", err)
	}
	if _, err := decodeRawHits([]byte(`{"timed_out":true,"hits":{"hits":[]}}`), "@timestamp", w); err == nil {
		t.Error("a timed-out search decoded")
	}
	for _, bad := range []string{
		`{"hits":`,
		`{"hits":{"hits":[{"_id":"a","_source":{"x":1},"sort":[1793527200250]}]}`,   // unclosed
		`{"hits":{"hits":[{"_id":"a","_source":{"x":"y},"sort":[1793527200250]}]}}`, // a string left open
		`{"hits":{"hits":[{"_id":"a","_source":{"x":tru},"sort":[1793527200250]}]}}`,
		`{"hits":{"hits":[{"_id":"a","_source":{"x":1,},"sort":[1793527200250]}]}}`,
		`{"hits":{"hits":[{"_id":"a","_source":{"x":"a` + "\n" + `"},"sort":[1793527200250]}]}}`,
		`{"hits":{"hits":[]}} {}`,
	} {
		if evs, err := decodeRawHits([]byte(bad), "@timestamp", w); err == nil {
			t.Errorf("malformed %s decoded to %+v", bad, evs)
		}
	}
}

// FuzzDecodeRawHits: any response decodes to events with a time, and a
// source object where there is one, or to an error; never a panic. A
// response encoding/json takes as valid decodes as decodeHits decodes it,
// each source a valid JSON object.
func FuzzDecodeRawHits(f *testing.F) {
	f.Add([]byte(`{"hits":{"hits":[{"_id":"a","_source":{"x":1},"sort":[1793527200250]}]}}`))
	f.Add([]byte(`{"timed_out":false,"_shards":{"failed":0},"hits":{"hits":[{"_index":"i","_id":"a\u0031","_source":{"a":[1.5e3,true,null,{"b":"\"]"}]},"sort":["2026-11-01T10:00:00Z"]}]}}`))
	w := store.Window{From: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeRawHits(body, "@timestamp", w)
		if err != nil {
			return
		}
		for _, e := range got {
			if len(e.Raw) > 0 && (e.Raw[0] != '{' || !json.Valid(e.Raw)) || e.Time.IsZero() {
				t.Fatalf("event %+v", e)
			}
		}
		if !json.Valid(body) || !caseExactKeys(body) {
			return // encoding/json's leniency on key case is not the engines'
		}
		want, werr := decodeHits(body, "@timestamp", &w)
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("raw decoding\n%+v\nwant\n%+v", got, want)
		}
	})
}

// caseExactKeys reports whether every key of the response's shape in b
// is written exactly, not in another case: encoding/json matches keys
// ignoring case, the engines write them one way.
func caseExactKeys(b []byte) bool {
	lower := bytes.ToLower(b)
	for _, k := range []string{`"_id"`, `"_index"`, `"_source"`, `"sort"`, `"hits"`, `"timed_out"`, `"_shards"`, `"failed"`, `"failures"`} {
		if bytes.Count(lower, []byte(k)) != bytes.Count(b, []byte(k)) {
			return false
		}
	}
	return true
}

// BenchmarkDecodeRawHits decodes one tick's read: 200 CloudTrail-shaped
// hits of about 1.6 KB.
func BenchmarkDecodeRawHits(b *testing.B) {
	src := `{"@timestamp":"2026-11-01T10:00:00.250Z","event":{"action":"DescribeInstances","provider":"ec2.amazonaws.com","outcome":"success"},` +
		`"aws":{"cloudtrail":{"user_identity":{"arn":"arn:aws:iam::123456789012:user/alice","type":"IAMUser","access_key_id":"AKIAEXAMPLE"},` +
		`"request_parameters":"{\"instancesSet\":{},\"filterSet\":{\"items\":[{\"name\":\"tag:Name\",\"valueSet\":{\"items\":[{\"value\":\"web-*\"}]}}]}}",` +
		`"flattened":{"request_parameters":{"maxResults":1000,"filterSet":{"items":[{"name":"x","valueSet":{"items":[{"value":"y"}]}}]}}}}},` +
		`"source":{"ip":"198.51.100.7","geo":{"country_iso_code":"DE","city_name":"Berlin","location":{"lat":52.5,"lon":13.4}}},` +
		`"user_agent":{"original":"aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances"},` +
		`"cloud":{"region":"eu-central-1","account":{"id":"123456789012"}},"tags":["a","b"],"n":[1,2.5,-3e2,true,false,null]}`
	var hits []string
	for i := range 200 {
		hits = append(hits, `{"_index":"logs-1","_id":"id`+strconv.Itoa(i)+`","_score":null,"_source":`+src+`,"sort":[1793527200250]}`)
	}
	body := []byte(`{"took":3,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"max_score":null,"hits":[` + strings.Join(hits, ",") + `]}}`)
	w := store.Window{From: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		evs, err := decodeRawHits(body, "@timestamp", w)
		if err != nil || len(evs) != 200 {
			b.Fatal(len(evs), err)
		}
	}
}
