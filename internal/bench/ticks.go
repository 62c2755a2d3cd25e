package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/ingest"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

// PackScope names the whole enabled pack in a Scope.
const PackScope = "pack"

// Scope is what one tick evaluates: the whole enabled pack or one rule.
type Scope struct {
	// Rule is a rule id, or "" for the whole enabled pack.
	Rule string
	// Writes: each rule's signals are written and folded into incidents
	// (state documents and incident alerts), as the scheduler does at a
	// tick; the two indices are created for the measurement and dropped
	// after it.
	Writes bool
	// RawHistory aggregates each rule's whole history every tick instead
	// of reading the baseline days (detector/baseline): the cost before
	// the cache, for comparison.
	RawHistory bool
	// Warmup ticks run after the cold one and before the timed ones,
	// untimed: a service's steady state begins once its context spans,
	// which end a day back, reach hours it has counted itself.
	Warmup int
	// LeaseDuration is the service's lease_duration (0: the scheduler's
	// default). The replica's heartbeat, written every third of it, is most
	// of a one-rule tick's state work, so this is the knob to price it.
	LeaseDuration time.Duration
	// HeapProfile, when set, is where the heap profile is written after
	// the timed ticks; HeapProfile+".before" gets one taken just before
	// them, so that "go tool pprof -base F.before F" shows what the timed
	// ticks allocated (alloc_space), not the cold tick's history.
	HeapProfile string
	// CPUProfile, when set, is where the CPU profile of the timed ticks
	// is written.
	CPUProfile string
	// TraceTicks, when set, gets one tab-separated line per timed tick
	// (TraceHeader): a day's cost sits in a few ticks (midnight, the
	// seals), which p50 and p95 do not name.
	TraceTicks io.Writer
}

// TraceHeader names the columns of Scope.TraceTicks.
const TraceHeader = "backend\tindex\tscope\ttick\twall_ms\tcounts\tstats\tevents\tstate\twrites\tstate_reads\n"

// Name is "pack" or the rule id.
func (s Scope) Name() string {
	name := s.Rule
	if s.Rule == "" {
		name = PackScope
	}
	if s.RawHistory {
		name += "-raw-history" // also part of the bench's index names
	}
	return name
}

// Latency is the per-tick cost of a scope.
type Latency struct {
	Scope         string
	Cold          time.Duration // first tick, caches empty
	P50, P95, Max time.Duration
	Ticks         int
	Step          time.Duration // between ticks: the shortest rule interval
	PeakHeap      uint64        // highest HeapInuse seen after an evaluation
	// PeakRSS is the process's peak resident set during the ticks (since
	// ResetPeakRSS; the process's whole life where that cannot be done).
	PeakRSS      uint64
	PeakRSSTicks bool // PeakRSS covers the ticks only
	Signals      int
	Repeats      int // signals of earlier windows not built again (detector.Result.Repeats)
	Incidents    int // incident documents written in the timed ticks (Writes)
	Rules        int
	PerRule      []RuleLatency // in pack order, over the warm ticks
	// Used is the CPU of the warm ticks, client and engine.
	Used Used
	// Settled is the engine's idle CPU rate just before the ticks (others'
	// work on shared engines, merges of a load), after waiting for it.
	Settled Settled
	// Requests are the store calls of the warm ticks.
	Requests Requests
	// Warmup is how many untimed ticks came between the cold and the timed.
	Warmup int
	// LeaseDuration is the service's lease_duration when the scope ran as
	// the service does (Scope.Writes), else 0.
	LeaseDuration time.Duration
}

// PerTick divides d over the warm ticks.
func (l *Latency) PerTick(d time.Duration) time.Duration {
	return d / time.Duration(max(1, l.Ticks))
}

// RuleLatency is one rule's share of the warm ticks.
type RuleLatency struct {
	Rule          string
	P50, P95, Max time.Duration
}

// PackLatency evaluates every enabled rule for the window it would run at
// each of n consecutive ticks ending at end (signals are not written).
func PackLatency(ctx context.Context, st store.Backend, index string, end time.Time, n int, log zerolog.Logger) (*Latency, error) {
	return Measure(ctx, st, index, Scope{}, end, n, log)
}

