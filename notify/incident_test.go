package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector"
)

func TestFromIncidentTriage(t *testing.T) {
	at := time.Date(2024, 6, 10, 5, 0, 0, 0, time.UTC)
	inc := &detector.Incident{ID: "inc-1", Actor: detector.Actor{Identity: "arn:aws:iam::1:user/alice", Account: "1", Label: "alice"},
		Start: at, End: at.Add(10 * time.Minute), Summary: "alice: 2 anomalies."}
	if m := FromIncident(inc); m.Reason != "alice: 2 anomalies." || m.Link != "" {
		t.Errorf("without triage: reason %q, link %q", m.Reason, m.Link)
	}
	inc.Triage = &detector.Triage{RecentHours: 48,
		Recent:   []detector.RecentAlert{{ID: "sig-0", Kind: "signal", Rules: []string{"aws-new-country-for-identity"}, Start: at.Add(-7 * time.Hour)}},
		Baseline: &detector.TriageBaseline{Countries: []detector.ValueCount{{Value: "FR", Count: 9}}, Hours: &detector.HourHabit{Timezone: "UTC", Usual: "09:00-17:00"}},
		Links:    map[string]string{"kibana": "https://kibana.example/k", "dashboards": "https://dashboards.example/d"}}
	m := FromIncident(inc)
	want := "alice: 2 anomalies. Triage: 1 other alert in the 48h before (last: signal aws-new-country-for-identity at 2024-06-09 22:00); usually FR, 09:00-17:00 UTC."
	if m.Reason != want {
		t.Errorf("reason\n%s\nwant\n%s", m.Reason, want)
	}
	if m.Link != "https://dashboards.example/d" || !strings.Contains(m.Text(), "Open: https://dashboards.example/d") {
		t.Errorf("link %q", m.Link)
	}
}
