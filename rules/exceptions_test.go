package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestExceptionsBad loads each case under testdata/exceptions/bad and
// compares every diagnostic, and the lists that survived, with
// <case>.golden (go test ./rules -run TestExceptionsBad -update).
func TestExceptionsBad(t *testing.T) {
	dir := filepath.Join("testdata", "exceptions", "bad")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !isRuleFile(name) {
			continue
		}
		tc := strings.TrimSuffix(name, filepath.Ext(name))
		t.Run(tc, func(t *testing.T) {
			x, diags := LoadExceptions(filepath.Join(dir, name))
			var b strings.Builder
			for _, d := range diags {
				b.WriteString(d.String() + "\n")
				if d.Line == 0 {
					t.Errorf("diagnostic without a line: %v", d)
				}
			}
			var ids []string
			for _, l := range x.Lists {
				ids = append(ids, l.ID)
			}
			b.WriteString("# loaded: " + strings.Join(ids, ", ") + "\n")
			got := b.String()
			golden := filepath.Join(dir, tc+".golden")
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
			if !diags.HasErrors() {
				t.Error("no errors")
			}
		})
	}
}

func TestExceptionsGood(t *testing.T) {
	x, diags := LoadExceptions(filepath.Join("testdata", "exceptions", "good"))
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diags.Error())
	}
	if len(x.Lists) != 2 || x.Lists[0].ID != "corporate-network" || x.Lists[1].ID != "travel" {
		t.Fatalf("lists %+v", x.Lists)
	}
	net, travel := x.Lists[0], x.Lists[1]
	if !net.Global || travel.Global {
		t.Errorf("global: network %v travel %v", net.Global, travel.Global)
	}
	alice := travel.Entries[0]
	want := &ExceptionEntry{
		ID: "alice-lisbon", Reason: "Alice works from the Lisbon office until 21 June (TRAVEL-1234)", Author: "bob@example.com",
		Expires: time.Date(2024, 6, 21, 0, 0, 0, 0, time.UTC),
		Conditions: []ExceptionCondition{
			{Field: "identity", Op: OpIs, Values: []string{"arn:aws:iam::111111111111:user/alice"}},
			{Field: "source.country", Op: OpIsOneOf, Values: []string{"PT", "ES"}},
		},
		File: filepath.Join("testdata", "exceptions", "good", "travel.yml"), Line: 5, Column: 5,
	}
	if !reflect.DeepEqual(alice, want) {
		t.Errorf("alice:\n got %+v\nwant %+v", alice, want)
	}
	if got := travel.Entries[1].Expires; !got.Equal(time.Date(2024, 6, 12, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("carol expires %s", got)
	}
	scan := net.Entries[0].Conditions
	if !reflect.DeepEqual(scan[0].Values, []string{"10.20.0.0/16", "192.0.2.10", "2001:db8:5ca::/48"}) || !scan[0].Address() {
		t.Errorf("scanners %+v", scan[0])
	}
	if !reflect.DeepEqual(scan[1].Values, []string{"arn:aws:sts::111111111111:assumed-role/scanner/nightly", "arn:aws:sts::222222222222:assumed-role/scanner/nightly"}) {
		t.Errorf("roles %+v", scan[1])
	}
	asn := net.Entries[1].Conditions[0]
	ecs := (&Rule{Source: Source{Profile: "ecs"}}).Profile()
	if asn.PhysicalField(ecs) != "source.as.number" || asn.Values[0] != "64500" {
		t.Errorf("asn %+v", asn)
	}
}

func TestExpiry(t *testing.T) {
	day := time.Date(2024, 6, 21, 0, 0, 0, 0, time.UTC)
	e := &ExceptionEntry{ID: "e", Expires: day}
	for at, want := range map[time.Time]bool{
		day.Add(-time.Hour): true, day: true, day.Add(time.Minute): false,
	} {
		if got := e.ActiveAt(at); got != want {
			t.Errorf("ActiveAt(%s) = %v, want %v", at, got, want)
		}
	}
	if !(&ExceptionEntry{}).ActiveAt(day) {
		t.Error("an entry without expires must always apply")
	}
}

func TestRuleExceptionsBind(t *testing.T) {
	x, diags := LoadExceptions(filepath.Join("testdata", "exceptions", "good"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	pack, diags := LoadFiles(filepath.Join("testdata", "exceptions", "rule.yml"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	bind := x.Bind(pack)
	if len(bind) != 1 || !strings.Contains(bind[0].String(), `rule.yml:15:19: rule with-exceptions: exceptions.lists: no exception list "travl"; did you mean travel?`) {
		t.Fatalf("bind diagnostics:\n%s", bind.Error())
	}
	r, _ := pack.Get("with-exceptions")
	var names []string
	for _, a := range r.ExceptionsAt(time.Date(2024, 6, 12, 0, 0, 0, 0, time.UTC)) {
		names = append(names, a.Name())
	}
	want := []string{"with-exceptions/deploy-window", "corporate-network/vpn-scanners", "corporate-network/asn-ci",
		"travel/alice-lisbon", "travel/carol-conference"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("in force on 12 June: %v, want %v", names, want)
	}
	names = nil
	for _, a := range r.ExceptionsAt(time.Date(2024, 6, 22, 0, 0, 0, 0, time.UTC)) {
		names = append(names, a.Name())
	}
	if want := []string{"corporate-network/vpn-scanners", "corporate-network/asn-ci"}; !reflect.DeepEqual(names, want) {
		t.Errorf("in force on 22 June: %v, want %v", names, want)
	}
	// Rebinding without lists leaves only the rule's own entries.
	(&Exceptions{}).Bind(pack)
	if got := len(r.ExceptionsAt(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))); got != 1 {
		t.Errorf("after rebinding: %d entries", got)
	}

	exp := ExpiringEntries(x, pack, time.Date(2024, 6, 15, 0, 0, 0, 0, time.UTC), 7*24*time.Hour)
	var got []string
	for _, e := range exp {
		got = append(got, e.Diagnostic(time.Date(2024, 6, 15, 0, 0, 0, 0, time.UTC)).String())
	}
	wantExp := []string{
		"testdata/exceptions/good/travel.yml:12:5: warning: exception travel/carol-conference expired 2024-06-12T16:00:00Z (2d ago) and no longer applies: Carol at re:Inforce, hotel network",
		"testdata/exceptions/rule.yml:10:7: warning: exception with-exceptions/deploy-window expired 2024-06-14T00:00:00Z (24h ago) and no longer applies: The June release, approved in CHG-77",
		"testdata/exceptions/good/travel.yml:5:5: warning: exception travel/alice-lisbon expires 2024-06-21T00:00:00Z (in 6d): Alice works from the Lisbon office until 21 June (TRAVEL-1234)",
	}
	if !reflect.DeepEqual(got, wantExp) {
		t.Errorf("expiring:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantExp, "\n"))
	}
}

// The example lists the README shows load without a diagnostic.
func TestExampleExceptions(t *testing.T) {
	x, diags := LoadExceptions(filepath.Join("examples", "exceptions"))
	if len(diags) > 0 {
		t.Fatal(diags.Error())
	}
	if len(x.Lists) != 2 {
		t.Fatalf("%d lists", len(x.Lists))
	}
}
