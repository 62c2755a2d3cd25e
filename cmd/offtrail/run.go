package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/channels"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

func init() {
	register(command{
		name:    "run",
		summary: "run the rules on their schedules (the service)",
		run:     runService,
	})
}

func runService(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "run", "[--config FILE] [--listen ADDR] [--startup-timeout DURATION]")
	cfgPath := fs.String("config", "", "YAML configuration file (default: defaults and OFFTRAIL_* environment only)")
	listen := fs.String("listen", "", "address for /metrics, /healthz and /readyz (overrides the config's listen)")
	replica := fs.String("replica-id", "", "this replica's id (default hostname-pid-random)")
	excFlag := addExceptionsFlag(fs)
	var startupTimeout time.Duration
	if v := os.Getenv(envStartupTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return &exitError{code: 2, err: fmt.Errorf("%s=%q: want a duration such as 10m (0: wait as long as it takes)", envStartupTimeout, v)}
		}
		startupTimeout = d
	}
	fs.DurationVar(&startupTimeout, "startup-timeout", startupTimeout,
		"give up when the cluster cannot be reached for this long at start-up (0: retry until stopped; default $"+envStartupTimeout+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if startupTimeout < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--startup-timeout %s is negative", startupTimeout)}
	}
	cfg, err := config.Load(*cfgPath, os.Getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if len(*excFlag) > 0 {
		cfg.Exceptions = *excFlag // the flag replaces the configuration's lists
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The dispatcher is built even without channels: it is what tells a
	// rule naming an unknown channel apart.
	disp, err := channels.Build(&cfg.Notifications, env.log.With().Str("component", "notify").Logger(), reg)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	enabled, err := runRules(env, cfg, disp)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	// Listen first: the address is checked before any wait for the
	// cluster, and probes see a live process (/healthz) that is not ready
	// (/readyz) while it waits.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	var running atomic.Pointer[schedule.Manager]
	ready := func(ctx context.Context) error {
		if m := running.Load(); m != nil {
			return m.Ready(ctx)
		}
		return errors.New("waiting for the cluster")
	}
	health := func() []schedule.RuleHealth {
		if m := running.Load(); m != nil {
			return m.Health()
		}
		return []schedule.RuleHealth{}
	}
	srv := &http.Server{Handler: schedule.Handler(reg, ready, health), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.log.Error().Err(err).Msg("http server")
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	st, err := openRunStore(ctx, env, cfg, startupTimeout)
	if err != nil {
		return err
	}
	defer st.Close()

	// History counts come from the baseline days in the state index, so a
	// tick's work follows its window (detector/baseline).
	counted, cache, err := newBaselineCache(env, st, cfg.StateIndex)
	if err != nil {
		return err
	}
	registerBaselineMetrics(reg, cache)
	det := detector.New(counted, env.log)
	opts := schedule.Options{
		Store:         st,
		Evaluator:     det,
		Logger:        env.log,
		Registerer:    reg,
		SignalsIndex:  cfg.SignalsIndex,
		StateIndex:    cfg.StateIndex,
		ReplicaID:     *replica,
		Limits:        schedule.Limits{MaxCatchup: cfg.MaxCatchup, MaxGap: cfg.MaxGap.Std()},
		LeaseDuration: cfg.LeaseDuration.Std(),
		Incidents: detector.IncidentOptions{Threshold: cfg.Incidents.Threshold,
			Gap: cfg.Incidents.Gap.Std(), MaxSpan: cfg.Incidents.MaxSpan.Std()},
	}
	if opts.Triage, err = newTriager(env, st, counted, cfg); err != nil {
		return err
	}
	// Suppression state shares the scheduler's state index, so one
	// incident is one message across restarts and replicas. Started even
	// without channels: a reload may add some.
	disp.Start(st, cfg.StateIndex)
	defer closeDispatcher(env, disp)
	// Notifications go per incident: rule signals are its building
	// blocks, announced through the incident they make.
	opts.OnIncidents = enqueueIncidents(env, disp)
	m, err := schedule.New(opts)
	if err != nil {
		return err
	}
	m.Reload(enabled)
	running.Store(m)

	// SIGHUP reloads the rules, the exceptions and the notification
	// channels (the store and the rest of the configuration stay): see
	// reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(env, *cfgPath, *excFlag, cfg, disp, m)
			}
		}
	}()
	// Logged once SIGHUP is handled: a reload sent on this line is safe.
	env.log.Info().Str("listen", ln.Addr().String()).Str("store", st.Kind()).Int("rules", len(enabled)).Strs("channels", disp.Channels()).
		Str("replica", m.ReplicaID()).Str("signals_index", cfg.SignalsIndex).Msg("offtrail running")

	err = m.Run(ctx) // returns after SIGINT/SIGTERM, once runs are done
	env.log.Info().Msg("offtrail stopped")
	return err
}

