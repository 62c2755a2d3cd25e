package detector_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/internal/testenv"
	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/rules"
)

// The documents offtrail writes into the signals index, pinned: the
// incident built from fixed anomalies, and one rule signal (a building
// block) from the crafted scenario. Both are checked against the shipped
// signals template, here field by field and on the real engines by
// indexing them.

var (
	incidentGolden = filepath.Join("testdata", "incident.golden.json")
	signalGolden   = filepath.Join("testdata", "incident_building_block.golden.json")
)

var goldenActor = detector.Actor{Identity: "arn:aws:iam::111111111111:user/alice", Account: "111111111111", Label: "alice"}

// goldenAnomalies is one actor's session: a first StopLogging and a rare
// method on the same event (one piece of evidence), and a login outside
// learned hours twenty minutes earlier.
func goldenAnomalies() []detector.Anomaly {
	at := func(hh, mm int) time.Time { return time.Date(2024, 6, 10, hh, mm, 0, 0, time.UTC) }
	stop := detector.TimelineEvent{ID: "evt-stop", Index: "logs-aws.cloudtrail-default", Time: at(5, 10), Action: "StopLogging", Rules: []string{"aws-first-high-risk-action"}}
	login := detector.TimelineEvent{ID: "evt-login", Index: "logs-aws.cloudtrail-default", Time: at(4, 50), Action: "ConsoleLogin", Rules: []string{"aws-activity-outside-learned-hours"}}
	list := detector.TimelineEvent{ID: "evt-list", Index: "logs-aws.cloudtrail-default", Time: at(5, 12), Action: "ListBuckets", Rules: []string{"aws-activity-outside-learned-hours"}}
	stopRare := stop
	stopRare.Rules = []string{"aws-rare-method-for-user"}
	return []detector.Anomaly{
		{
			SignalID: "sig-hours", Rule: "aws-activity-outside-learned-hours", RuleName: "Activity outside learned hours", Job: "hours",
			Value: "weekday 04:00", Score: 92.5, Surprisal: surprisal(92.5), Severity: "low", RiskScore: 21, Confidence: detector.Confidence("high"),
			BaselineEvents: 2020, Reason: "alice was active at weekday 04:00 (UTC).", Start: at(4, 50), End: at(5, 12),
			Events: []detector.TimelineEvent{login, list},
		},
		{
			SignalID: "sig-first", Rule: "aws-first-high-risk-action", RuleName: "First high-risk action", Job: "first",
			Value: "StopLogging", Score: 94.8, Surprisal: surprisal(94.8), Severity: "critical", RiskScore: 99, HighRisk: "defense_evasion",
			Floor: "critical", Confidence: detector.Confidence("high"), BaselineEvents: 2020,
			Reason: "alice called StopLogging for the first time.", Start: at(5, 10), End: at(5, 10),
			Events: []detector.TimelineEvent{stop},
		},
		{
			SignalID: "sig-rare", Rule: "aws-rare-method-for-user", RuleName: "Rare method for user", Job: "rare",
			Value: "StopLogging", Score: 94.7, Surprisal: surprisal(94.7), Severity: "critical", RiskScore: 99, HighRisk: "defense_evasion",
			Confidence: detector.Confidence("high"), BaselineEvents: 1967,
			Reason: "alice called StopLogging for the first time in 30d.", Start: at(5, 10), End: at(5, 10),
			Events: []detector.TimelineEvent{stopRare},
		},
	}
}

// surprisal is the anomaly's surprisal as AnomalyOf derives it.
func surprisal(score float64) float64 {
	return math.Round(detector.SurprisalFromScore(score)*1000) / 1000
}

func goldenIncident(t *testing.T, anoms []detector.Anomaly) *detector.Incident {
	t.Helper()
	sessions := detector.Sessions(anoms, detector.IncidentOptions{})
	if len(sessions) != 1 {
		t.Fatalf("%d sessions, want 1", len(sessions))
	}
	return detector.NewIncident(goldenActor, sessions[0], detector.IncidentOptions{})
}

