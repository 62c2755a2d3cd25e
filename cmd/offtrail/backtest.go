package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

func init() {
	register(command{
		name:    "backtest",
		summary: "replay rules over history as the scheduler would have run them",
		run:     runBacktest,
	})
}

func runBacktest(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "backtest", "--store URL|file:DIR --from T --to T [--rules PATH] [--rule ID] [--format table|json] [--write INDEX] [--yes] [--incident-threshold N] [--explain [--explain-top N]]")
	ef := addEvalFlags(fs, "replay", "output: table (per-rule summary and incidents) or json (one signal, then one incident, a line)")
	fromS := fs.String("from", "", "start: RFC 3339, a date (2024-03-05) or now-DURATION (now-7d)")
	toS := fs.String("to", "now", "end: RFC 3339, a date or now[-DURATION]")
	write := fs.String("write", "", "also write the signals (create-only) to this index")
	yes := fs.Bool("yes", false, fmt.Sprintf("run even more than %d windows", maxBacktestWindows))
	threshold := addIncidentThreshold(fs)
	xf := addExplainFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := xf.check(); err != nil {
		return err
	}
	if *fromS == "" {
		return &exitError{code: 2, err: fmt.Errorf("--store and --from are required")}
	}
	if err := ef.check(); err != nil {
		return err
	}
	now := time.Now().UTC()
	from, err := parseWhen(*fromS, now)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--from: %w", err)}
	}
	to, err := parseWhen(*toS, now)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--to: %w", err)}
	}
	if !from.Before(to) {
		return &exitError{code: 2, err: fmt.Errorf("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))}
	}
	// The GeoIP warnings are checked against the data, not the profile.
	pack, geo, err := loadPackGeo(env, ef.rules)
	if err != nil {
		return err
	}
	if err := bindExceptions(env.stderr, *ef.exceptions, pack); err != nil {
		return err
	}
	selected, err := selectRules(pack, ef.rule)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, env, ef.store, forReading)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := confirmWindows(env, selected, from, to, *yes); err != nil {
		return err
	}
	span := store.Window{From: from.Add(-maxLookback(selected)), To: to}
	if err := checkEvents(ctx, st, selected, span.From, span.To); err != nil {
		return err
	}
	for _, n := range geoNeeds(selected, geo) {
		msg, err := geoMissing(ctx, st, n, span)
		if err != nil {
			return err
		}
		if msg != "" {
			fmt.Fprintf(env.stderr, "backtest: warning: %s\n", msg)
		}
	}

	var out *signalSink
	if *write != "" {
		if err := ensureTemplate(ctx, st, "signals", *write); err != nil {
			return err
		}
		out = &signalSink{st: st, index: *write}
	}
	enc := json.NewEncoder(env.stdout)
	prog := newBacktestProgress(env.stderr)
	det := recordingEvaluator{det: detector.New(ef.detectorStore(env, st), env.log, xf.options()...)}
	defer ef.report(env)
	if xf.on {
		det.book = newNearMissBook(xf.top, selected)
	}
	var signals []*detector.Signal
	stats, err := schedule.Backtest(ctx, det, selected, from, to, schedule.BacktestOptions{
		OnSignal: func(s *detector.Signal) error {
			signals = append(signals, s)
			if ef.format == "json" {
				if err := enc.Encode(map[string]any{"_id": s.ID, "_source": s.Document()}); err != nil {
					return err
				}
			}
			if out != nil {
				return out.add(ctx, s)
			}
			return nil
		},
		OnProgress: prog.update,
	})
	prog.done()
	if err != nil {
		return err
	}
	// Incidents from every signal of the span, as the scheduler would
	// have built them window by window.
	incs := detector.IncidentsOf(signals, detector.IncidentOptions{Threshold: *threshold})
	triageIncidents(ctx, env, st, selected, signals, incs)
	if out != nil {
		if err := out.flush(ctx); err != nil {
			return err
		}
		if err := putIncidents(ctx, st, *write, incs); err != nil {
			return err
		}
		env.log.Info().Str("index", *write).Int("created", out.res.Created).Int("existed", out.res.Existed).Int("incidents", len(incs)).Msg("signals and incidents written")
	}
	if ef.format == "json" {
		if err := writeIncidentsJSON(env.stdout, incs); err != nil {
			return err
		}
		if det.book != nil {
			return writeNearMissesJSON(env.stdout, det.book.finish())
		}
		return nil
	}
	writeBacktestTable(env.stdout, stats, from, to)
	fmt.Fprintln(env.stdout)
	writeIncidentsTable(env.stdout, incs, *threshold)
	if det.book != nil {
		writeNearMissesText(env.stdout, det.book.finish())
	}
	return nil
}

