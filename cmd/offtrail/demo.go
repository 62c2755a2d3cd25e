package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/internal/demo"
	"github.com/offtrail/offtrail/internal/geoip"
	"github.com/offtrail/offtrail/internal/synth"
	"github.com/offtrail/offtrail/schedule"
)

func init() {
	register(command{
		name:    "demo",
		summary: "generate an AWS organisation with planted attacks and catch them, no cluster needed",
		run:     runDemo,
	})
}

func runDemo(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "demo", "[--identities N] [--days D] [--seed S] [--end RFC3339] [--replay 3d] [--top N] [--incident-threshold T] [--keep DIR] [--geoip FILE]")
	identities := fs.Int("identities", 50, "identities in the generated organisation")
	days := fs.Int("days", 30, "days of history")
	seed := fs.Uint64("seed", 1, "generator seed (same seed, same data)")
	replay := fs.Duration("replay", 72*time.Hour, "span before the end replayed by the scheduler")
	keep := fs.String("keep", "", "also write the CloudTrail files (S3 layout) and labels.json here, to load into a cluster")
	geoPath := fs.String("geoip", geoip.DefaultPath(), "city database (.mmdb) for source.geo; the city/country rules need it")
	top := fs.Int("top", 20, "incidents to print")
	threshold := addIncidentThreshold(fs)
	endFlag := fs.String("end", "", "end of the generated period, RFC 3339 (default: now, to the hour)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := demo.Config{
		Synth:     synth.Config{Identities: *identities, Days: *days, Seed: *seed},
		Replay:    *replay,
		Log:       env.log,
		Incidents: detector.IncidentOptions{Threshold: *threshold},
	}
	if *endFlag != "" {
		t, err := time.Parse(time.RFC3339, *endFlag)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--end: %w", err)}
		}
		cfg.Synth.End = t
	}
	if *geoPath != "" {
		db, err := geoip.Open(*geoPath)
		if err != nil {
			return fmt.Errorf("--geoip: %w", err)
		}
		defer db.Close()
		cfg.Geo = db
	} else {
		fmt.Fprintln(env.stderr, "note: no GeoIP database (scripts/geoip.sh installs one): the city and country rules see no places")
	}
	if *keep != "" {
		kc := cfg.Synth
		kc.OutDir = *keep
		if _, err := synth.Generate(ctx, kc); err != nil {
			return fmt.Errorf("--keep: %w", err)
		}
		fmt.Fprintf(env.stderr, "CloudTrail files and labels.json written to %s (offtrail load --store URL %s)\n", *keep, *keep)
	}
	tty := isTerminal(env.stderr)
	cfg.OnProgress = func(p schedule.Progress) {
		if tty && (p.Done%20 == 0 || p.Done == p.Total) {
			fmt.Fprintf(env.stderr, "\rreplaying %-40s %5d/%d windows, %d signals", p.Rule, p.Done, p.Total, p.Signals)
		}
	}
	fmt.Fprintf(env.stderr, "generating %d identities over %d days and replaying the last %s of the shipped pack...\n", *identities, *days, *replay)
	rep, err := demo.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if tty {
		fmt.Fprintln(env.stderr)
	}
	printDemo(env.stdout, rep, *top, *threshold)
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func printDemo(w io.Writer, rep *demo.Report, top int, threshold float64) {
	var alerts []*detector.Incident
	for _, inc := range rep.Incidents {
		if inc.Alert {
			alerts = append(alerts, inc)
		}
	}
	shown := rep.Incidents
	if len(shown) > top {
		shown = shown[:top]
	}
	fmt.Fprintf(w, "Top %d incidents (%d alerting, from %d rule signals):\n\n", min(top, len(alerts)), len(alerts), len(rep.Signals))
	writeIncidentsTable(w, shown, threshold)

	fmt.Fprintln(w, "\nPlanted attacks:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tCAUGHT\tSCORE\tRULES")
	for _, s := range rep.Scenarios {
		if s.Scenario.Kind != "attack" {
			continue
		}
		caught := "missed"
		if s.Caught {
			caught = "caught"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\n", truncate(s.Scenario.ID, 60), caught, s.Score, strings.Join(s.Rules, ", "))
	}
	tw.Flush()
	if os.Getenv("OFFTRAIL_DEMO_FALSE") != "" {
		fmt.Fprintln(w, "\nIncidents that touch no planted attack:")
		writeIncidentsTable(w, rep.FalseIncidents, threshold)
	}
	var byKind []string
	for _, k := range slices.Sorted(maps.Keys(rep.FalseByKind)) {
		byKind = append(byKind, fmt.Sprintf("%s %d", k, rep.FalseByKind[k]))
	}
	if len(byKind) > 0 {
		fmt.Fprintf(w, "\nIncidents that touch no planted attack, by what they touch: %s.\n", strings.Join(byKind, ", "))
	}
	fmt.Fprintf(w, "\n%d events, %d identities. Caught %d of %d planted attacks in an incident (recall %.2f). %d of %d incidents touch no attack: %.1f false incidents per 100 identity-weeks. %d actor(s) alerted with no baseline. Load %.1fs, replay %.1fs.\n",
		rep.Events, len(rep.Labels.Identities), rep.Caught, rep.Attacks, rep.Recall(), rep.FalseAlerts, rep.Alerts, rep.FalsePer100IdentityWeeks(),
		rep.NoBaseline, rep.LoadTime.Seconds(), rep.ReplayTime.Seconds())
}
