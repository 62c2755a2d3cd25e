package detector

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/rules"
)

// copiedFields are the logical fields copied from the first contributing
// event into the signal, under their ECS names, so Kibana and Dashboards can
// pivot on them whatever the source profile.
var copiedFields = []string{
	"user", "user_id", "identity", "identity_type", "access_key", "account", "region",
	"source.ip", "source.country", "source.city", "user_agent", "action", "service",
	"error_code", "outcome", "mfa_used",
}

// setPath sets a dotted path in nested maps.
func setPath(doc map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

// Document returns the signal as the ECS-aligned document written to the
// signals index.
func (s *Signal) Document() map[string]any { return s.doc }

// MarshalJSON writes the document.
func (s *Signal) MarshalJSON() ([]byte, error) { return json.Marshal(s.doc) }

func (ev *evaluation) document(s *Signal) map[string]any {
	r := ev.rule
	ecs, _ := mappings.LookupProfile("ecs")
	first, last := s.Events[0], s.Events[len(s.Events)-1]
	doc := map[string]any{
		// @timestamp is the end of the evaluated window: deterministic, so a
		// replayed window produces the same document, and close to "now" for
		// a scheduled run.
		"@timestamp": s.Window.To.UTC().Format(time.RFC3339Nano),
		"message":    s.Reason,
	}
	setPath(doc, "event.kind", "alert")
	// A rule's signal is a building block of incidents: Kibana's alert
	// views hide building blocks by default, so people see incidents.
	setPath(doc, "kibana.alert.building_block_type", "default")
	setPath(doc, "event.module", "offtrail")
	setPath(doc, "event.dataset", "offtrail.alerts")
	setPath(doc, "event.severity", rules.SeverityScore(s.Severity))
	setPath(doc, "event.risk_score", s.RiskScore)
	setPath(doc, "event.created", s.Created.Format(time.RFC3339Nano))
	setPath(doc, "event.start", first.Time.UTC().Format(time.RFC3339Nano))
	setPath(doc, "event.end", last.Time.UTC().Format(time.RFC3339Nano))
	setPath(doc, "event.reason", s.Reason)
	setPath(doc, "rule.id", r.ID)
	setPath(doc, "rule.uuid", r.ID)
	setPath(doc, "rule.name", r.Name)
	setPath(doc, "rule.description", r.Description)
	setPath(doc, "rule.version", r.Version)
	setPath(doc, "rule.ruleset", "offtrail")
	setPath(doc, "rule.category", r.Type)
	if len(r.Threat) > 0 {
		var tactics, techniques, subs []string
		for _, t := range r.Threat {
			if t.Tactic != "" {
				tactics = append(tactics, t.Tactic)
			}
			if t.Technique != "" {
				techniques = append(techniques, t.Technique)
			}
			if t.Subtechnique != "" {
				subs = append(subs, t.Subtechnique)
			}
		}
		setPath(doc, "threat.framework", "MITRE ATT&CK")
		if len(tactics) > 0 {
			setPath(doc, "threat.tactic.id", tactics)
		}
		if len(techniques) > 0 {
			setPath(doc, "threat.technique.id", techniques)
		}
		if len(subs) > 0 {
			setPath(doc, "threat.technique.subtechnique.id", subs)
		}
	}
	for _, logical := range copiedFields {
		if v := ev.eventField(first, logical); v != "" {
			if logical == "mfa_used" {
				setPath(doc, ecs.Physical(logical), v == "true" || strings.EqualFold(v, "yes"))
				continue
			}
			setPath(doc, ecs.Physical(logical), v)
		}
	}
	if s.Label != "" {
		setPath(doc, "user.name", firstNonEmpty(ev.eventField(first, "user"), s.Label))
	}
	entity := map[string]any{}
	for _, f := range s.Entity {
		entity[f.Name] = f.Value
	}
	value := map[string]any{}
	for _, f := range s.Value {
		value[f.Name] = f.Value
	}
	events := make([]map[string]any, len(s.Events))
	ids := make([]string, len(s.Events))
	for i, e := range s.Events {
		events[i] = map[string]any{"id": e.ID, "index": e.Index, "time": e.Time.UTC().Format(time.RFC3339Nano)}
		ids[i] = e.ID
	}
	off := map[string]any{
		"job":          s.Job,
		"score":        s.Score,
		"probability":  s.Probability,
		"surprisal":    s.Surprisal,
		"threshold":    r.AnomalyThreshold,
		"confidence":   string(s.Confidence),
		"entity":       entity,
		"entity_label": s.Label,
		"value":        value,
		"actual":       map[string]any{"value": valueString(s.Value), "count": s.Count},
		"typical":      s.Baseline.Typical,
		"baseline":     s.Baseline,
		"reason":       s.Reason,
		"run_id":       s.RunID,
		"window":       map[string]any{"start": s.Window.From.UTC().Format(time.RFC3339), "end": s.Window.To.UTC().Format(time.RFC3339)},
		"event_ids":    ids,
		"events":       events,
		"automation":   s.Automation,
		"kind":         "signal",
		"actor":        s.Actor,
		"no_baseline":  s.NoBaseline(),
	}
	if s.Floor != "" {
		off["floor"] = s.Floor
	}
	if s.HighRisk != "" {
		off["high_risk"] = s.HighRisk
	}
	if s.Attached {
		off["attached"] = true // below the threshold: context for an incident, never an alert
	}
	if s.Context != nil {
		off["context"] = s.Context
	}
	if names := ev.exceptionNames(); len(names) > 0 {
		// The entries in force for this window (README, Exceptions).
		off["exceptions"] = names
	}
	for k, v := range s.Extra {
		off[k] = v
	}
	doc["offtrail"] = off
	return doc
}

func valueString(v []Field) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = f.Value
	}
	return strings.Join(parts, " / ")
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