// goldenSignal is the first StopLogging of the scenario as a document:
// one rule on the embedded store, the clock fixed at the window's end.
func goldenSignal(t *testing.T) *detector.Signal {
	t.Helper()
	b := embedded.NewMemory()
	index := storetest.IndexPrefix + "incident-doc"
	ctx := t.Context()
	if err := b.EnsureTemplate(ctx, storetest.TemplateName, []byte(storetest.Template)); err != nil {
		t.Fatal(err)
	}
	storetest.Load(t, b, index, scenarioDocs())
	if err := b.Refresh(ctx, index); err != nil {
		t.Fatal(err)
	}
	pack, diags := rules.Builtin()
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	r, ok := pack.Get("aws-first-high-risk-action")
	if !ok {
		t.Fatal("no rule aws-first-high-risk-action")
	}
	rc := *r
	rc.Source.Index = []string{index}
	det := detector.New(b, zerolog.Nop(), detector.WithHighRiskActions(rules.HighRiskActions()),
		detector.WithClock(func() time.Time { return windowEnd }))
	w := store.Window{From: windowEnd.Add(-rc.Schedule.Lookback.Std()), To: windowEnd}
	res, err := det.Evaluate(ctx, &rc, w, "golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Signals {
		if s.Label == "alice" && len(s.Value) > 0 && s.Value[0].Value == "StopLogging" {
			return s
		}
	}
	t.Fatalf("no StopLogging signal for alice among %d", len(res.Signals))
	return nil
}

// checkGolden compares a document with its golden file (-update rewrites it).
func checkGolden(t *testing.T, path string, doc any) []byte {
	t.Helper()
	got, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
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
		t.Errorf("document differs from %s (run with -update if intended):\n--- got\n%s--- want\n%s", path, got, want)
	}
	return got
}

