package detector_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/rules"
)

// An exception for a travelling engineer that stops on a date: alice works
// from Lagos until the exception expires. Before that date her window
// events are left out of every rule's window query (no signal, and the
// other signals record the entry); after it, the same window alerts again.
func TestExceptionForTravellerExpires(t *testing.T) {
	dir := t.TempDir()
	list := `id: travel
entries:
  - id: alice-lagos
    reason: Alice works from the Lagos office this week (TRAVEL-42)
    author: secops@example.com
    expires: ` + windowEnd.Add(24*time.Hour).Format(time.DateOnly) + `
    conditions:
      identity: {is: "` + userARN("alice") + `"}
      source.country: {is: NG}
      user_agent: {matches: "aws-cli/*"}
`
	if err := os.WriteFile(filepath.Join(dir, "travel.yml"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	exc, diags := rules.LoadExceptions(dir)
	if len(diags) > 0 {
		t.Fatal(diags.Error())
	}
	exc.Lists[0].Global = true

	b := embedded.NewMemory()
	const index = "logs-aws.cloudtrail-default"
	storetest.Load(t, b, index, scenarioDocs())

	run := func(t *testing.T, end time.Time) (alice []string, others []*detector.Signal) {
		pack, diags := rules.Builtin()
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		if d := exc.Bind(pack); len(d) > 0 {
			t.Fatal(d.Error())
		}
		det := detector.New(b, zerolog.Nop(), detector.WithClock(func() time.Time { return end }))
		for _, r := range pack.Enabled() {
			w := store.Window{From: windowEnd.Add(-r.Schedule.Lookback.Std()), To: end}
			res, err := det.Evaluate(t.Context(), r, w, "test")
			if err != nil {
				t.Fatalf("rule %s: %v", r.ID, err)
			}
			for _, s := range res.Signals {
				if s.Attached {
					continue // below the threshold: not an alert either way
				}
				if s.Actor.Identity == userARN("alice") {
					alice = append(alice, r.ID)
				} else {
					others = append(others, s)
				}
			}
		}
		return alice, others
	}

	t.Run("before the date", func(t *testing.T) {
		alice, others := run(t, windowEnd)
		if len(alice) > 0 {
			t.Errorf("alice alerted while the exception applies: %v", alice)
		}
		if len(others) == 0 {
			t.Fatal("no other signal: the exception must not hide the rest")
		}
		for _, s := range others {
			got, _ := s.Document()["offtrail"].(map[string]any)["exceptions"].([]string)
			if !slices.Equal(got, []string{"travel/alice-lagos"}) {
				t.Errorf("%s: offtrail.exceptions = %v", s.RuleID, got)
			}
		}
		checkSignalGolden(t, others[0])
	})
	t.Run("after the date", func(t *testing.T) {
		// The same events, judged by a run whose window ends after the
		// expiry (a late catch-up): the entry no longer applies.
		alice, others := run(t, windowEnd.Add(25*time.Hour))
		if !slices.Contains(alice, "aws-first-high-risk-action") {
			t.Errorf("alice's StopLogging did not alert after the exception expired: %v", alice)
		}
		for _, s := range others {
			if _, has := s.Document()["offtrail"].(map[string]any)["exceptions"]; has {
				t.Errorf("%s records an expired exception", s.RuleID)
			}
		}
	})
}

// checkSignalGolden pins the signal document of a rule with an exception
// in force (go test ./detector -run TestExceptionForTravellerExpires -update).
func checkSignalGolden(t *testing.T, s *detector.Signal) {
	t.Helper()
	got, err := json.MarshalIndent(s.Document(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "signal_with_exceptions.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
		t.Errorf("signal document differs from %s:\n%s", golden, got)
	}
}
