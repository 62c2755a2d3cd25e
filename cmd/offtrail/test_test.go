package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTestCommand runs the shipped rule tests (what `make test` runs) and
// the failing fixture: exit status, per-file summaries and the diff.
func TestTestCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"shipped pack", []string{"test", "../../rules/aws"}, 0, []string{
			"rules/aws/aws-first-high-risk-action_test.yml: 4 cases, 4 passed", "rules/aws/incidents_test.yml: 3 cases, 3 passed", "all passed"}},
		{"failing", []string{"test", "../../internal/ruletest/testdata/pack/failing_test.yml"}, 1, []string{
			"- missing signal:", "differs: score", "failing_test.yml: 2 cases, 1 passed, 1 failed"}},
		{"no tests", []string{"test", "../../rules/testdata/good"}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runMain(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, s := range tc.out {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
		})
	}
}
