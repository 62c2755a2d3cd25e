package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// Evaluator evaluates a rule over a window (a *detector.Detector).
type Evaluator interface {
	Evaluate(ctx context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error)
}

// Store is what the manager needs of a backend: its state documents,
// create-only signal writes and incident documents written in place.
type Store interface {
	StateStore
	WriteSignals(ctx context.Context, index string, docs []store.Doc) (store.WriteResult, error)
	PutDocs(ctx context.Context, index string, docs []store.Doc) error
}

// DefaultSignalsIndex is where signals go unless configured otherwise.
const DefaultSignalsIndex = "logs-offtrail.alerts-default"

// writtenTeller is an Evaluator told which signals a window wrote, once
// it is fully written (detector.Detector.Written), so that later windows
// overlapping it need not build them again.
type writtenTeller interface {
	Written(r *rules.Rule, w store.Window, sigs []*detector.Signal)
}

// Options configure a Manager. Store and Evaluator are required.
type Options struct {
	Store     Store
	Evaluator Evaluator
	Logger    zerolog.Logger
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer

	SignalsIndex string
	StateIndex   string
	ReplicaID    string // default NewReplicaID()
	Limits       Limits
	// LeaseDuration bounds how long a dead replica's rules stay unowned;
	// the heartbeat that holds its leases is renewed every third of it.
	LeaseDuration time.Duration
	// CheckpointEvery bounds how far a rule's written checkpoint may trail
	// the windows evaluated (default 1h): the first window of a lease and
	// a release always write it; otherwise the lease sync writes, in one
	// request for all rules, the checkpoints that trail by this much. A
	// crash then costs at most this span (and a sync) of windows evaluated
	// again, which write nothing twice (signals are create-only, incidents
	// idempotent), where writing every window cost a state write per rule
	// per tick.
	CheckpointEvery time.Duration
	// Attempts and Backoff: a failing window is tried Attempts times within
	// a tick, waiting Backoff, 2*Backoff, … in between (defaults 3, 1s).
	Attempts int
	Backoff  time.Duration
	// ShutdownTimeout bounds how long Run waits for running evaluations
	// after its context is cancelled (default 30s).
	ShutdownTimeout time.Duration
	// OnCreated, if set, is called after each window is written and
	// checkpointed with the signals that this replica's write created, never
	// those an earlier run, a restart or another replica wrote first:
	// notifications hook in here so each signal is announced once. It must
	// not block (hand the signals to a queue): it runs inside the rule's run.
	OnCreated func(r *rules.Rule, created []*detector.Signal)
	// Incidents bound sessions and set the alerting threshold of the
	// incidents the manager keeps from every window's signals.
	Incidents detector.IncidentOptions
	// OnIncidents, if set, receives the incidents a window crossed the
	// threshold with for the first time (announce them); like OnCreated it
	// must not block.
	OnIncidents func(r *rules.Rule, incidents []*detector.Incident)
	// Triage, if set, fills incidents' triage blocks (detector.Triager).
	Triage *detector.Triager
	// Now is the clock (default time.Now); tests use a fake one.
	Now func() time.Time
}

// Health states of a rule.
const (
	HealthUnknown = "unknown"
	HealthOK      = "ok"
	HealthFailing = "failing"
)

// RuleHealth is the last known state of one rule on this replica.
type RuleHealth struct {
	Rule         string        `json:"rule"`
	Health       string        `json:"health"`
	LastError    string        `json:"last_error,omitempty"`
	LastRun      time.Time     `json:"last_run"`
	LastDuration time.Duration `json:"last_duration"`
	LastSuccess  time.Time     `json:"last_success"`
	Checkpoint   time.Time     `json:"checkpoint"`
	Failures     int           `json:"consecutive_failures"`
	Leased       bool          `json:"leased"`
}

type ruleState struct {
	// running serialises the rule's runs with the release of its lease, so
	// a lease is never handed over in the middle of a run.
	running sync.Mutex

	mu     sync.Mutex
	rule   *rules.Rule
	entry  cron.EntryID
	health RuleHealth
}

func (rs *ruleState) current() *rules.Rule {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.rule
}

// Manager schedules rules, as Prometheus' rules.Manager schedules groups.
type Manager struct {
	opts      Options
	log       zerolog.Logger
	metrics   *Metrics
	leases    *leaser
	incidents *Incidents
	cron      *cron.Cron

	// runCtx is the context of every run; cancelled when a graceful
	// shutdown times out.
	runCtx     context.Context
	cancelRuns context.CancelFunc

	mu     sync.Mutex
	rules  map[string]*ruleState
	loaded bool
}

