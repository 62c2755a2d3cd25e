// Package notifytest holds what the integration tests share: a sample
// message and golden-file comparison (go test ./notify/... -update rewrites
// the files).
package notifytest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/offtrail/offtrail/notify"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// Message is a realistic message: the rare-command rule catching a user
// who stopped CloudTrail logging.
func Message() *notify.Message {
	return &notify.Message{
		SignalID:   "5f1c0d2e9a7b4c3d8e6f1a2b3c4d5e6f",
		RuleID:     "aws-rare-method-for-user",
		RuleName:   "Unusual AWS Command for a User",
		Identity:   "alice",
		Entity:     []notify.Field{{Name: "identity", Value: "arn:aws:iam::123456789012:user/alice"}},
		Values:     []notify.Field{{Name: "action", Value: "StopLogging"}},
		Score:      92.41,
		Confidence: "high",
		Severity:   "medium",
		RiskScore:  47,
		Reason:     "alice called StopLogging for the first time; in 30d she made 4,210 calls of 37 kinds; 0 of her 12 peers have called it",
		Events:     2,
		FirstEvent: time.Date(2024, 3, 5, 2, 14, 9, 0, time.UTC),
		LastEvent:  time.Date(2024, 3, 5, 2, 16, 40, 0, time.UTC),
		Link:       "https://kibana.example.com/app/discover#/?_a=(query:(language:kuery,query:'_id:5f1c0d2e9a7b4c3d8e6f1a2b3c4d5e6f'))",
	}
}

// GoldenJSON compares got (JSON) with testdata/name, indented (keeping the
// sender's key order) so a diff is readable.
func GoldenJSON(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, got)
	}
	pretty.WriteByte('\n')
	Golden(t, name, pretty.Bytes())
}

// Golden compares got with testdata/name.
func Golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from golden file (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
