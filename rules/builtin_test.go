package rules

import (
	"encoding/csv"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestBuiltin(t *testing.T) {
	pack, diags := Builtin()
	if diags.HasErrors() {
		t.Fatalf("builtin pack has errors:\n%s", diags.Errors().Error())
	}
	// Geo rules need GeoIP even on the ecs profile; nothing else may warn.
	for _, w := range diags.Warnings() {
		if !strings.Contains(w.Message, "GeoIP") {
			t.Errorf("unexpected warning: %v", w)
		}
	}
	want := []string{
		"aws-activity-outside-learned-hours", "aws-burst-access-denied", "aws-burst-regions", "aws-burst-secret-reads",
		"aws-console-login-mfa-dropped", "aws-console-login-off-hours", "aws-first-high-risk-action", "aws-new-country-for-identity", "aws-new-service-in-region", "aws-rare-error-code",
		"aws-rare-method-for-city", "aws-rare-method-for-country", "aws-rare-method-for-user",
	}
	var got []string
	for _, r := range pack.Rules {
		got = append(got, r.ID)
		if path.Base(r.File) != r.ID+".yml" {
			t.Errorf("%s: defined in %s; one rule per file named after its id", r.ID, r.File)
		}
		for what, v := range map[string]string{
			"name": r.Name, "description": r.Description, "investigation": r.Investigation,
			"false_positives": r.FalsePositives,
		} {
			if strings.TrimSpace(v) == "" {
				t.Errorf("%s: no %s", r.ID, what)
			}
		}
		if len(r.Threat) == 0 {
			t.Errorf("%s: no threat mapping", r.ID)
		}
		for _, th := range r.Threat {
			if th.TacticName() == "" || th.Technique == "" {
				t.Errorf("%s: incomplete threat %+v", r.ID, th)
			}
		}
		if len(r.References) == 0 {
			t.Errorf("%s: no references", r.ID)
		}
		if !r.Enabled || r.Source.Profile != "ecs" || !reflectEqual(r.Source.Index, []string{"logs-aws.cloudtrail-*"}) {
			t.Errorf("%s: enabled=%v profile=%s index=%v", r.ID, r.Enabled, r.Source.Profile, r.Source.Index)
		}
	}
	if !reflectEqual(got, want) {
		t.Errorf("rules = %v\nwant %v", got, want)
	}

	// Elastic's rare_method_for_a_username parameters, but for the
	// threshold: the rule's signals are building blocks from 50, and what
	// alerts is the incident, at Elastic's 75.
	u, _ := pack.Get("aws-rare-method-for-user")
	if u.Type != TypeRare || u.Rare.Mode != ModeRare || !reflectEqual(u.Rare.Field, []string{"action"}) ||
		!reflectEqual(u.Rare.By, []string{"identity"}) || !reflectEqual(u.Rare.Partition, []string{"account"}) ||
		u.Rare.History.String() != "30d" || u.AnomalyThreshold != 50 || u.RiskScore != 21 ||
		u.Severity != "low" || u.Schedule.Interval.String() != "15m" || u.Schedule.Lookback.String() != "2h" ||
		u.MaxSignals != 100 || !reflectEqual(u.Source.Where.Terms["outcome"], []string{"success"}) {
		t.Errorf("aws-rare-method-for-user parameters drifted: %+v %+v", u, u.Rare)
	}
	c, _ := pack.Get("aws-console-login-off-hours")
	if c.OffHours.Start != "09:00" || c.OffHours.End != "17:00" || c.OffHours.Timezone != "UTC" ||
		len(c.OffHours.Days) != 5 || c.Severity != "medium" {
		t.Errorf("console login off hours: %+v", c.OffHours)
	}
	if !c.OffHours.WorkTime(time.Date(2024, 3, 4, 10, 0, 0, 0, time.UTC), nil) ||
		c.OffHours.WorkTime(time.Date(2024, 3, 4, 3, 0, 0, 0, time.UTC), nil) ||
		c.OffHours.WorkTime(time.Date(2024, 3, 9, 10, 0, 0, 0, time.UTC), nil) {
		t.Error("console login: WorkTime wrong for Mon 10:00 / Mon 03:00 / Sat 10:00")
	}
	n, _ := pack.Get("aws-new-service-in-region")
	if n.Rare.Mode != ModeFirstSeen || !reflectEqual(n.Rare.Field, []string{"service", "region"}) || n.Rare.History.String() != "90d" {
		t.Errorf("new service in region: %+v", n.Rare)
	}
}

func reflectEqual(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// The rule that watches high-risk actions must watch exactly the list the
// detector uses to raise severity.
func TestHighRiskRuleMatchesList(t *testing.T) {
	pack, _ := Builtin()
	r, ok := pack.Get("aws-first-high-risk-action")
	if !ok {
		t.Fatal("aws-first-high-risk-action missing")
	}
	if r.Rare.Mode != ModeFirstSeen || r.Rare.History.String() != "90d" || r.Severity != "high" ||
		r.RiskScore != 73 || r.AnomalyThreshold != 50 {
		t.Errorf("parameters drifted: %+v %+v", r, r.Rare)
	}
	inRule := map[string]bool{}
	for _, a := range r.Source.Where.Terms["action"] {
		inRule[a] = true
	}
	hr := HighRiskActions()
	for a := range hr {
		if !inRule[a] {
			t.Errorf("%s is in high_risk_actions.yml but not in the rule", a)
		}
	}
	for a := range inRule {
		if _, ok := hr[a]; !ok {
			t.Errorf("%s is in the rule but not in high_risk_actions.yml", a)
		}
	}
	if len(inRule) != len(r.Source.Where.Terms["action"]) {
		t.Error("the rule lists an action twice")
	}
}

// notSensitive are the Stratus events left out of the high-risk list, and
// why. Everything else a Stratus technique produces or names must be in it.
var notSensitive = map[string]string{
	"AssumeRole":                         "every role session; judged by the rare-command rules",
	"GetCallerIdentity":                  "whoami, harmless",
	"DescribeInstances":                  "routine inventory read",
	"DescribeInstanceInformation":        "routine SSM inventory read",
	"GetCommandInvocation":               "reads the output of a SendCommand, which is itself listed",
	"ListSecrets":                        "lists names, not values",
	"DescribeParameters":                 "lists names, not values",
	"GetFoundationModelAvailability":     "read",
	"ListFoundationModelAgreementOffers": "read",
	"TerminateSession":                   "ends a session StartSession opened",
	"ConsoleLogin":                       "sign-ins have their own rules (off hours, rare place)",
	// Hint-only names: S3 object data events (high volume), counters,
	// error codes and service-emitted events, not calls.
	"DeleteObject": "data event", "DeleteObjects": "data event", "GetObject": "data event",
	"CopyObject": "data event", "NumberOfObjects": "not an API", "SecretString": "not an API",
	"No": "not an API", "VcpuLimitExceeded": "error code",
	"SharedSnapshotCopyInitiated": "EBS service event", "SharedSnapshotVolumeCreated": "EBS service event",
	"GetAccountSendingEnabled": "SES read", "GetSendQuota": "SES read", "ListIdentities": "SES read",
	"DeleteVpc": "teardown in the Stratus flow-log technique", "StopNotebookInstance": "precedes UpdateNotebookInstance, which is listed",
}

var eventRE = regexp.MustCompile(`(?:^|[\s;,])(?:[a-z0-9-]+:)?([A-Z][A-Za-z0-9]+)`)

func TestHighRiskCoversStratus(t *testing.T) {
	f, err := os.Open("testdata/stratus_aws_techniques.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.LazyQuotes = true
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string]int{}
	for i, h := range header {
		cols[strings.SplitN(h, "(", 2)[0]] = i
	}
	hr := HighRiskActions()
	missing := map[string][]string{}
	rows := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		for _, col := range []string{"detonation_events_from_logs", "doc_listed_events", "detection_hint_apis"} {
			i, ok := cols[col]
			if !ok {
				t.Fatalf("column %s missing from %v", col, header)
			}
			for _, m := range eventRE.FindAllStringSubmatch(rec[i], -1) {
				ev := m[1]
				if _, ok := hr[ev]; ok || notSensitive[ev] != "" {
					continue
				}
				missing[ev] = append(missing[ev], rec[0])
			}
		}
	}
	if rows < 40 {
		t.Fatalf("read only %d techniques", rows)
	}
	names := make([]string, 0, len(missing))
	for ev := range missing {
		names = append(names, ev)
	}
	sort.Strings(names)
	for _, ev := range names {
		t.Errorf("Stratus event %s (%s) is neither in high_risk_actions.yml nor in notSensitive", ev, strings.Join(missing[ev], ", "))
	}
	// And the exemptions must not drift into the list.
	for ev := range notSensitive {
		if _, ok := hr[ev]; ok {
			t.Errorf("%s is both high-risk and exempt", ev)
		}
	}
	if cat := hr["StopLogging"]; cat != "defense_evasion" {
		t.Errorf("StopLogging category %q", cat)
	}
	if cats := HighRiskCategories(); len(cats) < 8 {
		t.Errorf("categories: %v", cats)
	}
}