// New returns a Manager; call Reload to give it rules and Run to start it.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Evaluator == nil {
		return nil, errors.New("schedule: Store and Evaluator are required")
	}
	if opts.SignalsIndex == "" {
		opts.SignalsIndex = DefaultSignalsIndex
	}
	if opts.StateIndex == "" {
		opts.StateIndex = DefaultStateIndex
	}
	if opts.ReplicaID == "" {
		opts.ReplicaID = NewReplicaID()
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Limits = opts.Limits.withDefaults()
	log := opts.Logger.With().Str("component", "scheduler").Str("replica", opts.ReplicaID).Logger()
	m := &Manager{
		opts:    opts,
		log:     log,
		metrics: NewMetrics(opts.Registerer),
		leases:  newLeaser(opts.Store, opts.StateIndex, opts.ReplicaID, opts.LeaseDuration, opts.Now),
		rules:   map[string]*ruleState{},
		incidents: &Incidents{Store: opts.Store, SignalsIndex: opts.SignalsIndex, StateIndex: opts.StateIndex,
			Options: opts.Incidents, Now: opts.Now, Triage: opts.Triage},
	}
	clog := cronLogger{log}
	m.cron = cron.New(cron.WithLocation(time.UTC), cron.WithLogger(clog),
		cron.WithChain(cron.Recover(clog), cron.SkipIfStillRunning(clog)))
	m.runCtx, m.cancelRuns = context.WithCancel(context.Background())
	return m, nil
}

// ReplicaID returns this replica's id.
func (m *Manager) ReplicaID() string { return m.opts.ReplicaID }

// TimingOf returns a rule's window timing.
func TimingOf(r *rules.Rule) Timing {
	return Timing{Interval: r.Schedule.Interval.Std(), Lookback: r.Schedule.Lookback.Std(), Delay: r.Schedule.QueryDelay.Std()}
}

// Reload replaces the rule set. Rules keep their checkpoints (they live in
// the state index); removed rules stop and their leases are released on the
// next lease sync.
func (m *Manager) Reload(rs []*rules.Rule) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[string]*rules.Rule{}
	for _, r := range rs {
		next[r.ID] = r
	}
	for id, st := range m.rules {
		if _, ok := next[id]; !ok {
			m.cron.Remove(st.entry)
			delete(m.rules, id)
			m.metrics.forget(id)
			m.log.Info().Str("rule", id).Msg("rule removed")
		}
	}
	for id, r := range next {
		st, ok := m.rules[id]
		if !ok {
			st = &ruleState{health: RuleHealth{Rule: id, Health: HealthUnknown}}
			m.rules[id] = st
		}
		st.mu.Lock()
		old := st.rule
		st.rule = r
		st.mu.Unlock()
		if ok && TimingOf(old) == TimingOf(r) {
			continue
		}
		if ok {
			m.cron.Remove(st.entry)
		}
		st.entry = m.cron.Schedule(newTickSchedule(r.ID, TimingOf(r)), cron.FuncJob(func() { m.runRule(m.runCtx, st) }))
	}
	m.loaded = true
	m.log.Info().Int("rules", len(m.rules)).Msg("rules loaded")
}

// ruleIDs returns the scheduled rule ids, sorted.
func (m *Manager) ruleIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.rules))
	for id := range m.rules {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (m *Manager) state(id string) (*ruleState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.rules[id]
	return st, ok
}

// LeaseSyncInterval is how often Run syncs the leases (SyncLeases): a
// third of the lease duration, so two syncs can fail before one expires.
func (m *Manager) LeaseSyncInterval() time.Duration { return m.opts.LeaseDuration / 3 }

// Run starts the schedule and blocks until ctx is cancelled, then stops
// gracefully: no new runs start, running ones get ShutdownTimeout to
// finish, and the leases are released so other replicas take over at once.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.SyncLeases(ctx); err != nil {
		m.log.Warn().Err(err).Msg("lease sync failed; retrying on schedule")
	}
	if _, err := m.cron.AddFunc(fmt.Sprintf("@every %s", m.LeaseSyncInterval()), func() {
		if err := m.SyncLeases(m.runCtx); err != nil {
			m.log.Warn().Err(err).Msg("lease sync failed")
		}
	}); err != nil {
		return fmt.Errorf("schedule lease sync: %w", err)
	}
	m.cron.Start()
	<-ctx.Done()
	m.log.Info().Msg("stopping scheduler")
	stopped := m.cron.Stop()
	select {
	case <-stopped.Done():
	case <-time.After(m.opts.ShutdownTimeout):
		m.log.Warn().Dur("timeout", m.opts.ShutdownTimeout).Msg("runs still going at shutdown timeout; cancelling them")
		m.cancelRuns()
		<-stopped.Done()
	}
	m.cancelRuns()
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.releaseAll(rctx)
	return nil
}

