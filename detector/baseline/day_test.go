package baseline

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

var testDay = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

// dayDocWithHours is the document a day counted by hour is stored as.
func dayDocWithHours(t testing.TB, hours []*dayGroups) []byte {
	dg := sumHours("sig", testDay, hours)
	raw, err := json.Marshal(dayDoc{Kind: dayKind, Signature: "sig", Day: testDay.Format(time.DateOnly), Count: len(dg.groups),
		Groups: encodeGroups(dg.groups), Hours: encodeHours(hours), HoursKept: true, Escaped: true})
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

// TestKeysWithSeparators: a value holding the line format's tab or
// newline (a user agent is the caller's to write), or backslashes, reads
// back as it was, in the day and in its hours; a document written before
// keys were escaped reads its backslashes as they are.
func TestKeysWithSeparators(t *testing.T) {
	odd := []string{"ua\tinjected\t99", "two\nlines", `back\slash`, `\t literally`, "\\\t\n"}
	var groups []store.Group
	for i, v := range odd {
		groups = append(groups, store.Group{Key: []string{"alice", v}, Count: int64(i + 1)})
	}
	hours := []*dayGroups{{day: testDay.Add(3 * time.Hour), groups: groups}}
	raw := dayDocWithHours(t, hours)
	dg, err := decodeDay(raw, "sig", testDay)
	if err != nil {
		t.Fatal(err)
	}
	byKey := func(gs []store.Group) map[string]int64 {
		m := map[string]int64{}
		for _, g := range gs {
			m[store.KeyString(g.Key)] = g.Count
		}
		return m
	}
	if got, want := byKey(dg.groups), byKey(groups); !reflect.DeepEqual(got, want) {
		t.Fatalf("day read back %v, want %v", got, want)
	}
	hs, err := hoursOf(raw, "sig", testDay)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := byKey(hs[testDay.Add(3*time.Hour)]), byKey(groups); !reflect.DeepEqual(got, want) {
		t.Fatalf("hour read back %v, want %v", got, want)
	}
	old := `{"kind":"baseline-day","signature":"sig","day":"2024-03-04","count":1,"groups":"alice\u001fC:\\\\tmp\t2\n"}`
	dg, err = decodeDay([]byte(old), "sig", testDay)
	if err != nil || len(dg.groups) != 1 || dg.groups[0].Key[1] != `C:\\tmp` {
		t.Fatalf("a document from before escaping: %v, %v; want its key as written", dg, err)
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

// BenchmarkDecodeDay reads a day of 2000 (identity, action) groups spread
// over its hours back from its document, as a restart or an evicted day
// does.
func BenchmarkDecodeDay(b *testing.B) {
	var hours []*dayGroups
	for h := range 24 {
		hg := &dayGroups{day: testDay.Add(time.Duration(h) * time.Hour)}
		for i := range 2000 / 24 * 3 {
			hg.groups = append(hg.groups, store.Group{Key: []string{"arn:aws:iam::123456789012:user/user" + strconv.Itoa(i%70), "Action" + strconv.Itoa((i*7+h)%300)}, Count: int64(i%9 + 1)})
		}
		hours = append(hours, hg)
	}
	raw := dayDocWithHours(b, hours)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeDay(raw, "sig", testDay); err != nil {
			b.Fatal(err)
		}
	}
}
