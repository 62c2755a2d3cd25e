package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBaselineRebuild(t *testing.T) {
	dir := fixtureDir(t)
	base := []string{"baseline", "rebuild", "--store", "file:" + dir, "--rules", testRulesDir}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"rebuilds the whole days before the tick", []string{"--at", "2024-03-05T15:00:00Z"}, 0, "rebuilt 29 baseline days", "[1/2] test-off-hours: 29 days counted ("},
		{"an empty window reads no history: an error", []string{"--at", "2024-03-09T12:00:00Z"}, 1, "rebuilt 0 baseline days", "no rule had events in its window"},
		{"no verb", nil, 2, "", "usage: offtrail baseline rebuild"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, base...), tc.args...)
			if tc.args == nil {
				args = []string{"baseline"}
			}
			var stdout, stderr bytes.Buffer
			if code := runMain(args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stdout %q\nstderr %q\nwant %q and %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
		})
	}
}

// TestBacktestSaysWhereHistoryCameFrom: the replay reports how its history
// counts were answered, and a second replay reads the days the first kept.
func TestBacktestSaysWhereHistoryCameFrom(t *testing.T) {
	dir := fixtureDir(t)
	args := []string{"backtest", "--store", "file:" + dir, "--rules", testRulesDir,
		"--from", "2024-03-06T00:00:00Z", "--to", "2024-03-06T02:00:00Z"}
	for i, want := range []string{"counted now", "0 counted now"} {
		var stdout, stderr bytes.Buffer
		if code := runMain(args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "baselines: ") || !strings.Contains(stderr.String(), want) {
			t.Fatalf("replay %d: stderr %q, want a baselines line with %q", i+1, stderr.String(), want)
		}
	}
}
