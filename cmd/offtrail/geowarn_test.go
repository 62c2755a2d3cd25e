package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// geoStore is an embedded store holding testdata/load/located.ndjson,
// loaded with a GeoIP database (one event located in London) or without.
func geoStore(t *testing.T, located bool) string {
	t.Helper()
	db := ""
	if located {
		db = writeGeoDB(t)
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"load", "--store", "file:" + dir, "--geoip", db, "--progress", "0",
		filepath.Join("testdata", "load", "located.ndjson")}, &stdout, &stderr); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr.String())
	}
	want := "; 0 with a location;"
	if located {
		want = "; 1 with a location;"
	}
	if !strings.Contains(stdout.String(), want) {
		t.Fatalf("load: %s", stdout.String())
	}
	return dir
}

// check --store and backtest warn about the GeoIP fields from the data:
// only when no event has them, naming the index, the span and the blind
// rules; check without a store keeps the profile's warnings.
func TestGeoWarningsFromData(t *testing.T) {
	blind := geoStore(t, false)
	located := geoStore(t, true)
	const dataWarning = "no source.geo.city_name or source.geo.country_iso_code in logs-aws.cloudtrail-* between "
	const profileWarning = "is filled only by a GeoIP step"
	backtest := func(dir string) []string {
		return []string{"backtest", "--store", "file:" + dir, "--from", "2024-03-05T09:00:00Z", "--to", "2024-03-05T11:00:00Z"}
	}
	for _, tc := range []struct {
		name    string
		args    []string
		out     func(stdout, stderr string) string // where the warnings go
		want    []string
		not     []string
		summary string
	}{
		{"check without a store", []string{"check"}, stdoutOf, []string{profileWarning}, []string{dataWarning}, "13 rules OK, 3 warnings"},
		{"check on data without geo", []string{"check", "--store", "file:" + blind}, stdoutOf,
			[]string{dataWarning + "2024-03-04T10:02:01Z and 2024-03-05T10:02:01Z: the rules aws-new-country-for-identity, aws-rare-method-for-city, aws-rare-method-for-country are blind; load with --geoip"},
			[]string{profileWarning}, "13 rules OK, 1 warning"},
		{"check on located data", []string{"check", "--store", "file:" + located}, stdoutOf, nil, []string{dataWarning, profileWarning, "GeoIP"}, "13 rules OK\n"},
		{"check on an empty store", []string{"check", "--store", "file:" + t.TempDir()}, stdoutOf,
			[]string{"no events in logs-aws.cloudtrail-*: cannot tell whether GeoIP fills", profileWarning}, nil, "13 rules OK, 4 warnings"},
		{"backtest on data without geo", backtest(blind), stderrOf,
			[]string{"backtest: warning: " + dataWarning + "2024-03-05T", "aws-rare-method-for-city", "load with --geoip"}, []string{profileWarning}, ""},
		{"backtest on located data", backtest(located), stderrOf, nil, []string{dataWarning, profileWarning}, ""},
		{"backtest of a rule without geo", append(backtest(blind), "--rule", "aws-first-high-risk-action"), stderrOf, nil, []string{dataWarning, profileWarning}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runMain(tc.args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
			}
			out := tc.out(stdout.String(), stderr.String())
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("has %q:\n%s", w, out)
				}
			}
			if !strings.Contains(stdout.String(), tc.summary) {
				t.Errorf("summary lacks %q:\n%s", tc.summary, stdout.String())
			}
		})
	}
}

func stdoutOf(stdout, _ string) string { return stdout }
func stderrOf(_, stderr string) string { return stderr }
