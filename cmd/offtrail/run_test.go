package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/internal/testenv"
	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/notify/channels"
	"github.com/offtrail/offtrail/notify/webhook"
	"github.com/offtrail/offtrail/schedule"
)

// envProcessArgs makes the test binary act as the offtrail binary (see
// TestOfftrailProcess): the engine test runs real `offtrail run`
// processes without a second build.
const envProcessArgs = "OFFTRAIL_TEST_PROCESS_ARGS"

// TestOfftrailProcess is not a test: started by offtrailCmd with
// envProcessArgs set, it runs offtrail with those arguments and exits.
func TestOfftrailProcess(t *testing.T) {
	raw := os.Getenv(envProcessArgs)
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(runMain(args, os.Stdout, os.Stderr))
}

func offtrailCmd(t *testing.T, args ...string) *exec.Cmd {
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOfftrailProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envProcessArgs+"="+string(b), "OFFTRAIL_LOG_LEVEL=info")
	return cmd
}

const ruleNotify = `id: %s
name: Test rule naming channels
type: rare
source: {index: [cloudtrail], profile: ecs}
rare: {field: action, by: identity, mode: first_seen}
%s
`

// A rule naming a channel that is not configured is invalid: the service
// refuses to start, unless skip_invalid_rules leaves that rule out.
func TestRunRulesUnknownChannel(t *testing.T) {
	dir := t.TempDir()
	for name, notify := range map[string]string{"good": "notify: [hook]", "bad": "notify: [hook, pager]", "default": ""} {
		if err := os.WriteFile(filepath.Join(dir, name+".yml"), fmt.Appendf(nil, ruleNotify, "test-"+name, notify), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := channels.Parse([]byte("channels:\n  hook: {type: webhook, url: http://127.0.0.1:1/hook}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	env := &cliEnv{stdout: io.Discard, stderr: io.Discard, log: zerolog.New(&logs)}
	disp, err := channels.Build(nc, env.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Rules: []string{dir}}
	if _, err := runRules(env, cfg, disp); err == nil || !strings.Contains(err.Error(), "1 rule(s) name unknown notification channels") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(logs.String(), `unknown notification channel \"pager\"`) || !strings.Contains(logs.String(), "bad.yml:1") {
		t.Errorf("log does not name the channel and the rule's file: %s", logs.String())
	}
	cfg.SkipInvalidRules = true
	rs, err := runRules(env, cfg, disp)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"test-default", "test-good"}) {
		t.Errorf("rules with skip_invalid_rules = %v", ids)
	}
}

// proc is one running `offtrail run`.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr chan string // the listen address, once logged

	mu   sync.Mutex
	logs []string
	done chan struct{}
}

func startRun(t *testing.T, name, cfgPath string) *proc {
	t.Helper()
	cmd := offtrailCmd(t, "run", "--config", cfgPath, "--replica-id", name)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, addr: make(chan string, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			var l struct{ Message, Listen string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "offtrail running" {
				p.addr <- l.Listen
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		_ = cmd.Wait()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s logs:\n%s", name, strings.Join(p.logs, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

func (p *proc) waitAddr(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.addr:
		return a
	case <-p.done:
		t.Fatalf("%s exited before it was running", p.name)
	case <-time.After(15 * time.Second):
		t.Fatalf("%s not running after 15s", p.name)
	}
	return ""
}

func ruleHealth(t *testing.T, addr string) map[string]schedule.RuleHealth {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hs []schedule.RuleHealth
	if err := json.NewDecoder(resp.Body).Decode(&hs); err != nil {
		t.Fatal(err)
	}
	out := map[string]schedule.RuleHealth{}
	for _, h := range hs {
		out[h.Rule] = h
	}
	return out
}

func leased(hs map[string]schedule.RuleHealth) []string {
	var out []string
	for id, h := range hs {
		if h.Leased {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond every 200ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}

// hookLog records what a webhook channel received.
type hookLog struct {
	mu    sync.Mutex
	byID  map[string][]string // signal id -> replicas that sent it
	rules map[string]string   // signal id -> rule
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b webhook.Body
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range b.Messages {
		h.byID[m.SignalID] = append(h.byID[m.SignalID], r.Header.Get("X-Replica"))
		h.rules[m.SignalID] = m.RuleID
	}
}

func (h *hookLog) snapshot() (map[string][]string, map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make(map[string][]string, len(h.byID))
	for k, v := range h.byID {
		ids[k] = slices.Clone(v)
	}
	rules := make(map[string]string, len(h.rules))
	for k, v := range h.rules {
		rules[k] = v
	}
	return ids, rules
}

// The planted activity: three identities with nine days of routine, then in
// the last hour two first-time actions and two first-time regions.
func plantedDocs(now time.Time) []store.Doc {
	type ev struct {
		user, action, region string
		at                   time.Time
	}
	var evs []ev
	for day := 1; day <= 9; day++ {
		for i, user := range []string{"alice", "bob", "carol"} {
			for j, action := range []string{"DescribeInstances", "ListBuckets", "GetObject"} {
				at := now.Add(-time.Duration(day)*24*time.Hour + time.Duration(i*10+j)*time.Minute)
				evs = append(evs, ev{user, action, "us-east-1", at})
			}
		}
	}
	evs = append(evs,
		ev{"alice", "DeleteTrail", "us-east-1", now.Add(-20 * time.Minute)},
		ev{"bob", "CreateAccessKey", "eu-west-3", now.Add(-15 * time.Minute)},
		ev{"carol", "ListBuckets", "ap-south-1", now.Add(-10 * time.Minute)},
	)
	docs := make([]store.Doc, 0, len(evs))
	for i, e := range evs {
		src := map[string]any{
			"@timestamp": e.at.UTC().Format(time.RFC3339Nano),
			"event":      map[string]any{"action": e.action, "provider": "cloudtrail.amazonaws.com", "outcome": "success", "kind": "event"},
			"user":       map[string]any{"name": e.user},
			"cloud":      map[string]any{"account": map[string]any{"id": "111122223333"}, "region": e.region},
			"aws": map[string]any{"cloudtrail": map[string]any{"user_identity": map[string]any{
				"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/" + e.user}}},
		}
		b, _ := json.Marshal(src)
		docs = append(docs, store.Doc{ID: fmt.Sprintf("runtest-%03d", i), Source: b})
	}
	return docs
}

const runTestRule = `id: %[1]s
name: Test first-time %[2]s for an identity
type: rare
schedule: {interval: 2s, lookback: 1h}
source: {index: [%[3]s], profile: ecs}
rare: {field: %[2]s, by: identity, history: 10d, mode: first_seen}
anomaly_threshold: 1
max_signals: 20
notify: [hook]
`

const runTestConfig = `store: {url: %[1]s}
incidents: {threshold: 1}
signals_index: %[2]s
state_index: %[3]s
rules: [rules]
listen: 127.0.0.1:0
lease_duration: 6s
notifications:
  channels:
    hook:
      type: webhook
      url: %[4]s
      headers: {X-Replica: %[5]s}
      suppress_for: 0s   # every new signal, so each one is counted
`

// Two real `offtrail run` processes share two rules through leases on
// OpenSearch, one rule each; one is killed and the other takes its rule
// over once the lease expires. Both evaluate the same windows (at the
// start, before the split, and after the takeover), yet a webhook sees
// every signal written exactly once.
func TestRunTwoProcessesEngine(t *testing.T) {
	url := testenv.OpenSearchURL(t)
	ctx := t.Context()
	st, err := backends.Open(ctx, backends.Options{URLs: []string{url}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	var rb [4]byte
	_, _ = rand.Read(rb[:])
	id := hex.EncodeToString(rb[:])
	// Names outside the shipped templates' patterns, so the templates
	// `run` installs are this test's own and go away with it.
	source, signals, state := "offtrail-runtest-"+id+"-events", "offtrail-runtest-"+id+"-signals", "offtrail-runtest-"+id+"-state"
	t.Cleanup(func() {
		deletePaths(url, "/"+source+","+signals+","+state+"?ignore_unavailable=true",
			"/_index_template/offtrail-runtest-"+id+"-events",
			"/_index_template/offtrail-signals-"+signals, "/_index_template/offtrail-state-"+state)
	})
	tpl, err := mappings.TemplateWith("cloudtrail-ecs", mappings.TemplateOptions{IndexPatterns: []string{source}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureTemplate(ctx, "offtrail-runtest-"+id+"-events", tpl); err != nil {
		t.Fatal(err)
	}
	w, err := st.NewBulkWriter(ctx, source, func(id string, err error) { t.Errorf("load %s: %v", id, err) })
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range plantedDocs(time.Now()) {
		if err := w.Add(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, failed, err := w.Close(ctx); err != nil || failed > 0 {
		t.Fatalf("load: %d failed, %v", failed, err)
	}
	if err := st.Refresh(ctx, source); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	ruleIDs := []string{"runtest-first-action", "runtest-first-region"}
	for i, field := range []string{"action", "region"} {
		body := fmt.Sprintf(runTestRule, ruleIDs[i], field, source)
		if err := os.WriteFile(filepath.Join(dir, "rules", field+".yml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hook := &hookLog{byID: map[string][]string{}, rules: map[string]string{}}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	cfgFor := func(replica string) string {
		p := filepath.Join(dir, replica+".yml")
		if err := os.WriteFile(p, fmt.Appendf(nil, runTestConfig, url, signals, state, srv.URL, replica), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	a := startRun(t, "a", cfgFor("a"))
	addrA := a.waitAddr(t)
	b := startRun(t, "b", cfgFor("b"))
	addrB := b.waitAddr(t)

	// One rule each, visible through /rules.
	var heldA, heldB []string
	took := waitFor(t, 45*time.Second, "one rule per replica", func() bool {
		heldA, heldB = leased(ruleHealth(t, addrA)), leased(ruleHealth(t, addrB))
		return len(heldA) == 1 && len(heldB) == 1 && heldA[0] != heldB[0]
	})
	t.Logf("split after %s: a holds %v, b holds %v", took.Round(time.Millisecond), heldA, heldB)

	// Signals of both rules written, and every incident they make (all
	// alert: the config's incident threshold is 1) notified, before the kill.
	// A rule's incidents are written just after its signals, so the
	// check must hold twice, a few ticks apart: once could fall between
	// a's signals and its incidents, and a killed then never notifies them.
	notifiedAll := func() bool {
		written := signalRules(t, st, signals)
		got, _ := hook.snapshot()
		perRule := map[string]int{}
		for _, rule := range written {
			perRule[rule]++
		}
		incs := incidentIDs(t, st, signals)
		for id := range incs {
			if _, ok := got[id]; !ok {
				return false
			}
		}
		return len(incs) > 0 && perRule[ruleIDs[0]] > 0 && perRule[ruleIDs[1]] > 0
	}
	waitFor(t, 45*time.Second, "signals of both rules written and their incidents notified, twice 3 s apart", func() bool {
		if !notifiedAll() {
			return false
		}
		time.Sleep(3 * time.Second)
		return notifiedAll()
	})

	// SIGKILL: no lease release, no goodbye; b must wait out the lease.
	killed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lease := 6 * time.Second
	// Liveness bounds, generous on purpose: a loaded CI machine is slow,
	// and correctness (no window twice, every signal notified once) is
	// what is asserted, not speed.
	takeover := waitFor(t, lease+20*time.Second, "b takes over a's rule", func() bool {
		return len(leased(ruleHealth(t, addrB))) == 2
	})
	t.Logf("b holds both rules %s after a was killed (lease %s)", takeover.Round(time.Millisecond), lease)
	// b evaluates a's rule over windows a had already covered.
	waitFor(t, 45*time.Second, "b runs a's rule", func() bool {
		h := ruleHealth(t, addrB)[heldA[0]]
		return h.Health == schedule.HealthOK && h.LastSuccess.After(killed.Add(takeover))
	})

	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("b did not stop on SIGTERM")
	}
	if err := b.cmd.Wait(); err != nil {
		t.Errorf("b exit: %v", err)
	}

	written := signalRules(t, st, signals)
	incs := incidentIDs(t, st, signals)
	got, gotRules := hook.snapshot()
	byReplica := map[string]int{}
	for id, reps := range got {
		if len(reps) != 1 {
			t.Errorf("incident %s (%s) notified %d times, by %v", id, gotRules[id], len(reps), reps)
		}
		if !incs[id] {
			t.Errorf("%s notified but not an incident in %s", id, signals)
		}
		byReplica[reps[0]]++
	}
	for id := range incs {
		if _, ok := got[id]; !ok {
			t.Errorf("incident %s written but never notified", id)
		}
	}
	// alice DeleteTrail and bob CreateAccessKey; bob eu-west-3, carol ap-south-1.
	if len(written) != 4 {
		t.Errorf("%d signals written, want 4: %v", len(written), written)
	}
	// The proof that the replicas evaluated each other's windows: creates
	// that found the signal already there. Either may show it: a replica
	// skips the repeats of windows it wrote itself (detector.Written), so
	// b, taking back a rule it ran before the split, may re-find nothing.
	existed := map[string]int{}
	for _, p := range []*proc{a, b} {
		p.mu.Lock()
		for _, line := range p.logs {
			var l struct {
				Message string
				Replica string
				Existed int
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "signals written" {
				existed[l.Replica] += l.Existed
			}
		}
		p.mu.Unlock()
	}
	if existed["a"]+existed["b"] == 0 {
		t.Error("no replica found a signal already written: the replicas did not overlap")
	}
	t.Logf("%d signals, each notified once (by replica %v); re-found already written, by replica: %v", len(written), byReplica, existed)
}

// signalRules maps the ids in a signals index to their rule.
func signalRules(t *testing.T, st store.Backend, index string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := st.Refresh(t.Context(), index); err != nil {
		if strings.Contains(err.Error(), "index_not_found") || strings.Contains(err.Error(), "no such index") {
			return out
		}
		t.Fatal(err)
	}
	evs, err := st.Events(t.Context(), store.Query{Index: []string{index}, TimeField: "@timestamp",
		Window: store.Window{From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(time.Hour)}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if kind, _ := store.Lookup(e.Source, "offtrail.kind"); kind == "incident" {
			continue
		}
		rule, _ := store.Lookup(e.Source, "rule.id")
		out[e.ID], _ = rule.(string)
	}
	return out
}

// incidentIDs lists the incident documents in the signals index.
func incidentIDs(t *testing.T, st store.Backend, index string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := st.Refresh(t.Context(), index); err != nil {
		return out
	}
	evs, err := st.Events(t.Context(), store.Query{Index: []string{index}, TimeField: "@timestamp",
		Window: store.Window{From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(time.Hour)},
		Filter: store.Filter{Terms: map[string][]string{"offtrail.kind": {"incident"}}}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		out[e.ID] = true
	}
	return out
}

func deletePaths(base string, paths ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range paths {
		req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, base+p, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}
