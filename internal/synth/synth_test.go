package synth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/internal/cloudtrail"
)

var testEnd = time.Date(2024, 6, 28, 12, 0, 0, 0, time.UTC)

func smallConfig(dir string) Config {
	return Config{OutDir: dir, Identities: 30, Days: 5, Seed: 42, End: testEnd}
}

// generated is one small generation shared by the tests that only read it.
var (
	genOnce   sync.Once
	genDir    string
	genLabels *Labels
	genErr    error
)

func generated() (string, *Labels, error) {
	genOnce.Do(func() {
		genDir, genErr = os.MkdirTemp("", "synth-test-")
		if genErr == nil {
			genLabels, genErr = Generate(context.Background(), smallConfig(genDir))
		}
	})
	return genDir, genLabels, genErr
}

func shared(t *testing.T) (string, *Labels) {
	t.Helper()
	dir, l, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	return dir, l
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, _, err := generated(); err == nil && dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func hashTree(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		io.WriteString(h, rel+"\x00")
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestDeterministic(t *testing.T) {
	dir, _ := shared(t)
	again := t.TempDir()
	cfg := smallConfig(again)
	cfg.Workers = 1 // a different schedule must not change a byte
	if _, err := Generate(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if a, b := hashTree(t, dir), hashTree(t, again); a != b {
		t.Fatalf("same config, different output: %s vs %s", a, b)
	}
	other := t.TempDir()
	cfg = smallConfig(other)
	cfg.Seed++
	if _, err := Generate(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if hashTree(t, dir) == hashTree(t, other) {
		t.Fatal("different seeds gave the same output")
	}
}

func TestLabels(t *testing.T) {
	dir, l := shared(t)
	fromDisk, err := ReadLabels(filepath.Join(dir, "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fromDisk.Events != l.Events || len(fromDisk.Scenarios) != len(l.Scenarios) {
		t.Fatalf("labels.json differs from the returned labels")
	}
	techs, err := StratusTechniques()
	if err != nil {
		t.Fatal(err)
	}
	if len(techs) != 35 {
		t.Errorf("%d Stratus techniques, want the 35 with detonation logs", len(techs))
	}
	byTech := map[string]Scenario{}
	kinds := map[string]int{}
	for _, s := range l.Scenarios {
		kinds[s.Kind]++
		if s.Technique != "" {
			byTech[s.Technique] = s
		}
		if len(s.EventIDs) == 0 || s.EventCount < len(s.EventIDs) || len(s.Identities) == 0 || len(s.ExpectedRules) == 0 {
			t.Errorf("scenario %s: %d ids of %d events, identities %v, rules %v", s.ID, len(s.EventIDs), s.EventCount, s.Identities, s.ExpectedRules)
		}
		if s.Start.After(s.End) || s.Start.Before(l.Start) || !s.End.Before(l.End) {
			t.Errorf("scenario %s: %s–%s outside the period", s.ID, s.Start, s.End)
		}
		if s.Kind == "attack" && s.Start.Before(l.End.Add(-72*time.Hour)) {
			t.Errorf("attack %s starts %s, before the last 3 days", s.ID, s.Start)
		}
		for _, r := range s.ExpectedRules {
			if _, err := os.Stat(filepath.Join("..", "..", "rules", "aws", r+".yml")); err != nil {
				t.Errorf("scenario %s expects unknown rule %s", s.ID, r)
			}
		}
	}
	for _, id := range techs {
		if _, ok := byTech[id]; !ok {
			t.Errorf("Stratus technique %s not planted", id)
		}
	}
	for _, id := range []string{"attack-console-login-no-mfa", "attack-stolen-key-enumeration", "attack-cryptomining-new-region",
		"attack-cloudtrail-stop-s3-exfil", "attack-automation-off-schedule", "attack-quiet-role-abuse",
		"benign-new-hire", "benign-service-adoption", "benign-oncall-incident", "benign-new-region", "benign-new-api"} {
		if !slices.ContainsFunc(l.Scenarios, func(s Scenario) bool { return s.ID == id }) {
			t.Errorf("scenario %s missing", id)
		}
	}
	tzs := map[string]bool{}
	for _, id := range l.Identities {
		if id.Kind == "human" {
			tzs[id.Timezone] = true
		}
	}
	if len(tzs) < 3 {
		t.Errorf("people in %d timezones, want at least 3", len(tzs))
	}
}

func TestRecordsAreCloudTrail(t *testing.T) {
	dir, l := shared(t)
	labelled := map[string]bool{}
	for _, s := range l.Scenarios {
		for _, id := range s.EventIDs {
			labelled[id] = true
		}
	}
	seen := map[string]bool{}
	var bad []string
	st, err := cloudtrail.Read(context.Background(), []string{filepath.Join(dir, "AWSLogs")}, func(r cloudtrail.Record) error {
		raw := r.Raw
		if seen[r.ID] {
			bad = append(bad, "duplicate eventID "+r.ID)
		}
		seen[r.ID] = true
		delete(labelled, r.ID)
		if r.Time.Before(l.Start) || !r.Time.Before(l.End) {
			bad = append(bad, "time outside the period: "+r.Time.String())
		}
		if s := str(raw, "eventTime"); len(s) != 20 || !strings.HasSuffix(s, "Z") {
			bad = append(bad, "eventTime "+s)
		}
		for _, k := range []string{"eventVersion", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent", "eventType", "recipientAccountId"} {
			if str(raw, k) == "" {
				bad = append(bad, r.ID+": no "+k)
			}
		}
		if regionIndex(str(raw, "awsRegion")) < 0 {
			bad = append(bad, "region "+str(raw, "awsRegion"))
		}
		if ip := str(raw, "sourceIPAddress"); !strings.HasSuffix(ip, ".amazonaws.com") {
			a, err := netip.ParseAddr(ip)
			if err != nil || !a.IsGlobalUnicast() || a.IsPrivate() {
				bad = append(bad, "address "+ip)
			}
		}
		if _, ok := raw["userIdentity"].(map[string]any); !ok {
			bad = append(bad, r.ID+": no userIdentity")
		}
		if str(raw, "eventName") == "ConsoleLogin" {
			add, _ := raw["additionalEventData"].(map[string]any)
			resp, _ := raw["responseElements"].(map[string]any)
			if m := str(add, "MFAUsed"); m != "Yes" && m != "No" {
				bad = append(bad, "ConsoleLogin MFAUsed "+m)
			}
			if c := str(resp, "ConsoleLogin"); c != "Success" && c != "Failure" {
				bad = append(bad, "ConsoleLogin response "+c)
			}
		}
		if strings.Contains(str(raw, "userAgent"), "stratus-red-team") {
			bad = append(bad, "Stratus user agent left in "+r.ID)
		}
		if len(bad) > 20 {
			return io.EOF
		}
		return nil
	})
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	if st.Skipped > 0 || st.BadFiles > 0 {
		t.Errorf("reader skipped %d records, %d files", st.Skipped, st.BadFiles)
	}
	if st.Records != l.Events || st.Files != l.Files {
		t.Errorf("read %d records in %d files, labels say %d in %d", st.Records, st.Files, l.Events, l.Files)
	}
	if len(labelled) > 0 {
		t.Errorf("%d labelled event ids not in the data", len(labelled))
	}
}

func TestEventsMatchesFiles(t *testing.T) {
	_, l := shared(t)
	cfg := smallConfig("")
	n := 0
	var last string
	got, err := Events(cfg, func(rec map[string]any) error {
		n++
		if et := str(rec, "eventTime"); et < last {
			t.Fatalf("records out of order: %s after %s", et, last)
		} else {
			last = et
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != l.Events || got.Events != l.Events {
		t.Fatalf("Events gave %d records, Generate %d", n, l.Events)
	}
}

func TestNoAttacks(t *testing.T) {
	cfg := smallConfig("")
	cfg.NoAttacks = true
	l, err := Events(cfg, func(map[string]any) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Scenarios {
		if s.Kind == "attack" {
			t.Errorf("attack %s planted with NoAttacks", s.ID)
		}
	}
}

// The high-risk list used to label scenarios must be the rule's.
func TestHighRiskInStepWithRule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "rules", "aws", "aws-first-high-risk-action.yml"))
	if err != nil {
		t.Skip(err)
	}
	var rule struct {
		Source struct {
			Where struct {
				Action []string `yaml:"action"`
			} `yaml:"where"`
		} `yaml:"source"`
	}
	if err := yaml.Unmarshal(b, &rule); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(rule.Source.Where.Action))
	got := slices.Sorted(slices.Values(highRiskActions))
	if !slices.Equal(got, want) {
		t.Errorf("highRiskActions out of step with the rule:\n got %v\nwant %v", got, want)
	}
}

func TestAppendTime(t *testing.T) {
	for _, x := range []int64{0, 1, 86399, 951782400, 1709164800, 1709251199, 1719576000, 4102444799} {
		if got, want := string(appendTime(nil, x)), time.Unix(x, 0).UTC().Format(rfc3339Sec); got != want {
			t.Errorf("%d: %s, want %s", x, got, want)
		}
	}
}

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"DescribeInstances":              "describe-instances",
		"GetFunction20150331v2":          "get-function",
		"ListFunctions20150331":          "list-functions",
		"GetAccountAuthorizationDetails": "get-account-authorization-details",
	} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestTooFewIdentities(t *testing.T) {
	if _, err := Events(Config{Identities: 5, Days: 5, End: testEnd}, func(map[string]any) error { return nil }); err == nil {
		t.Fatal("no error for 5 identities")
	}
}
