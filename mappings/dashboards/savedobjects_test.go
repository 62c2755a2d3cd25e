package dashboards_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/mappings/dashboards"
	"github.com/offtrail/offtrail/mappings/kibana"
)

// Both products' files are checked here: they differ only in what each UI
// accepts, and the checks are the same.
var files = []struct {
	name string
	data []byte
}{
	{"kibana/offtrail.ndjson", kibana.SavedObjects},
	{"dashboards/offtrail.ndjson", dashboards.SavedObjects},
}

type reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

type savedObject struct {
	ID               string            `json:"id"`
	Type             string            `json:"type"`
	Attributes       map[string]any    `json:"attributes"`
	References       []reference       `json:"references"`
	MigrationVersion map[string]string `json:"migrationVersion"`
}

func parse(t *testing.T, name string, data []byte) []savedObject {
	t.Helper()
	var out []savedObject
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var o savedObject
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("%s:%d: %v", name, line, err)
		}
		if o.ID == "" || o.Type == "" || o.Attributes == nil {
			t.Fatalf("%s:%d: id, type and attributes are required", name, line)
		}
		out = append(out, o)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// field is one mapped field of a template: its type and whether terms and
// metric aggregations can run on it.
type field struct {
	typ        string
	aggregable bool
}

// templateFields flattens an embedded index template's mappings, with
// multi-fields as name.sub.
func templateFields(t *testing.T, name string) map[string]field {
	t.Helper()
	b, err := mappings.Template(name)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Template struct {
			Mappings struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	out := map[string]field{}
	var walk func(prefix string, props map[string]json.RawMessage)
	walk = func(prefix string, props map[string]json.RawMessage) {
		for k, raw := range props {
			var m struct {
				Type       string                     `json:"type"`
				Properties map[string]json.RawMessage `json:"properties"`
				Fields     map[string]json.RawMessage `json:"fields"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			path := prefix + k
			if m.Properties != nil || m.Type == "object" {
				walk(path+".", m.Properties)
				continue
			}
			out[path] = field{typ: m.Type, aggregable: m.Type != "text"}
			for sub, sraw := range m.Fields {
				var s struct {
					Type string `json:"type"`
				}
				_ = json.Unmarshal(sraw, &s)
				out[path+"."+sub] = field{typ: s.Type, aggregable: s.Type != "text"}
			}
		}
	}
	walk("", tmpl.Template.Mappings.Properties)
	return out
}

// templateFor finds the embedded template whose patterns cover an index
// pattern's title ("logs-offtrail.alerts-*" → signals).
func templateFor(t *testing.T, title string) string {
	t.Helper()
	for _, name := range mappings.TemplateNames() {
		patterns, err := mappings.TemplatePatterns(name)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(patterns, title) {
			return name
		}
	}
	t.Fatalf("no template has the index pattern %q", title)
	return ""
}

// kqlField finds "field:" in a KQL query.
var kqlField = regexp.MustCompile(`([A-Za-z0-9_@.]+)\s*:`)

type use struct {
	field     string
	aggregate bool
}

// fieldsUsed lists the fields an object reads: a search's columns and
// sort, a visualization's aggregation fields, and the fields of their
// queries.
func fieldsUsed(t *testing.T, o savedObject) []use {
	t.Helper()
	var out []use
	if o.Type == "search" {
		for _, c := range o.Attributes["columns"].([]any) {
			out = append(out, use{field: c.(string)})
		}
		for _, s := range o.Attributes["sort"].([]any) {
			out = append(out, use{field: s.([]any)[0].(string), aggregate: true})
		}
	}
	if o.Type == "visualization" {
		var vs struct {
			Aggs []struct {
				Type   string         `json:"type"`
				Params map[string]any `json:"params"`
			} `json:"aggs"`
		}
		if err := json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vs); err != nil {
			t.Fatalf("%s visState: %v", o.ID, err)
		}
		for _, a := range vs.Aggs {
			if f, ok := a.Params["field"].(string); ok {
				out = append(out, use{field: f, aggregate: true})
			}
		}
	}
	if meta, ok := o.Attributes["kibanaSavedObjectMeta"].(map[string]any); ok {
		var src struct {
			Query struct {
				Query string `json:"query"`
			} `json:"query"`
		}
		if err := json.Unmarshal([]byte(meta["searchSourceJSON"].(string)), &src); err != nil {
			t.Fatalf("%s searchSourceJSON: %v", o.ID, err)
		}
		for _, m := range kqlField.FindAllStringSubmatch(src.Query.Query, -1) {
			out = append(out, use{field: m[1]})
		}
	}
	return out
}

func TestSavedObjects(t *testing.T) {
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			objs := parse(t, f.name, f.data)
			byKey := map[string]savedObject{}
			for _, o := range objs {
				key := o.Type + "/" + o.ID
				if _, dup := byKey[key]; dup {
					t.Errorf("duplicate %s", key)
				}
				byKey[key] = o
				// OpenSearch Dashboards refuses versions newer than its own
				// migrations (it forked from 7.10.2); Kibana 8 migrates
				// these forward on import.
				for typ, v := range o.MigrationVersion {
					if typ != o.Type || versionAfter(v, "7.10.0") {
						t.Errorf("%s: migrationVersion %s %s", key, typ, v)
					}
				}
			}

			for _, o := range objs {
				key := o.Type + "/" + o.ID
				names := map[string]bool{}
				for _, r := range o.References {
					if _, ok := byKey[r.Type+"/"+r.ID]; !ok {
						t.Errorf("%s: reference %s to missing %s/%s", key, r.Name, r.Type, r.ID)
					}
					names[r.Name] = true
				}
				for _, name := range refNames(t, o) {
					if !names[name] {
						t.Errorf("%s: %s has no reference", key, name)
					}
				}

				var pattern savedObject
				for _, r := range o.References {
					if r.Type == "index-pattern" {
						pattern = byKey[r.Type+"/"+r.ID]
					}
				}
				if o.Type == "index-pattern" {
					pattern = o
				}
				if pattern.ID == "" {
					continue
				}
				title := pattern.Attributes["title"].(string)
				tmpl := templateFor(t, title)
				fields := templateFields(t, tmpl)
				uses := fieldsUsed(t, o)
				if o.Type == "index-pattern" {
					tf := o.Attributes["timeFieldName"].(string)
					if fields[tf].typ != "date" {
						t.Errorf("%s: time field %s is %q in template %s, want date", key, tf, fields[tf].typ, tmpl)
					}
				}
				for _, u := range uses {
					fl, ok := fields[u.field]
					switch {
					case !ok:
						t.Errorf("%s: field %s is not in template %s (%s)", key, u.field, tmpl, title)
					case u.aggregate && !fl.aggregable:
						t.Errorf("%s: aggregates on %s, a %s field", key, u.field, fl.typ)
					}
				}
			}

			// The contract of the issue: what the dashboard must show.
			alerts := byKey["search/offtrail-alerts-table"]
			for _, c := range []string{"rule.name", "user.name", "offtrail.score", "offtrail.confidence", "message"} {
				if !slices.Contains(alerts.Attributes["columns"].([]any), any(c)) {
					t.Errorf("alerts search lacks column %s", c)
				}
			}
			// Rule signals are building blocks; the search says so and
			// leaves the incidents out.
			if title := alerts.Attributes["title"].(string); !strings.Contains(title, "building blocks") {
				t.Errorf("signals search title %q does not say building blocks", title)
			}
			if q := searchQuery(t, alerts); q != "not offtrail.kind:incident" {
				t.Errorf("signals search query %q", q)
			}
			incidents, ok := byKey["search/offtrail-incidents-table"]
			if !ok {
				t.Fatal("no incidents search")
			}
			if q := searchQuery(t, incidents); q != "offtrail.kind:incident and offtrail.incident.alert:true" {
				t.Errorf("incidents search query %q", q)
			}
			if got, want := incidents.Attributes["columns"].([]any), []any{"offtrail.actor.label", "offtrail.score", "event.severity",
				"offtrail.confidence", "offtrail.incident.rules", "message", "event.start", "event.end"}; !slices.Equal(got, want) {
				t.Errorf("incidents columns %v, want %v", got, want)
			}
			// The triage view: incidents with what is looked up first.
			triage, ok := byKey["search/offtrail-incidents-triage"]
			if !ok {
				t.Fatal("no incidents triage search")
			}
			if q := searchQuery(t, triage); q != "offtrail.kind:incident and offtrail.incident.alert:true" {
				t.Errorf("triage search query %q", q)
			}
			for _, c := range []string{"offtrail.actor.label", "offtrail.score", "event.severity", "message", "offtrail.incident.triage.recent.rules",
				"offtrail.incident.triage.baseline.countries.value", "offtrail.incident.triage.baseline.networks.value",
				"offtrail.incident.triage.baseline.user_agents.value", "offtrail.incident.triage.baseline.hours.usual"} {
				if !slices.Contains(triage.Attributes["columns"].([]any), any(c)) {
					t.Errorf("triage search lacks column %s", c)
				}
			}
			if !slices.ContainsFunc(byKey["dashboard/offtrail-overview"].References, func(r reference) bool { return r.ID == triage.ID && r.Type == "search" }) {
				t.Error("the dashboard does not show the triage search")
			}
			if _, ok := byKey["search/offtrail-cloudtrail-events"]; !ok {
				t.Error("no CloudTrail search to pivot into")
			}
			dash := byKey["dashboard/offtrail-overview"]
			if !slices.ContainsFunc(dash.References, func(r reference) bool { return r.ID == incidents.ID && r.Type == "search" }) {
				t.Error("the dashboard does not show the incidents search")
			}
			var shown []string
			for _, r := range dash.References {
				for _, u := range fieldsUsed(t, byKey[r.Type+"/"+r.ID]) {
					shown = append(shown, u.field)
				}
			}
			for _, want := range []string{"rule.name", "event.severity", "user.name", "event.action", "source.geo.country_iso_code", "message"} {
				if !slices.Contains(shown, want) {
					t.Errorf("dashboard shows nothing by %s", want)
				}
			}
		})
	}
}

// searchQuery is the KQL of an object's search source.
func searchQuery(t *testing.T, o savedObject) string {
	t.Helper()
	meta, _ := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
	var src struct {
		Query struct {
			Query    string `json:"query"`
			Language string `json:"language"`
		} `json:"query"`
	}
	if s, _ := meta["searchSourceJSON"].(string); json.Unmarshal([]byte(s), &src) != nil || src.Query.Language != "kuery" {
		t.Errorf("%s: search source is not KQL", o.ID)
	}
	return src.Query.Query
}

// versionAfter compares x.y.z versions.
func versionAfter(a, b string) bool {
	var x, y [3]int
	fmt.Sscanf(a, "%d.%d.%d", &x[0], &x[1], &x[2])
	fmt.Sscanf(b, "%d.%d.%d", &y[0], &y[1], &y[2])
	return slices.Compare(x[:], y[:]) > 0
}

// refNames are the reference names an object's attributes point through:
// panelRefName in a dashboard's panels, indexRefName in a search source.
func refNames(t *testing.T, o savedObject) []string {
	t.Helper()
	var out []string
	if pj, ok := o.Attributes["panelsJSON"].(string); ok {
		var panels []struct {
			PanelRefName string `json:"panelRefName"`
			PanelIndex   string `json:"panelIndex"`
			GridData     struct {
				I string `json:"i"`
			} `json:"gridData"`
		}
		if err := json.Unmarshal([]byte(pj), &panels); err != nil {
			t.Fatalf("%s panelsJSON: %v", o.ID, err)
		}
		seen := map[string]bool{}
		for _, p := range panels {
			if p.PanelRefName == "" || p.PanelIndex != p.GridData.I || seen[p.PanelIndex] {
				t.Errorf("%s: panel %+v", o.ID, p)
			}
			seen[p.PanelIndex] = true
			out = append(out, p.PanelRefName)
		}
	}
	if meta, ok := o.Attributes["kibanaSavedObjectMeta"].(map[string]any); ok {
		var src struct {
			IndexRefName string `json:"indexRefName"`
		}
		if err := json.Unmarshal([]byte(meta["searchSourceJSON"].(string)), &src); err != nil {
			t.Fatal(err)
		}
		if src.IndexRefName != "" {
			out = append(out, src.IndexRefName)
		}
	}
	return out
}

func ExampleSavedObjects() {
	n := bytes.Count(dashboards.SavedObjects, []byte("\n"))
	fmt.Println(n > 0)
	// Output: true
}
