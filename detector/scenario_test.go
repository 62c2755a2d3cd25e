package detector_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/internal/testenv"
	"github.com/offtrail/offtrail/rules"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The crafted organisation: ten people in one account working 09–17 UTC on
// weekdays from Paris or Berlin, and a CI role writing to S3 round the
// clock. The window under test is Monday 05:00–07:00 UTC, where the planted
// events sit.
var (
	windowEnd = time.Date(2024, 6, 10, 7, 0, 0, 0, time.UTC) // a Monday
	account   = "111111111111"
	ciARN     = "arn:aws:sts::" + account + ":assumed-role/ci-deploy/build"
)

func userARN(name string) string { return "arn:aws:iam::" + account + ":user/" + name }

type ev struct {
	at                           time.Time
	who, action, service, region string
	city, country, errCode       string
	mfa                          string // "", "true", "false"
	agent                        string
	ip                           string // default: by city
}

func (e ev) doc(id string) storetest.Doc {
	identType, name := "IAMUser", strings.TrimPrefix(e.who, "arn:aws:iam::"+account+":user/")
	if strings.Contains(e.who, "assumed-role") {
		identType, name = "AssumedRole", "ci-deploy"
	}
	outcome := "success"
	cloudtrail := map[string]any{"user_identity": map[string]any{"arn": e.who, "type": identType}}
	if e.errCode != "" {
		outcome = "failure"
		cloudtrail["error_code"] = e.errCode
	}
	if e.mfa != "" {
		cloudtrail["console_login"] = map[string]any{"additional_eventdata": map[string]any{"mfa_used": e.mfa}}
	}
	ip := map[string]string{"Paris": "81.2.69.160", "Berlin": "85.214.132.117", "Lagos": "102.88.34.12", "": "3.120.0.1"}[e.city]
	if e.ip != "" {
		ip = e.ip
	}
	src := map[string]any{"ip": ip}
	if e.city != "" {
		src["geo"] = map[string]any{"city_name": e.city, "country_iso_code": e.country}
	}
	return storetest.Doc{ID: id, Source: map[string]any{
		"@timestamp": e.at.UTC().Format(time.RFC3339),
		"event":      map[string]any{"action": e.action, "provider": e.service, "outcome": outcome, "id": id},
		"user":       map[string]any{"name": name},
		"cloud":      map[string]any{"account": map[string]any{"id": account}, "region": e.region},
		"source":     src,
		"user_agent": map[string]any{"original": e.agent},
		"aws":        map[string]any{"cloudtrail": cloudtrail},
	}}
}

