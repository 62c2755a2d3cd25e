package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// The suite's cases rely on these properties of the fixture.
func TestFixtureProperties(t *testing.T) {
	fx := Fixture(1)
	if !reflect.DeepEqual(fx, Fixture(1)) {
		t.Fatal("fixture is not deterministic")
	}
	if len(fx) != FixtureSize {
		t.Fatalf("%d docs", len(fx))
	}
	ref := reference{indices: map[string][]Doc{"x": fx}}
	if _, n := tieInstant(ref); n < 3 {
		t.Errorf("largest tie %d, want >= 3", n)
	}
	var onHour, dottedNested, flatUser, ids int
	missing := map[string]int{}
	mfa := map[string]int{}
	seen := map[string]bool{}
	for _, d := range fx {
		if seen[d.ID] {
			t.Errorf("duplicate id %s", d.ID)
		}
		seen[d.ID] = true
		ts, ok := store.ParseTime(d.Source[FieldTime])
		if !ok {
			t.Fatalf("%s: bad time %v", d.ID, d.Source[FieldTime])
		}
		if ts.Equal(ts.Truncate(time.Hour)) {
			onHour++
		}
		if _, ok := d.Source["cloud"].(map[string]any)["account.id"]; ok {
			dottedNested++
		}
		if _, ok := d.Source["user.name"]; ok {
			flatUser++
		}
		for _, f := range []string{FieldAction, FieldOutcome, FieldARN, FieldRegion, FieldIngested} {
			if len(values(d.Source, f)) == 0 {
				missing[f]++
			}
		}
		for _, v := range values(d.Source, FieldMFA) {
			mfa[v]++
		}
		ids++
	}
	if onHour == 0 || dottedNested == 0 || flatUser == 0 {
		t.Errorf("on the hour %d, dotted key in nested object %d, flat user.name %d: want all > 0", onHour, dottedNested, flatUser)
	}
	for _, f := range []string{FieldAction, FieldOutcome, FieldARN, FieldRegion, FieldIngested} {
		if missing[f] == 0 {
			t.Errorf("no document misses %s", f)
		}
	}
	if mfa["true"] == 0 || mfa["false"] == 0 {
		t.Errorf("mfa values %v, want both", mfa)
	}
}
