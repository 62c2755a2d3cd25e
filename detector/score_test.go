package detector

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestScoreBoundedAndMonotone(t *testing.T) {
	prev := -1.0
	for s := 0.0; s <= 14; s += 0.01 {
		got := ScoreFromSurprisal(s)
		if got < 0 || got > 100 || math.IsNaN(got) {
			t.Fatalf("score(%v) = %v, want within [0,100]", s, got)
		}
		if got <= prev {
			t.Fatalf("score not strictly increasing at surprisal %v: %v <= %v", s, got, prev)
		}
		prev = got
	}
	for _, p := range []float64{0, -1, 1e-300, 1, 2, math.NaN()} {
		if got := Score(p); got < 0 || got > 100 {
			t.Errorf("Score(%v) = %v", p, got)
		}
	}
}

func TestScoreCalibration(t *testing.T) {
	// The documented anchors: 50 ↔ 1 in ~9,000, 75 ↔ 1 in ~32,000.
	cases := []struct {
		p        float64
		min, max float64
	}{
		{1.0 / 9000, 49, 51},
		{1.0 / 32000, 74, 76},
		{1.0 / 110000, 89, 91},
		{0.5, 0, 1},
	}
	for _, c := range cases {
		if got := Score(c.p); got < c.min || got > c.max {
			t.Errorf("Score(%g) = %.2f, want in [%v,%v]", c.p, got, c.min, c.max)
		}
	}
}

func baseline(counts map[string]int64) *Baseline {
	b := &Baseline{}
	for v, n := range counts {
		b.Add(v, n)
	}
	return b
}

func TestBaselineSingletons(t *testing.T) {
	b := &Baseline{}
	b.Add("a", 1)
	b.Add("b", 1)
	b.Add("a", 1) // a is no longer a singleton
	b.Add("c", 5)
	if b.Singletons != 1 || b.Total != 8 || b.Distinct() != 3 {
		t.Fatalf("got singletons=%d total=%d distinct=%d", b.Singletons, b.Total, b.Distinct())
	}
}

// A person with a month of ordinary history: many calls of a few dozen kinds.
func aliceBaseline() *Baseline {
	counts := map[string]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 37; i++ {
		counts[string(rune('A'+i%26))+string(rune('a'+i/26))] = int64(1 + rng.IntN(300))
	}
	return baseline(counts)
}

func TestPeerCommonValueScoresBelowUnknownValue(t *testing.T) {
	b := aliceBaseline()
	common := EstimateValue(b, "NewAction", Peers{Total: 40, WithValue: 20}, false)
	unknown := EstimateValue(b, "NewAction", Peers{Total: 40, WithValue: 0}, false)
	if !(common.Score < unknown.Score) {
		t.Fatalf("peer-common %.1f should score below never-seen %.1f", common.Score, unknown.Score)
	}
	if unknown.Score < 75 {
		t.Errorf("an action nobody in the account called should cross 75 for an established user, got %.1f", unknown.Score)
	}
	if common.Score >= 75 {
		t.Errorf("an action half the peers call should stay below the default threshold, got %.1f", common.Score)
	}
}

func TestNewIdentityIsNotAlarming(t *testing.T) {
	est := EstimateValue(&Baseline{}, "RunInstances", Peers{Total: 40}, false)
	if est.Score >= 50 {
		t.Errorf("brand-new identity's first call scored %.1f", est.Score)
	}
	if c := ConfidenceFor(99, 10); c == ConfidenceHigh {
		t.Errorf("little history gave high confidence")
	}
}

func TestConfidenceNeverHighWithLittleHistory(t *testing.T) {
	for score := 0.0; score <= 100; score += 5 {
		for _, n := range []int64{0, 1, 10, highConfidenceEvents - 1} {
			if c := ConfidenceFor(score, n); c == ConfidenceHigh {
				t.Fatalf("ConfidenceFor(%v, %d) = high", score, n)
			}
		}
	}
	if c := ConfidenceFor(95, 10_000); c != ConfidenceHigh {
		t.Errorf("strong score with long history: got %s", c)
	}
}

func TestSeenValuesScoreByFrequency(t *testing.T) {
	b := baseline(map[string]int64{"frequent": 1000, "rare": 1, "mid": 50})
	f := EstimateValue(b, "frequent", Peers{}, false)
	m := EstimateValue(b, "mid", Peers{}, false)
	r := EstimateValue(b, "rare", Peers{}, false)
	if !(f.Score < m.Score && m.Score < r.Score) {
		t.Fatalf("scores not ordered by rarity: %.2f %.2f %.2f", f.Score, m.Score, r.Score)
	}
	if f.Novel || r.Novel {
		t.Fatal("seen values marked novel")
	}
}

func TestAutomationDepartureWeighsMore(t *testing.T) {
	b := baseline(map[string]int64{"PutObject": 5000, "GetObject": 3000})
	human := EstimateValue(b, "DeleteTrail", Peers{Total: 10}, false)
	bot := EstimateValue(b, "DeleteTrail", Peers{Total: 10}, true)
	if !(bot.Score > human.Score) {
		t.Fatalf("automation %.1f should score above human %.1f", bot.Score, human.Score)
	}
}

func FuzzEstimateBounded(f *testing.F) {
	f.Add(int64(10), int64(1), 5, 2)
	f.Fuzz(func(t *testing.T, n, k int64, peers, with int) {
		if n < 0 || k < 0 || peers < 0 || with < 0 || with > peers || n > 1<<40 || k > 1<<40 {
			return
		}
		b := baseline(map[string]int64{"x": n + 1, "y": k + 1})
		for _, v := range []string{"x", "y", "z"} {
			e := EstimateValue(b, v, Peers{Total: peers, WithValue: with}, false)
			if e.Score < 0 || e.Score > 100 || math.IsNaN(e.Score) || e.Probability < 0 || e.Probability > 1 {
				t.Fatalf("estimate out of bounds: %+v", e)
			}
		}
	})
}
