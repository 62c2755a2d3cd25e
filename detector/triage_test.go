package detector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/mappings"
)

// kibanaLink is the README's example link template.
const kibanaLink = `https://kibana.example/app/discover#/?_g=(time:(from:'{{.From}}',to:'{{.To}}'))&_a=(query:(language:kuery,query:'user.name:"{{.Actor}}"'))`

const triageSignals = "logs-offtrail.alerts-triage"

// signalDoc is a signals-index document as triage reads it.
func signalDoc(id, kind, actor, rule string, start time.Time, score float64) store.Doc {
	src := map[string]any{
		"@timestamp": start.Add(time.Hour).Format(time.RFC3339),
		"event":      map[string]any{"start": start.Format(time.RFC3339), "end": start.Add(5 * time.Minute).Format(time.RFC3339)},
		"rule":       map[string]any{"id": rule},
		"offtrail":   map[string]any{"kind": kind, "score": score, "actor": map[string]any{"id": actor, "account": account}},
	}
	if kind == "incident" {
		src["offtrail"].(map[string]any)["incident"] = map[string]any{"rules": []string{rule, "aws-rare-method-for-user"}}
	}
	b, _ := json.Marshal(src)
	return store.Doc{ID: id, Source: b}
}

// triageStore is the scenario's CloudTrail and a signals index with
// alice's and bob's earlier alerts.
func triageStore(t *testing.T) (*embedded.Store, string) {
	t.Helper()
	b := embedded.NewMemory()
	index := storetest.IndexPrefix + "triage"
	ctx := t.Context()
	if err := b.EnsureTemplate(ctx, storetest.TemplateName, []byte(storetest.Template)); err != nil {
		t.Fatal(err)
	}
	storetest.Load(t, b, index, scenarioDocs())
	at := func(d, hh int) time.Time { return time.Date(2024, 6, d, hh, 0, 0, 0, time.UTC) }
	alice := goldenActor.Identity
	docs := []store.Doc{
		signalDoc("sig-old", "signal", alice, "aws-rare-method-for-user", at(7, 12), 55),        // more than 48h before
		signalDoc("sig-sunday", "signal", alice, "aws-new-country-for-identity", at(9, 22), 62), // in the 48h
		signalDoc("inc-sunday", "incident", alice, "aws-new-country-for-identity", at(9, 22), 64),
		signalDoc("sig-bob", "signal", userARN("bob"), "aws-rare-method-for-user", at(9, 23), 70), // another actor
		signalDoc("sig-hours", "signal", alice, "aws-activity-outside-learned-hours", at(10, 4), 92.5),
	}
	if _, err := b.WriteSignals(ctx, triageSignals, docs); err != nil {
		t.Fatal(err)
	}
	return b, index
}

// triaged is the golden incident with its triage block.
func triaged(t *testing.T, anoms []detector.Anomaly) *detector.Incident {
	t.Helper()
	b, index := triageStore(t)
	links, err := detector.ParseLinks(map[string]string{"kibana": kibanaLink})
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := mappings.LookupProfile("ecs")
	inc := goldenIncident(t, anoms)
	tr := &detector.Triager{Store: b, SignalsIndex: triageSignals, Links: links, Log: zerolog.Nop()}
	tr.Enrich(t.Context(), []*detector.Incident{inc}, func(*detector.Incident) detector.TriageSource {
		return detector.TriageSource{Index: []string{index}, Profile: prof}
	}, nil)
	return inc
}

