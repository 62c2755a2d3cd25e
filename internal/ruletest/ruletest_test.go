package ruletest

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/rules"
)

func TestFixtures(t *testing.T) {
	pack, diags := rules.LoadFiles("testdata/pack")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	for _, tc := range []struct {
		file   string
		failed bool
		out    []string
	}{
		{"failing_test.yml", true, []string{
			`failing_test.yml:4:5: case "wants too much" failed:`,
			"- missing signal: aws-first-high-risk-action | * | StopLogging | score >= 99 | severity high",
			"differs: score 96.73 < min_score 99; severity critical, want high",
			"signal aws-first-high-risk-action | alice | StopLogging | score 96.73 | severity critical",
			"no baseline",
			"failing_test.yml: 2 cases, 1 passed, 1 failed",
		}},
		{"invalid_test.yml", true, []string{
			`invalid_test.yml:6:20: cases[0].events[0]: unknown key "acton" (did you mean "action"?)`,
			`invalid_test.yml:7:14: cases[0].events[1].at: bad time "yesterday"`,
			`invalid_test.yml:10:12: cases[0].expect.signals[0]: unknown key "min_scor" (did you mean "min_score"?)`,
			`invalid_test.yml:12:11: case "unknown rule": no rule "aws-no-such-rule" in the rules beside this file`,
			"invalid_test.yml: 1 case, 0 passed, 1 failed, 3 errors in the file",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/pack/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			rn := &Runner{Log: zerolog.Nop()}
			res := rn.RunFile(t.Context(), tc.file, data, pack, nil)
			var out bytes.Buffer
			Write(&out, res, false)
			if res.Failed() != tc.failed {
				t.Errorf("failed %t, want %t", res.Failed(), tc.failed)
			}
			for _, s := range tc.out {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestDecodeEvents(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		events     int
		last       string // time of the last event
	}{
		{"offset", "{at: -30m}", 1, "2026-03-04T11:30:00Z"},
		{"repeat", "{at: -3d, repeat: {every: 24h, times: 3}}", 3, "2026-03-03T12:00:00Z"},
		{"nested repeat", "{at: -3d, repeat: [{every: 24h, times: 2}, {every: 10s, times: 5}]}", 10, "2026-03-02T12:00:40Z"},
		{"absolute", "{at: 2026-03-01T08:00:00Z}", 1, "2026-03-01T08:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "cases:\n  - name: x\n    rule: r\n    at: 2026-03-04T12:00:00Z\n    events:\n      - " + tc.yaml + "\n    expect: {none: true}\n"
			f, diags := Decode("x_test.yml", []byte(src))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			evs := f.Cases[0].Events
			if len(evs) != tc.events {
				t.Fatalf("%d events, want %d", len(evs), tc.events)
			}
			if got := evs[len(evs)-1].At.Format("2006-01-02T15:04:05Z"); got != tc.last {
				t.Errorf("last at %s, want %s", got, tc.last)
			}
		})
	}
}

func TestFindNone(t *testing.T) {
	if _, err := Find([]string{"testdata/pack/aws-first-high-risk-action.yml"}); err == nil || !strings.Contains(err.Error(), "not a rule test file") {
		t.Errorf("rule file: %v", err)
	}
	dir := t.TempDir()
	if _, err := Find([]string{dir}); err == nil || !strings.Contains(err.Error(), "no rule test files") {
		t.Errorf("empty dir: %v", err)
	}
}
