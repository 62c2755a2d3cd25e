package detector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// Threshold 0 so every candidate becomes a signal and its score shows.
const burstRules = `
id: burst-secrets
name: Secret reads burst
type: burst
source:
  index: [%[1]s]
  where: {action: [GetSecretValue, GetParameter]}
burst: {by: identity, partition: account, history: 30d, min_count: 5}
anomaly_threshold: 0
---
id: burst-regions
name: Regions burst
type: burst
source: {index: [%[1]s]}
burst: {by: identity, count: distinct, field: region, history: 30d, min_count: 4}
anomaly_threshold: 0
`

// recordingStore remembers what the detector asked of the store.
type recordingStore struct {
	detector.Store
	counts []store.CountRequest
	events []int // limits of the raw-event fetches
}

func (r *recordingStore) CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	r.counts = append(r.counts, req)
	return r.Store.CountGroups(ctx, req, fn)
}

func (r *recordingStore) Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	r.events = append(r.events, limit)
	return r.Store.Events(ctx, q, limit)
}

// TestBurst plants a window 13:00–15:00 after 30 days of history and
// checks each actor's busiest hour against its own past.
func TestBurst(t *testing.T) {
	end := time.Date(2024, 6, 10, 15, 0, 0, 0, time.UTC)
	w := store.Window{From: end.Add(-2 * time.Hour), To: end}
	burstHour := w.From // 13:00, a whole hour of the window
	var evs []ev
	add := func(who, action, region string, at time.Time, n int) {
		for i := 0; i < n; i++ {
			evs = append(evs, ev{at: at.Add(time.Duration(i) * time.Minute), who: userARN(who), action: action,
				service: "secretsmanager.amazonaws.com", region: region, city: "Paris", country: "FR", agent: "aws-cli/2"})
		}
	}
	regions := []string{"eu-west-1", "eu-west-3", "us-east-1", "us-west-2", "ap-south-1", "sa-east-1", "ca-central-1"}
	for d := 28; d >= 1; d-- {
		day := w.From.Add(-time.Duration(d) * 24 * time.Hour)
		// People work at a different hour each day; the deploy role runs
		// at the same hour every day, like a scheduled job.
		desk := day.Add(time.Duration(d%6-3) * time.Hour)
		add("first", "DescribeInstances", "eu-west-1", desk, 3) // busy, but never a secret
		add("routine", "GetSecretValue", "eu-west-1", day, 30)  // a deploy every day
		add("twenty", "GetParameter", "eu-west-1", desk, 20)    // often 20, never 25
		add("hopper", "DescribeInstances", "eu-west-1", desk, 2)
		for i, r := range regions { // touches every region daily
			add("regional", "DescribeInstances", r, day.Add(time.Duration(i)*time.Minute), 1)
		}
	}
	in := burstHour.Add(10 * time.Minute)
	add("first", "GetSecretValue", "eu-west-1", in, 25)
	add("routine", "GetSecretValue", "eu-west-1", in, 25)
	add("twenty", "GetParameter", "eu-west-1", in, 25)
	add("quiet", "GetSecretValue", "eu-west-1", in, 4) // below min_count
	add("first", "GetSecretValue", "eu-west-1", burstHour.Add(70*time.Minute), 3)
	for i, r := range regions {
		add("hopper", "DescribeInstances", r, in.Add(time.Duration(i)*time.Minute), 1)
		add("regional", "DescribeInstances", r, in.Add(time.Duration(i)*time.Minute), 1)
	}

	index := storetest.IndexPrefix + "burst"
	mem := memStoreWith(t, index, "burst", evs)
	pack := packFrom(t, fmt.Sprintf(burstRules, index))

	for _, tc := range []struct {
		rule, who  string
		none       bool // no candidate at all
		min, max   float64
		value      string
		count      int64
		reasonPart string
	}{
		{rule: "burst-secrets", who: "first", min: 90, max: 100, value: "25 events in an hour", count: 25,
			reasonPart: "first made 25 GetSecretValue calls in one hour (13:00 UTC); in the previous 30d its busiest hour had 0 and no hour reached 25"},
		{rule: "burst-secrets", who: "routine", max: 50, value: "25 events in an hour", count: 25, reasonPart: "28 of its hours reached 25"},
		{rule: "burst-secrets", who: "twenty", max: 50, value: "25 events in an hour", count: 25, reasonPart: "busiest hour had 20 and no hour reached 25"},
		{rule: "burst-secrets", who: "quiet", none: true},
		{rule: "burst-regions", who: "hopper", min: 60, max: 100, value: "7 regions in an hour", count: 7, reasonPart: "hopper used 7 regions in one hour"},
		{rule: "burst-regions", who: "regional", max: 50, value: "7 regions in an hour", count: 7},
		{rule: "burst-regions", who: "first", none: true}, // one region
	} {
		t.Run(tc.rule+"/"+tc.who, func(t *testing.T) {
			r, _ := pack.Get(tc.rule)
			rec := &recordingStore{Store: mem}
			res, err := detector.New(rec, zerolog.Nop()).Evaluate(t.Context(), r, w, "test")
			if err != nil {
				t.Fatal(err)
			}
			var s *detector.Signal
			for _, x := range res.Signals {
				if x.Label == tc.who {
					s = x
				}
			}
			checkBurstQueries(t, rec, len(res.Signals))
			if tc.none {
				if s != nil {
					t.Fatalf("unexpected signal %.1f: %s", s.Score, s.Reason)
				}
				return
			}
			if s == nil {
				t.Fatalf("no signal for %s", tc.who)
			}
			t.Logf("%.1f %s: %s", s.Score, s.Confidence, s.Reason)
			if s.Automation != (tc.who == "routine" || tc.who == "regional") {
				t.Errorf("automation %v", s.Automation)
			}
			if s.Score < tc.min || s.Score >= tc.max {
				t.Errorf("score %.2f, want [%v, %v): %s", s.Score, tc.min, tc.max, s.Reason)
			}
			if len(s.Value) != 1 || s.Value[0] != (detector.Field{Name: "count", Value: tc.value}) || s.Count != tc.count {
				t.Errorf("value %v count %d, want %q %d", s.Value, s.Count, tc.value, tc.count)
			}
			if !strings.Contains(s.Reason, tc.reasonPart) {
				t.Errorf("reason %q lacks %q", s.Reason, tc.reasonPart)
			}
			for _, e := range s.Events {
				if e.Time.Before(burstHour) || !e.Time.Before(burstHour.Add(time.Hour)) {
					t.Errorf("contributing event at %s is outside the burst hour", e.Time)
				}
			}
		})
	}
}