// scopeRules returns the scope's rules, reading index.
func scopeRules(sc Scope, index string) ([]*rules.Rule, error) {
	pack, diags := rules.Builtin()
	if diags.HasErrors() {
		return nil, diags.Err()
	}
	var src []*rules.Rule
	if sc.Rule == "" {
		src = pack.Enabled()
	} else {
		r, ok := pack.Get(sc.Rule)
		if !ok {
			return nil, fmt.Errorf("rule %q: not in the built-in pack", sc.Rule)
		}
		src = []*rules.Rule{r}
	}
	var rs []*rules.Rule
	for _, r := range src {
		rc := *r
		rc.Source.Index = []string{index}
		rs = append(rs, &rc)
	}
	return rs, nil
}

// ticker runs the scope's rules at one tick, evaluating only (no writes).
type ticker struct {
	det   *detector.Detector
	rules []*rules.Rule
}

// run evaluates every rule at tick and returns each rule's time.
func (t *ticker) run(ctx context.Context, tick time.Time, lat *Latency) ([]time.Duration, error) {
	times := make([]time.Duration, len(t.rules))
	for j, r := range t.rules {
		tm := schedule.TimingOf(r)
		start := time.Now()
		w := tm.Window(tm.End(tick))
		res, err := t.det.Evaluate(ctx, r, w, "bench")
		if err == nil {
			t.det.Written(r, w, res.Signals) // as the scheduler does
			lat.Repeats += res.Repeats
		}
		times[j] = time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("%s at %s: %w", r.ID, tick.Format(time.RFC3339), err)
		}
		lat.Signals += len(res.Signals)
	}
	return times, nil
}

// service runs the scope's rules as `offtrail run` does, through a
// schedule.Manager on the bench's clock: each tick's cost holds what the
// service does around the evaluations, not only them. That is the lease
// syncs (heartbeats) due since the last tick, each rule's checkpoint, its
// signals written create-only, and its incidents folded, triaged and
// written.
type service struct {
	m         *schedule.Manager
	ids       []string
	ev        *countingEvaluator
	now       *time.Time // the bench's clock, moved to each lease sync and back
	nextSync  time.Time
	syncEvery time.Duration // Manager.Run's cadence
}

// countingEvaluator counts what the manager's evaluations yield.
type countingEvaluator struct {
	det                       *detector.Detector
	windows, signals, repeats int
}

func (e *countingEvaluator) Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error) {
	res, err := e.det.Evaluate(ctx, r, w, runID)
	e.windows++
	if err == nil {
		e.signals += len(res.Signals)
		e.repeats += res.Repeats
	}
	return res, err
}

// Written passes on what the manager tells (detector.Detector.Written).
func (e *countingEvaluator) Written(r *rules.Rule, w store.Window, sigs []*detector.Signal) {
	e.det.Written(r, w, sigs)
}

// run syncs the leases that fell due before tick, at the cadence of
// Manager.Run, then runs every rule's tick.
func (s *service) run(ctx context.Context, tick time.Time, lat *Latency) ([]time.Duration, error) {
	for !s.nextSync.After(tick) {
		*s.now = s.nextSync
		if err := s.m.SyncLeases(ctx); err != nil {
			return nil, fmt.Errorf("lease sync at %s: %w", s.now.Format(time.RFC3339), err)
		}
		s.nextSync = s.nextSync.Add(s.syncEvery)
	}
	*s.now = tick
	times := make([]time.Duration, len(s.ids))
	sig, rep, win := s.ev.signals, s.ev.repeats, s.ev.windows
	for j, id := range s.ids {
		if !s.m.Holds(id) {
			return nil, fmt.Errorf("%s at %s: the bench's replica does not hold its lease", id, tick.Format(time.RFC3339))
		}
		start := time.Now()
		err := s.m.RunRule(ctx, id)
		times[j] = time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("%s at %s: %w", id, tick.Format(time.RFC3339), err)
		}
	}
	if s.ev.windows == win {
		// The step is the shortest interval: some rule has a window due.
		// None evaluated means checkpoints past the tick, state another
		// run left behind, and a tick that timed nothing.
		return nil, fmt.Errorf("tick at %s evaluated no window: the rules' checkpoints are past it (state left by an earlier run?)", tick.Format(time.RFC3339))
	}
	lat.Signals += s.ev.signals - sig
	lat.Repeats += s.ev.repeats - rep
	return times, nil
}

