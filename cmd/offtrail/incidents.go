package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/rules"
)

// writeIncidentsTable prints the alerting incidents for a person, then
// how many sessions stayed below the threshold and how many actors had no
// baseline, so an empty table says why it is empty.
func writeIncidentsTable(w io.Writer, incs []*detector.Incident, threshold float64) {
	var alerts []*detector.Incident
	below, noBase := 0, map[detector.Actor]bool{}
	for _, inc := range incs {
		if inc.NoBaseline {
			noBase[inc.Actor] = true
		}
		if inc.Alert {
			alerts = append(alerts, inc)
		} else {
			below++
		}
	}
	if len(alerts) == 0 {
		fmt.Fprintf(w, "no incidents at or above %.0f", threshold)
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "INCIDENT\tACTOR\tSTART\tSCORE\tSEVERITY\tCONF\tANOMALIES\tSUMMARY")
		for _, inc := range alerts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\t%d\t%s\n", inc.ID[:12], truncate(inc.Actor.Label, 40),
				inc.Start.UTC().Format("2006-01-02 15:04"), inc.Score, inc.Severity, inc.Confidence, len(inc.Anomalies), inc.Summary)
		}
		tw.Flush()
		for _, inc := range alerts {
			if line := inc.Triage.Line(); line != "" {
				fmt.Fprintf(w, "%s triage: %s\n", inc.ID[:12], line)
			}
		}
		fmt.Fprintf(w, "%d incident(s) at or above %.0f", len(alerts), threshold)
	}
	fmt.Fprintf(w, "; %d session(s) of building blocks below it; %d actor(s) with no baseline.\n", below, len(noBase))
}

// writeIncidentsJSON prints incidents as the signals index stores them,
// one a line, in the embedded store's signals.ndjson format.
func writeIncidentsJSON(w io.Writer, incs []*detector.Incident) error {
	enc := json.NewEncoder(w)
	for _, inc := range incs {
		if err := enc.Encode(map[string]any{"_id": inc.ID, "_source": inc.Document()}); err != nil {
			return err
		}
	}
	return nil
}

// addIncidentThreshold adds --incident-threshold: the one setting that
// decides what a person is alerted to (README, "Incidents").
func addIncidentThreshold(fs *flag.FlagSet) *float64 {
	return fs.Float64("incident-threshold", detector.DefaultIncidentThreshold,
		"incident score (0-100) at which a session of anomalies alerts; 75 is \"1 in 32,000\"")
}

// newTriager fills incidents' triage blocks in `run`: other alerts from
// the signals index, baselines from the rules' sources counted by history
// (the baseline cache), the configured links.
func newTriager(env *cliEnv, st store.Backend, history detector.TriageCounter, cfg *config.Config) (*detector.Triager, error) {
	links, err := cfg.Incidents.LinkTemplates()
	if err != nil {
		return nil, fmt.Errorf("incidents.links: %w", err)
	}
	return &detector.Triager{Store: st, History: history, SignalsIndex: cfg.SignalsIndex, Links: links, Log: env.log}, nil
}

// triageIncidents fills the triage blocks of once's and backtest's
// incidents: the other alerts are the run's own (the signals index holds
// none of a replay), each baseline from its first rule's source.
func triageIncidents(ctx context.Context, env *cliEnv, st store.Backend, rs []*rules.Rule, sigs []*detector.Signal, incs []*detector.Incident) {
	byID := map[string]*rules.Rule{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	src := func(inc *detector.Incident) detector.TriageSource {
		for _, a := range inc.Anomalies {
			if r := byID[a.Rule]; r != nil {
				return detector.TriageSource{Index: r.Source.Index, Profile: r.Profile()}
			}
		}
		return detector.TriageSource{}
	}
	tr := &detector.Triager{Store: st, Log: env.log}
	tr.Enrich(ctx, incs, src, detector.RecentOf(sigs, incs))
}
