package detector

import (
	"encoding/json"
	"time"

	"github.com/offtrail/offtrail/rules"
)

// Document returns the incident as the ECS-aligned alert document written
// to the signals index beside its building blocks. It has no
// kibana.alert.building_block_type, so Kibana's alert views show it; its
// id is the incident's, so each update of the session overwrites it.
func (inc *Incident) Document() map[string]any {
	doc := map[string]any{
		"@timestamp": inc.End.UTC().Format(time.RFC3339Nano),
		"message":    inc.Summary,
	}
	setPath(doc, "event.kind", "alert")
	setPath(doc, "event.module", "offtrail")
	setPath(doc, "event.dataset", "offtrail.incidents")
	setPath(doc, "event.severity", rules.SeverityScore(inc.Severity))
	setPath(doc, "event.risk_score", inc.RiskScore)
	setPath(doc, "event.start", inc.Start.UTC().Format(time.RFC3339Nano))
	setPath(doc, "event.end", inc.End.UTC().Format(time.RFC3339Nano))
	setPath(doc, "event.reason", inc.Summary)
	setPath(doc, "rule.id", IncidentRuleID)
	setPath(doc, "rule.uuid", IncidentRuleID)
	setPath(doc, "rule.name", "offtrail incident")
	setPath(doc, "rule.ruleset", "offtrail")
	setPath(doc, "rule.category", "incident")
	setPath(doc, "user.name", inc.Actor.Label)
	setPath(doc, "aws.cloudtrail.user_identity.arn", inc.Actor.Identity)
	if inc.Actor.Account != "" {
		setPath(doc, "cloud.account.id", inc.Actor.Account)
	}
	signalIDs := make([]string, len(inc.Anomalies))
	for i, a := range inc.Anomalies {
		signalIDs[i] = a.SignalID
	}
	incident := map[string]any{
		"id":         inc.ID,
		"alert":      inc.Alert,
		"evidence":   inc.Evidence,
		"rules":      inc.Rules,
		"signal_ids": signalIDs,
		"anomalies":  inc.Anomalies,
		"timeline":   inc.Timeline,
	}
	if inc.Triage != nil {
		incident["triage"] = inc.Triage
	}
	doc["offtrail"] = map[string]any{
		"kind":         "incident",
		"score":        inc.Score,
		"surprisal":    inc.Surprisal,
		"threshold":    inc.Threshold,
		"confidence":   string(inc.Confidence),
		"entity_label": inc.Actor.Label,
		"actor":        inc.Actor,
		"reason":       inc.Summary,
		"no_baseline":  inc.NoBaseline,
		"incident":     incident,
	}
	return doc
}

// MarshalJSON writes the document.
func (inc *Incident) MarshalJSON() ([]byte, error) { return json.Marshal(inc.Document()) }