func TestTriage(t *testing.T) {
	inc := triaged(t, goldenAnomalies())
	tr := inc.Triage
	if tr == nil {
		t.Fatal("no triage block")
	}
	// The 48 hours before: alice's own alerts, not bob's, not the
	// incident's own signal, not older ones.
	var recent []string
	for _, a := range tr.Recent {
		recent = append(recent, a.Kind+":"+a.ID+":"+strings.Join(a.Rules, "+"))
	}
	if got, want := strings.Join(recent, " "), "incident:inc-sunday:aws-new-country-for-identity+aws-rare-method-for-user signal:sig-sunday:aws-new-country-for-identity"; got != want {
		t.Errorf("recent %s, want %s", got, want)
	}
	bl := tr.Baseline
	if bl == nil {
		t.Fatal("no baseline")
	}
	if got := fmt.Sprint(bl.Countries); got != "[{FR 2020}]" {
		t.Errorf("countries %s", got)
	}
	if len(bl.Networks) != 1 || len(bl.UserAgents) != 2 || bl.UserAgents[0].Value != "aws-cli/2.15.0" {
		t.Errorf("networks %v, user agents %v", bl.Networks, bl.UserAgents)
	}
	if h := bl.Hours; h == nil || h.Usual != "09:00-17:00" || h.Weekend != 0 || h.Events != 2020 {
		t.Errorf("hours %+v", h)
	}
	if got := tr.Links["kibana"]; !strings.Contains(got, "from:'2024-06-10T03:50:00Z',to:'2024-06-10T06:12:00Z'") || !strings.Contains(got, `user.name:"alice"`) {
		t.Errorf("kibana link %s", got)
	}
}

func TestTriageLinksAndNames(t *testing.T) {
	for _, tc := range []struct{ tmpl, err string }{
		{kibanaLink, ""},
		{"https://x/?q={{.Actor | urlquery}}&id={{.IncidentID}}&acct={{.Account}}&arn={{.ARN}}", ""},
		{"https://x/?q={{.User}}", "can't evaluate field User"},
		{"https://x/?q={{.Actor", "unclosed action"},
	} {
		_, err := detector.ParseLinks(map[string]string{"x": tc.tmpl})
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.tmpl, err, tc.err)
		}
	}
	for arn, want := range map[string]string{
		"arn:aws:iam::1:user/alice":                  "alice",
		"arn:aws:iam::1:user/team/bob":               "bob",
		"arn:aws:sts::1:assumed-role/Deploy/ci-1234": "Deploy",
		"arn:aws:iam::1:root":                        "root",
		"alice":                                      "alice",
	} {
		if got := detector.UserName(arn); got != want {
			t.Errorf("UserName(%s) = %s, want %s", arn, got, want)
		}
	}
}

// countingBackend counts the grouped counts that reach the engine.
type countingBackend struct {
	*embedded.Store
	counts int
}

func (c *countingBackend) CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	c.counts++
	return c.Store.CountGroups(ctx, req, fn)
}

// TestTriageHistoryFromBaselineDays: with the baseline cache as History,
// an actor's 30 days give the same baseline, and a later update of the
// incident sends no count to the engine: the days are summed from memory.
func TestTriageHistoryFromBaselineDays(t *testing.T) {
	b, index := triageStore(t)
	want := triaged(t, goldenAnomalies()).Triage.Baseline
	raw := &countingBackend{Store: b}
	now := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
	cache, err := baseline.New(raw, baseline.Options{StateIndex: "triage-state", Now: func() time.Time { return now }, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := mappings.LookupProfile("ecs")
	tr := &detector.Triager{Store: b, History: cache, SignalsIndex: triageSignals, Log: zerolog.Nop()}
	enrich := func() *detector.TriageBaseline {
		inc := goldenIncident(t, goldenAnomalies())
		tr.Enrich(t.Context(), []*detector.Incident{inc}, func(*detector.Incident) detector.TriageSource {
			return detector.TriageSource{Index: []string{index}, Profile: prof}
		}, nil)
		return inc.Triage.Baseline
	}
	if got := enrich(); !reflect.DeepEqual(got, want) {
		t.Fatalf("baseline from days\n%+v\nwant\n%+v", got, want)
	}
	if raw.counts == 0 {
		t.Fatal("the first update counted nothing: the days were not built")
	}
	before := raw.counts
	if got := enrich(); !reflect.DeepEqual(got, want) {
		t.Fatalf("second update: baseline\n%+v\nwant\n%+v", got, want)
	}
	if n := raw.counts - before; n != 0 {
		t.Errorf("a later update sent %d counts to the engine, want 0", n)
	}
}