// Measure runs the scope's rules for the window each would run at n+1
// consecutive ticks ending at end, as the scheduler does. The first, cold
// tick is reported apart; latency, CPU (client and engine) and memory are
// of the n warm ticks.
func Measure(ctx context.Context, st store.Backend, index string, sc Scope, end time.Time, n int, log zerolog.Logger) (lat *Latency, err error) {
	rs, err := scopeRules(sc, index)
	if err != nil {
		return nil, err
	}
	step := time.Duration(math.MaxInt64)
	for _, r := range rs {
		step = min(step, schedule.TimingOf(r).Interval)
	}
	// The clock follows the ticks, as a service's does: what has sealed,
	// and what the tail holds, moves with them.
	total := sc.Warmup + n + 1 // the cold tick, the warm-up, the timed ticks
	now := end.Add(-time.Duration(total-1) * step)
	clock := func() time.Time { return now }
	calls := &countingStore{Backend: st}
	counted, dropDays, err := baselinesFor(calls, sc, clock, log)
	if err != nil {
		return nil, err
	}
	defer dropDays()
	det := detector.New(counted, log, detector.WithHighRiskActions(rules.HighRiskActions()), detector.WithClock(clock))
	var tk interface {
		run(ctx context.Context, tick time.Time, lat *Latency) ([]time.Duration, error)
	} = &ticker{det: det, rules: rs}
	if sc.Writes {
		svc, drop, err := newService(ctx, calls, counted, det, rs, index, sc, &now, clock, log)
		if err != nil {
			return nil, err
		}
		defer func() {
			if derr := drop(); derr != nil && err == nil {
				err = derr
			}
		}()
		tk = svc
	}
	meter := Meter{Store: st}
	lat = &Latency{Scope: sc.Name(), Rules: len(rs), Step: step, Warmup: sc.Warmup}
	if sc.Writes {
		lat.LeaseDuration = cmp.Or(sc.LeaseDuration, schedule.DefaultLeaseDuration)
	}
	if lat.Settled, err = meter.Settle(ctx); err != nil {
		return nil, err
	}
	runtime.GC()
	var times []time.Duration
	perRule := make([][]time.Duration, len(rs))
	var ms runtime.MemStats
	var before Sample
	var callsBefore Requests
	var docsBefore int64
	stopProfile := func() {}
	for k := range total {
		i := k - sc.Warmup // the timed ticks are 1..n
		if i == 1 {
			if sc.HeapProfile != "" {
				if err := writeHeapProfile(sc.HeapProfile + ".before"); err != nil {
					return nil, err
				}
			}
			if stopProfile, err = startCPUProfile(sc.CPUProfile); err != nil {
				return nil, err
			}
			callsBefore, docsBefore = calls.snapshot(), calls.docs.Load()
			lat.PeakRSSTicks = ResetPeakRSS()
			if before, err = meter.Take(ctx); err != nil {
				return nil, err
			}
			// Marks for what is read beside the bench (an engine's own
			// stats API): the timed ticks start here and end at "timed".
			log.Info().Str("scope", sc.Name()).Str("index", index).Int("ticks", n).Msg("timing")
		}
		tick := end.Add(-time.Duration(total-1-k) * step)
		now = tick
		start, callsAt := time.Now(), calls.snapshot()
		// The tick's minute labels its CPU samples: the hour's ticks do
		// different work (go tool pprof -tagfocus minute=m00).
		var ts []time.Duration
		pprof.Do(ctx, pprof.Labels("minute", "m"+tick.UTC().Format("04")), func(ctx context.Context) {
			ts, err = tk.run(ctx, tick, lat)
		})
		if err != nil {
			return nil, err
		}
		d := time.Since(start)
		if sc.TraceTicks != nil && i > 0 {
			r := calls.snapshot().Since(callsAt)
			if _, err := fmt.Fprintf(sc.TraceTicks, "%s\t%s\t%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\n", st.Kind(), index, sc.Name(), tick.UTC().Format(time.RFC3339),
				float64(d.Microseconds())/1000, r.Counts, r.Stats, r.Events, r.State, r.Writes, r.StateReads); err != nil {
				return nil, fmt.Errorf("trace ticks: %w", err)
			}
		}
		runtime.ReadMemStats(&ms)
		lat.PeakHeap = max(lat.PeakHeap, ms.HeapInuse)
		if k == 0 {
			lat.Cold = d
		}
		if i <= 0 {
			continue
		}
		times = append(times, d)
		for j := range ts {
			perRule[j] = append(perRule[j], ts[j])
		}
	}
	stopProfile()
	log.Info().Str("scope", sc.Name()).Str("index", index).Int("ticks", n).Msg("timed")
	lat.Requests = calls.snapshot().Since(callsBefore)
	lat.Incidents = int(calls.docs.Load() - docsBefore)
	if sc.HeapProfile != "" {
		if err := writeHeapProfile(sc.HeapProfile); err != nil {
			return nil, err
		}
	}
	after, err := meter.Take(ctx)
	if err != nil {
		return nil, err
	}
	if lat.Used, err = after.Since(before); err != nil {
		return nil, err
	}
	lat.PeakRSS = uint64(PeakRSS())
	lat.summarise(times, perRule, rs)
	return lat, nil
}