// putIncidents writes incidents by id, replacing earlier versions.
func putIncidents(ctx context.Context, st store.Backend, index string, incs []*detector.Incident) error {
	docs := make([]store.Doc, 0, len(incs))
	for _, inc := range incs {
		src, err := json.Marshal(inc.Document())
		if err != nil {
			return err
		}
		docs = append(docs, store.Doc{ID: inc.ID, Source: src})
	}
	if err := st.PutDocs(ctx, index, docs); err != nil {
		return fmt.Errorf("write incidents to %s: %w", index, err)
	}
	return nil
}

// parseWhen reads RFC 3339, a date, "now" or "now-7d".
func parseWhen(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "now-"):
		d, err := rules.ParseDuration(strings.TrimPrefix(s, "now-"))
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d.Std()), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339, YYYY-MM-DD or now-DURATION", s)
	}
	return t, nil
}

// signalSink writes backtest signals create-only, in batches.
type signalSink struct {
	st    store.Backend
	index string
	buf   []store.Doc
	res   store.WriteResult
}

func (w *signalSink) add(ctx context.Context, s *detector.Signal) error {
	docs, err := schedule.SignalDocs([]*detector.Signal{s})
	if err != nil {
		return err
	}
	w.buf = append(w.buf, docs...)
	if len(w.buf) >= 500 {
		return w.flush(ctx)
	}
	return nil
}

func (w *signalSink) flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	r, err := w.st.WriteSignals(ctx, w.index, w.buf)
	if err != nil {
		return fmt.Errorf("write signals to %s: %w", w.index, err)
	}
	w.res.Created += r.Created
	w.res.Existed += r.Existed
	w.buf = w.buf[:0]
	return nil
}

func writeBacktestTable(w io.Writer, stats []schedule.BacktestStats, from, to time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RULE\tWINDOWS\tSIGNALS\tSECONDS\t")
	var windows, signals int
	var secs float64
	for _, s := range stats {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t\n", s.Rule, s.Windows, s.Signals, s.Elapsed.Seconds())
		windows += s.Windows
		signals += s.Signals
		secs += s.Elapsed.Seconds()
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%.1f\t\n", windows, signals, secs)
	tw.Flush()
	fmt.Fprintf(w, "%s to %s\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
}

// backtestProgress shows a progress line on stderr: redrawn in place on a
// terminal, otherwise one line per rule so logs stay readable.
type backtestProgress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	drawn bool
}

func newBacktestProgress(w io.Writer) *backtestProgress {
	f, ok := w.(*os.File)
	return &backtestProgress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *backtestProgress) update(pr schedule.Progress) {
	line := fmt.Sprintf("%s %3.0f%% %d/%d windows  rule %d/%d %s  %d signals",
		progressBar(pr.Done, pr.Total, 20), 100*float64(pr.Done)/float64(max(pr.Total, 1)), pr.Done, pr.Total,
		pr.RuleIndex+1, pr.Rules, pr.Rule, pr.Signals)
	if p.tty {
		// Redraw at most ten times a second.
		if time.Since(p.last) < 100*time.Millisecond && pr.Done != pr.Total {
			return
		}
		p.last = time.Now()
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	if pr.Window == pr.Windows {
		fmt.Fprintln(p.w, line)
	}
}

func (p *backtestProgress) done() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

func progressBar(done, total, width int) string {
	n := 0
	if total > 0 {
		n = done * width / total
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
