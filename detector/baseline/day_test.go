package baseline

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

var testDay = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

// dayDocWithHours is the document a day counted by hour is stored as.
func dayDocWithHours(t testing.TB, hours []*dayGroups) []byte {
	dg := sumHours("sig", testDay, hours)
	raw, err := json.Marshal(dayDoc{Kind: dayKind, Signature: "sig", Day: testDay.Format(time.DateOnly), Count: len(dg.groups),
		Groups: encodeGroups(dg.groups), Hours: encodeHours(hours), HoursKept: true})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestHoursRoundTrip: the hours a day's document keeps read back as
// written, each group in its hour, and the day's groups are their sum.
func TestHoursRoundTrip(t *testing.T) {
	hours := []*dayGroups{
		{day: testDay, groups: []store.Group{{Key: []string{"alice", "ListUsers"}, Count: 3}}},
		{day: testDay.Add(5 * time.Hour), groups: []store.Group{{Key: []string{"alice", "ListUsers"}, Count: 1}, {Key: []string{"bob", "GetObject"}, Count: 7}}},
		{day: testDay.Add(23 * time.Hour)}, // an hour without events
	}
	raw := dayDocWithHours(t, hours)
	got, err := hoursOf(raw, "sig", testDay)
	if err != nil {
		t.Fatal(err)
	}
	want := map[time.Time][]store.Group{testDay: hours[0].groups, testDay.Add(5 * time.Hour): hours[1].groups}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hours %v, want %v", got, want)
	}
	dg, err := decodeDay(raw, "sig", testDay)
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Group{{Key: []string{"alice", "ListUsers"}, Count: 4}, {Key: []string{"bob", "GetObject"}, Count: 7}}; !reflect.DeepEqual(dg.groups, want) {
		t.Fatalf("day %v, want %v", dg.groups, want)
	}
	for _, bad := range []string{
		`{"kind":"baseline-day","signature":"sig","day":"2024-03-04","hours_kept":true,"hours":"alice\u001f24\t1\n"}`,
		`{"kind":"baseline-day","signature":"sig","day":"2024-03-04","hours_kept":true,"hours":"05\t1\n"}`,
		`{"kind":"baseline-day","signature":"other","day":"2024-03-04","hours_kept":true}`,
	} {
		if _, err := hoursOf([]byte(bad), "sig", testDay); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if h, err := hoursOf([]byte(`{"kind":"baseline-day","signature":"sig","day":"2024-03-04","groups":""}`), "sig", testDay); h != nil || err != nil {
		t.Errorf("a document without hours: %v, %v; want none and no error (counted again)", h, err)
	}
}

// FuzzDayDocument: no stored document, however damaged, makes reading a
// day or its hours panic; what reads back is within the day.
func FuzzDayDocument(f *testing.F) {
	f.Add(dayDocWithHours(f, []*dayGroups{{day: testDay.Add(2 * time.Hour), groups: []store.Group{{Key: []string{"a", "b"}, Count: 2}}}}))
	f.Add([]byte(`{"kind":"baseline-day","signature":"sig","day":"2024-03-04","hour_buckets":true,"count":1,"groups":"a\u001f2024-03-04T05:00:00Z\t1\n"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = decodeDay(raw, "sig", testDay)
		hours, err := hoursOf(raw, "sig", testDay)
		if err != nil {
			return
		}
		for at := range hours {
			if !at.Truncate(day).Equal(testDay) {
				t.Fatalf("hour %s read back outside its day", at)
			}
		}
	})
}