// releaseAll gives up every lease and leaves the replica list.
func (m *Manager) releaseAll(ctx context.Context) {
	for _, id := range m.leases.heldRules() {
		if err := m.leases.release(ctx, id); err != nil {
			m.log.Warn().Err(err).Str("rule", id).Msg("lease release failed")
		}
	}
	if err := m.leases.leave(ctx); err != nil {
		m.log.Warn().Err(err).Msg("leaving replica list failed")
	}
	m.metrics.leases.Set(0)
}

// Stop releases this replica's leases; for callers that drive the
// manager with RunRule and SyncLeases instead of Run (tests, one-shot use).
func (m *Manager) Stop(ctx context.Context) { m.releaseAll(ctx) }

// SyncLeases records a heartbeat, which renews the leases held, releases
// those above this replica's fair share (ceil(rules / live replicas)) and
// of removed rules, takes free leases up to the share, and writes the
// checkpoints due (Options.CheckpointEvery) in one request. A lease lost
// to another replica is found by the fence: its next checkpoint is refused.
func (m *Manager) SyncLeases(ctx context.Context) error {
	live, lost, err := m.leases.heartbeat(ctx)
	for _, id := range lost {
		m.log.Warn().Str("rule", id).Msg("lease lost: another replica took it while this one's heartbeat had lapsed")
	}
	if live == 0 {
		return err
	}
	errs := []error{err}
	m.metrics.replicas.Set(float64(live))
	ids := m.ruleIDs()
	share := fairShare(len(ids), live)
	held := 0
	for _, id := range m.leases.heldRules() {
		st, ok := m.state(id)
		if !ok {
			errs = append(errs, m.leases.release(ctx, id))
			continue
		}
		if held >= share && st.running.TryLock() {
			// Above the fair share (a replica joined): hand this one over.
			// The run lock makes sure no run of it is under way.
			errs = append(errs, m.leases.release(ctx, id))
			st.running.Unlock()
			m.log.Info().Str("rule", id).Int("share", share).Msg("lease released to rebalance")
			continue
		}
		held++ // renewed by the heartbeat
	}
	// Free or expired leases, in this replica's order of preference.
	sort.Slice(ids, func(i, j int) bool {
		return preference(m.opts.ReplicaID, ids[i]) < preference(m.opts.ReplicaID, ids[j])
	})
	for _, id := range ids {
		if held >= share {
			break
		}
		if m.leases.holds(id) {
			continue
		}
		ok, err := m.leases.acquire(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			held++
			m.log.Info().Str("rule", id).Msg("lease acquired")
		}
	}
	m.metrics.leases.Set(float64(held))
	errs = append(errs, m.leases.flushDue(ctx, m.opts.CheckpointEvery))
	return errors.Join(errs...)
}

// Holds reports whether this replica holds the lease of rule id.
func (m *Manager) Holds(id string) bool { return m.leases.holds(id) }

// RunRule runs one tick of rule id now (as its schedule would), if this
// replica holds its lease. Tests drive the manager with it.
func (m *Manager) RunRule(ctx context.Context, id string) error {
	st, ok := m.state(id)
	if !ok {
		return fmt.Errorf("no rule %q", id)
	}
	return m.runRule(ctx, st)
}

var errLeaseLost = errors.New("lease lost")

