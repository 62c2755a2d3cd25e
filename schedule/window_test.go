package schedule

import (
	"testing"
	"time"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestTimingEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		tm   Timing
		tick string
		want string
	}{
		{"on the grid", Timing{Interval: 15 * time.Minute}, "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"},
		{"inside an interval", Timing{Interval: 15 * time.Minute}, "2024-05-01T10:14:59Z", "2024-05-01T10:00:00Z"},
		{"just after", Timing{Interval: 15 * time.Minute}, "2024-05-01T10:15:01Z", "2024-05-01T10:15:00Z"},
		{"query delay moves back", Timing{Interval: 15 * time.Minute, Delay: 5 * time.Minute}, "2024-05-01T10:17:00Z", "2024-05-01T10:00:00Z"},
		{"query delay reached", Timing{Interval: 15 * time.Minute, Delay: 5 * time.Minute}, "2024-05-01T10:20:00Z", "2024-05-01T10:15:00Z"},
		{"hourly", Timing{Interval: time.Hour}, "2024-05-01T10:59:59Z", "2024-05-01T10:00:00Z"},
		{"daily is UTC midnight", Timing{Interval: 24 * time.Hour}, "2024-05-01T23:00:00+02:00", "2024-05-01T00:00:00Z"},
		{"7m from the epoch, not the hour", Timing{Interval: 7 * time.Minute}, "1970-01-01T00:15:00Z", "1970-01-01T00:14:00Z"},
		{"before the epoch", Timing{Interval: time.Hour}, "1969-12-31T23:30:00Z", "1969-12-31T23:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tm.End(ts(tc.tick)); !got.Equal(ts(tc.want)) {
				t.Errorf("End(%s) = %s, want %s", tc.tick, got.Format(time.RFC3339), tc.want)
			}
		})
	}
}

func TestTimingWindow(t *testing.T) {
	tm := Timing{Interval: 15 * time.Minute, Lookback: 2 * time.Hour}
	w := tm.Window(tm.End(ts("2024-05-01T10:07:00Z")))
	if w.String() != "2024-05-01T08:00:00Z/2024-05-01T10:00:00Z" {
		t.Errorf("window = %s", w)
	}
}

func TestPlanTick(t *testing.T) {
	tm := Timing{Interval: 15 * time.Minute, Lookback: 2 * time.Hour}
	ends := func(ss ...string) []time.Time {
		out := make([]time.Time, len(ss))
		for i, s := range ss {
			out[i] = ts(s)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		tm       Timing
		last     string // "" = no checkpoint
		now      string
		lim      Limits
		ends     []time.Time
		deferred int
		skipped  int
		skipFrom string
		skipTo   string
	}{
		{name: "first run: only the current window", tm: tm, now: "2024-05-01T10:07:00Z",
			ends: ends("2024-05-01T10:00:00Z")},
		{name: "up to date", tm: tm, last: "2024-05-01T10:00:00Z", now: "2024-05-01T10:14:00Z"},
		{name: "checkpoint ahead of the clock", tm: tm, last: "2024-05-01T11:00:00Z", now: "2024-05-01T10:14:00Z"},
		{name: "next tick", tm: tm, last: "2024-05-01T10:00:00Z", now: "2024-05-01T10:15:30Z",
			ends: ends("2024-05-01T10:15:00Z")},
		{name: "downtime: missed ends oldest first", tm: tm, last: "2024-05-01T10:00:00Z", now: "2024-05-01T11:01:00Z",
			ends: ends("2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z", "2024-05-01T11:00:00Z")},
		{name: "max_catchup bounds a tick", tm: tm, last: "2024-05-01T10:00:00Z", now: "2024-05-01T11:01:00Z", lim: Limits{MaxCatchup: 3},
			ends: ends("2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z"), deferred: 1},
		{name: "max_gap gives up the oldest", tm: tm, last: "2024-05-01T10:00:00Z", now: "2024-05-01T12:01:00Z", lim: Limits{MaxGap: 30 * time.Minute},
			ends:    ends("2024-05-01T11:30:00Z", "2024-05-01T11:45:00Z", "2024-05-01T12:00:00Z"),
			skipped: 5, skipFrom: "2024-05-01T10:15:00Z", skipTo: "2024-05-01T11:15:00Z"},
		{name: "gap and catch-up limit together", tm: tm, last: "2024-05-01T10:00:00Z", now: "2024-05-01T12:01:00Z", lim: Limits{MaxGap: 30 * time.Minute, MaxCatchup: 2},
			ends:     ends("2024-05-01T11:30:00Z", "2024-05-01T11:45:00Z"),
			deferred: 1, skipped: 5, skipFrom: "2024-05-01T10:15:00Z", skipTo: "2024-05-01T11:15:00Z"},
		{name: "default max_catchup is 96", tm: tm, last: "2024-05-01T00:00:00Z", now: "2024-05-02T06:00:00Z",
			ends: nil},
		{name: "checkpoint off the grid after an interval change", tm: Timing{Interval: time.Hour, Lookback: time.Hour},
			last: "2024-05-01T10:45:00Z", now: "2024-05-01T12:10:00Z",
			ends: ends("2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z")},
		{name: "query delay", tm: Timing{Interval: 15 * time.Minute, Lookback: time.Hour, Delay: 10 * time.Minute},
			last: "2024-05-01T10:00:00Z", now: "2024-05-01T10:24:00Z"},
		{name: "query delay reached", tm: Timing{Interval: 15 * time.Minute, Lookback: time.Hour, Delay: 10 * time.Minute},
			last: "2024-05-01T10:00:00Z", now: "2024-05-01T10:25:00Z", ends: ends("2024-05-01T10:15:00Z")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var last time.Time
			if tc.last != "" {
				last = ts(tc.last)
			}
			p := PlanTick(tc.tm, last, ts(tc.now), tc.lim)
			if tc.name == "default max_catchup is 96" {
				// 30h of 15m ends = 120 missed: 96 now, 24 later.
				if len(p.Ends) != 96 || p.Deferred != 24 || !p.Ends[0].Equal(ts("2024-05-01T00:15:00Z")) {
					t.Fatalf("plan = %d ends (first %s), %d deferred", len(p.Ends), p.Ends[0], p.Deferred)
				}
				return
			}
			if len(p.Ends) != len(tc.ends) {
				t.Fatalf("ends = %v, want %v", p.Ends, tc.ends)
			}
			for i := range p.Ends {
				if !p.Ends[i].Equal(tc.ends[i]) {
					t.Errorf("ends[%d] = %s, want %s", i, p.Ends[i], tc.ends[i])
				}
			}
			if p.Deferred != tc.deferred || p.Skipped != tc.skipped {
				t.Errorf("deferred %d skipped %d, want %d %d", p.Deferred, p.Skipped, tc.deferred, tc.skipped)
			}
			if tc.skipped > 0 && (!p.SkippedFrom.Equal(ts(tc.skipFrom)) || !p.SkippedTo.Equal(ts(tc.skipTo))) {
				t.Errorf("skipped %s..%s, want %s..%s", p.SkippedFrom, p.SkippedTo, tc.skipFrom, tc.skipTo)
			}
		})
	}
}