// scenarioDocs builds the 30-day baseline and the planted window events.
func scenarioDocs() []storetest.Doc {
	rng := rand.New(rand.NewPCG(7, 7))
	var evs []ev
	common := []struct{ action, service string }{
		{"DescribeInstances", "ec2.amazonaws.com"}, {"ListBuckets", "s3.amazonaws.com"},
		{"GetObject", "s3.amazonaws.com"}, {"PutObject", "s3.amazonaws.com"},
		{"GetCallerIdentity", "sts.amazonaws.com"}, {"DescribeSecurityGroups", "ec2.amazonaws.com"},
		{"ListFunctions", "lambda.amazonaws.com"}, {"DescribeLogGroups", "logs.amazonaws.com"},
	}
	people := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}
	start := windowEnd.Add(-2*time.Hour - 30*24*time.Hour)
	for day := 0; day < 30; day++ {
		d := start.Truncate(24 * time.Hour).Add(time.Duration(day) * 24 * time.Hour)
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
			continue
		}
		for i, p := range people {
			city, country := "Paris", "FR"
			if i%2 == 1 {
				city, country = "Berlin", "DE"
			}
			evs = append(evs, ev{at: d.Add(9*time.Hour + time.Duration(rng.IntN(20))*time.Minute), who: userARN(p), action: "ConsoleLogin",
				service: "signin.amazonaws.com", region: "us-east-1", city: city, country: country, mfa: "true", agent: "Mozilla/5.0"})
			for k := 0; k < 100; k++ {
				c := common[rng.IntN(len(common))]
				e := ev{at: d.Add(9*time.Hour + time.Duration(rng.IntN(8*60))*time.Minute), who: userARN(p), action: c.action,
					service: c.service, region: "eu-west-1", city: city, country: country, agent: "aws-cli/2.15.0"}
				if rng.IntN(50) == 0 {
					e.errCode = "AccessDenied"
				}
				evs = append(evs, e)
			}
			// Six of ten people use DescribeVolumes; bob is not one of them.
			if i >= 2 && i < 8 && rng.IntN(2) == 0 {
				evs = append(evs, ev{at: d.Add(11 * time.Hour), who: userARN(p), action: "DescribeVolumes", service: "ec2.amazonaws.com",
					region: "eu-west-1", city: city, country: country, agent: "aws-cli/2.15.0"})
			}
		}
	}
	// The CI role: every 20 minutes, day and night, for the whole span.
	for t := start; t.Before(windowEnd); t = t.Add(20 * time.Minute) {
		evs = append(evs, ev{at: t, who: ciARN, action: "PutObject", service: "s3.amazonaws.com", region: "eu-west-1", agent: "aws-sdk-go-v2/1.30.0"})
		evs = append(evs, ev{at: t.Add(time.Minute), who: ciARN, action: "GetObject", service: "s3.amazonaws.com", region: "eu-west-1", agent: "aws-sdk-go-v2/1.30.0"})
	}
	w := windowEnd.Add(-2 * time.Hour)
	planted := []ev{
		{at: w.Add(10 * time.Minute), who: userARN("alice"), action: "StopLogging", service: "cloudtrail.amazonaws.com", region: "eu-west-1", city: "Lagos", country: "NG", agent: "aws-cli/2.15.0"},
		{at: w.Add(12 * time.Minute), who: userARN("alice"), action: "ListBuckets", service: "s3.amazonaws.com", region: "eu-west-1", city: "Lagos", country: "NG", agent: "aws-cli/2.15.0"},
		{at: w.Add(14 * time.Minute), who: userARN("alice"), action: "RunInstances", service: "ec2.amazonaws.com", region: "ap-southeast-2", city: "Lagos", country: "NG", agent: "aws-cli/2.15.0", errCode: "Client.UnauthorizedOperation"},
		{at: w.Add(30 * time.Minute), who: userARN("bob"), action: "ConsoleLogin", service: "signin.amazonaws.com", region: "us-east-1", city: "Berlin", country: "DE", mfa: "false", agent: "Mozilla/5.0"},
		{at: w.Add(32 * time.Minute), who: userARN("bob"), action: "DescribeVolumes", service: "ec2.amazonaws.com", region: "eu-west-1", city: "Berlin", country: "DE", agent: "aws-cli/2.15.0"},
		{at: w.Add(50 * time.Minute), who: ciARN, action: "GetSecretValue", service: "secretsmanager.amazonaws.com", region: "eu-west-1", agent: "aws-sdk-go-v2/1.30.0"},
	}
	evs = append(evs, planted...)
	docs := make([]storetest.Doc, len(evs))
	for i, e := range evs {
		docs[i] = e.doc(fmt.Sprintf("evt-%06d", i))
	}
	return docs
}

// runScenario evaluates every shipped rule over the window on b and
// renders the signals one line each, sorted.
func runScenario(t *testing.T, b store.Backend, index string) []string {
	t.Helper()
	ctx := t.Context()
	if err := b.EnsureTemplate(ctx, storetest.TemplateName, []byte(storetest.Template)); err != nil {
		t.Fatal(err)
	}
	storetest.DropAfter(t, b, index)
	storetest.Load(t, b, index, scenarioDocs())
	if err := b.Refresh(ctx, index); err != nil {
		t.Fatal(err)
	}
	pack, diags := rules.Builtin()
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	det := detector.New(b, zerolog.Nop(), detector.WithHighRiskActions(rules.HighRiskActions()),
		detector.WithClock(func() time.Time { return windowEnd }))
	var lines []string
	for _, r := range pack.Enabled() {
		rc := *r
		rc.Source.Index = []string{index}
		w := store.Window{From: windowEnd.Add(-rc.Schedule.Lookback.Std()), To: windowEnd}
		res, err := det.Evaluate(ctx, &rc, w, "test")
		if err != nil {
			t.Fatalf("rule %s: %v", r.ID, err)
		}
		for _, s := range res.Signals {
			var vals []string
			for _, f := range s.Value {
				vals = append(vals, f.Value)
			}
			kind := ""
			if s.Attached {
				kind = " attached"
			}
			lines = append(lines, fmt.Sprintf("%s | %s | %s | score=%.1f%s conf=%s sev=%s risk=%d events=%d | %s",
				r.ID, s.Label, strings.Join(vals, "/"), s.Score, kind, s.Confidence, s.Severity, s.RiskScore, len(s.Events), s.Reason))
			if s.Score < 0 || s.Score > 100 {
				t.Errorf("score out of bounds: %v", s.Score)
			}
			if s.Reason == "" || !strings.HasSuffix(s.Reason, ".") {
				t.Errorf("signal without a sentence of reason: %q", s.Reason)
			}
		}
	}
	sort.Strings(lines)
	return lines
}

