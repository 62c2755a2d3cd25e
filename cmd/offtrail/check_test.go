package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string // substrings of stdout
	}{
		{"builtin", []string{"check"}, 0, []string{"13 rules OK"}},
		{"shipped pack by path", []string{"check", "../../rules/aws"}, 0, []string{"13 rules OK"}},
		{"builtin raw cloudtrail", []string{"check", "--profile", "cloudtrail"}, 0, []string{"rules OK", "warning: source.where"}},
		{"valid files", []string{"check", "../../rules/testdata/good"}, 0, []string{"4 rules OK\n"}},
		{"invalid", []string{"check", "../../rules/testdata/bad/unknown_keys.yml", "--profile", "ecs"}, 1,
			[]string{"unknown_keys.yml:4:1: unknown key \"anomaly_treshold\"", "4 errors, 0 warnings"}},
		{"warnings only", []string{"check", "../../rules/testdata/bad/enriched_warning.yml"}, 0, []string{"1 rule OK, 2 warnings"}},
		{"missing path", []string{"check", "no/such/dir"}, 1, []string{"no/such/dir: no such file or directory"}},
		{"unknown profile", []string{"check", "--profile", "nope"}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runMain(tc.args, &stdout, &stderr)
			if code != tc.code {
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
