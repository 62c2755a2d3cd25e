package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// The usage line of `demo -h` names every flag the command has.
func TestUsageLineListsEveryFlag(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  -([a-z-]+)`)
	for _, cmd := range []string{"demo"} {
		t.Run(cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runMain([]string{cmd, "-h"}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d", code)
			}
			usage, _, _ := strings.Cut(stderr.String(), "\n")
			flags := flagLine.FindAllStringSubmatch(stderr.String(), -1)
			if len(flags) == 0 {
				t.Fatalf("no flags in %q", stderr.String())
			}
			for _, f := range flags {
				if !strings.Contains(usage, "--"+f[1]) {
					t.Errorf("usage %q lacks --%s", usage, f[1])
				}
			}
		})
	}
}
