package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/internal/bench"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/geoip"
	"github.com/offtrail/offtrail/rules"
	"github.com/offtrail/offtrail/schedule"
)

func init() {
	register(command{
		name:    "bench",
		summary: "measure detection quality, per-run latency, load and scan rates (prints one table; see BENCHMARKS.md)",
		run:     runBench,
	})
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runBench(ctx context.Context, env *cliEnv, args []string) (err error) {
	fs := newFlagSet(env, "bench", "[--store embedded|URL ...] [--history 100k,1M] [--quality] [--seeds 1,2,3] [--format table|markdown]")
	var stores listFlag
	fs.Var(&stores, "store", "backend to measure: embedded, or an Elasticsearch/OpenSearch URL (repeatable; none: quality only)")
	history := fs.String("history", "100k,1M", "history sizes in events (same identities, more days)")
	quality := fs.Bool("quality", false, "measure detection quality with the demo (embedded)")
	seedList := fs.String("seeds", "1", "generator seeds for --quality")
	qualityDays := fs.Int("quality-days", 30, "days of history for --quality (the demo's 30 by default)")
	identities := fs.Int("identities", 50, "identities of the generated organisation")
	windows := fs.Int("windows", 20, "consecutive ticks timed per backend and history")
	format := fs.String("format", "table", "table or markdown")
	dataDir := fs.String("data", "", "keep generated CloudTrail here and reuse it (default: a temporary directory)")
	geoPath := fs.String("geoip", geoip.DefaultPath(), "city database (.mmdb) for source.geo")
	keep := fs.Bool("keep-indices", false, "leave the bench indices in the clusters (the embedded store under --data), named by history size, and time a complete one again instead of reloading it")
	reusePartial := fs.Bool("reuse-partial", false, "with --keep-indices, time a kept index even if a load stopped by --load-within left it partial")
	loadWithin := fs.Duration("load-within", 0, "stop loading after this long (0: load everything); files go newest first, so the index holds the newest history")
	gzipRate := fs.Bool("gzip", true, "measure the plain gzip decompression rate of each dataset")
	pack := fs.Bool("pack", true, "time the whole enabled pack per tick")
	var ruleIDs listFlag
	fs.Var(&ruleIDs, "rule", "also time this rule alone per tick (repeatable), e.g. aws-rare-method-for-user")
	incidents := fs.Bool("incidents", true, "write each tick's signals and fold them into incidents, as the scheduler does (to indices made for the bench and dropped after)")
	elastalert := fs.Bool("elastalert", false, "on the engines, also replay ElastAlert 2's new_term rule on (user ARN, action) over the same index and span (scripts/elastalert-bench.sh install first)")
	eaScript := fs.String("elastalert-script", "scripts/elastalert-bench.sh", "the script that installs and drives ElastAlert 2")
	eaSpan := fs.Duration("elastalert-span", 0, "ElastAlert's replay span ending where the ticks end (0: the timed ticks' span, --windows × 15m)")
	eaSegments := fs.String("elastalert-segments", "2h,15m", "ElastAlert's buffer_time for each replay, comma-separated: 15m is a live ElastAlert at offtrail's interval (run_every = buffer_time = 15m, one query per tick)")
	compareRaw := fs.Bool("compare-raw", false, "also time every scope aggregating the raw history each tick (no baseline days), as before the cache")
	warmup := fs.Duration("warmup", 0, "untimed ticks after the cold one, before the timed ones (26h: a running service's steady state, when its context spans reach hours it counted)")
	leaseDur := fs.Duration("lease-duration", schedule.DefaultLeaseDuration, "the service's lease_duration for the timed scopes: its replica heartbeat (a read once a lease alone, a write every third of it beside others) is most of a one-rule tick's state calls")
	cpuProfile := fs.String("cpuprofile", "", "write the CPU profile of each scope's timed ticks here (the last scope's is kept; go tool pprof)")
	heapProfile := fs.String("heapprofile", "", "write offtrail's heap profile here after each scope's timed ticks, and F.before just before them (pprof -base F.before F: what the ticks allocated; the last scope's are kept)")
	traceTicks := fs.String("trace-ticks", "", "write one tab-separated line per timed tick here (wall time and store calls), to see which ticks a day's cost sits in")
	plotPath := fs.String("plot", "", "draw per-tick total CPU and p95 against history size as a PNG here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *warmup < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--warmup %s: a span of untimed ticks cannot be negative", *warmup)}
	}
	if *leaseDur <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--lease-duration %s: a lease must last", *leaseDur)}
	}
	hopts := historyOpts{keep: *keep, reusePartial: *reusePartial, gzip: *gzipRate, loadWithin: *loadWithin,
		elastalert: *elastalert, eaScript: *eaScript, eaSpan: *eaSpan}
	if *elastalert {
		segs, err := parseSegments(*eaSegments)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--elastalert-segments %q: %w", *eaSegments, err)}
		}
		hopts.eaSegments = segs
		// Found now, not after the load and the ticks it would follow.
		if _, err := os.Stat(*eaScript); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--elastalert-script: %w (a relative path is from the repository root)", err)}
		}
	}
	var trace io.Writer
	if *traceTicks != "" {
		f, err := os.Create(*traceTicks)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--trace-ticks: %w", err)}
		}
		defer func() {
			// The trace is written as the ticks run; a file that could not
			// be finished is an error, not a silently short trace.
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("--trace-ticks: %w", cerr)
			}
		}()
		if _, err := io.WriteString(f, bench.TraceHeader); err != nil {
			return fmt.Errorf("--trace-ticks: %w", err)
		}
		trace = f
	}
	if *pack {
		hopts.scopes = append(hopts.scopes, bench.Scope{Writes: *incidents, Warmup: int(*warmup / (15 * time.Minute)), LeaseDuration: *leaseDur, HeapProfile: *heapProfile, CPUProfile: *cpuProfile, TraceTicks: trace})
	}
	for _, id := range ruleIDs {
		if _, ok := builtinRule(id); !ok {
			return &exitError{code: 2, err: fmt.Errorf("--rule %q: not in the built-in pack", id)}
		}
		hopts.scopes = append(hopts.scopes, bench.Scope{Rule: id, Writes: *incidents, Warmup: int(*warmup / (15 * time.Minute)), LeaseDuration: *leaseDur, HeapProfile: *heapProfile, CPUProfile: *cpuProfile, TraceTicks: trace})
	}
	if *compareRaw {
		// The same scopes counting the whole history every tick: the work
		// the baseline days save, in the same run.
		for _, sc := range hopts.scopes {
			sc.RawHistory = true
			hopts.scopes = append(hopts.scopes, sc)
		}
	}
	if len(stores) > 0 && len(hopts.scopes) == 0 && !*elastalert {
		return &exitError{code: 2, err: errors.New("--pack=false and no --rule: nothing to time")}
	}
	if *plotPath != "" && len(stores) == 0 {
		return &exitError{code: 2, err: errors.New("--plot needs --store: it draws the per-tick costs")}
	}
	if *format != "table" && *format != "markdown" {
		return &exitError{code: 2, err: fmt.Errorf("--format %q: want table or markdown", *format)}
	}
	if !*quality && len(stores) == 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("nothing to measure: give --quality and/or --store")}
	}
	var geo cloudtrail.Geo
	if *geoPath != "" {
		db, err := geoip.Open(*geoPath)
		if err != nil {
			return fmt.Errorf("--geoip: %w", err)
		}
		defer db.Close()
		geo = db
	} else {
		fmt.Fprintln(env.stderr, "note: no GeoIP database: the city and country rules see no places")
	}

	t := &bench.Table{}
	if *quality {
		var seeds []uint64
		for _, s := range strings.Split(*seedList, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--seeds: %w", err)}
			}
			seeds = append(seeds, n)
		}
		fmt.Fprintf(env.stderr, "bench: quality at seeds %v...\n", seeds)
		if err := bench.Quality(ctx, t, seeds, *qualityDays, geo, env.log); err != nil {
			return err
		}
	}

	if len(stores) > 0 {
		root := *dataDir
		if root == "" {
			tmp, err := os.MkdirTemp("", "offtrail-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			root = tmp
		}
		for _, h := range strings.Split(*history, ",") {
			n, err := bench.ParseCount(h)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := benchHistory(ctx, env, t, root, n, *identities, *windows, stores, geo, hopts); err != nil {
				// What was measured before the failure is still printed:
				// a run at 1M events takes many minutes.
				_ = t.Write(env.stdout, *format)
				return err
			}
		}
	}
	if *plotPath != "" {
		if err := bench.PlotFile(*plotPath, t.Costs); err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "bench: plot written to %s\n", *plotPath)
	}
	return t.Write(env.stdout, *format)
}

