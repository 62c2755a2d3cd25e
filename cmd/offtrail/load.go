package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/ingest"
	"github.com/offtrail/offtrail/mappings"
)

func init() {
	register(command{
		name:    "load",
		summary: "index CloudTrail files (S3 layout, .json/.json.gz, NDJSON) as ECS or raw CloudTrail",
		run:     runLoad,
	})
}

// maxReported bounds the per-record lines on stderr; the counts are exact.
const maxReported = 50

// loadFlags are load's options.
type loadFlags struct {
	store, profile, index, geoip string
	noTemplate, keepGoing        bool
	every                        time.Duration
	paths                        []string
}

func parseLoadFlags(env *cliEnv, args []string) (*loadFlags, error) {
	fs := newFlagSet(env, "load", "--store URL|file:DIR [--profile ecs|cloudtrail] [--index NAME] [--geoip FILE] [--keep-going] PATH...")
	f := &loadFlags{}
	fs.StringVar(&f.store, "store", "", storeHelp)
	fs.StringVar(&f.profile, "profile", "ecs", "document shape: ecs (Elastic AWS integration) or cloudtrail (raw)")
	fs.StringVar(&f.index, "index", "", "target index (default logs-aws.cloudtrail-default for ecs, cloudtrail-default for cloudtrail)")
	geoFlag(fs, &f.geoip, "to add source.geo (the country and city rules need it)")
	fs.BoolVar(&f.noTemplate, "no-template", false, "do not install the index template")
	fs.BoolVar(&f.keepGoing, "keep-going", false, "exit 0 even when files could not be read to the end (they are still counted and reported)")
	fs.DurationVar(&f.every, "progress", 5*time.Second, "interval of progress lines on stderr (0 turns them off)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f.paths = fs.Args()
	if len(f.paths) == 0 {
		fs.Usage()
		return nil, &exitError{code: 2, err: errors.New("at least one PATH is required")}
	}
	if err := needStore(f.store); err != nil {
		return nil, err
	}
	for _, p := range f.paths {
		if _, err := os.Stat(p); err != nil {
			return nil, &exitError{code: 2, err: err}
		}
	}
	return f, nil
}

func runLoad(ctx context.Context, env *cliEnv, args []string) error {
	f, err := parseLoadFlags(env, args)
	if err != nil {
		return err
	}
	ct, ok := mappings.CloudTrailIndexFor(f.profile)
	if !ok {
		return &exitError{code: 2, err: fmt.Errorf("--profile %q: want ecs or cloudtrail", f.profile)}
	}
	if f.index == "" {
		f.index = ct.DefaultIndex
	}
	geo, closeGeo, err := openGeo(env, f.geoip, "load")
	if err != nil {
		return err
	}
	defer closeGeo()
	st, err := openStore(ctx, env, f.store, forWriting)
	if err != nil {
		return err
	}
	defer st.Close()
	if !f.noTemplate {
		if err := ingest.EnsureTemplate(ctx, st, ct.Template, f.index, nil); err != nil {
			return err
		}
	}
	res, err := loadFiles(ctx, env, st, f, ingest.Shape{Profile: f.profile, Geo: geo})
	fmt.Fprintln(env.stdout, res.summary(f.keepGoing))
	if err != nil {
		return err
	}
	return res.verdict(st.Kind(), f)
}

// loadResult is what a load did, for the summary line and the exit status.
type loadResult struct {
	ingest.Counts
	indexed, failed int64
	elapsed         time.Duration
}

// summary accounts for every record that can be known: loaded, skipped
// (invalid records, or rejected by the store) and unreadable (in files
// that broke part-way), then how many got a location.
func (r loadResult) summary(keepGoing bool) string {
	secs := r.elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(r.indexed) / secs
	}
	line := fmt.Sprintf("loaded %d, skipped %d, unreadable %d", r.indexed, int64(r.Skipped)+r.failed, r.Unreadable)
	if r.BadFiles > 0 {
		line += fmt.Sprintf(" (%d of %d files broken", r.BadFiles, r.Files)
		if keepGoing {
			line += "; --keep-going: not an error"
		}
		line += ")"
	}
	return line + fmt.Sprintf("; %d with a location; in %.1f seconds, %.0f events/s", r.Located, secs, rate)
}

// verdict is the exit status: anything not loaded that should have been
// is an error.
func (r loadResult) verdict(kind string, f *loadFlags) error {
	switch {
	case r.failed > 0:
		return &exitError{code: 1, err: fmt.Errorf("%s rejected %d documents", kind, r.failed)}
	case r.BadFiles > 0 && !f.keepGoing:
		return &exitError{code: 1, err: fmt.Errorf("%d of %d files could not be read to the end (%d records unreadable); --keep-going accepts that", r.BadFiles, r.Files, r.Unreadable)}
	case r.Records == 0:
		// Nothing to load is almost always a wrong path, never success.
		return &exitError{code: 1, err: fmt.Errorf("no CloudTrail records found in %s", strings.Join(f.paths, " "))}
	}
	return nil
}

// loadFiles feeds the files through the ingest pipeline into the index,
// reporting each problem (bounded) on stderr.
func loadFiles(ctx context.Context, env *cliEnv, st store.Backend, f *loadFlags, shape ingest.Shape) (loadResult, error) {
	start := time.Now()
	rep := &problemReporter{w: env.stderr}
	var rejected atomic.Int64
	bw, err := st.NewBulkWriter(ctx, f.index, func(id string, err error) {
		rejected.Add(1)
		rep.report("%s: rejected by %s: %v", id, st.Kind(), err)
	})
	if err != nil {
		return loadResult{}, fmt.Errorf("bulk writer for %s: %w", f.index, err)
	}
	var read atomic.Int64
	stopProgress := progress(env, f.every, start, &read)
	reader := cloudtrail.Reader{OnSkip: func(pos cloudtrail.Pos, err error) { rep.report("%s: %v", pos, err) }}
	counts, readErr := ingest.Feed(ctx, &reader, f.paths, runtime.GOMAXPROCS(0), shape, func(doc store.Doc) error {
		if err := bw.Add(ctx, doc); err != nil {
			return fmt.Errorf("index %s: %w", f.index, err)
		}
		read.Add(1)
		return nil
	})
	stopProgress()
	indexed, failed, closeErr := bw.Close(ctx)
	if closeErr == nil && readErr == nil {
		closeErr = st.Refresh(ctx, f.index)
	}
	res := loadResult{Counts: counts, indexed: indexed, failed: max(failed, rejected.Load()), elapsed: time.Since(start)}
	return res, errors.Join(readErr, closeErr)
}

// problemReporter prints problems on stderr, at most maxReported lines;
// the counts stay exact. The reader and the writer call it concurrently.
type problemReporter struct {
	w        io.Writer
	mu       sync.Mutex
	reported int
}

func (p *problemReporter) report(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reported++
	switch {
	case p.reported <= maxReported:
		fmt.Fprintf(p.w, format+"\n", a...)
	case p.reported == maxReported+1:
		fmt.Fprintf(p.w, "offtrail load: more problems; only counting from here\n")
	}
}

// progress prints the running count every interval until stopped.
func progress(env *cliEnv, every time.Duration, start time.Time, n *atomic.Int64) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				secs := time.Since(start).Seconds()
				fmt.Fprintf(env.stderr, "offtrail load: %d events, %.0f events/s\n", n.Load(), float64(n.Load())/secs)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
