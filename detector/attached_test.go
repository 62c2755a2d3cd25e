package detector_test

import (
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector"
)

// TestAttachedAnomalies: an attached anomaly (a first-time call below its
// rule's threshold) joins the session it falls in or near, is shown and
// weighs nothing; alone, it makes no incident.
func TestAttachedAnomalies(t *testing.T) {
	base := goldenAnomalies()
	weak := func(id string, at time.Time) detector.Anomaly {
		return detector.Anomaly{SignalID: id, Rule: "aws-rare-method-for-user", Value: "UpdateFunctionCode", Score: 38, Surprisal: surprisal(38),
			Severity: "low", Attached: true, BaselineEvents: 1967, Start: at, End: at,
			Events: []detector.TimelineEvent{{ID: "evt-" + id, Time: at, Action: "UpdateFunctionCode"}}}
	}
	want := goldenIncident(t, base)
	cases := []struct {
		name     string
		extra    detector.Anomaly
		sessions int
		joined   bool
	}{
		{"within the session", weak("in", base[1].Start.Add(time.Minute)), 1, true},
		{"within the gap after it", weak("after", base[1].End.Add(50*time.Minute)), 1, true},
		{"before the session's first event", weak("before", base[0].Start.Add(-30*time.Minute)), 1, true},
		{"far from any session: dropped", weak("far", base[1].End.Add(5*time.Hour)), 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sessions := detector.Sessions(append(append([]detector.Anomaly{}, base...), tc.extra), detector.IncidentOptions{})
			if len(sessions) != tc.sessions {
				t.Fatalf("%d sessions, want %d", len(sessions), tc.sessions)
			}
			got := detector.NewIncident(goldenActor, sessions[0], detector.IncidentOptions{})
			if got.ID != want.ID || got.Score != want.Score || got.Severity != want.Severity || got.Evidence != want.Evidence {
				t.Errorf("attached anomaly changed the incident: id %s score %v severity %s evidence %d, want %s %v %s %d",
					got.ID, got.Score, got.Severity, got.Evidence, want.ID, want.Score, want.Severity, want.Evidence)
			}
			joined := false
			for _, a := range got.Anomalies {
				if a.SignalID == tc.extra.SignalID {
					joined = true
					if a.Weight != 0 || a.Evidence != 0 {
						t.Errorf("attached anomaly weighs %v in evidence group %d, want nothing", a.Weight, a.Evidence)
					}
				}
			}
			if joined != tc.joined {
				t.Errorf("joined %v, want %v", joined, tc.joined)
			}
		})
	}
	if s := detector.Sessions([]detector.Anomaly{weak("alone", base[0].Start)}, detector.IncidentOptions{}); len(s) != 0 {
		t.Fatalf("an attached anomaly alone made %d sessions, want none", len(s))
	}
}
