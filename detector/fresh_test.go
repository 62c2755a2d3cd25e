package detector_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

const freshRule = `
id: fresh-rare-method
name: Fresh test
type: rare
source: {index: [%s]}
rare: {field: action, by: identity, history: 20d%s}
anomaly_threshold: 0
`

// TestFreshValueStaysNew: an intruder's own first call, made two hours
// before the window, does not make the call a habit when rare.fresh
// covers it; a call the identity also made before the fresh span does.
func TestFreshValueStaysNew(t *testing.T) {
	end := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
	w := store.Window{From: end.Add(-time.Hour), To: end}
	var evs []ev
	add := func(who, action string, at time.Time) {
		evs = append(evs, ev{at: at, who: userARN(who), action: action, service: "iam.amazonaws.com", region: "eu-west-1", city: "Paris", country: "FR"})
	}
	for d := 20; d >= 1; d-- {
		day := w.From.Add(-time.Duration(d) * 24 * time.Hour)
		for k, a := range []string{"ListUsers", "GetUser", "ListRoles", "GetRole", "ListPolicies", "GetPolicy", "ListGroups", "GetGroup"} {
			add("victim", a, day.Add(time.Duration(k)*time.Minute))
		}
	}
	add("victim", "UpdateAssumeRolePolicy", w.From.Add(-2*time.Hour)) // the campaign's first step
	add("victim", "ListRoles", w.From.Add(-2*time.Hour))              // and a habit, recently too
	add("victim", "UpdateAssumeRolePolicy", w.From.Add(20*time.Minute))
	add("victim", "ListRoles", w.From.Add(21*time.Minute))

	index := storetest.IndexPrefix + "fresh"
	b := memStoreWith(t, index, "fresh", evs)
	for _, tc := range []struct {
		name      string
		fresh     string
		wantNovel bool
	}{
		{"without fresh: its own first call made it a habit", "", false},
		{"fresh 6h: still new", ", fresh: 6h", true},
		{"fresh 1h: the first call is older, a habit", ", fresh: 1h", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pack := packFrom(t, fmt.Sprintf(freshRule, index, tc.fresh))
			r, _ := pack.Get("fresh-rare-method")
			res, err := detector.New(b, zerolog.Nop()).Evaluate(t.Context(), r, w, "test")
			if err != nil {
				t.Fatal(err)
			}
			byValue := map[string]*detector.Signal{}
			for _, s := range res.Signals {
				byValue[s.Value[0].Value] = s
			}
			s, habit := byValue["UpdateAssumeRolePolicy"], byValue["ListRoles"]
			if s == nil || habit == nil {
				t.Fatalf("signals %v, want both actions scored (threshold 0)", byValue)
			}
			firstTime := strings.Contains(s.Reason, "for the first time")
			if firstTime != tc.wantNovel || (tc.wantNovel && !strings.Contains(s.Reason, "since Jun 10 09:00 UTC")) {
				t.Errorf("reason %q: judged new %v, want %v", s.Reason, firstTime, tc.wantNovel)
			}
			if tc.wantNovel && s.Score <= 10*habit.Score {
				t.Errorf("fresh value scored %.1f, the habit %.1f: want it judged as never seen, far above", s.Score, habit.Score)
			}
			if strings.Contains(habit.Reason, "for the first time") {
				t.Errorf("a habit also made recently was judged new: %q", habit.Reason)
			}
		})
	}
}
