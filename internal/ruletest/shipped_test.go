package ruletest

import (
	"bytes"
	"testing"

	"github.com/rs/zerolog"
)

// TestShippedRuleTests runs the test files of the shipped pack
// (rules/aws/*_test.yml) against it, as `offtrail test rules/aws` does.
func TestShippedRuleTests(t *testing.T) {
	files, err := Find([]string{"../../rules/aws"})
	if err != nil {
		t.Fatal(err)
	}
	rn := &Runner{Log: zerolog.Nop()}
	err = rn.RunFiles(t.Context(), files, func(f *FileResult) {
		var out bytes.Buffer
		Write(&out, f, testing.Verbose())
		if f.Failed() {
			t.Errorf("%s", out.String())
		} else {
			t.Logf("%s", out.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