func (m *Manager) runRule(ctx context.Context, st *ruleState) error {
	if !st.running.TryLock() {
		return nil // a run of this rule is still going
	}
	defer st.running.Unlock()
	r := st.current()
	if !m.leases.holds(r.ID) {
		return nil
	}
	start := m.opts.Now()
	log := m.log.With().Str("rule", r.ID).Logger()
	var rs runStats
	cp, err := m.tick(ctx, r, log, &rs)
	took := m.opts.Now().Sub(start)
	m.metrics.duration.WithLabelValues(r.ID).Observe(took.Seconds())

	st.mu.Lock()
	h := &st.health
	h.LastRun, h.LastDuration = start, took
	if cp != nil {
		h.Checkpoint = cp.End
		m.metrics.gap.WithLabelValues(r.ID).Set(max(0, TimingOf(r).End(m.opts.Now()).Sub(cp.End).Seconds()))
	}
	if err != nil {
		h.Health, h.LastError = HealthFailing, err.Error()
		h.Failures++
		failures := h.Failures
		st.mu.Unlock()
		m.metrics.runs.WithLabelValues(r.ID, OutcomeFailure).Inc()
		m.metrics.healthy.WithLabelValues(r.ID).Set(0)
		rs.log(log.Error().Err(err).Int("consecutive_failures", failures), took).Msg("rule run failed; the next tick catches up")
		return err
	}
	h.Health, h.LastError, h.Failures, h.LastSuccess = HealthOK, "", 0, start
	st.mu.Unlock()
	m.metrics.runs.WithLabelValues(r.ID, OutcomeSuccess).Inc()
	m.metrics.healthy.WithLabelValues(r.ID).Set(1)
	m.metrics.lastSuccess.WithLabelValues(r.ID).Set(float64(m.opts.Now().UnixNano()) / 1e9)
	rs.log(log.Info(), took).Msg("rule run")
	return nil
}

// runStats is what one run of a rule did, for its one log line.
type runStats struct {
	windows          int          // windows evaluated to the end (checkpointed)
	span             store.Window // from the first window's start to the last's end
	signals, created int          // found in those windows; created by this replica
	incidents        int          // crossed the threshold
}

func (rs *runStats) add(w store.Window, signals, created, incidents int) {
	if rs.windows == 0 || w.From.Before(rs.span.From) {
		rs.span.From = w.From
	}
	if w.To.After(rs.span.To) {
		rs.span.To = w.To
	}
	rs.windows++
	rs.signals += signals
	rs.created += created
	rs.incidents += incidents
}

func (rs *runStats) log(e *zerolog.Event, took time.Duration) *zerolog.Event {
	e = e.Int("windows", rs.windows)
	if rs.windows > 0 {
		e = e.Stringer("span", rs.span)
	}
	return e.Int("signals", rs.signals).Int("created", rs.created).Int("incidents", rs.incidents).Dur("took", took)
}

