package detector

import "testing"

// profile builds an hour profile from (weekend, hour, events per run,
// runs) rows.
func profile(rows ...[4]int) *hourProfile {
	p := &hourProfile{}
	for _, r := range rows {
		for range r[3] {
			p.add(slot{weekend: r[0] == 1, hour: r[1]}, int64(r[2]))
		}
	}
	return p
}

func office(extra ...[4]int) *hourProfile {
	var rows [][4]int
	for h := 9; h < 17; h++ {
		rows = append(rows, [4]int{0, h, 9, 21}) // 21 working days, ~1,500 events
	}
	return profile(append(rows, extra...)...)
}

func TestLearnedHours(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        *hourProfile
		at       slot
		min, max float64 // bounds on the per-event probability
		auto     bool
	}{
		// The case: a weekend midday after 0 of 1,499 events there
		// is unusual, but not "1 in 150,000".
		{"office, weekend midday", office(), slot{true, 12}, 1e-4, 1e-3, false},
		{"office, weekday 03:00", office(), slot{false, 3}, 0, 1e-4, false},
		{"office, an hour after work", office(), slot{false, 17}, 1e-2, 1, false},
		{"office, two hours after", office(), slot{false, 18}, 5e-3, 1, false},
		// Works some weekends: weekend middays are ordinary.
		{"weekend worker, weekend midday", office([4]int{1, 12, 10, 4}, [4]int{1, 13, 10, 4}), slot{true, 14}, 3e-3, 1, false},
		// Paged some nights: its own odd-hours rate is the floor.
		{"on call, weekday 03:00", office([4]int{0, 2, 8, 3}, [4]int{0, 4, 8, 2}), slot{false, 3}, 3e-3, 1, false},
		{"on call, weekend 22:00", office([4]int{0, 2, 8, 3}, [4]int{0, 4, 8, 2}), slot{true, 22}, 2e-4, 1, false},
		// A scheduled job: few calls at 06:00 every day, 150 events in all.
		{"scheduled, on time", profile([4]int{0, 6, 5, 22}, [4]int{1, 6, 5, 8}), slot{false, 6}, 0.5, 1, true},
		{"scheduled, mid-afternoon", profile([4]int{0, 6, 5, 22}, [4]int{1, 6, 5, 8}), slot{false, 15}, 0, 5e-4, true},
		{"no history", &hourProfile{}, slot{false, 3}, 1.0 / 48, 1.0 / 48, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.probability(tc.at)
			t.Logf("p(%s) = %.3g", tc.at, got)
			if got < tc.min || got > tc.max {
				t.Errorf("p(%s) = %.3g, want in [%g, %g]", tc.at, got, tc.min, tc.max)
			}
			if a := tc.p.automated(); a != tc.auto {
				t.Errorf("automated = %v, want %v", a, tc.auto)
			}
		})
	}
}

// TestLearnedHoursSumToOne: the model is a distribution over the week's
// slots, whatever the history.
func TestLearnedHoursSumToOne(t *testing.T) {
	for _, p := range []*hourProfile{office(), office([4]int{1, 12, 10, 4}), profile([4]int{0, 6, 5, 30}), {}} {
		var sum float64
		for i := range 48 {
			sum += p.probability(slot{weekend: i >= 24, hour: i % 24})
		}
		if sum < 0.98 || sum > 1.02 {
			t.Errorf("probabilities sum to %.4f", sum)
		}
	}
}
