package schedule

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// signal is a rule signal of alice at t with one event.
func signal(rule, value, event string, t time.Time, score float64) *detector.Signal {
	return &detector.Signal{
		ID: rule + "/" + value + "/" + event, RuleID: rule, RuleName: rule, Score: score, Severity: "low", RiskScore: 21,
		Actor:    detector.Actor{Identity: "arn:aws:iam::111122223333:user/alice", Account: "111122223333", Label: "alice"},
		Value:    []detector.Field{{Name: "action", Value: value}},
		Events:   []store.Event{{ID: event, Time: t}},
		Timeline: []detector.TimelineEvent{{ID: event, Time: t, Action: value}},
	}
}

// TestIncidentsTracker: windows arriving one by one grow one incident in
// place (same id), announced once when it crosses the threshold; a
// replayed window changes nothing; a pause longer than the gap starts a
// new incident; another replica's update in between is kept. On every
// backend, through the state index.
func TestIncidentsTracker(t *testing.T) {
	backends := map[string]func(t *testing.T) (IncidentStore, string, string){
		"embedded": func(t *testing.T) (IncidentStore, string, string) {
			s, err := embedded.Open(t.TempDir(), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, "logs-offtrail.alerts-test", "offtrail-state-test"
		},
	}
	for name, open := range engines() {
		backends[name] = func(t *testing.T) (IncidentStore, string, string) {
			e := open(t)
			env := engineEnv(t, e)
			return e.Backend, env.signals, env.state
		}
	}
	t0 := time.Date(2024, 6, 10, 22, 0, 0, 0, time.UTC)
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			st, signals, state := open(t)
			tr := &Incidents{Store: st, SignalsIndex: signals, StateIndex: state, Now: func() time.Time { return t0 }}
			ctx := t.Context()
			// 1. One weak anomaly: an incident below the threshold.
			ups, err := tr.Add(ctx, []*detector.Signal{signal("rare-method", "ListUsers", "e1", t0, 60)})
			if err != nil || len(ups) != 1 || ups[0].Incident.Alert || ups[0].New {
				t.Fatalf("first window: %+v, %v", ups, err)
			}
			id := ups[0].Incident.ID
			// 2. Twenty minutes later, another rule: together they alert.
			ups, err = tr.Add(ctx, []*detector.Signal{signal("learned-hours", "weekday 22:00", "e2", t0.Add(20*time.Minute), 70)})
			if err != nil || len(ups) != 1 || !ups[0].New || ups[0].Incident.ID != id || len(ups[0].Incident.Anomalies) != 2 {
				t.Fatalf("second window: %+v, %v", ups, err)
			}
			// 3. The same window again (a retry, another replica): nothing new.
			if ups, err = tr.Add(ctx, []*detector.Signal{signal("learned-hours", "weekday 22:00", "e2", t0.Add(20*time.Minute), 70)}); err != nil || len(ups) != 0 {
				t.Fatalf("replayed window: %+v, %v", ups, err)
			}
			// 4. More of the session: updated in place, not announced again.
			ups, err = tr.Add(ctx, []*detector.Signal{signal("new-service", "iam", "e3", t0.Add(50*time.Minute), 65)})
			if err != nil || len(ups) != 1 || ups[0].New || ups[0].Incident.ID != id || len(ups[0].Incident.Anomalies) != 3 {
				t.Fatalf("third window: %+v, %v", ups, err)
			}
			// 4b. Another replica adds to the session; this one, holding the
			// state it wrote before, finds its write refused and reads
			// again: nothing is lost.
			other := &Incidents{Store: st, SignalsIndex: signals, StateIndex: state, Now: func() time.Time { return t0 }}
			if ups, err = other.Add(ctx, []*detector.Signal{signal("new-service", "sts", "e5", t0.Add(60*time.Minute), 65)}); err != nil || len(ups) != 1 || len(ups[0].Incident.Anomalies) != 4 {
				t.Fatalf("other replica: %+v, %v", ups, err)
			}
			ups, err = tr.Add(ctx, []*detector.Signal{signal("new-service", "kms", "e6", t0.Add(70*time.Minute), 65)})
			if err != nil || len(ups) != 1 || ups[0].Incident.ID != id || len(ups[0].Incident.Anomalies) != 5 {
				t.Fatalf("after the other replica: %+v, %v", ups, err)
			}
			// 5. Three hours later: a new session, a new incident.
			ups, err = tr.Add(ctx, []*detector.Signal{signal("rare-method", "GetUser", "e4", t0.Add(4*time.Hour), 60)})
			if err != nil || len(ups) != 1 || ups[0].Incident.ID == id {
				t.Fatalf("after the gap: %+v, %v", ups, err)
			}
			docs := storetest.ReadDocs(t, st.(store.Backend), signals)
			if len(docs) != 2 {
				t.Fatalf("%d incident documents, want 2", len(docs))
			}
			var first struct {
				Offtrail struct {
					Kind     string `json:"kind"`
					Incident struct {
						Anomalies []json.RawMessage `json:"anomalies"`
						Alert     bool              `json:"alert"`
					} `json:"incident"`
				} `json:"offtrail"`
			}
			if err := json.Unmarshal(docs[id], &first); err != nil {
				t.Fatal(err)
			}
			if first.Offtrail.Kind != "incident" || !first.Offtrail.Incident.Alert || len(first.Offtrail.Incident.Anomalies) != 5 {
				t.Errorf("incident document %s: %s", id, docs[id])
			}
		})
	}
}
