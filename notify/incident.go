package notify

import "github.com/offtrail/offtrail/detector"

// FromIncident is the message announcing an incident: its summary as the
// reason, its rules as the values, grouped (suppressed) by incident id so
// an incident that grows is one message.
func FromIncident(inc *detector.Incident) *Message {
	m := &Message{
		SignalID:   inc.ID,
		RuleID:     detector.IncidentRuleID,
		RuleName:   "offtrail incident",
		Identity:   inc.Actor.Label,
		Entity:     []Field{{Name: "identity", Value: inc.Actor.Identity}, {Name: "account", Value: inc.Actor.Account}},
		Score:      inc.Score,
		Confidence: string(inc.Confidence),
		Severity:   inc.Severity,
		RiskScore:  inc.RiskScore,
		Reason:     inc.Summary,
		Events:     int64(len(inc.Timeline)),
		FirstEvent: inc.Start,
		LastEvent:  inc.End,
		Group:      inc.ID,
	}
	for _, r := range inc.Rules {
		m.Values = append(m.Values, Field{Name: "rule", Value: r})
	}
	return m
}
