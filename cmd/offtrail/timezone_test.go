package main

import (
	"testing"

	"github.com/offtrail/offtrail/rules"
)

func TestWithDefaultTimezone(t *testing.T) {
	pack, diags := rules.Builtin()
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	fixed, _ := pack.Get("aws-console-login-off-hours") // sets timezone: UTC explicitly
	rare, _ := pack.Get("aws-rare-method-for-user")
	unset := *fixed
	oh := *fixed.OffHours
	oh.TimezoneSet = false
	unset.OffHours = &oh

	cases := []struct {
		name string
		rule *rules.Rule
		tz   string
		want string
	}{
		{"explicit zone is kept", fixed, "Europe/Berlin", "UTC"},
		{"unset zone takes the default", &unset, "Europe/Berlin", "Europe/Berlin"},
		{"no default leaves it", &unset, "", "UTC"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := withDefaultTimezone(c.rule, c.tz)
			if got.OffHours.Timezone != c.want || got.OffHours.LocationFor("").String() != c.want {
				t.Fatalf("zone %q (location %s), want %q", got.OffHours.Timezone, got.OffHours.LocationFor(""), c.want)
			}
		})
	}
	if withDefaultTimezone(rare, "Europe/Berlin") != rare {
		t.Error("a rare rule was changed")
	}
	if unset.OffHours.Timezone != "UTC" {
		t.Error("the original rule was modified")
	}
}
