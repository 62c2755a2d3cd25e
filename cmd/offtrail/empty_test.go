package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadedStore is an embedded store holding testdata/load/located.ndjson
// (2024-03-05 10:00 to 10:02 UTC).
func loadedStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"load", "--store", "file:" + dir, "--geoip", "", "--progress", "0", filepath.Join("testdata", "load", "located.ndjson")}, &stdout, &stderr); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr.String())
	}
	return dir
}

// Reading commands never create a store, and an empty store, index or
// span is an error that says what the store holds, not "no signals".
func TestNothingToRead(t *testing.T) {
	full := loadedStore(t)
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "typo")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"once on a missing store", []string{"once", "--store", "file:" + missing}, 1, []string{"does not exist"}},
		{"backtest on a missing store", []string{"backtest", "--store", "file:" + missing, "--from", "now-1d"}, 1, []string{"does not exist"}},
		{"once on an empty store", []string{"once", "--store", "file:" + empty}, 1,
			[]string{"no events in logs-aws.cloudtrail-* between", "the store holds no events there"}},
		{"once --at now on data from another year", []string{"once", "--store", "file:" + full, "--at", "now"}, 1,
			[]string{"no events in logs-aws.cloudtrail-* between", "the store holds 2024-03-05T10:00:00Z to 2024-03-05T10:02:00Z"}},
		{"once --at a date before the data", []string{"once", "--store", "file:" + full, "--at", "2024-03-04"}, 1,
			[]string{"between 2024-03-0", "and 2024-03-04T00:00:00Z", "the store holds 2024-03-05T10:00:00Z to"}},
		{"backtest over an empty span", []string{"backtest", "--store", "file:" + full, "--from", "2023-01-01", "--to", "2023-01-02"}, 1,
			[]string{"no events in logs-aws.cloudtrail-*", "the store holds 2024-03-05T10:00:00Z to 2024-03-05T10:02:00Z"}},
		{"once on the data", []string{"once", "--store", "file:" + full, "--at", "2024-03-05T11:00:00Z"}, 0, nil},
		{"once --at now-DURATION", []string{"once", "--store", "file:" + full, "--at", "now-1d"}, 1, []string{"the store holds"}},
		{"once --at nonsense", []string{"once", "--store", "file:" + full, "--at", "yesterday"}, 2, []string{"--at", "now-DURATION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runMain(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Fatalf("%s was created", missing)
			}
		})
	}
}

// A backtest says how many windows it runs and refuses a runaway span
// without --yes.
func TestBacktestWindowLimit(t *testing.T) {
	full := loadedStore(t)
	var stdout, stderr bytes.Buffer
	// 15-minute windows over ~30 years, nine rules: millions.
	code := runMain([]string{"backtest", "--store", "file:" + full, "--from", "1995-01-01", "--to", "2024-03-06"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "--yes") || !strings.Contains(stderr.String(), "more than 100000") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	code = runMain([]string{"backtest", "--store", "file:" + full, "--from", "2024-03-05T09:00:00Z", "--to", "2024-03-05T11:00:00Z", "--rule", "aws-rare-method-for-user"}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stderr.String(), "backtest: 9 windows of 1 rules") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

// An empty or missing rules path is an error, not the built-in pack or a
// warning.
func TestRulesPathMustHoldRules(t *testing.T) {
	full := loadedStore(t)
	for _, tc := range []struct {
		name  string
		rules string
		want  string
	}{
		{"empty flag", "", "empty path"},
		{"empty directory", t.TempDir(), "no *.yml or *.yaml files"},
		{"missing path", filepath.Join(t.TempDir(), "nope"), "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runMain([]string{"once", "--store", "file:" + full, "--rules", tc.rules, "--at", "2024-03-05T11:00:00Z"}, &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d: %s", code, stderr.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"check", t.TempDir()}, &stdout, &stderr); code != 1 {
		t.Errorf("check on an empty directory: exit %d: %s", code, stdout.String())
	}
}