func (l *Latency) summarise(times []time.Duration, perRule [][]time.Duration, rs []*rules.Rule) {
	slices.Sort(times)
	l.Ticks = len(times)
	if len(times) == 0 {
		return
	}
	l.P50, l.P95, l.Max = quantile(times, 0.50), quantile(times, 0.95), times[len(times)-1]
	for j, r := range rs {
		ts := perRule[j]
		slices.Sort(ts)
		l.PerRule = append(l.PerRule, RuleLatency{Rule: r.ID, P50: quantile(ts, 0.50), P95: quantile(ts, 0.95), Max: ts[len(ts)-1]})
	}
}

// newService starts a scheduler over the signals and state indices of one
// measurement (named after the data index and the scope, so measurements
// never share incident or lease state), its clock the bench's, and
// returns what drops them.
func newService(ctx context.Context, st *countingStore, history detector.TriageCounter, det *detector.Detector, rs []*rules.Rule, index string, sc Scope,
	now *time.Time, clock func() time.Time, log zerolog.Logger) (*service, func() error, error) {
	base := index + "-" + sc.Name()
	indices := map[string]string{"signals": base + "-signals", "state": base + "-state"}
	// The templates offtrail run installs: without the state one, dynamic
	// mapping fixes a score's type at its first value (long), and the
	// first fractional score is refused.
	var templates []string
	for _, tmpl := range []string{"signals", "state"} {
		name, _, err := ingest.Template(tmpl, indices[tmpl], nil)
		if err != nil {
			return nil, nil, err
		}
		templates = append(templates, name)
	}
	drop := func() error {
		return DropIndices(context.Background(), st, []string{indices["signals"], indices["state"]}, templates)
	}
	// Left over from an interrupted run: start from empty state.
	if err := drop(); err != nil {
		return nil, nil, err
	}
	for _, tmpl := range []string{"signals", "state"} {
		if err := ingest.EnsureTemplate(ctx, st, tmpl, indices[tmpl], nil); err != nil {
			return nil, nil, err
		}
	}
	ev := &countingEvaluator{det: det}
	m, err := schedule.New(schedule.Options{Store: st, Evaluator: ev, Logger: log, SignalsIndex: indices["signals"],
		StateIndex: indices["state"], ReplicaID: "bench", Now: clock, LeaseDuration: sc.LeaseDuration,
		Triage: &detector.Triager{Store: st, History: history, SignalsIndex: indices["signals"], Log: log}})
	if err != nil {
		return nil, nil, err
	}
	m.Reload(rs)
	if err := m.SyncLeases(ctx); err != nil {
		return nil, nil, fmt.Errorf("lease sync: %w", err)
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	stop := func() error {
		m.Stop(context.Background())
		return drop()
	}
	every := m.LeaseSyncInterval()
	return &service{m: m, ids: ids, ev: ev, now: now, nextSync: now.Add(every), syncEvery: every}, stop, nil
}

// baselinesFor puts the baseline cache in front of st unless the scope
// asks for raw history. Its days go to a state index of their own, so the
// cold tick counts them as a first deployment would, and the warm ticks
// read them as a running service does.
func baselinesFor(st store.Backend, sc Scope, clock func() time.Time, log zerolog.Logger) (detector.Store, func(), error) {
	if sc.RawHistory {
		return st, func() {}, nil
	}
	state := fmt.Sprintf("offtrail-state-bench-%d", time.Now().UnixNano())
	c, err := baseline.New(st, baseline.Options{StateIndex: state, Now: clock, Log: log})
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = DropIndices(context.Background(), st, []string{state}, nil) }, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

// startCPUProfile starts profiling into path ("" does nothing) and
// returns what stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
