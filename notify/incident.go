package notify

import (
	"slices"

	"github.com/offtrail/offtrail/detector"
)

// FromIncident is the message announcing an incident: its summary as the
// reason, its rules as the values, grouped (suppressed) by incident id so
// an incident that grows is one message. With a triage block, its short
// line follows the summary and its first link (by name) is the message's.
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
	if line := inc.Triage.Line(); line != "" {
		m.Reason += " Triage: " + line + "."
	}
	if inc.Triage != nil && len(inc.Triage.Links) > 0 {
		names := make([]string, 0, len(inc.Triage.Links))
		for n := range inc.Triage.Links {
			names = append(names, n)
		}
		slices.Sort(names)
		m.Link = inc.Triage.Links[names[0]]
	}
	return m
}