// checkBurstQueries: two hourly grouped counts (the history restricted to
// the active entities) and one bounded event fetch per built signal.
func checkBurstQueries(t *testing.T, rec *recordingStore, signals int) {
	t.Helper()
	if len(rec.counts) != 2 {
		t.Fatalf("%d grouped counts, want 2 (window, history)", len(rec.counts))
	}
	for i, c := range rec.counts {
		if !c.HourBuckets {
			t.Errorf("count %d is not per hour: %+v", i, c)
		}
	}
	if len(rec.counts[1].Restrict) == 0 {
		t.Error("history count not restricted to the active entities")
	}
	if len(rec.events) != signals {
		t.Errorf("%d raw-event fetches for %d signals", len(rec.events), signals)
	}
	for _, l := range rec.events {
		if l > 100 {
			t.Errorf("event fetch of %d", l)
		}
	}
}

func TestBurstLeadingPartialHour(t *testing.T) {
	// The burst sits in 13:10–13:35; a window starting at 13:15 leaves
	// that hour to the run that saw it whole.
	from := time.Date(2024, 6, 10, 13, 15, 0, 0, time.UTC)
	var evs []ev
	for i := 0; i < 20; i++ {
		evs = append(evs, ev{at: from.Add(time.Duration(i-5) * time.Minute), who: userARN("late"), action: "GetSecretValue",
			service: "secretsmanager.amazonaws.com", region: "eu-west-1", city: "Paris", country: "FR"})
	}
	index := storetest.IndexPrefix + "burst-partial"
	mem := memStoreWith(t, index, "partial", evs)
	pack := packFrom(t, fmt.Sprintf(burstRules, index))
	r, _ := pack.Get("burst-secrets")
	for _, tc := range []struct {
		from    time.Time
		signals int
	}{
		{from.Add(-15 * time.Minute), 1}, // 13:00: the hour is whole
		{from, 0},                        // 13:15: its tail is not judged again
	} {
		res, err := detector.New(mem, zerolog.Nop()).Evaluate(t.Context(), r, store.Window{From: tc.from, To: tc.from.Add(2 * time.Hour)}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Signals) != tc.signals {
			t.Errorf("window from %s: %d signals, want %d", tc.from.Format("15:04"), len(res.Signals), tc.signals)
		}
	}
}
