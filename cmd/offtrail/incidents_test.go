package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestIncidentTrailWithoutHistory: a real-shaped incident trail (logging
// stopped, trail deleted, organisation left, a key created for another
// user, passwords read) by an identity with no history at all must give a
// high-severity incident that says no baseline existed, through the
// commands a user runs: load, then backtest.
func TestIncidentTrailWithoutHistory(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"load", "--store", "file:" + dir, "--profile", "ecs", "--index", "logs-aws.cloudtrail-default",
		"--geoip", "", "testdata/incident-trail/trail.json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr.String())
	}
	base := []string{"backtest", "--store", "file:" + dir, "--from", "2026-03-12T20:00:00Z", "--to", "2026-03-12T23:00:00Z"}
	stdout.Reset()
	stderr.Reset()
	if code := runMain(append(base, "--format", "json"), &stdout, &stderr); code != 0 {
		t.Fatalf("backtest: exit %d: %s", code, stderr.String())
	}
	var alerts []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var d struct {
			Source map[string]any `json:"_source"`
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		off, _ := d.Source["offtrail"].(map[string]any)
		inc, _ := off["incident"].(map[string]any)
		if off["kind"] == "incident" && inc["alert"] == true {
			alerts = append(alerts, d.Source)
		}
	}
	if len(alerts) == 0 {
		t.Fatalf("no alerting incident; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	top := alerts[0]
	off := top["offtrail"].(map[string]any)
	sev := top["event"].(map[string]any)["severity"].(float64)
	if sev < 73 || off["no_baseline"] != true || !strings.Contains(off["reason"].(string), "no baseline") {
		t.Errorf("incident: severity %v, no_baseline %v, reason %q; want high or critical, saying no baseline existed", sev, off["no_baseline"], off["reason"])
	}
	// The table says how many actors had no baseline.
	stdout.Reset()
	if code := runMain(base, &stdout, &stderr); code != 0 {
		t.Fatalf("backtest table: exit %d", code)
	}
	if !strings.Contains(stdout.String(), "1 actor(s) with no baseline") {
		t.Errorf("table does not count the actor without a baseline:\n%s", stdout.String())
	}
}
