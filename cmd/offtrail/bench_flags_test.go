package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestBenchRefusesBadFlags: a bench that could not time what was asked
// says so and exits 2 before generating anything.
func TestBenchRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--quality=false", "--warmup", "-1h"}, "--warmup"},
		{[]string{"bench", "--quality=false", "--lease-duration", "0s"}, "--lease-duration"},
		{[]string{"bench", "--quality=false", "--store", "embedded", "--rule", "no-such-rule"}, "no-such-rule"},
		{[]string{"bench", "--quality=false", "--elastalert", "--elastalert-segments", "15m,90s"}, "whole minutes"},
		{[]string{"bench", "--quality=false", "--elastalert", "--elastalert-segments", "soon"}, "--elastalert-segments"},
		{[]string{"bench", "--quality=false", "--store", "embedded", "--elastalert", "--elastalert-script", "/nonexistent/elastalert-bench.sh"}, "--elastalert-script"},
		{[]string{"bench", "--quality=false", "--store", "embedded", "--trace-ticks", "/nonexistent/dir/ticks.tsv"}, "--trace-ticks"},
	} {
		var stderr bytes.Buffer
		if code := runMain(tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 naming %s", tc.args, code, stderr.String(), tc.want)
		}
	}
}
