package detector_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

const contextRule = `
id: ctx-rare-method
name: Context test
type: rare
source: {index: [%s]}
rare: {field: action, by: identity, history: 20d, mode: first_seen}
context:
  fields: [source.network, source.country, user_agent]
anomaly_threshold: 0
`

// TestContext plants one first-time action per case in a window after 20
// quiet days and checks what context does to each: a bounded discount for
// the familiar, a penalty and no discount for a new network, whatever the
// copied client and country say.
func TestContext(t *testing.T) {
	const (
		cli     = "aws-cli/2.15.0 Python/3.11.6 Darwin/23.1.0 exe/x86_64 prompt/off command/"
		browser = "Mozilla/5.0 (Macintosh) Firefox/127.0"
		sdk     = "aws-sdk-go-v2/1.30.0"
	)
	end := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
	w := store.Window{From: end.Add(-2 * time.Hour), To: end}
	var evs []ev
	add := func(who, action, city, country, agent string, at time.Time) {
		evs = append(evs, ev{at: at, who: userARN(who), action: action, service: "ec2.amazonaws.com", region: "eu-west-1", city: city, country: country, agent: agent})
	}
	for d := 20; d >= 1; d-- {
		day := w.From.Add(-time.Duration(d) * 24 * time.Hour)
		for _, who := range []string{"home", "abroad", "newclient", "replayed", "fresh", "machine"} {
			if who == "machine" { // 600 calls of one kind: automation
				for k := 0; k < 30; k++ {
					add(who, "DescribeInstances", "Paris", "FR", sdk, day.Add(time.Duration(k)*time.Minute))
				}
				continue
			}
			add(who, "DescribeInstances", "Paris", "FR", cli+"ec2.describe-instances", day)
			add(who, "ListBuckets", "Paris", "FR", browser, day.Add(time.Hour))
		}
	}
	// fresh first came from Lagos an hour before the window: inside the
	// settle horizon, so Lagos is not yet familiar.
	add("fresh", "ListBuckets", "Lagos", "NG", cli+"s3.ls", w.From.Add(-time.Hour))
	in := w.From.Add(30 * time.Minute)
	// A different first-time action each, so none is a peer of another.
	add("home", "CreateKeyPair", "Paris", "FR", cli+"ec2.create-key-pair", in)
	add("abroad", "CreateSnapshot", "Lagos", "NG", cli+"ec2.create-snapshot", in)
	add("newclient", "CreateImage", "Paris", "FR", "Boto3/1.26.90 Python/3.11.2 Linux/6.1.0-kali9-amd64", in)
	add("fresh", "CreateVolume", "Lagos", "NG", cli+"ec2.create-volume", in)
	// Stolen and replayed from the victim's country, with the victim's
	// client string, from another provider's network.
	add("replayed", "CreateSnapshots", "Paris", "FR", cli+"ec2.create-snapshots", in)
	evs[len(evs)-1].ip = "92.184.100.7"
	add("machine", "CreateTags", "Paris", "FR", sdk, in)

	index := storetest.IndexPrefix + "context"
	b := memStoreWith(t, index, "ctx", evs)
	pack := packFrom(t, fmt.Sprintf(contextRule, index))
	r, _ := pack.Get("ctx-rare-method")
	res, err := detector.New(b, zerolog.Nop()).Evaluate(t.Context(), r, w, "test")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*detector.Signal{}
	for _, s := range res.Signals {
		got[s.Label] = s
	}
	lagos, orange := "source.network=102.88.0.0/16", "source.network=92.184.0.0/16"
	for _, tc := range []struct {
		who               string
		discount, penalty float64
		familiar          bool
		newVals           []string
	}{
		{who: "home", discount: 1, familiar: true},                                                                              // bounded: ten times, not a hundred
		{who: "abroad", penalty: 0.75, newVals: []string{"source.country=NG", lagos}},                                           // new network and place
		{who: "newclient", discount: 0.75, newVals: []string{"user_agent=Boto3/1.26.90 Python/3.11.2 Linux/6.1.0-kali9-amd64"}}, // weak evidence only
		{who: "replayed", penalty: 0.5, newVals: []string{orange}},                                                              // copied client and country do not hide the network
		{who: "fresh", penalty: 0.75, newVals: []string{"source.country=NG", lagos}},                                            // settle horizon
		{who: "machine", familiar: true},                                                                                        // automation: never a discount
	} {
		t.Run(tc.who, func(t *testing.T) {
			s := got[tc.who]
			if s == nil {
				t.Fatalf("no signal for %s (threshold 0)", tc.who)
			}
			c := s.Context
			if c == nil {
				t.Fatal("no context result")
			}
			if s.Automation != (tc.who == "machine") {
				t.Errorf("automation %v", s.Automation)
			}
			if c.Discount != tc.discount || c.Penalty != tc.penalty || c.Familiar != tc.familiar || fmt.Sprint(c.New) != fmt.Sprint(tc.newVals) {
				t.Errorf("context = %+v, want discount %v penalty %v familiar %v new %v", *c, tc.discount, tc.penalty, tc.familiar, tc.newVals)
			}
			want := detector.ScoreFromSurprisal(max(0, detector.SurprisalFromScore(c.ScoreBefore)-tc.discount+tc.penalty))
			if math.Abs(s.Score-want) > 0.01 {
				t.Errorf("score %.2f, want %.2f (before %.2f, discount %v, penalty %v)", s.Score, want, c.ScoreBefore, tc.discount, tc.penalty)
			}
		})
	}
}

func TestSurprisalFromScoreInverts(t *testing.T) {
	for _, s := range []float64{0.5, 2, 3.95, 5, 7} {
		if got := detector.SurprisalFromScore(detector.ScoreFromSurprisal(s)); got < s-1e-6 || got > s+1e-6 {
			t.Errorf("SurprisalFromScore(ScoreFromSurprisal(%v)) = %v", s, got)
		}
	}
}
