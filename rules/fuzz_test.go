package rules

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"
)

// FuzzLoad feeds arbitrary bytes to the loader as a rule file and as the
// timezone mappings rules may name. It must never panic, and whatever it
// accepts must satisfy the invariants the detector relies on.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/bad", "testdata/good"} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (isRuleFile(p) || filepath.Ext(p) == ".csv") {
				if b, err := os.ReadFile(p); err == nil {
					f.Add(b)
				}
			}
			return nil
		})
	}
	_ = fs.WalkDir(awsFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := awsFS.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	f.Add([]byte("id: t\nname: T\ntype: off_hours\nsource: {index: x}\noff_hours: {timezones: people.csv}\n"))
	f.Add([]byte("id: t\nname: T\ntype: off_hours\nsource: {index: x}\noff_hours: {timezones: people.yml}\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"r/rule.yml":   {Data: data},
			"r/people.csv": {Data: data},
			"r/people.yml": {Data: data},
		}
		pack, diags := LoadFS(fsys, "r")
		for _, d := range diags {
			if d.File == "" || d.Message == "" {
				t.Fatalf("incomplete diagnostic %#v", d)
			}
		}
		for _, r := range pack.Rules {
			checkInvariants(t, r)
		}
	})
}

func checkInvariants(t *testing.T, r *Rule) {
	t.Helper()
	switch {
	case !idRE.MatchString(r.ID), r.Name == "":
		t.Fatalf("accepted rule without id/name: %+v", r)
	case r.Schedule.Interval <= 0 || r.Schedule.Lookback < r.Schedule.Interval:
		t.Fatalf("accepted schedule %+v", r.Schedule)
	case r.AnomalyThreshold < 0 || r.AnomalyThreshold > 100 || r.RiskScore < 0 || r.RiskScore > 100 || r.MaxSignals < 1:
		t.Fatalf("accepted out-of-range values %+v", r)
	case len(r.Source.Index) == 0:
		t.Fatalf("accepted rule without index")
	case SeverityScore(r.Severity) == 0:
		t.Fatalf("accepted severity %q", r.Severity)
	}
	switch r.Type {
	case TypeRare:
		if r.Rare == nil || r.OffHours != nil || len(r.Rare.Field) == 0 || len(r.Rare.By) == 0 || r.Rare.History <= 0 {
			t.Fatalf("accepted rare rule %+v %+v", r, r.Rare)
		}
	case TypeOffHours:
		o := r.OffHours
		if o == nil || r.Rare != nil || len(o.By) == 0 || o.Location == nil {
			t.Fatalf("accepted off_hours rule %+v", r)
		}
		if !o.Learned() && (o.EndMinute() <= o.StartMinute() || len(o.Days) == 0) {
			t.Fatalf("accepted hours %+v", o)
		}
	case TypeBurst:
		b := r.Burst
		if b == nil || r.Rare != nil || r.OffHours != nil || len(b.By) == 0 || b.History < Duration(time.Hour) || b.MinCount < 1 ||
			(b.Count != CountEvents && b.Count != CountDistinct) || (b.Count == CountDistinct) != (b.Field != "") {
			t.Fatalf("accepted burst rule %+v %+v", r, b)
		}
	default:
		t.Fatalf("accepted type %q", r.Type)
	}
	_ = r.Profile().Physical("action")
}
