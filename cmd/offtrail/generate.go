package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/offtrail/offtrail/internal/demo"
	"github.com/offtrail/offtrail/internal/geoip"
	"github.com/offtrail/offtrail/internal/synth"
)

func init() {
	register(command{name: "generate", summary: "write a synthetic organisation's CloudTrail with labelled attacks", run: runGenerate})
}

func runGenerate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "generate", "--out DIR [--identities N] [--days D] [--seed S] [--end RFC3339] [--no-attacks] [--geoip FILE]")
	out := fs.String("out", "", "output directory (S3 layout AWSLogs/… plus labels.json)")
	ids := fs.Int("identities", 50, "people and automation identities (at least 24)")
	days := fs.Int("days", 30, "days of activity")
	seed := fs.Uint64("seed", 1, "random seed: the same flags give the same files")
	end := fs.String("end", "", "end of the period, RFC 3339 (default: now, truncated to the hour)")
	noAttacks := fs.Bool("no-attacks", false, "generate only benign activity")
	workers := fs.Int("workers", 0, "parallel generators (default: GOMAXPROCS)")
	geoPath := fs.String("geoip", geoip.DefaultPath(), "city database that keeps home addresses and CI runners in their country (empty: draw freely); the same as load's for identical data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--out is required")}
	}
	cfg := synth.Config{OutDir: *out, Identities: *ids, Days: *days, Seed: *seed, NoAttacks: *noAttacks, Workers: *workers}
	if *end != "" {
		t, err := time.Parse(time.RFC3339, *end)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--end: %w", err)}
		}
		cfg.End = t
	}
	if *geoPath != "" {
		db, err := geoip.Open(*geoPath)
		if err != nil {
			return fmt.Errorf("--geoip: %w", err)
		}
		defer db.Close()
		cfg.Locate = demo.Locator(db)
	}
	began := time.Now()
	labels, err := synth.Generate(ctx, cfg)
	if err != nil {
		return err
	}
	secs := time.Since(began).Seconds()
	attacks, benign := 0, 0
	for _, s := range labels.Scenarios {
		if s.Kind == "attack" {
			attacks++
		} else {
			benign++
		}
	}
	fmt.Fprintf(env.stdout, "wrote %s: %d files, %d events, %d identities, %s to %s\n", *out, labels.Files, labels.Events, len(labels.Identities),
		labels.Start.Format(time.RFC3339), labels.End.Format(time.RFC3339))
	fmt.Fprintf(env.stdout, "scenarios: %d attack, %d benign (labels.json)\n", attacks, benign)
	fmt.Fprintf(env.stdout, "%.1f s, %.0f events/s\n", secs, float64(labels.Events)/secs)
	return nil
}
