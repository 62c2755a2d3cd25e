package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/internal/config"
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
	fs := newFlagSet(env, "run", "[--config FILE] [--listen ADDR]")
	cfgPath := fs.String("config", "", "YAML configuration file (default: defaults and OFFTRAIL_* environment only)")
	listen := fs.String("listen", "", "address for /metrics, /healthz and /readyz (overrides the config's listen)")
	replica := fs.String("replica-id", "", "this replica's id (default hostname-pid-random)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, os.Getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	pack, err := loadRunRules(env, cfg.Rules, cfg.SkipInvalidRules)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	st, err := openConfigured(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := ensureTemplate(ctx, st, "signals", cfg.SignalsIndex); err != nil {
		return err
	}
	if err := ensureTemplate(ctx, st, "state", cfg.StateIndex); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	det := detector.New(st, env.log, detector.WithHighRiskActions(rules.HighRiskActions()))
	m, err := schedule.New(schedule.Options{
		Store:         st,
		Evaluator:     det,
		Logger:        env.log,
		Registerer:    reg,
		SignalsIndex:  cfg.SignalsIndex,
		StateIndex:    cfg.StateIndex,
		ReplicaID:     *replica,
		Limits:        schedule.Limits{MaxCatchup: cfg.MaxCatchup, MaxGap: cfg.MaxGap.Std()},
		LeaseDuration: cfg.LeaseDuration.Std(),
	})
	if err != nil {
		return err
	}
	m.Reload(pack.Enabled())

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: schedule.Handler(reg, m.Ready, m.Health), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.log.Error().Err(err).Msg("http server")
		}
	}()
	env.log.Info().Str("listen", ln.Addr().String()).Str("store", st.Kind()).Int("rules", len(pack.Enabled())).
		Str("replica", m.ReplicaID()).Str("signals_index", cfg.SignalsIndex).Msg("offtrail running")

	// SIGHUP reloads the rules; an invalid pack keeps the running one.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				next, err := loadRunRules(env, cfg.Rules, cfg.SkipInvalidRules)
				if err != nil {
					env.log.Error().Err(err).Msg("reload failed; keeping the running rules")
					continue
				}
				m.Reload(next.Enabled())
			}
		}
	}()

	err = m.Run(ctx) // returns after SIGINT/SIGTERM, once runs are done
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	env.log.Info().Msg("offtrail stopped")
	return err
}
