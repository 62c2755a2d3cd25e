package cloudtrail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/offtrail/offtrail/internal/testenv"
	"github.com/offtrail/offtrail/mappings"
)

func call(t *testing.T, method, url string, body []byte, contentType string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && method != http.MethodDelete {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// TestTemplatesOnEngines indexes every shared event, shaped both ways, into
// indices made from the shipped templates on real Elasticsearch and
// OpenSearch: no document may be rejected, and the profile fields must get
// their declared types.
func TestTemplatesOnEngines(t *testing.T) {
	for name, base := range testenv.Engines(t) {
		t.Run(name, func(t *testing.T) {
			var recs []Record
			for _, e := range sharedEvents(t) {
				var raw map[string]any
				if unmarshal(e, &raw) != nil {
					continue
				}
				if rec, err := NewRecord(raw); err == nil {
					recs = append(recs, rec)
				}
			}
			shaper := &Shaper{Geo: testGeo}
			suffix := fmt.Sprintf("%d", time.Now().UnixNano())
			for _, tt := range []struct {
				profile string
				shape   func(Record) map[string]any
				types   map[string]string
			}{
				{"ecs", shaper.ECS, map[string]string{
					"@timestamp": "date", "event.action": "keyword", "source.ip": "ip",
					"source.geo.location": "geo_point", "event.ingested": "date",
					"aws.cloudtrail.console_login.additional_eventdata.mfa_used": "boolean",
				}},
				{"cloudtrail", shaper.Raw, map[string]string{
					"eventTime": "date", "eventName": "keyword", "userIdentity.arn": "keyword",
					"source.geo.location": "geo_point", "additionalEventData.MFAUsed": "keyword",
				}},
			} {
				ct, _ := mappings.CloudTrailIndexFor(tt.profile)
				index := "offtrail-test-" + tt.profile + "-" + suffix
				body, err := mappings.TemplateWith(ct.Template, mappings.TemplateOptions{
					IndexPatterns: []string{index},
					Settings:      map[string]any{"number_of_replicas": 0},
				})
				if err != nil {
					t.Fatal(err)
				}
				tmplURL := base + "/_index_template/" + index
				call(t, http.MethodPut, tmplURL, body, "application/json")
				t.Cleanup(func() {
					call(t, http.MethodDelete, base+"/"+index, nil, "")
					call(t, http.MethodDelete, tmplURL, nil, "")
				})

				var bulk bytes.Buffer
				ids := map[string]bool{}
				for _, rec := range recs {
					meta, _ := json.Marshal(map[string]any{"index": map[string]any{"_index": index, "_id": rec.ID}})
					doc, err := json.Marshal(tt.shape(rec))
					if err != nil {
						t.Fatal(err)
					}
					bulk.Write(meta)
					bulk.WriteByte('\n')
					bulk.Write(doc)
					bulk.WriteByte('\n')
					ids[rec.ID] = true
				}
				res := call(t, http.MethodPost, base+"/_bulk?refresh=true", bulk.Bytes(), "application/x-ndjson")
				if res["errors"] == true {
					items, _ := res["items"].([]any)
					n := 0
					for _, it := range items {
						op, _ := it.(map[string]any)["index"].(map[string]any)
						if op["error"] != nil && n < 5 {
							t.Errorf("%s: %s: %v", tt.profile, op["_id"], op["error"])
							n++
						}
					}
					t.FailNow()
				}
				count := call(t, http.MethodGet, base+"/"+index+"/_count", nil, "")
				if got := count["count"]; got != float64(len(ids)) {
					t.Errorf("%s: %v documents, want %d (distinct ids)", tt.profile, got, len(ids))
				}
				for field, want := range tt.types {
					m := call(t, http.MethodGet, base+"/"+index+"/_mapping/field/"+field, nil, "")
					got := fieldType(m, index, field)
					if got != want {
						t.Errorf("%s: %s mapped as %q, want %q", tt.profile, field, got, want)
					}
				}
			}
		})
	}
}

func fieldType(m map[string]any, index, field string) string {
	idx, _ := m[index].(map[string]any)
	mp, _ := idx["mappings"].(map[string]any)
	f, _ := mp[field].(map[string]any)
	inner, _ := f["mapping"].(map[string]any)
	last := field[strings.LastIndexByte(field, '.')+1:]
	typ, _ := inner[last].(map[string]any)
	s, _ := typ["type"].(string)
	return s
}
