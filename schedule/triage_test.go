package schedule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// TestIncidentsTriage: the incident written for a window carries the
// actor's earlier alerts, read back from the signals index in one query,
// and the configured links. On every backend.
func TestIncidentsTriage(t *testing.T) {
	backends := map[string]func(t *testing.T) (store.Backend, string, string){
		"embedded": func(t *testing.T) (store.Backend, string, string) {
			s, err := embedded.Open(t.TempDir(), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, "logs-offtrail.alerts-test", "offtrail-state-test"
		},
	}
	for name, open := range engines() {
		backends[name] = func(t *testing.T) (store.Backend, string, string) {
			e := open(t)
			env := engineEnv(t, e)
			return e.Backend, env.signals, env.state
		}
	}
	t0 := time.Date(2024, 6, 10, 22, 0, 0, 0, time.UTC)
	links, err := detector.ParseLinks(map[string]string{"kibana": "https://kibana.example/?q=user.name:{{.Actor}}&from={{.From}}"})
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			st, signals, state := open(t)
			ctx := t.Context()
			// Earlier today: a signal of alice's, and one of bob's.
			earlier := signal("new-country", "NG", "e0", t0.Add(-6*time.Hour), 55)
			earlier.Window = store.Window{From: t0.Add(-7 * time.Hour), To: t0.Add(-5 * time.Hour)}
			bob := signal("new-country", "NG", "e9", t0.Add(-6*time.Hour), 55)
			bob.ID, bob.Actor.Identity = "bob-signal", "arn:aws:iam::111122223333:user/bob"
			var docs []store.Doc
			for _, s := range []*detector.Signal{earlier, bob} {
				b, _ := json.Marshal(map[string]any{"@timestamp": s.Window.To.Add(time.Hour).Format(time.RFC3339),
					"event": map[string]any{"start": s.Events[0].Time.Format(time.RFC3339), "end": s.Events[0].Time.Format(time.RFC3339)},
					"rule":  map[string]any{"id": s.RuleID}, "offtrail": map[string]any{"kind": "signal", "score": s.Score, "actor": s.Actor}})
				docs = append(docs, store.Doc{ID: s.ID, Source: b})
			}
			if _, err := st.WriteSignals(ctx, signals, docs); err != nil {
				t.Fatal(err)
			}
			if err := st.Refresh(ctx, signals); err != nil {
				t.Fatal(err)
			}
			tr := &Incidents{Store: st, SignalsIndex: signals, StateIndex: state, Now: func() time.Time { return t0 },
				Triage: &detector.Triager{Store: st, SignalsIndex: signals, Links: links, Log: zerolog.Nop()}}
			ups, err := tr.AddFrom(ctx, detector.TriageSource{}, []*detector.Signal{signal("rare-method", "ListUsers", "e1", t0, 80)})
			if err != nil || len(ups) != 1 {
				t.Fatalf("%+v, %v", ups, err)
			}
			id := ups[0].Incident.ID
			var doc struct {
				Offtrail struct {
					Incident struct {
						Triage detector.Triage `json:"triage"`
					} `json:"incident"`
				} `json:"offtrail"`
			}
			if err := json.Unmarshal(storetest.ReadDocs(t, st, signals)[id], &doc); err != nil {
				t.Fatal(err)
			}
			tg := doc.Offtrail.Incident.Triage
			if len(tg.Recent) != 1 || tg.Recent[0].ID != earlier.ID || tg.Recent[0].Rules[0] != "new-country" || !tg.Recent[0].Start.Equal(t0.Add(-6*time.Hour)) {
				t.Errorf("recent %+v, want alice's earlier signal only", tg.Recent)
			}
			if got := tg.Links["kibana"]; !strings.Contains(got, "user.name:alice&from=2024-06-10T21:00:00Z") {
				t.Errorf("link %q", got)
			}
			if tg.Baseline != nil {
				t.Errorf("baseline %+v without a source", tg.Baseline)
			}
		})
	}
}
