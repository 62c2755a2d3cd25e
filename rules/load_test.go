package rules

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden")

// warningOnly are the bad cases that must load without errors.
var warningOnly = map[string]bool{"enriched_warning": true, "empty": true}

// TestBad loads each case under testdata/bad (a file, or a directory for
// cases spanning files) and compares every diagnostic, and the rules that
// survived, with <case>.golden.
func TestBad(t *testing.T) {
	entries, err := os.ReadDir("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() && !isRuleFile(name) {
			continue
		}
		tc := strings.TrimSuffix(name, filepath.Ext(name))
		t.Run(tc, func(t *testing.T) {
			path := filepath.Join("testdata/bad", name)
			pack, diags := LoadFiles(path)
			var b strings.Builder
			for _, d := range diags {
				b.WriteString(d.String() + "\n")
			}
			ids := make([]string, 0, len(pack.Rules))
			for _, r := range pack.Rules {
				ids = append(ids, r.ID)
			}
			b.WriteString("# loaded: " + strings.Join(ids, ", ") + "\n")
			got := b.String()

			golden := filepath.Join("testdata/bad", tc+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
			if diags.HasErrors() == warningOnly[tc] {
				t.Errorf("HasErrors() = %v, want %v", diags.HasErrors(), !warningOnly[tc])
			}
			for _, d := range diags {
				if d.File == "" {
					t.Errorf("diagnostic without a file: %v", d)
				}
				if d.Line == 0 && !strings.Contains(d.Message, "no rules") && !strings.Contains(d.Message, "no such file") {
					t.Errorf("diagnostic without a line: %v", d)
				}
			}
		})
	}
}

