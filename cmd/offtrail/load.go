package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/geoip"
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

func runLoad(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "load", "--store URL|file:DIR [--profile ecs|cloudtrail] [--index NAME] [--geoip FILE] PATH...")
	storeSpec := fs.String("store", "", "Elasticsearch/OpenSearch URL, or file:DIR for the embedded store")
	profile := fs.String("profile", "ecs", "document shape: ecs (Elastic AWS integration) or cloudtrail (raw)")
	index := fs.String("index", "", "target index (default logs-aws.cloudtrail-default for ecs, cloudtrail-default for cloudtrail)")
	geoPath := fs.String("geoip", os.Getenv("OFFTRAIL_GEOIP_DB"), "city database (.mmdb file, or a directory of them) to add source.geo; default $OFFTRAIL_GEOIP_DB")
	noTemplate := fs.Bool("no-template", false, "do not install the index template")
	every := fs.Duration("progress", 5*time.Second, "interval of progress lines on stderr (0 turns them off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	paths := fs.Args()
	if *storeSpec == "" || len(paths) == 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--store and at least one PATH are required")}
	}
	ct, ok := mappings.CloudTrailIndexFor(*profile)
	if !ok {
		return &exitError{code: 2, err: fmt.Errorf("--profile %q: want ecs or cloudtrail", *profile)}
	}
	if *index == "" {
		*index = ct.DefaultIndex
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return &exitError{code: 2, err: err}
		}
	}

	shaper := &cloudtrail.Shaper{}
	if *geoPath != "" {
		db, err := geoip.Open(*geoPath)
		if err != nil {
			return err
		}
		defer db.Close()
		env.log.Info().Str("path", *geoPath).Str("database", db.Description()).Msg("geoip database open")
		shaper.Geo = db
	}
	shape := shaper.ECS
	if *profile == "cloudtrail" {
		shape = shaper.Raw
	}

	st, err := openStore(ctx, env, *storeSpec, forWriting)
	if err != nil {
		return err
	}
	defer st.Close()

	if !*noTemplate {
		if err := installCloudTrailTemplate(ctx, st, ct, *index); err != nil {
			return err
		}
	}

	start := time.Now()
	var (
		mu       sync.Mutex // guards reported: the writer may call back from its own goroutines
		reported int
	)
	report := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		reported++
		switch {
		case reported <= maxReported:
			fmt.Fprintf(env.stderr, format+"\n", a...)
		case reported == maxReported+1:
			fmt.Fprintf(env.stderr, "offtrail load: more problems; only counting from here\n")
		}
	}
	var rejected atomic.Int64
	bw, err := st.NewBulkWriter(ctx, *index, func(id string, err error) {
		rejected.Add(1)
		report("%s: rejected by %s: %v", id, st.Kind(), err)
	})
	if err != nil {
		return fmt.Errorf("bulk writer for %s: %w", *index, err)
	}

	var read atomic.Int64
	stopProgress := progress(env, *every, start, &read)
	reader := cloudtrail.Reader{OnSkip: func(file string, n int, err error) {
		if n > 0 {
			report("%s:%d: %v", file, n, err)
		} else {
			report("%s: %v", file, err)
		}
	}}
	stats, readErr := reader.Read(ctx, paths, func(rec cloudtrail.Record) error {
		src, err := json.Marshal(shape(rec))
		if err != nil {
			return fmt.Errorf("%s:%d: encode: %w", rec.File, rec.N, err)
		}
		if err := bw.Add(ctx, store.Doc{ID: rec.ID, Source: src}); err != nil {
			return fmt.Errorf("index %s: %w", *index, err)
		}
		read.Add(1)
		return nil
	})
	stopProgress()
	indexed, failed, closeErr := bw.Close(ctx)
	if closeErr == nil && readErr == nil {
		closeErr = st.Refresh(ctx, *index)
	}
	elapsed := time.Since(start).Seconds()
	if failed < rejected.Load() {
		failed = rejected.Load()
	}
	skipped := int64(stats.Skipped) + failed
	rate := 0.0
	if elapsed > 0 {
		rate = float64(indexed) / elapsed
	}
	if stats.BadFiles > 0 {
		fmt.Fprintf(env.stderr, "offtrail load: %d of %d files could not be read to the end\n", stats.BadFiles, stats.Files)
	}
	fmt.Fprintf(env.stdout, "loaded %d, skipped %d, in %.1f seconds, %.0f events/s\n", indexed, skipped, elapsed, rate)

	if err := errors.Join(readErr, closeErr); err != nil {
		return err
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%s rejected %d documents", st.Kind(), failed)}
	}
	if stats.Records == 0 {
		// Nothing to load is almost always a wrong path, never success.
		return &exitError{code: 1, err: fmt.Errorf("no CloudTrail records found in %s", strings.Join(paths, " "))}
	}
	return nil
}

// installCloudTrailTemplate installs the profile's template. An index
// outside the template's patterns gets a template of its own, so a custom
// --index is mapped the same way.
func installCloudTrailTemplate(ctx context.Context, st store.Backend, ct mappings.CloudTrailIndex, index string) error {
	patterns, err := mappings.TemplatePatterns(ct.Template)
	if err != nil {
		return err
	}
	name := "offtrail-" + ct.Template
	var opt mappings.TemplateOptions
	if !mappings.MatchesPattern(index, patterns) {
		name += "-" + index
		opt.IndexPatterns = []string{index}
	}
	body, err := mappings.TemplateWith(ct.Template, opt)
	if err != nil {
		return err
	}
	if err := st.EnsureTemplate(ctx, name, body); err != nil {
		return fmt.Errorf("index template %s: %w", name, err)
	}
	return nil
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