// get reads a dotted path from a decoded document.
func get(doc map[string]any, path string) any {
	var v any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIncidentDocumentGolden(t *testing.T) {
	inc := triaged(t, goldenAnomalies())
	doc := decode(t, checkGolden(t, incidentGolden, inc.Document()))

	// The contract, whatever the golden file says.
	for path, want := range map[string]any{
		"offtrail.kind":           "incident",
		"event.kind":              "alert",
		"event.dataset":           "offtrail.incidents",
		"rule.id":                 detector.IncidentRuleID,
		"offtrail.actor.id":       goldenActor.Identity,
		"offtrail.actor.account":  goldenActor.Account,
		"offtrail.actor.label":    goldenActor.Label,
		"offtrail.incident.id":    inc.ID,
		"offtrail.incident.alert": true,
		"offtrail.no_baseline":    false,
		"event.start":             "2024-06-10T04:50:00Z",
		"event.end":               "2024-06-10T05:12:00Z",
		"@timestamp":              "2024-06-10T05:12:00Z",
	} {
		if got := get(doc, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if get(doc, "kibana.alert.building_block_type") != nil {
		t.Error("an incident is no building block")
	}
	if got := fmt.Sprint(get(doc, "offtrail.incident.signal_ids")); got != "[sig-hours sig-first sig-rare]" {
		t.Errorf("signal_ids %s", got)
	}
	if got := fmt.Sprint(get(doc, "offtrail.incident.rules")); got != "[aws-activity-outside-learned-hours aws-first-high-risk-action aws-rare-method-for-user]" {
		t.Errorf("rules %s", got)
	}
	// StopLogging is one event for two rules: one line of the timeline.
	tl, _ := get(doc, "offtrail.incident.timeline").([]any)
	if len(tl) != 3 {
		t.Fatalf("timeline %v", tl)
	}
	if got := fmt.Sprint(tl[1].(map[string]any)["rules"]); got != "[aws-first-high-risk-action aws-rare-method-for-user]" {
		t.Errorf("StopLogging's rules %s", got)
	}
	if get(doc, "offtrail.incident.evidence") != 2.0 {
		t.Errorf("evidence %v, want 2 (the shared event is one piece)", get(doc, "offtrail.incident.evidence"))
	}

	// Deterministic: the same anomalies in another order, the same document.
	again := goldenAnomalies()
	slices.Reverse(again)
	b1, _ := json.Marshal(inc.Document())
	b2, _ := json.Marshal(triaged(t, again).Document())
	if !bytes.Equal(b1, b2) {
		t.Errorf("the document depends on the anomalies' order:\n%s\n%s", b1, b2)
	}
}

func TestSignalDocumentGolden(t *testing.T) {
	s := goldenSignal(t)
	doc := decode(t, checkGolden(t, signalGolden, s.Document()))
	for path, want := range map[string]any{
		"offtrail.kind":                    "signal",
		"kibana.alert.building_block_type": "default",
		"event.kind":                       "alert",
		"event.dataset":                    "offtrail.alerts",
		"rule.id":                          "aws-first-high-risk-action",
		"offtrail.actor.label":             "alice",
		"offtrail.actor.account":           account,
		"offtrail.no_baseline":             false,
		"event.created":                    windowEnd.Format(time.RFC3339Nano),
	} {
		if got := get(doc, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
}

// templateNode is one node of the signals template's mappings.
type templateNode struct {
	Type       string                  `json:"type"`
	Enabled    *bool                   `json:"enabled"`
	Dynamic    any                     `json:"dynamic"`
	Properties map[string]templateNode `json:"properties"`
}

func signalsTemplate(t *testing.T) templateNode {
	t.Helper()
	b, err := mappings.Template("signals")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Template struct {
			Mappings templateNode `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl.Template.Mappings
}

// unmapped lists the leaves of a document that the template maps neither
// explicitly nor on purpose: an object with dynamic: true (the entity and
// value fields, whose names are the rule's) or one that is not indexed
// (enabled: false, or dynamic: false for keys kept only in _source). What
// it lists would be mapped dynamically, as keyword, whatever it is.
func unmapped(node templateNode, prefix string, v any, out *[]string) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			unmapped(node, prefix, e, out)
		}
	case map[string]any:
		if node.Enabled != nil && !*node.Enabled {
			return
		}
		for k, sub := range v {
			child, ok := node.Properties[k]
			if !ok {
				if prefix != "" && node.Dynamic != nil { // set on purpose below the root
					continue
				}
				*out = append(*out, prefix+k)
				continue
			}
			unmapped(child, prefix+k+".", sub, out)
		}
	default:
		if node.Type == "" && node.Properties != nil {
			*out = append(*out, strings.TrimSuffix(prefix, ".")+" (a value where the template has an object)")
		}
	}
}

// TestDocumentsMappedExplicitly checks the golden documents against the
// shipped signals template, and the types of what incidents are filtered
// and sorted by.
func TestDocumentsMappedExplicitly(t *testing.T) {
	tmpl := signalsTemplate(t)
	for _, path := range []string{incidentGolden, signalGolden} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		var missing []string
		unmapped(tmpl, "", decode(t, b), &missing)
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s: not mapped by the signals template: %s", path, strings.Join(missing, ", "))
		}
	}
	for field, want := range map[string]string{
		"offtrail.kind":                         "keyword",
		"kibana.alert.building_block_type":      "keyword",
		"offtrail.actor.id":                     "keyword",
		"offtrail.actor.account":                "keyword",
		"offtrail.actor.label":                  "keyword",
		"offtrail.no_baseline":                  "boolean",
		"offtrail.floor":                        "keyword",
		"offtrail.context.penalty":              "float",
		"offtrail.incident.id":                  "keyword",
		"offtrail.incident.alert":               "boolean",
		"offtrail.incident.rules":               "keyword",
		"offtrail.incident.signal_ids":          "keyword",
		"offtrail.incident.evidence":            "long",
		"offtrail.incident.timeline.time":       "date",
		"offtrail.incident.timeline.id":         "keyword",
		"offtrail.incident.anomalies.start":     "date",
		"offtrail.incident.anomalies.end":       "date",
		"offtrail.incident.anomalies.rule":      "keyword",
		"offtrail.incident.anomalies.score":     "float",
		"offtrail.incident.anomalies.signal_id": "keyword",
		"event.severity":                        "long",
	} {
		n, ok := tmpl, true
		for _, p := range strings.Split(field, ".") {
			if n, ok = n.Properties[p]; !ok {
				break
			}
		}
		if !ok || n.Type != want {
			t.Errorf("%s mapped as %q, want %s", field, n.Type, want)
		}
	}
}

// engineDo sends one JSON request to an engine and decodes the answer.
func engineDo(t *testing.T, method, u string, body any) map[string]any {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, u, res.StatusCode, raw)
	}
	return decode(t, raw)
}

func hitIDs(res map[string]any) []string {
	var ids []string
	hits, _ := get(res, "hits.hits").([]any)
	for _, h := range hits {
		ids = append(ids, h.(map[string]any)["_id"].(string))
	}
	sort.Strings(ids)
	return ids
}

// TestIncidentDocumentOnEngines indexes the golden signal and incident
// into an index made by the shipped signals template on each engine: the
// mapping accepts both, an incident overwritten in place stays one
// document, and incidents are found by what the saved search and people
// filter on.
func TestIncidentDocumentOnEngines(t *testing.T) {
	engines := testenv.Engines(t)
	sig := goldenSignal(t)
	anoms := goldenAnomalies()
	first := goldenIncident(t, anoms[:2]) // the session so far
	inc := triaged(t, anoms)              // grown by one anomaly, with triage
	if first.ID != inc.ID {
		t.Fatalf("a growing session changed its incident id: %s, %s", first.ID, inc.ID)
	}
	for name, base := range engines {
		t.Run(name, func(t *testing.T) {
			id := fmt.Sprintf("%d", time.Now().UnixNano())
			index := "logs-offtrail.alerts-inctest" + id
			tname := "offtrail-inctest-" + id
			b, err := mappings.TemplateWith("signals", mappings.TemplateOptions{IndexPatterns: []string{index}, Priority: 500})
			if err != nil {
				t.Fatal(err)
			}
			engineDo(t, http.MethodPut, base+"/_index_template/"+tname, json.RawMessage(b))
			t.Cleanup(func() {
				for _, u := range []string{base + "/" + index + "?ignore_unavailable=true", base + "/_index_template/" + tname} {
					if req, err := http.NewRequest(http.MethodDelete, u, nil); err == nil {
						if res, err := http.DefaultClient.Do(req); err == nil {
							res.Body.Close()
						}
					}
				}
			})
			engineDo(t, http.MethodPut, base+"/"+index+"/_create/"+sig.ID+"?refresh=true", sig.Document())
			engineDo(t, http.MethodPut, base+"/"+index+"/_doc/"+first.ID+"?refresh=true", first.Document())
			res := engineDo(t, http.MethodPut, base+"/"+index+"/_doc/"+inc.ID+"?refresh=true", inc.Document())
			if res["result"] != "updated" || res["_version"] != 2.0 {
				t.Errorf("second write of the incident: %v", res)
			}

			search := func(query map[string]any) []string {
				t.Helper()
				return hitIDs(engineDo(t, http.MethodPost, base+"/"+index+"/_search", map[string]any{"query": query, "size": 10}))
			}
			term := func(field string, v any) map[string]any {
				return map[string]any{"term": map[string]any{field: v}}
			}
			check := func(what string, got []string, want ...string) {
				t.Helper()
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: hits %v, want %v", what, got, want)
				}
			}
			check("offtrail.kind:incident", search(term("offtrail.kind", "incident")), inc.ID)
			check("offtrail.kind:signal", search(term("offtrail.kind", "signal")), sig.ID)
			check("building blocks", search(map[string]any{"exists": map[string]any{"field": "kibana.alert.building_block_type"}}), sig.ID)
			check("alerting incidents by actor, rule, baseline and severity", search(map[string]any{"bool": map[string]any{"filter": []any{
				term("offtrail.kind", "incident"),
				term("offtrail.incident.alert", true),
				term("offtrail.actor.id", goldenActor.Identity),
				term("offtrail.incident.rules", "aws-rare-method-for-user"),
				term("offtrail.no_baseline", false),
				map[string]any{"range": map[string]any{"event.severity": map[string]any{"gte": 73}}},
			}}}), inc.ID)
			check("the actor's signals and incidents", search(term("offtrail.actor.id", goldenActor.Identity)), inc.ID, sig.ID)
			check("an incident by a contributing event", search(term("offtrail.incident.timeline.id", "evt-stop")), inc.ID)
			check("an incident by a signal id", search(term("offtrail.incident.signal_ids", "sig-rare")), inc.ID)
			check("timeline times are dates", search(map[string]any{"range": map[string]any{
				"offtrail.incident.timeline.time": map[string]any{"gte": "2024-06-10T05:11:00Z", "lt": "2024-06-10T05:13:00Z"}}}), inc.ID)
			check("anomaly times are dates", search(map[string]any{"range": map[string]any{
				"offtrail.incident.anomalies.start": map[string]any{"lt": "2024-06-10T05:00:00Z"}}}), inc.ID)

			// Nothing of either document was mapped dynamically but the
			// rule-named entity and value fields.
			m := engineDo(t, http.MethodGet, base+"/"+index+"/_mapping", nil)
			idx, _ := m[index].(map[string]any) // the index name has dots
			props, _ := get(idx, "mappings.properties").(map[string]any)
			if props == nil {
				t.Fatalf("mapping %v", m)
			}
			want := map[string]bool{}
			for _, f := range leafPaths("", signalsTemplate(t).Properties) {
				want[f] = true
			}
			var n templateNode
			if err := json.Unmarshal(mustJSON(t, props), &n.Properties); err != nil {
				t.Fatal(err)
			}
			for _, f := range leafPaths("", n.Properties) {
				if !want[f] && !strings.HasPrefix(f, "offtrail.entity.") && !strings.HasPrefix(f, "offtrail.value.") {
					t.Errorf("%s was mapped dynamically", f)
				}
			}
		})
	}
}

// leafPaths lists the dotted paths of a mapping's fields.
func leafPaths(prefix string, props map[string]templateNode) []string {
	var out []string
	for k, n := range props {
		if n.Properties != nil {
			out = append(out, leafPaths(prefix+k+".", n.Properties)...)
			continue
		}
		out = append(out, prefix+k)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