func checkScenario(t *testing.T, lines []string) {
	t.Helper()
	golden := filepath.Join("testdata", "scenario.golden")
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("signals differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
	// What must be caught, whatever the golden file says.
	must := []string{
		"aws-rare-method-for-user | alice | StopLogging",
		"aws-first-high-risk-action | alice | StopLogging",
		"aws-first-high-risk-action | role ci-deploy (session build) | GetSecretValue",
		"aws-rare-method-for-user | role ci-deploy (session build) | GetSecretValue",
		"aws-rare-method-for-city | ListBuckets | Lagos",
		"aws-rare-method-for-country | ListBuckets | NG",
		"aws-console-login-off-hours | bob |",
		"aws-activity-outside-learned-hours | alice |",
		"aws-new-service-in-region | alice | cloudtrail.amazonaws.com/eu-west-1",
	}
	for _, m := range must {
		if !containsPrefix(lines, m) {
			t.Errorf("missing signal %q", m)
		}
	}
	mustNot := []string{
		"aws-rare-method-for-user | bob | DescribeVolumes", // six of ten peers use it
		"aws-activity-outside-learned-hours | role ci-deploy",
	}
	for _, m := range mustNot {
		if containsPrefix(lines, m) {
			t.Errorf("unexpected signal %q", m)
		}
	}
}

func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestScenarioEmbedded(t *testing.T) {
	checkScenario(t, runScenario(t, embedded.NewMemory(), storetest.IndexPrefix+"detector"))
}

func TestRerunWritesNoDuplicate(t *testing.T) {
	b := embedded.NewMemory()
	lines := runScenario(t, b, storetest.IndexPrefix+"rerun")
	if len(lines) == 0 {
		t.Fatal("no signals")
	}
	pack, _ := rules.Builtin()
	r, _ := pack.Get("aws-rare-method-for-user")
	rc := *r
	rc.Source.Index = []string{storetest.IndexPrefix + "rerun"}
	det := detector.New(b, zerolog.Nop(), detector.WithHighRiskActions(rules.HighRiskActions()))
	w := store.Window{From: windowEnd.Add(-2 * time.Hour), To: windowEnd}
	var first store.WriteResult
	for i := 0; i < 2; i++ {
		res, err := det.Evaluate(t.Context(), &rc, w, fmt.Sprintf("run-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		docs := make([]store.Doc, len(res.Signals))
		for j, s := range res.Signals {
			raw, err := s.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			docs[j] = store.Doc{ID: s.ID, Source: raw}
		}
		wr, err := b.WriteSignals(t.Context(), "offtrail-signals-test", docs)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = wr
			continue
		}
		if wr.Created != 0 || wr.Existed != first.Created {
			t.Fatalf("second run: created %d existed %d, first created %d", wr.Created, wr.Existed, first.Created)
		}
	}
	if first.Created == 0 {
		t.Fatal("first run wrote nothing")
	}
}

// openEngine connects to a real engine through the same path offtrail uses.
func openEngine(t *testing.T, url string) store.Backend {
	t.Helper()
	b, err := backends.Open(t.Context(), backends.Options{URLs: []string{url}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// The same golden file on the engines: the jobs push all counting into the
// store, so the signals must be identical to the embedded store's.
func TestScenarioElasticsearch(t *testing.T) {
	b := openEngine(t, testenv.ElasticsearchURL(t))
	checkScenario(t, runScenario(t, b, fmt.Sprintf("%sdetector-%d", storetest.IndexPrefix, time.Now().UnixNano())))
}

func TestScenarioOpenSearch(t *testing.T) {
	b := openEngine(t, testenv.OpenSearchURL(t))
	checkScenario(t, runScenario(t, b, fmt.Sprintf("%sdetector-%d", storetest.IndexPrefix, time.Now().UnixNano())))
}

// memStoreWith loads evs into a new in-memory store under index, with ids
// made from prefix and the event's position.
func memStoreWith(t *testing.T, index, prefix string, evs []ev) *embedded.Store {
	t.Helper()
	mem := embedded.NewMemory()
	docs := make([]storetest.Doc, len(evs))
	for i, e := range evs {
		docs[i] = e.doc(fmt.Sprintf("%s-%05d", prefix, i))
	}
	storetest.Load(t, mem, index, docs)
	return mem
}

// packFrom loads the rules of one YAML document.
func packFrom(t *testing.T, yaml string) *rules.Pack {
	t.Helper()
	pack, diags := rules.LoadFS(fstest.MapFS{"r.yml": {Data: []byte(yaml)}}, ".")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return pack
}
