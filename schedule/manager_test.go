package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/rules"
)

func keys(rule string, ends ...string) []string {
	out := make([]string, len(ends))
	for i, e := range ends {
		out[i] = rule + "@" + e
	}
	return out
}

func readCheckpoint(t *testing.T, st StateStore, index, rule string) Checkpoint {
	t.Helper()
	cp, err := loadCheckpoint(t.Context(), st, index, rule)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestCheckpointCatchUpRestart(t *testing.T) {
	ctx := t.Context()
	st := embedded.NewMemory()
	rule := testRules(t)[0] // test-off-hours, 30m
	rs := []*rules.Rule{rule}
	rec := newRecorder(nil)
	clock := newClock(ts("2024-03-05T10:20:00Z"))
	reg := prometheus.NewRegistry()
	m1 := newTestManager(t, st, rec, clock, "a", func(o *Options) { o.Registerer = reg })
	m1.Reload(rs)
	if err := m1.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	// First run ever: only the current window.
	if err := m1.RunRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	if cp := readCheckpoint(t, st, "offtrail-state-test", rule.ID); !cp.End.Equal(ts("2024-03-05T10:00:00Z")) || cp.Owner != "a" {
		t.Fatalf("checkpoint after the first run = %+v", cp)
	}
	// 1h20m later: the three missed ends, oldest first.
	clock.Advance(80 * time.Minute)
	if err := m1.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m1.RunRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	// Restart: a new replica takes over from the checkpoint after the old
	// one released its leases.
	m1.Stop(ctx)
	clock.Advance(time.Hour)
	m2 := newTestManager(t, st, rec, clock, "b", nil)
	m2.Reload(rs)
	if err := m2.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if !m2.Holds(rule.ID) {
		t.Fatal("restarted replica did not take the released lease")
	}
	if err := m2.RunRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	// A tick with nothing due evaluates nothing.
	if err := m2.RunRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	want := keys(rule.ID, "2024-03-05T10:00:00Z", "2024-03-05T10:30:00Z", "2024-03-05T11:00:00Z", "2024-03-05T11:30:00Z",
		"2024-03-05T12:00:00Z", "2024-03-05T12:30:00Z")
	if got := rec.evaluated(t); !slices.Equal(got, want) {
		t.Fatalf("evaluated %v\nwant %v", got, want)
	}
	if got := testutil.ToFloat64(m1.metrics.runs.WithLabelValues(rule.ID, OutcomeSuccess)); got != 2 {
		t.Errorf("runs_total{success} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m1.metrics.healthy.WithLabelValues(rule.ID)); got != 1 {
		t.Errorf("healthy = %v", got)
	}
	h := m2.Health()
	if len(h) != 1 || h[0].Health != HealthOK || !h[0].Checkpoint.Equal(ts("2024-03-05T12:30:00Z")) || !h[0].Leased {
		t.Fatalf("health = %+v", h)
	}
}

func TestCatchUpLimitAndGap(t *testing.T) {
	ctx := t.Context()
	st := embedded.NewMemory()
	rule := testRules(t)[1] // test-rare-action, 1h
	rec := newRecorder(nil)
	clock := newClock(ts("2024-03-05T10:20:00Z"))
	m := newTestManager(t, st, rec, clock, "a", func(o *Options) {
		o.Limits = Limits{MaxCatchup: 2, MaxGap: 4 * time.Hour}
	})
	m.Reload([]*rules.Rule{rule})
	if err := m.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.RunRule(ctx, rule.ID); err != nil { // 10:00
		t.Fatal(err)
	}
	clock.Advance(3 * time.Hour) // 13:20: 11, 12 now; 13 next tick
	if err := m.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.RunRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncLeases(ctx); err != nil { // writes the checkpoint due
		t.Fatal(err)
	}
	if cp := readCheckpoint(t, st, "offtrail-state-test", rule.ID); !cp.End.Equal(ts("2024-03-05T12:00:00Z")) {
		t.Fatalf("checkpoint = %s, want 12:00 (max_catchup 2)", cp.End)
	}
	if err := m.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.RunRule(ctx, rule.ID); err != nil { // 13
		t.Fatal(err)
	}
	// Ten hours down: ends 14..19 are older than 4h before 23:00 and are
	// given up; 20 and 21 now, 22 and 23 on the next ticks.
	clock.Advance(10 * time.Hour)
	if err := m.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.RunRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.RunRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	want := keys(rule.ID, "2024-03-05T10:00:00Z", "2024-03-05T11:00:00Z", "2024-03-05T12:00:00Z", "2024-03-05T13:00:00Z",
		"2024-03-05T19:00:00Z", "2024-03-05T20:00:00Z", "2024-03-05T21:00:00Z", "2024-03-05T22:00:00Z")
	if got := rec.evaluated(t); !slices.Equal(got, want) {
		t.Fatalf("evaluated %v\nwant %v", got, want)
	}
	cp := readCheckpoint(t, st, "offtrail-state-test", rule.ID)
	if len(cp.GivenUp) != 1 || cp.GivenUp[0].Windows != 5 || !cp.GivenUp[0].FirstEnd.Equal(ts("2024-03-05T14:00:00Z")) ||
		!cp.GivenUp[0].LastEnd.Equal(ts("2024-03-05T18:00:00Z")) || cp.GivenUpSeconds != 5*3600 {
		t.Fatalf("given up = %+v (%v s)", cp.GivenUp, cp.GivenUpSeconds)
	}
	if got := testutil.ToFloat64(m.metrics.skipped.WithLabelValues(rule.ID)); got != 5 {
		t.Errorf("windows_given_up_total = %v", got)
	}
	if got := testutil.ToFloat64(m.metrics.gap.WithLabelValues(rule.ID)); got != 3600 {
		t.Errorf("gap_seconds = %v, want 3600 (one window behind)", got)
	}
}

// fixtureStore is a memory store holding the storetest fixture as index
// "cloudtrail", the rules' source.
func fixtureStore(t *testing.T) *embedded.Store {
	t.Helper()
	st := embedded.NewMemory()
	storetest.Load(t, st, "cloudtrail", storetest.FixtureN(1, 3000))
	return st
}

func newDetector(t testing.TB, s detector.Store) *detector.Detector {
	return detector.New(s, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		detector.WithHighRiskActions(rules.HighRiskActions()),
		detector.WithClock(func() time.Time { return ts("2024-03-06T00:00:00Z") }))
}

// signalIDs lists the ids in a signals index.
func signalIDs(t *testing.T, s store.Backend, index string) []string {
	t.Helper()
	if err := s.Refresh(t.Context(), index); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(t.Context(), store.Query{Index: []string{index}, TimeField: "@timestamp",
		Window: store.Window{From: ts("2000-01-01T00:00:00Z"), To: ts("2100-01-01T00:00:00Z")},
		// Rule signals only: the engines keep incidents in the same index.
		Filter: store.Filter{Not: map[string][]string{"offtrail.kind": {"incident"}}}}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	sort.Strings(ids)
	return ids
}

// tickHourly drives m through the fixture's second day in one-hour steps,
// calling between(i) before each step.
func tickHourly(t *testing.T, m *Manager, clock *fakeClock, rs []*rules.Rule, steps int, between func(i int)) {
	t.Helper()
	for i := 0; i < steps; i++ {
		if between != nil {
			between(i)
		}
		if err := m.SyncLeases(t.Context()); err != nil {
			t.Logf("sync leases: %v", err)
		}
		for _, r := range rs {
			if err := m.RunRule(t.Context(), r.ID); err != nil && !errors.Is(err, errInjected) {
				t.Errorf("step %d %s: %v", i, r.ID, err)
			}
		}
		clock.Advance(time.Hour)
	}
}

// A store that fails makes the rule fail after retries, keeps its
// checkpoint, and a later tick catches up with exactly the signals an
// undisturbed run writes.
func TestFailureRetryAndCatchUp(t *testing.T) {
	var want []string
	runFailureScenario(t, memoryEnv, 20, &want)
}

func memoryEnv(t *testing.T) scenarioEnv {
	return scenarioEnv{st: fixtureStore(t), source: "cloudtrail", signals: "logs-offtrail.alerts-test", state: "offtrail-state-test"}
}

// scenarioEnv is a store with the fixture loaded and the index names to use.
type scenarioEnv struct {
	st                     store.Backend
	source, signals, state string
}

// runFailureScenario compares a disturbed run with an undisturbed one on
// fresh stores from open. If *want is set the undisturbed run must produce
// those ids too (the memory store's, for the engines); if empty it is set.
//
// Hourly ticks: at tick 1 a read of a lease document fails once
// (the lease sync checks its leases after an hour's lapse, and tolerates it), from tick 2 for failTicks ticks every signal write fails, then
// the store heals and the remaining ticks catch up.
func runFailureScenario(t *testing.T, open func(t *testing.T) scenarioEnv, steps int, want *[]string) {
	base := testRules(t)
	start := ts("2024-03-05T09:10:00Z")
	failTicks := steps/2 - 1
	var env scenarioEnv
	indices := func(o *Options) { o.SignalsIndex, o.StateIndex = env.signals, env.state }
	setup := func(t *testing.T) (store.Backend, []*rules.Rule) {
		env = open(t)
		var rs []*rules.Rule
		for _, r := range base {
			c := cloneRule(r, r.ID)
			c.Source.Index = []string{env.source}
			rs = append(rs, c)
		}
		return env.st, rs
	}

	// Undisturbed.
	refStore, refRules := setup(t)
	clock := newClock(start)
	ref := newTestManager(t, refStore, newDetector(t, refStore), clock, "ref", indices)
	ref.Reload(refRules)
	tickHourly(t, ref, clock, refRules, steps, nil)
	refIDs := signalIDs(t, refStore, env.signals)
	if len(refIDs) == 0 {
		t.Fatal("the undisturbed run found no signals; the scenario tests nothing")
	}
	if len(*want) == 0 {
		*want = refIDs
	} else if !slices.Equal(refIDs, *want) {
		t.Errorf("%s: undisturbed run wrote %d signals, the memory store %d:\n%v\n%v", refStore.Kind(), len(refIDs), len(*want), refIDs, *want)
	}

	// Disturbed: signal writes fail for four hours, one lease document
	// read fails once.
	st, rs := setup(t)
	flaky := newFlaky(st)
	clock = newClock(start)
	reg := prometheus.NewRegistry()
	m := newTestManager(t, flaky, newDetector(t, flaky), clock, "disturbed", func(o *Options) { indices(o); o.Registerer = reg })
	m.Reload(rs)
	tickHourly(t, m, clock, rs, steps, func(i int) {
		switch i {
		case 1:
			flaky.failNext("get-lease", 1)
			flaky.failNext("write", 1)
		case 2:
			flaky.failNext("count", 1000000)
		case 2 + failTicks:
			for _, h := range m.Health() {
				if h.Health != HealthFailing || h.LastError == "" || h.Failures != failTicks {
					t.Errorf("after %d failing ticks: %+v", failTicks, h)
				}
				cp := readCheckpoint(t, st, env.state, h.Rule)
				r, _ := ruleByID(rs, h.Rule)
				if want := TimingOf(r).End(start.Add(time.Hour)); !cp.End.Equal(want) {
					t.Errorf("%s checkpoint moved while failing: %s, want %s", h.Rule, cp.End, want)
				}
			}
			flaky.failNext("count", 0)
		}
	})
	got := signalIDs(t, st, env.signals)
	if !slices.Equal(got, refIDs) {
		t.Fatalf("signals after failures and catch-up differ from an undisturbed run:\n got %d %v\nwant %d %v", len(got), got, len(refIDs), refIDs)
	}
	for _, h := range m.Health() {
		if h.Health != HealthOK {
			t.Errorf("after catch-up: %+v", h)
		}
	}
	if n := testutil.ToFloat64(m.metrics.errors.WithLabelValues(rs[0].ID)); n < float64(failTicks*3) {
		t.Errorf("errors_total = %v, want at least %d (3 attempts a tick)", n, failTicks*3)
	}
	if n := testutil.ToFloat64(m.metrics.runs.WithLabelValues(rs[0].ID, OutcomeFailure)); n != float64(failTicks) {
		t.Errorf("runs_total{failure} = %v, want %d", n, failTicks)
	}
	t.Logf("%d signals, identical after %d failing ticks", len(got), failTicks)
}

func ruleByID(rs []*rules.Rule, id string) (*rules.Rule, bool) {
	for _, r := range rs {
		if r.ID == id {
			return r, true
		}
	}
	return nil, false
}

// Two replicas share the rules; one dies and the other takes its rules
// over after the leases expire; a third joins and gets its share. No
// window is evaluated twice and none is missed.
func TestLeasesTwoReplicas(t *testing.T) {
	runLeaseScenario(t, embedded.NewMemory(), "offtrail-state-test")
}

func runLeaseScenario(t *testing.T, st Store, stateIndex string) {
	ctx := t.Context()
	base := testRules(t)[1] // hourly
	var rs []*rules.Rule
	for i := 0; i < 4; i++ {
		rs = append(rs, cloneRule(base, fmt.Sprintf("rule-%d", i)))
	}
	rec := newRecorder(nil)
	clock := newClock(ts("2024-03-05T00:05:00Z"))
	mk := func(id string) *Manager {
		m := newTestManager(t, st, rec, clock, id, func(o *Options) {
			o.LeaseDuration = time.Hour
			o.StateIndex = stateIndex
		})
		m.Reload(rs)
		return m
	}
	a, b := mk("replica-a"), mk("replica-b")
	step := func(ms ...*Manager) {
		for _, m := range ms {
			if err := m.SyncLeases(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range ms {
			if err := m.SyncLeases(ctx); err != nil { // second pass: rebalance after heartbeats
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, m := range ms {
			for _, r := range rs {
				wg.Go(func() {
					if err := m.RunRule(ctx, r.ID); err != nil && !errors.Is(err, errLeaseLost) {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		clock.Advance(15 * time.Minute)
	}
	held := func(ms ...*Manager) map[string]int {
		out := map[string]int{}
		for _, m := range ms {
			for _, r := range rs {
				if m.Holds(r.ID) {
					out[m.ReplicaID()]++
					out["total"]++
				}
			}
		}
		return out
	}
	for i := 0; i < 8; i++ {
		step(a, b)
	}
	if h := held(a, b); h["replica-a"] != 2 || h["replica-b"] != 2 || h["total"] != 4 {
		t.Fatalf("leases with two replicas: %v", h)
	}
	// a dies without releasing anything; b runs on alone and takes a's
	// rules once their leases (1h) and a's heartbeat expire.
	for i := 0; i < 8; i++ {
		step(b)
	}
	if h := held(b); h["replica-b"] != 4 {
		t.Fatalf("leases after a died: %v", h)
	}
	// c joins: b hands over half.
	c := mk("replica-c")
	for i := 0; i < 4; i++ {
		step(b, c)
	}
	if h := held(b, c); h["replica-b"] != 2 || h["replica-c"] != 2 {
		t.Fatalf("leases after c joined: %v", h)
	}
	// Every rule's ends are contiguous: nothing missed, nothing twice.
	got := rec.evaluated(t)
	byRule := map[string][]time.Time{}
	for _, k := range got {
		var id, end string
		for i := len(k) - 1; i >= 0; i-- {
			if k[i] == '@' {
				id, end = k[:i], k[i+1:]
				break
			}
		}
		byRule[id] = append(byRule[id], ts(end))
	}
	for _, r := range rs {
		ends := byRule[r.ID]
		if len(ends) < 4 {
			t.Fatalf("%s: only %d windows evaluated", r.ID, len(ends))
		}
		slices.SortFunc(ends, func(x, y time.Time) int { return x.Compare(y) })
		for i := 1; i < len(ends); i++ {
			if ends[i].Sub(ends[i-1]) != time.Hour {
				t.Errorf("%s: gap between %s and %s", r.ID, ends[i-1], ends[i])
			}
		}
		want := TimingOf(r).End(clock.Now().Add(-15 * time.Minute))
		if !ends[len(ends)-1].Equal(want) {
			t.Errorf("%s: last end %s, want %s", r.ID, ends[len(ends)-1], want)
		}
	}
	var reps Replicas
	if _, _, err := getDoc(ctx, st, stateIndex, replicasID, &reps); err != nil {
		t.Fatal(err)
	}
	if _, ok := reps.Members["replica-a"]; ok {
		t.Errorf("dead replica still listed: %v", reps.Members)
	}
	// A graceful stop hands the leases over at once.
	b.Stop(ctx)
	if err := c.SyncLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if h := held(c); h["replica-c"] != 4 {
		t.Fatalf("after b stopped gracefully: %v", h)
	}
}

// The cron loop itself: a rule on a one-second interval runs on its own,
// and cancelling the context stops the manager and releases its leases.
func TestRunWithCron(t *testing.T) {
	st := embedded.NewMemory()
	r := cloneRule(testRules(t)[1], "every-second")
	r.Schedule.Interval = rules.Duration(time.Second)
	r.Schedule.Lookback = rules.Duration(time.Minute)
	rec := newRecorder(nil)
	m, err := New(Options{Store: st, Evaluator: rec, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		ReplicaID: "cron", LeaseDuration: 3 * time.Second, StateIndex: "s"})
	if err != nil {
		t.Fatal(err)
	}
	m.Reload([]*rules.Rule{r})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.evaluated(t)) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(rec.evaluated(t)); n < 2 {
		t.Fatalf("%d runs in 5s on a 1s interval", n)
	}
	var l Lease
	if _, _, err := getDoc(t.Context(), st, "s", leaseID(r.ID), &l); err != nil || l.Owner != "" {
		t.Fatalf("lease after shutdown: %+v %v", l, err)
	}
	if err := m.Ready(t.Context()); err != nil {
		t.Errorf("ready: %v", err)
	}
}

func TestBacktestMatchesScheduler(t *testing.T) {
	st := fixtureStore(t)
	rs := testRules(t)
	from, to := ts("2024-03-05T02:10:00Z"), ts("2024-03-05T21:10:00Z")
	var streamed []string
	var progress []Progress
	stats, err := Backtest(t.Context(), newDetector(t, st), rs, from, to, BacktestOptions{
		OnSignal:   func(s *detector.Signal) error { streamed = append(streamed, s.ID); return nil },
		OnProgress: func(p Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(streamed)
	if len(slices.Compact(slices.Clone(streamed))) != len(streamed) {
		t.Fatal("backtest streamed a signal id twice")
	}
	// The scheduler over the same span writes the same signals.
	sched := fixtureStore(t)
	clock := newClock(from)
	m := newTestManager(t, sched, newDetector(t, sched), clock, "s", nil)
	m.Reload(rs)
	tickHourly(t, m, clock, rs, 20, nil)
	if want := signalIDs(t, sched, "logs-offtrail.alerts-test"); !slices.Equal(streamed, want) {
		t.Fatalf("backtest signals %d %v\nscheduler %d %v", len(streamed), streamed, len(want), want)
	}
	total := 0
	for i, s := range stats {
		want := len(BacktestEnds(TimingOf(rs[i]), from, to))
		if s.Windows != want {
			t.Errorf("%s: %d windows, want %d", s.Rule, s.Windows, want)
		}
		total += s.Signals
	}
	if total != len(streamed) || progress[len(progress)-1].Done != progress[len(progress)-1].Total {
		t.Errorf("stats %+v, last progress %+v", stats, progress[len(progress)-1])
	}
	if _, err := Backtest(t.Context(), newDetector(t, st), rs, to, from, BacktestOptions{}); err == nil {
		t.Error("from after to must fail")
	}
}

// A replica whose lease was taken over cannot write a checkpoint, even
// when its own clock says the lease is still valid: the write is
// conditional on the lease document's version.
func TestCheckpointFencedByLease(t *testing.T) {
	ctx := t.Context()
	st := embedded.NewMemory()
	clock := newClock(ts("2024-03-05T10:00:00Z"))
	a := newLeaser(st, "s", "a", time.Minute, clock.Now)
	if ok, err := a.acquire(ctx, "r"); !ok || err != nil {
		t.Fatalf("a acquire: %v %v", ok, err)
	}
	if err := a.saveCheckpoint(ctx, "r", Checkpoint{Rule: "r", End: ts("2024-03-05T10:00:00Z")}); err != nil {
		t.Fatal(err)
	}
	// b's clock is past a's lease; a's is not (a paused, or skewed).
	later := newClock(ts("2024-03-05T10:02:00Z"))
	b := newLeaser(st, "s", "b", time.Minute, later.Now)
	for range 7 { // b joins and has been live for two leases
		if _, _, err := b.heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		later.Advance(20 * time.Second)
	}
	if ok, err := b.acquire(ctx, "r"); !ok || err != nil {
		t.Fatalf("b takeover: %v %v", ok, err)
	}
	if !a.holds("r") {
		t.Fatal("a's clock should still see its lease")
	}
	err := a.saveCheckpoint(ctx, "r", Checkpoint{Rule: "r", End: ts("2024-03-05T11:00:00Z")})
	if !errors.Is(err, errLeaseLost) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("fenced save: %v, want lease lost on a conflict", err)
	}
	if a.holds("r") {
		t.Error("a still believes it holds the lease")
	}
	if cp := readCheckpoint(t, st, "s", "r"); !cp.End.Equal(ts("2024-03-05T10:00:00Z")) {
		t.Fatalf("checkpoint moved to %s by the fenced replica", cp.End)
	}
	// The new owner inherited the checkpoint and moves it on.
	got, err := b.checkpoint(ctx, "r")
	if err != nil || !got.End.Equal(ts("2024-03-05T10:00:00Z")) {
		t.Fatalf("b reads %+v %v", got, err)
	}
	if err := b.saveCheckpoint(ctx, "r", Checkpoint{Rule: "r", End: ts("2024-03-05T12:00:00Z")}); err != nil {
		t.Fatal(err)
	}
	// Renewals and checkpoints of one replica never fence each other.
	for range 3 {
		if ok, err := b.acquire(ctx, "r"); !ok || err != nil {
			t.Fatalf("renew: %v %v", ok, err)
		}
		if err := b.saveCheckpoint(ctx, "r", Checkpoint{Rule: "r", End: ts("2024-03-05T12:00:00Z")}); err != nil {
			t.Fatal(err)
		}
	}
}

// A checkpoint of an earlier version (its own document) is where a lease
// without one starts.
func TestLegacyCheckpointRead(t *testing.T) {
	ctx := t.Context()
	st := embedded.NewMemory()
	if _, err := putDoc(ctx, st, "s", checkpointID("r"), Checkpoint{Rule: "r", End: ts("2024-03-05T09:00:00Z")}, nil); err != nil {
		t.Fatal(err)
	}
	l := newLeaser(st, "s", "a", time.Minute, newClock(ts("2024-03-05T10:00:00Z")).Now)
	if ok, err := l.acquire(ctx, "r"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	cp, err := l.checkpoint(ctx, "r")
	if err != nil || !cp.End.Equal(ts("2024-03-05T09:00:00Z")) {
		t.Fatalf("checkpoint %+v %v, want the legacy one", cp, err)
	}
}