// Ticking through a downtime in steps must evaluate every end exactly once,
// and the same ends a backtest over that span produces.
func TestPlanTickCatchUpMatchesBacktest(t *testing.T) {
	tm := Timing{Interval: 15 * time.Minute, Lookback: 2 * time.Hour, Delay: 2 * time.Minute}
	start := ts("2024-05-01T09:03:00Z")
	var got []time.Time
	last := time.Time{}
	// Run once, go down for 5 hours, then tick every 15 minutes with a
	// catch-up limit of 4 windows.
	for _, now := range []time.Time{start, start.Add(5 * time.Hour)} {
		for i := 0; i < 12; i++ {
			p := PlanTick(tm, last, now.Add(time.Duration(i)*tm.Interval), Limits{MaxCatchup: 4})
			got = append(got, p.Ends...)
			if len(p.Ends) > 0 {
				last = p.Ends[len(p.Ends)-1]
			}
			if now.Equal(start) {
				break
			}
		}
	}
	want := BacktestEnds(tm, start, start.Add(5*time.Hour+11*tm.Interval))
	if len(got) != len(want) {
		t.Fatalf("ticks evaluated %d ends, backtest %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			t.Fatalf("end %d: tick %s, backtest %s", i, got[i], want[i])
		}
	}
}

func TestBacktestEnds(t *testing.T) {
	tm := Timing{Interval: time.Hour, Lookback: 2 * time.Hour}
	got := BacktestEnds(tm, ts("2024-05-01T10:30:00Z"), ts("2024-05-01T13:00:00Z"))
	want := []string{"2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z"}
	if len(got) != len(want) {
		t.Fatalf("ends = %v", got)
	}
	for i := range want {
		if !got[i].Equal(ts(want[i])) {
			t.Errorf("end %d = %s, want %s", i, got[i], want[i])
		}
	}
	if BacktestEnds(Timing{}, ts("2024-05-01T10:30:00Z"), ts("2024-05-01T13:00:00Z")) != nil {
		t.Error("zero interval must give no ends")
	}
}

func TestTickSchedule(t *testing.T) {
	tm := Timing{Interval: 15 * time.Minute, Delay: time.Minute}
	s := newTickSchedule("aws-rare-method-for-user", tm)
	if s.shift < time.Minute || s.shift >= time.Minute+tm.Interval {
		t.Fatalf("shift %s outside [delay, delay+interval)", s.shift)
	}
	if s2 := newTickSchedule("aws-rare-method-for-user", tm); s2 != s {
		t.Fatal("offset is not deterministic")
	}
	now := ts("2024-05-01T10:00:00Z")
	n1 := s.Next(now)
	n2 := s.Next(n1)
	if n2.Sub(n1) != tm.Interval || !n1.After(now) || n1.Sub(now) > tm.Interval {
		t.Fatalf("next ticks %s, %s after %s", n1, n2, now)
	}
	// Every tick evaluates a distinct, consecutive window end.
	if tm.End(n2).Sub(tm.End(n1)) != tm.Interval {
		t.Fatalf("ticks %s and %s evaluate %s and %s", n1, n2, tm.End(n1), tm.End(n2))
	}
}