func TestGood(t *testing.T) {
	pack, diags := LoadFiles("testdata/good")
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%v", diags.Error())
	}
	var ids []string
	for _, r := range pack.Rules {
		ids = append(ids, r.ID)
	}
	if want := []string{"defaults", "fixed-hours", "full-rare", "learned-hours"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("ids = %v, want %v", ids, want)
	}

	full, _ := pack.Get("full-rare")
	want := &Rule{
		ID: "full-rare", Name: "Every key of a rare rule", Description: "All keys set.",
		Version: 3, Type: TypeRare,
		Schedule: Schedule{Interval: Duration(10 * time.Minute), Lookback: Duration(time.Hour),
			QueryDelay: Duration(5 * time.Minute), Window: WindowIngested},
		Source: Source{
			Index:   []string{"logs-aws.cloudtrail-*", "cloudtrail-*"},
			Profile: "ecs",
			Where: Where{
				Terms: map[string][]string{"outcome": {"success"}, "mfa_used": {"true"}, "user_agent.original": {"aws-cli", "Boto3"}},
				Not:   map[string][]string{"identity_type": {"AWSService"}},
			},
		},
		Rare: &Rare{Field: []string{"service", "region"}, By: []string{"identity"}, Partition: []string{"account"},
			History: Duration(14 * 24 * time.Hour), Mode: ModeFirstSeen, MinHistoryEvents: 20, Settle: Duration(6 * time.Hour)},
		Context: &Context{Fields: []string{"source.country", "user_agent"}, Require: []string{"source.country"}, By: "identity",
			History: Duration(14 * 24 * time.Hour), Settle: Duration(12 * time.Hour), MinEvents: 3, Discount: 1.5},
		AnomalyThreshold: 60.5, RiskScore: 99, Severity: "critical", MaxSignals: 5,
		Threat:        []Threat{{Tactic: "TA0005", Technique: "T1562", Subtechnique: "T1562.008"}},
		Notify:        []string{"slack-secops", "pagerduty"},
		Investigation: "Look.", FalsePositives: "Some.",
		References: []string{"https://example.org/x"}, Tags: []string{"a", "b"},
		Enabled: false, File: "testdata/good/full.yml", Line: 2,
	}
	if !reflect.DeepEqual(full, want) {
		t.Errorf("full-rare:\n got %+v\nwant %+v", full, want)
	}
	if got := full.PhysicalWhere().Not; !reflect.DeepEqual(got, map[string][]string{"aws.cloudtrail.user_identity.type": {"AWSService"}}) {
		t.Errorf("PhysicalWhere().Not = %v", got)
	}

	def, _ := pack.Get("defaults")
	if def.Schedule.Interval.String() != "15m" || def.Schedule.Lookback.String() != "2h" ||
		def.Rare.History.String() != "30d" || def.Rare.Mode != ModeRare || def.RiskScore != 21 ||
		def.AnomalyThreshold != 75 || def.MaxSignals != 100 || !def.Enabled || def.Version != 1 ||
		!reflect.DeepEqual(def.Rare.By, []string{"identity"}) || def.Source.Profile != "ecs" {
		t.Errorf("defaults not applied: %+v %+v", def, def.Rare)
	}

	fixed, _ := pack.Get("fixed-hours")
	oh := fixed.OffHours
	if oh.Start != "08:30" || oh.End != "18:00" || oh.Location.String() != "Europe/Paris" ||
		!reflect.DeepEqual(oh.Days, []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday}) {
		t.Errorf("fixed-hours: %+v", oh)
	}
	if got := oh.TimezoneByEntity["arn:aws:iam::111122223333:user/bob"]; got != "America/Los_Angeles" {
		t.Errorf("timezone of bob = %q", got)
	}
	if fixed.Physical("action") != "eventName" {
		t.Errorf("cloudtrail profile not used: %s", fixed.Physical("action"))
	}
	// Monday 10:00 in Paris is work time for the rule; for bob (Los Angeles)
	// it is 01:00, which is not.
	mon := time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC) // 10:00 CET
	if !oh.WorkTime(mon, nil) {
		t.Error("Monday 10:00 Paris should be work time")
	}
	if oh.WorkTime(mon, oh.LocationFor("arn:aws:iam::111122223333:user/bob")) {
		t.Error("Monday 01:00 Los Angeles should be off hours")
	}
	if oh.WorkTime(mon.Add(4*24*time.Hour), nil) { // Friday is not a working day here
		t.Error("Friday should be off hours")
	}

	learned, _ := pack.Get("learned-hours")
	if !learned.OffHours.Learned() || learned.OffHours.Start != "" || learned.RiskScore != 73 {
		t.Errorf("learned-hours: %+v risk %d", learned.OffHours, learned.RiskScore)
	}
}

func TestProfileOverride(t *testing.T) {
	pack, diags := Loader{Profile: "cloudtrail"}.LoadFiles("testdata/good/full.yml")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	r := pack.Rules[0]
	if r.Source.Profile != "cloudtrail" || r.Physical("action") != "eventName" {
		t.Errorf("override not applied: %s", r.Source.Profile)
	}
	if len(diags.Warnings()) == 0 {
		t.Error("outcome on raw cloudtrail should warn")
	}
	if _, diags := (Loader{Profile: "nope"}).LoadFiles("testdata/good"); !diags.HasErrors() {
		t.Error("unknown override profile accepted")
	}
}