// notifyDrain bounds how long a stopping service keeps delivering queued
// notifications (an orchestrator's grace period is typically 30s, and the
// scheduler's shutdown comes first).
const notifyDrain = 10 * time.Second

// enqueueCreated hands only the signals this replica's write created to
// the dispatcher's queues: a window seen again (overlapping lookbacks, a
// restart, another replica) never notifies twice. It never blocks.
// enqueueIncidents hands each incident that crossed the threshold to the
// channels of the rule whose window completed it (and the default ones).
func enqueueIncidents(env *cliEnv, disp *notify.Dispatcher) func(*rules.Rule, []*detector.Incident) {
	return func(r *rules.Rule, incs []*detector.Incident) {
		msgs := make([]*notify.Message, 0, len(incs))
		for _, inc := range incs {
			msgs = append(msgs, notify.FromIncident(inc))
		}
		if err := disp.Enqueue(r.Notify, msgs...); err != nil {
			env.log.Error().Err(err).Str("rule", r.ID).Int("incidents", len(msgs)).Msg("notifications not queued")
		}
	}
}

// closeDispatcher delivers what is queued, up to notifyDrain.
func closeDispatcher(env *cliEnv, disp *notify.Dispatcher) {
	ctx, cancel := context.WithTimeout(context.Background(), notifyDrain)
	defer cancel()
	if err := disp.Close(ctx); err != nil {
		env.log.Warn().Err(err).Msg("stopping notifications")
	}
}

// runRules loads the enabled rules and checks the channels each one names.
// A rule naming an unknown channel is invalid: the service refuses to
// start, unless skip_invalid_rules, which leaves that rule out.
func runRules(env *cliEnv, cfg *config.Config, disp *notify.Dispatcher) ([]*rules.Rule, error) {
	pack, err := loadRunRules(env, cfg.Rules, cfg.SkipInvalidRules)
	if err != nil {
		return nil, err
	}
	if err := bindRunExceptions(env, cfg.Exceptions, pack); err != nil {
		return nil, err
	}
	var out []*rules.Rule
	bad := 0
	for _, r := range pack.Enabled() {
		if err := disp.Check(r.Notify); err != nil {
			bad++
			env.log.Error().Err(err).Str("rule", r.ID).Str("file", fmt.Sprintf("%s:%d", r.File, r.Line)).
				Strs("channels", disp.Channels()).Msg("rule names an unknown notification channel")
			continue
		}
		out = append(out, withDefaultTimezone(r, cfg.Timezone))
	}
	switch {
	case bad > 0 && !cfg.SkipInvalidRules:
		return nil, fmt.Errorf("%d rule(s) name unknown notification channels; configure them under notifications.channels or set skip_invalid_rules", bad)
	case bad > 0:
		env.log.Warn().Int("skipped", bad).Msg("skipping rules with unknown notification channels (skip_invalid_rules)")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no enabled rules")
	}
	return out, nil
}

// withDefaultTimezone gives an off-hours rule that names no timezone the
// service's default one (config `timezone`); the zone was validated when
// the configuration was loaded.
func withDefaultTimezone(r *rules.Rule, tz string) *rules.Rule {
	if tz == "" || r.OffHours == nil || r.OffHours.TimezoneSet {
		return r
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return r
	}
	rc := *r
	oh := *r.OffHours
	oh.Timezone, oh.Location = tz, loc
	rc.OffHours = &oh
	return &rc
}
