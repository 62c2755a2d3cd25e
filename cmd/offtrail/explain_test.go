package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestExplainNearMisses: once --explain prints a section per rule, with
// near misses or why there are none; with --format json they come on one
// line of their own under near_misses, after the signals.
func TestExplainNearMisses(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"load", "--store", "file:" + dir, "--profile", "ecs", "--index", "logs-aws.cloudtrail-default",
		"--geoip", "", "testdata/incident-trail/trail.json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr.String())
	}
	base := []string{"once", "--store", "file:" + dir, "--at", "2026-03-12T23:00:00Z", "--explain", "--explain-top", "2"}
	stdout.Reset()
	if code := runMain(base, &stdout, &stderr); code != 0 {
		t.Fatalf("once: exit %d: %s", code, stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{
		"Near misses (the best candidates below each rule's threshold",
		"aws-rare-method-for-user (threshold 50): 9 candidate(s), 4 at or above",
		"low_history: little history (0 events in 30d)",
		"aws-burst-regions (threshold 50): 1 candidate(s), 1 at or above; no near misses: all 1 candidate(s) at or above the threshold",
		"aws-rare-error-code (threshold 50): 0 candidate(s), 0 at or above; no near misses: no candidates in the window",
		"triage: no other alerts in the 48h before",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	stdout.Reset()
	if code := runMain(append(base, "--format", "json"), &stdout, &stderr); code != 0 {
		t.Fatalf("once json: exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var last struct {
		NearMisses []struct {
			Rule  string `json:"rule"`
			Note  string `json:"note"`
			Items []struct {
				Score     float64                       `json:"score"`
				Threshold float64                       `json:"threshold"`
				LoweredBy []struct{ Kind, Text string } `json:"lowered_by"`
			} `json:"items"`
		} `json:"near_misses"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || len(last.NearMisses) == 0 {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	for _, rm := range last.NearMisses {
		if len(rm.Items) == 0 && rm.Note == "" || len(rm.Items) > 2 {
			t.Errorf("%s: %d items, note %q", rm.Rule, len(rm.Items), rm.Note)
		}
		for _, it := range rm.Items {
			if it.Score >= it.Threshold || len(it.LoweredBy) == 0 {
				t.Errorf("%s: item %+v", rm.Rule, it)
			}
		}
	}
	for _, l := range lines[:len(lines)-1] {
		if strings.Contains(l, `"near_misses"`) {
			t.Errorf("near misses mixed with signals: %s", l)
		}
	}
	if code := runMain(append(base, "--explain-top", "0"), &stdout, &stderr); code != 2 {
		t.Errorf("--explain-top 0: exit %d, want 2", code)
	}
}