func TestLoadFS(t *testing.T) {
	rule := func(tz string) string {
		return "id: r\nname: R\ntype: off_hours\nsource: {index: x}\noff_hours: {timezones: " + tz + "}\n"
	}
	fsys := fstest.MapFS{
		"pack/r.yml":         {Data: []byte(rule("tz/people.yml"))},
		"pack/tz/people.yml": {Data: []byte("alice: Europe/Paris\n")},
		"abs/r.yml":          {Data: []byte(rule("/etc/people.yml"))},
		"up/r.yml":           {Data: []byte(rule("../../people.yml"))},
	}
	pack, diags := LoadFS(fsys, "pack")
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	if got := pack.Rules[0].OffHours.LocationFor("alice").String(); got != "Europe/Paris" {
		t.Errorf("alice in %s", got)
	}
	if got := pack.Rules[0].OffHours.LocationFor("someone").String(); got != "UTC" {
		t.Errorf("default zone %s", got)
	}
	for _, root := range []string{"abs", "up"} {
		if _, diags := LoadFS(fsys, root); !diags.HasErrors() {
			t.Errorf("%s: timezones path outside the fs accepted", root)
		}
	}
	if _, diags := LoadFS(fsys, "missing"); !diags.HasErrors() {
		t.Error("missing root accepted")
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		d       time.Duration
	}{
		{"15m", "15m", 15 * time.Minute},
		{"2h", "2h", 2 * time.Hour},
		{"30d", "30d", 30 * 24 * time.Hour},
		{"90d", "90d", 90 * 24 * time.Hour},
		{"1w", "1w", 7 * 24 * time.Hour},
		{"1h30m", "1h30m", 90 * time.Minute},
		{"0", "0s", 0},
	} {
		d, err := ParseDuration(tc.in)
		if err != nil || d.Std() != tc.d || d.String() != tc.out {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tc.in, d.Std(), d, err, tc.d, tc.out)
		}
	}
	for _, bad := range []string{"", "15", "15x", "-1h", "1m1h", "1.5h"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestDiagnosticString(t *testing.T) {
	for _, tc := range []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{File: "a.yml", Line: 3, Column: 5, Message: "bad"}, "a.yml:3:5: bad"},
		{Diagnostic{File: "a.yml", Line: 3, Column: 5, Message: "hm", Warning: true}, "a.yml:3:5: warning: hm"},
		{Diagnostic{File: "a.yml", Line: 3, Message: "yaml"}, "a.yml:3: yaml"},
		{Diagnostic{File: "a.yml", Message: "missing"}, "a.yml: missing"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	ds := Diagnostics{{File: "a", Line: 1, Message: "x"}, {File: "a", Line: 2, Message: "y", Warning: true}}
	if !ds.HasErrors() || len(ds.Errors()) != 1 || len(ds.Warnings()) != 1 || ds.Err() == nil {
		t.Error("Errors/Warnings split wrong")
	}
	if ds.Warnings().Err() != nil {
		t.Error("warnings alone are not an error")
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"anomaly_threshold", "field", "interval", "profile"}
	for in, want := range map[string]string{
		"anomaly_treshold": "anomaly_threshold", "feild": "field", "intervall": "interval",
		"profle": "profile", "color": "", "x": "",
	} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// An alias bomb must not expand: the loader walks nodes, never the
// expanded document.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]\n")
	}
	b.WriteString("id: bomb\nname: Bomb\ntype: rare\nsource: {index: x, where: {action: *a11}}\nrare: {field: action, by: *a11}\n")
	_, diags := LoadFS(fstest.MapFS{"r.yml": {Data: []byte(b.String())}}, "r.yml")
	if !diags.HasErrors() || len(diags) > 50 {
		t.Errorf("got %d diagnostics: %v", len(diags), diags)
	}
}

func BenchmarkBuiltin(b *testing.B) {
	for b.Loop() {
		if _, diags := Builtin(); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}

// A marshalled rule loads back to the same rule.
func TestMarshalRoundTrip(t *testing.T) {
	pack, _ := Builtin()
	good, _ := LoadFiles("testdata/good")
	for _, r := range append(pack.Rules, good.Rules...) {
		if r.OffHours != nil && r.OffHours.Timezones != "" {
			continue // the mapping file is relative to the original
		}
		b, err := yaml.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, diags := LoadFS(fstest.MapFS{"r.yml": {Data: b}}, "r.yml")
		if diags.HasErrors() {
			t.Fatalf("%s: %v\n%s", r.ID, diags, b)
		}
		got := back.Rules[0]
		got.File, got.Line = r.File, r.Line
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: round trip differs\n got %+v\nwant %+v\n%s", r.ID, got, r, b)
		}
	}
}