func builtinRule(id string) (*rules.Rule, bool) {
	pack, _ := rules.Builtin()
	return pack.Get(id)
}

// historyOpts are the flags of the history measurements.
type historyOpts struct {
	keep, reusePartial, gzip bool
	loadWithin               time.Duration
	scopes                   []bench.Scope
	elastalert               bool
	eaScript                 string
	eaSpan                   time.Duration
	eaSegments               []time.Duration
}

// parseSegments reads a comma-separated list of whole-minute durations.
func parseSegments(list string) ([]time.Duration, error) {
	var out []time.Duration
	for f := range strings.SplitSeq(list, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if d < time.Minute || d%time.Minute != 0 {
			return nil, fmt.Errorf("%s: ElastAlert's buffer_time here is whole minutes, at least one", d)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no segment")
	}
	return out, nil
}

func benchHistory(ctx context.Context, env *cliEnv, t *bench.Table, root string, n, identities, windows int,
	stores []string, geo cloudtrail.Geo, o historyOpts) error {
	fmt.Fprintf(env.stderr, "bench: generating about %s events (%d days)...\n", bench.HumanCount(n), bench.DaysFor(n, identities))
	ds, err := bench.Generate(ctx, filepath.Join(root, "data-"+strings.ToLower(bench.HumanCount(n))), n, identities)
	if err != nil {
		return err
	}
	events := ds.Labels.Events
	hist := bench.HumanCount(events)
	days := int(ds.Labels.End.Sub(ds.Labels.Start).Hours() / 24)
	var gz time.Duration
	if o.gzip {
		var raw int64
		if gz, raw, err = bench.Gunzip(ds); err != nil {
			return err
		}
		t.Add(bench.Row{Section: "scan", Metric: "gzip decompression (limit)", Backend: "-", History: hist,
			Value: fmt.Sprintf("%.0f events/s", float64(events)/gz.Seconds()),
			Note:  fmt.Sprintf("%d files, %.0f MiB gz → %.0f MiB, %.0f MiB/s out; %d identities, %d days", len(dsFiles(ds)), float64(ds.Bytes)/(1<<20), float64(raw)/(1<<20), float64(raw)/(1<<20)/gz.Seconds(), identities, days)})
	}

	suffix := fmt.Sprintf("%s-%d", strings.ToLower(hist), time.Now().Unix()%100000)
	type under struct {
		spec, name, url, dir, index string
		st                          store.Backend
		reused                      bool
		events                      int64 // in the index
		hist                        string
	}
	var all []*under
	cleanup := func(u *under) {
		if u.url != "" && !o.keep {
			if err := bench.DeleteIndex(context.Background(), u.st, u.index); err != nil {
				fmt.Fprintf(env.stderr, "bench: %v\n", err)
			}
		}
		u.st.Close()
		if u.dir != "" && !o.keep {
			os.RemoveAll(u.dir)
		}
	}
	defer func() {
		for _, u := range all {
			if u.st != nil {
				cleanup(u)
			}
		}
	}()
	var targets []bench.Target
	var loading []*under
	for _, spec := range stores {
		u := &under{spec: spec, index: "offtrail-bench-" + strings.ReplaceAll(suffix, ".", ""), events: int64(events), hist: hist}
		if spec == "embedded" {
			u.dir = filepath.Join(root, "embedded-"+suffix)
			if o.keep {
				// Kept as the engines' indices are: a stable directory,
				// timed again when complete (the index name is stable below).
				u.dir = filepath.Join(root, "embedded-"+strings.ToLower(hist))
			}
			if u.st, err = openBenchEmbedded(u.dir, env); err != nil {
				return err
			}
		} else {
			u.url = spec
			if u.st, err = openStore(ctx, env, spec, forWriting); err != nil {
				return err
			}
		}
		all = append(all, u)
		u.name = u.st.Kind()
		if o.keep {
			// A kept index has a stable name; a complete one (or with
			// --reuse-partial, any) is timed again without loading (10M
			// events take hours to load on this machine).
			u.index = "offtrail-bench-" + strings.ReplaceAll(strings.ToLower(hist), ".", "")
			n, err := keptCount(ctx, u.st, u.index)
			switch {
			case err == nil && (n == int64(events) || o.reusePartial && n > 0):
				u.reused, u.events, u.hist = true, n, bench.HumanCount(int(n))
				fmt.Fprintf(env.stderr, "bench: %s: reusing %s (%d events)\n", u.name, u.index, n)
			case n > 0 && u.dir != "":
				// A partial embedded index: start the directory again.
				u.st.Close()
				if err := os.RemoveAll(u.dir); err != nil {
					return err
				}
				st, err := openBenchEmbedded(u.dir, env)
				if err != nil {
					u.st = nil // closed above: cleanup must not close it again
					return err
				}
				u.st = st
			case n > 0:
				if err := bench.DeleteIndex(ctx, u.st, u.index); err != nil {
					return err
				}
			}
		}
		if !u.reused {
			targets = append(targets, bench.Target{Store: u.st, Index: u.index})
			loading = append(loading, u)
		}
	}
	if len(targets) > 0 {
		var names []string
		for _, u := range loading {
			names = append(names, u.name+" "+u.index)
		}
		fmt.Fprintf(env.stderr, "bench: loading %s events into %s at once...\n", hist, strings.Join(names, ", "))
		loaded, err := bench.Load(ctx, targets, ds, geo, o.loadWithin)
		if err != nil {
			return err
		}
		for i, u := range loading {
			l := loaded[i]
			metric := "load throughput (reader → ECS shaper → bulk)"
			if l.Cached {
				metric = "load throughput (shaped ECS cache → bulk)"
			}
			note := fmt.Sprintf("%d events in %.1f s on %d cores", l.Events, l.Took.Seconds(), runtime.GOMAXPROCS(0))
			if len(loading) > 1 {
				note += "; loaded at once with " + strings.Join(slices.DeleteFunc(slices.Clone(names), func(s string) bool { return strings.HasPrefix(s, u.name+" ") }), ", ")
			}
			if l.Partial {
				u.events, u.hist = l.Events, bench.HumanCount(int(l.Events))
				note += fmt.Sprintf("; stopped at the %s limit: the newest %d of the dataset's %d events", o.loadWithin, l.Events, events)
			}
			t.Add(bench.Row{Section: "load", Metric: metric, Backend: u.name, History: u.hist,
				Value: fmt.Sprintf("%.0f events/s", float64(l.Events)/l.Took.Seconds()), Note: note})
		}
	}
	for _, u := range all {
		name, index, st, hist := u.name, u.index, u.st, u.hist
		if u.spec == "embedded" {
			st.Close() // drop caches: the scan below reads the segment files
			took, counted, err := bench.ScanAll(ctx, st, index, ds)
			if err != nil {
				return fmt.Errorf("embedded scan: %w", err)
			}
			note := fmt.Sprintf("%d events in %.2f s", counted, took.Seconds())
			if gz > 0 {
				note += fmt.Sprintf(" = %.0f%% of the gzip rate; target ≥ 50%%", 100*gz.Seconds()/took.Seconds()*float64(counted)/float64(events))
			}
			t.Add(bench.Row{Section: "scan", Metric: "embedded cold scan (count by action, whole period)", Backend: name, History: hist,
				Value: fmt.Sprintf("%.0f events/s", float64(counted)/took.Seconds()), Note: note})
		}
		for _, sc := range o.scopes {
			if err := benchScope(ctx, env, t, st, name, index, hist, u.events, sc, ds.Labels.End, windows); err != nil {
				return err
			}
		}
		if o.elastalert && u.url != "" {
			span := o.eaSpan
			if span <= 0 {
				span = time.Duration(windows) * 15 * time.Minute
			}
			for _, seg := range o.eaSegments {
				ea := bench.ElastAlert{Script: o.eaScript, URL: strings.Split(u.url, ",")[0], Index: index, Store: st, Segment: seg, Log: env.log}
				if err := benchElastAlert(ctx, env, t, ea, name, u.events, ds.Labels.End, span); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func dsFiles(ds *bench.Dataset) []string {
	var out []string
	_ = filepath.Walk(filepath.Join(ds.Dir, "AWSLogs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".json.gz") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// benchScope times one scope's ticks and adds its latency, memory and cost.
func benchScope(ctx context.Context, env *cliEnv, t *bench.Table, st store.Backend, name, index, hist string, events int64,
	sc bench.Scope, end time.Time, windows int) error {
	fmt.Fprintf(env.stderr, "bench: %s: timing %s over %d ticks on %s (%d events)...\n", name, sc.Name(), windows, index, events)
	lat, err := bench.Measure(ctx, st, index, sc, end, windows, env.log)
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, sc.Name(), err)
	}
	what := "full pack"
	if sc.Rule != "" {
		what = "rule " + sc.Rule + " alone"
	}
	writes := "evaluated only"
	if sc.Writes {
		writes = fmt.Sprintf("run as the service runs them: leases, checkpoints, signals and triaged incidents written (%d signals, %d repeats of earlier windows' not built again, %d incident documents)", lat.Signals, lat.Repeats, lat.Incidents)
	}
	t.Add(bench.Row{Section: "latency", Metric: what + " per tick p50 / p95", Backend: name, History: hist,
		Value: bench.Ms(lat.P50) + " / " + bench.Ms(lat.P95),
		Note: fmt.Sprintf("%d warm ticks of %s (%d rules each; %s), max %s, first (cold) tick %s; load average %s; target p95 ≤ 2 s at 10M",
			lat.Ticks, lat.Step, lat.Rules, writes, bench.Ms(lat.Max), bench.Ms(lat.Cold), bench.LoadAverage())})
	if sc.Rule == "" {
		for _, r := range lat.PerRule {
			t.Add(bench.Row{Section: "latency", Metric: "rule " + r.Rule + " p50 / p95", Backend: name, History: hist,
				Value: bench.Ms(r.P50) + " / " + bench.Ms(r.P95), Note: "max " + bench.Ms(r.Max)})
		}
	}
	rssNote := "peak RSS over the ticks"
	if !lat.PeakRSSTicks {
		rssNote = "peak RSS of the process so far (includes loading and earlier steps)"
	}
	t.Add(bench.Row{Section: "memory", Metric: "offtrail peak heap in use while evaluating / peak RSS", Backend: name, History: hist,
		Value: bench.MiB(lat.PeakHeap) + " / " + bench.MiB(lat.PeakRSS), Note: what + "; " + rssNote})
	t.AddCost(scopeCost(lat, name, int(events)))
	return nil
}

// scopeCost is a scope's line of the cost table.
func scopeCost(lat *bench.Latency, name string, events int) bench.Cost {
	note := fmt.Sprintf("%s; load average %s", lat.Requests.PerTick(lat.Ticks), bench.LoadAverage())
	if lat.LeaseDuration > 0 {
		note = fmt.Sprintf("lease_duration %s; %s", lat.LeaseDuration, note)
	}
	if lat.Warmup > 0 {
		note = fmt.Sprintf("after %d untimed warm-up ticks; %s", lat.Warmup, note)
	}
	if lat.Used.HasEngine {
		note = lat.Settled.Note() + "; " + note
	} else {
		note = "engine in-process (embedded): its CPU is the client's; " + note
	}
	return bench.Cost{Backend: name, Tool: bench.ToolOfftrail, Scope: lat.Scope, Events: events, Ticks: lat.Ticks,
		P50: lat.P50, P95: lat.P95, Client: lat.PerTick(lat.Used.Client), Engine: lat.PerTick(lat.Used.Engine),
		HasEngine: lat.Used.HasEngine, PeakHeap: lat.PeakHeap, PeakRSS: lat.PeakRSS, Note: note}
}

// benchElastAlert replays ElastAlert 2's new_term rule over the span
// ending at end on the same engine and index, and adds its costs.
func benchElastAlert(ctx context.Context, env *cliEnv, t *bench.Table, ea bench.ElastAlert, name string, events int64,
	end time.Time, span time.Duration) error {
	fmt.Fprintf(env.stderr, "bench: %s: replaying ElastAlert 2 new_term over %s of %s in %s segments...\n", name, span, ea.Index, ea.Segment)
	run, err := ea.Run(ctx, end.Add(-span), end)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, c := range run.Costs(name, int(events)) {
		t.AddCost(c)
	}
	return nil
}

// openBenchEmbedded opens the bench's embedded store in dir.
func openBenchEmbedded(dir string, env *cliEnv) (*embedded.Store, error) {
	return embedded.Open(dir, embedded.Options{Logger: env.log})
}

// keptCount is the events a kept bench index holds, -1 when there is none:
// a cluster's count, or the embedded store's over all time.
func keptCount(ctx context.Context, st store.Backend, index string) (int64, error) {
	es, ok := st.(interface {
		CountEvents(context.Context, store.Query) (int64, error)
	})
	if st.Kind() != "embedded" || !ok {
		return bench.IndexCount(ctx, st, index)
	}
	n, err := es.CountEvents(ctx, store.Query{Index: []string{index}, TimeField: "@timestamp",
		Window: store.Window{From: time.Unix(0, 0), To: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil || n == 0 {
		return -1, err
	}
	return n, nil
}
