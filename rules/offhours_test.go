package rules

import (
	"testing"
	"time"
)

// TestWorkTime: fixed working hours in a zone, across the DST changes
// and with an end of 24:00.
func TestWorkTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	office := &OffHours{Start: "09:00", End: "17:00", Days: weekdays, Location: berlin}
	late := &OffHours{Start: "16:00", End: "24:00", Days: weekdays, Location: berlin}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		oh   *OffHours
		at   string
		want bool
	}{
		{"winter, 09:00 local is 08:00 UTC", office, "2024-03-29T08:00:00Z", true},
		{"winter, 08:59 local", office, "2024-03-29T07:59:00Z", false},
		// Sunday 31 March 2024 02:00 CET became 03:00 CEST.
		{"summer, 09:00 local is 07:00 UTC", office, "2024-04-02T07:00:00Z", true},
		{"summer, 08:00 UTC is 10:00 local", office, "2024-04-02T08:00:00Z", true},
		{"summer, 16:30 UTC is 18:30 local", office, "2024-04-02T16:30:00Z", false},
		{"the DST Sunday is a weekend", office, "2024-03-31T10:00:00Z", false},
		// Sunday 27 October 2024 03:00 CEST became 02:00 CET.
		{"the Monday after, 16:30 UTC is 17:30 local", office, "2024-10-28T16:30:00Z", false},
		{"the Monday after, 15:59 UTC is 16:59 local", office, "2024-10-28T15:59:00Z", true},
		{"24:00: 23:59 local is inside", late, "2024-06-03T21:59:00Z", true},
		{"24:00: midnight local is the next day's start, outside", late, "2024-06-03T22:00:00Z", false},
		{"24:00: 15:59 local", late, "2024-06-03T13:59:00Z", false},
		{"Friday 23:30 local is still Friday", late, "2024-06-07T21:30:00Z", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.oh.WorkTime(utc(tc.at), nil); got != tc.want {
				t.Errorf("WorkTime(%s) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
	if late.EndMinute() != 24*60 {
		t.Errorf("EndMinute of 24:00 = %d", late.EndMinute())
	}
}