// tick plans and evaluates the windows due for r, checkpointing after
// each. On an error the checkpoint stays at the last window that
// succeeded, so the next tick resumes there.
func (m *Manager) tick(ctx context.Context, r *rules.Rule, log zerolog.Logger, rs *runStats) (*Checkpoint, error) {
	var cp *Checkpoint
	if err := m.retry(ctx, r.ID, func() (err error) {
		cp, err = m.leases.checkpoint(ctx, r.ID)
		if errors.Is(err, errLeaseLost) {
			return permanent{err}
		}
		return err
	}); err != nil {
		return nil, err
	}
	tm := TimingOf(r)
	now := m.opts.Now()
	plan := PlanTick(tm, cp.End, now, m.opts.Limits)
	if plan.Skipped > 0 {
		log.Warn().Time("first_end", plan.SkippedFrom).Time("last_end", plan.SkippedTo).Int("windows", plan.Skipped).
			Dur("max_gap", m.opts.Limits.MaxGap).Msg("giving up missed windows older than max_gap")
		m.metrics.skipped.WithLabelValues(r.ID).Add(float64(plan.Skipped))
		cp.recordGap(plan, tm.Interval, now)
		cp.End, cp.Updated, cp.Owner = plan.SkippedTo, now, m.opts.ReplicaID
		if err := m.saveCheckpoint(ctx, r.ID, cp); err != nil {
			return cp, err
		}
	}
	if len(plan.Ends) > 1 || plan.Deferred > 0 {
		log.Info().Int("windows", len(plan.Ends)).Int("deferred", plan.Deferred).Msg("catching up")
	}
	for _, end := range plan.Ends {
		if !m.leases.holds(r.ID) {
			return cp, errLeaseLost
		}
		if err := m.evaluate(ctx, r, tm.Window(end), cp, rs); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

func (m *Manager) saveCheckpoint(ctx context.Context, rule string, cp *Checkpoint) error {
	return m.retry(ctx, rule, func() error {
		err := m.leases.saveCheckpoint(ctx, rule, *cp)
		if errors.Is(err, errLeaseLost) {
			// Another replica owns the rule: never overwrite, never retry.
			return permanent{err}
		}
		return err
	})
}

// RunID names one evaluation of a rule's window: who ran it, and which
// window, so a signal can be traced to its run.
func RunID(prefix, rule string, end time.Time) string {
	return fmt.Sprintf("%s:%s:%d", prefix, rule, end.Unix())
}

// evaluate runs one window of r: the window's signals are found and
// written, folded into incidents, the checkpoint is advanced, and only
// then are the new signals and incidents handed to the notification queues, so a slow channel never holds up
// detection or the checkpoint.
func (m *Manager) evaluate(ctx context.Context, r *rules.Rule, w store.Window, cp *Checkpoint, rs *runStats) error {
	// 1. Find the signals and write them in one create-only request.
	all, created, err := m.findAndWrite(ctx, r, w)
	// 2. Fold them into their actors' incidents (idempotent: a retried
	// window adds nothing twice).
	var announce []*detector.Incident
	if err == nil && len(all) > 0 {
		announce, err = m.updateIncidents(ctx, r, all)
	}
	// 3. Advance the checkpoint, only past a window fully written. A
	// lease's first window writes it now; others keep it for the lease
	// sync, which writes those due (Options.CheckpointEvery) for all rules
	// in one request. A window with signals needs no write of its own: its
	// signals are create-only and its incidents idempotent, so evaluating
	// it again after a crash writes and announces nothing twice.
	if err == nil {
		m.metrics.windowsByRule.WithLabelValues(r.ID).Inc()
		cp.End, cp.Updated, cp.Owner = w.To, m.opts.Now(), m.opts.ReplicaID
		if m.leases.unwritten(r.ID) {
			err = m.saveCheckpoint(ctx, r.ID, cp)
		} else {
			m.leases.keep(r.ID, *cp)
		}
	}
	if err == nil {
		rs.add(w, len(all), len(created), len(announce))
		if wr, ok := m.opts.Evaluator.(writtenTeller); ok {
			wr.Written(r, w, all) // the window is whole: later ones may skip its signals
		}
	}
	// 4. Enqueue the created signals, even after a failure: they are in
	// the index now, so no later run would create, and announce, them.
	// Incidents are announced once, when they first cross the threshold.
	if m.opts.OnCreated != nil && len(created) > 0 {
		m.opts.OnCreated(r, created)
	}
	if m.opts.OnIncidents != nil && len(announce) > 0 {
		m.opts.OnIncidents(r, announce)
	}
	return err
}

// updateIncidents folds a window's signals into incidents, retrying like
// the signal write.
func (m *Manager) updateIncidents(ctx context.Context, r *rules.Rule, sigs []*detector.Signal) ([]*detector.Incident, error) {
	var announce []*detector.Incident
	err := m.retry(ctx, r.ID, func() error {
		ups, err := m.incidents.AddFrom(ctx, detector.TriageSource{Index: r.Source.Index, Profile: r.Profile()}, sigs)
		for _, u := range ups {
			if u.New {
				announce = append(announce, u.Incident)
			}
		}
		return err
	})
	if err == nil && len(announce) > 0 {
		m.log.Info().Str("rule", r.ID).Int("incidents", len(announce)).Msg("incidents crossed the threshold")
	}
	return announce, err
}

// findAndWrite evaluates r over w and writes its signals, retrying both
// (a re-evaluated window yields the same ids). It returns the window's
// signals and those this replica created, those of a failed attempt's
// partial write included.
func (m *Manager) findAndWrite(ctx context.Context, r *rules.Rule, w store.Window) ([]*detector.Signal, []*detector.Signal, error) {
	var all, created []*detector.Signal
	repeats := 0
	err := m.retry(ctx, r.ID, func() error {
		res, err := m.opts.Evaluator.Evaluate(ctx, r, w, RunID(m.opts.ReplicaID, r.ID, w.To))
		if err != nil {
			return err
		}
		all, repeats = res.Signals, res.Repeats
		wr, err := m.writeSignals(ctx, r, w, res.Signals)
		created = append(created, pick(res.Signals, wr.CreatedIDs)...)
		return err
	})
	if err == nil {
		m.metrics.repeats.WithLabelValues(r.ID).Add(float64(repeats))
	}
	return all, created, err
}

// writeSignals writes sigs in one create-only bulk request.
func (m *Manager) writeSignals(ctx context.Context, r *rules.Rule, w store.Window, sigs []*detector.Signal) (store.WriteResult, error) {
	if len(sigs) == 0 {
		return store.WriteResult{}, nil
	}
	docs, err := SignalDocs(sigs)
	if err != nil {
		return store.WriteResult{}, permanent{err}
	}
	wr, err := m.opts.Store.WriteSignals(ctx, m.opts.SignalsIndex, docs)
	m.metrics.signals.WithLabelValues(r.ID).Add(float64(wr.Created))
	if err != nil {
		return wr, fmt.Errorf("write signals to %s: %w", m.opts.SignalsIndex, err)
	}
	m.log.Info().Str("rule", r.ID).Stringer("window", w).Int("created", wr.Created).Int("existed", wr.Existed).Msg("signals written")
	return wr, nil
}

// pick returns the signals whose ids are in ids.
func pick(sigs []*detector.Signal, ids []string) []*detector.Signal {
	if len(ids) == 0 {
		return nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var out []*detector.Signal
	for _, s := range sigs {
		if want[s.ID] {
			out = append(out, s)
			delete(want, s.ID) // a duplicate id in one window is one signal
		}
	}
	return out
}

// SignalDocs renders signals as documents for a create-only write.
func SignalDocs(sigs []*detector.Signal) ([]store.Doc, error) {
	docs := make([]store.Doc, 0, len(sigs))
	for _, s := range sigs {
		b, err := json.Marshal(s.Document())
		if err != nil {
			return nil, fmt.Errorf("signal %s: %w", s.ID, err)
		}
		docs = append(docs, store.Doc{ID: s.ID, Source: b})
	}
	return docs, nil
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retry runs fn up to Attempts times with exponential backoff; each failed
// attempt is counted.
func (m *Manager) retry(ctx context.Context, rule string, fn func() error) error {
	var err error
	for attempt := 0; attempt < m.opts.Attempts; attempt++ {
		if attempt > 0 {
			wait := m.opts.Backoff << (attempt - 1)
			m.log.Warn().Err(err).Str("rule", rule).Int("attempt", attempt+1).Dur("backoff", wait).Msg("retrying")
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = fn(); err == nil {
			return nil
		}
		m.metrics.errors.WithLabelValues(rule).Inc()
		var p permanent
		if errors.As(err, &p) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Health returns every rule's health, sorted by rule id.
func (m *Manager) Health() []RuleHealth {
	m.mu.Lock()
	states := make([]*ruleState, 0, len(m.rules))
	for _, st := range m.rules {
		states = append(states, st)
	}
	m.mu.Unlock()
	out := make([]RuleHealth, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		h := st.health
		st.mu.Unlock()
		h.Leased = m.leases.holds(h.Rule)
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
	return out
}

// Ready reports whether rules are loaded and the state store answers.
func (m *Manager) Ready(ctx context.Context) error {
	m.mu.Lock()
	loaded := m.loaded
	m.mu.Unlock()
	if !loaded {
		return errors.New("no rules loaded")
	}
	_, _, err := m.opts.Store.GetState(ctx, m.opts.StateIndex, replicasID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("state store: %w", err)
	}
	return nil
}

// tickSchedule fires at the interval grid plus the query delay plus a
// per-rule offset, so rules with the same interval do not all start at
// once (Prometheus spreads rule groups the same way).
type tickSchedule struct {
	interval, shift time.Duration
}

func newTickSchedule(id string, tm Timing) tickSchedule {
	h := fnv.New64a()
	h.Write([]byte(id))
	var offset time.Duration
	if tm.Interval > 0 {
		offset = time.Duration(h.Sum64() % uint64(tm.Interval))
	}
	return tickSchedule{interval: tm.Interval, shift: tm.Delay + offset}
}

// Next implements cron.Schedule.
func (s tickSchedule) Next(t time.Time) time.Time {
	if s.interval <= 0 {
		return time.Time{}
	}
	return floorTo(t.Add(-s.shift), s.interval).Add(s.interval + s.shift)
}

// cronLogger adapts zerolog to cron.Logger.
type cronLogger struct{ log zerolog.Logger }

func (c cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		c.log.Warn().Fields(kv).Msg("previous run still going; tick skipped")
		return
	}
	c.log.Debug().Fields(kv).Msg("cron " + msg)
}

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.log.Error().Err(err).Fields(kv).Msg("cron " + msg)
}
