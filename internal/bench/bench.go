package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/demo"
	"github.com/offtrail/offtrail/internal/ingest"
	"github.com/offtrail/offtrail/internal/synth"
	"github.com/offtrail/offtrail/mappings"
)

// End is the fixed end of every generated period, so runs are comparable.
var End = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// eventsPerIdentityDay is what the generator produces on average (283k
// events for 50 identities over 30 days at seed 1); it turns a history
// size into days.
const eventsPerIdentityDay = 283_000.0 / 50 / 30

// DaysFor returns the days of history that give about n events.
func DaysFor(n, identities int) int {
	return max(3, int(math.Round(float64(n)/(eventsPerIdentityDay*float64(identities)))))
}

// Quality runs the demo (50 identities, days of history, replay of the
// last 3 days) at each seed and adds recall and false-alert rows.
func Quality(ctx context.Context, t *Table, seeds []uint64, days int, geo cloudtrail.Geo, log zerolog.Logger) error {
	for _, seed := range seeds {
		rep, err := demo.Run(ctx, demo.Config{
			Synth: synth.Config{Identities: 50, Days: days, Seed: seed, End: End},
			Geo:   geo,
			Log:   log,
		})
		if err != nil {
			return fmt.Errorf("quality seed %d: %w", seed, err)
		}
		addQuality(t, seed, rep)
	}
	return nil
}

func addQuality(t *Table, seed uint64, rep *demo.Report) {
	hist := HumanCount(rep.Events)
	q := func(metric, value, note string) {
		t.Add(Row{Section: "quality", Metric: metric, Backend: "embedded", History: hist, Value: value, Note: fmt.Sprintf("seed %d; %s", seed, note)})
	}
	q("recall, all planted attacks (incidents)", fmt.Sprintf("%.2f", rep.Recall()), fmt.Sprintf("%d of %d in an alerting incident; target ≥ 0.95", rep.Caught, rep.Attacks))
	q("recall, attacks within an alerting session", fmt.Sprintf("%.2f", float64(rep.CaughtSession)/float64(max(1, rep.Attacks))),
		fmt.Sprintf("%d of %d inside the session (span ± 1h) of an alerting incident of their identity", rep.CaughtSession, rep.Attacks))
	q("false incidents per 100 identity-weeks", fmt.Sprintf("%.1f", rep.FalsePer100IdentityWeeks()),
		fmt.Sprintf("%d of %d alerting incidents touch no attack over %.1f identity-weeks; target ≤ 5", rep.FalseAlerts, rep.Alerts, rep.IdentityWeeks))
	for _, th := range []float64{65, 70, 75, 80, 85} {
		caught, falseN := demo.AtThreshold(rep, th)
		q(fmt.Sprintf("sensitivity: incident threshold %.0f", th), fmt.Sprintf("%.2f / %.1f", float64(caught)/float64(max(1, rep.Attacks)), float64(falseN)/rep.IdentityWeeks*100),
			fmt.Sprintf("recall / false incidents per 100 identity-weeks (%d caught, %d false)", caught, falseN))
	}
	for _, g := range Recall(rep, func(sc synth.Scenario) string { return sc.Profile }) {
		q("recall by attacker: "+g.Name, fmt.Sprintf("%.2f", g.Recall()), fmt.Sprintf("%d of %d; missed %s", g.Caught, g.All, strings.Join(g.Missed, ", ")))
	}
	for _, g := range Recall(rep, ScenarioGroup) {
		note := fmt.Sprintf("%d of %d", g.Caught, g.All)
		if len(g.Missed) > 0 {
			note += "; missed " + strings.Join(g.Missed, ", ")
		}
		q("recall: "+g.Name, fmt.Sprintf("%.2f", g.Recall()), note)
	}
	for _, k := range slices.Sorted(maps.Keys(rep.FalseByKind)) {
		q("false incidents: "+k, fmt.Sprint(rep.FalseByKind[k]), "alerting incidents touching it and no attack")
	}
	for _, r := range rep.PerRule {
		q("building blocks: "+r.Rule, fmt.Sprint(r.Signals), fmt.Sprintf("signals in %d windows; in %d false incidents", r.Windows, rep.FalseByRule[r.Rule]))
	}
}

// RecallGroup is the recall of one group of planted attacks.
type RecallGroup struct {
	Name        string
	Caught, All int
	Missed      []string
}

// Recall is Caught / All.
func (g RecallGroup) Recall() float64 { return float64(g.Caught) / float64(max(1, g.All)) }

// ScenarioGroup names an attack's group: Stratus techniques by tactic,
// hand-written attacks one by one.
func ScenarioGroup(sc synth.Scenario) string {
	k := sc.ID
	if strings.HasPrefix(k, "stratus:") {
		if parts := strings.SplitN(strings.TrimPrefix(k, "stratus:"), ".", 3); len(parts) >= 2 {
			k = "stratus " + parts[1]
		}
	}
	return k
}

// Recall groups the report's attacks by key and counts the caught ones.
func Recall(rep *demo.Report, key func(synth.Scenario) string) []RecallGroup {
	groups := map[string]*RecallGroup{}
	for _, s := range rep.Scenarios {
		if s.Scenario.Kind != "attack" {
			continue
		}
		k := key(s.Scenario)
		g := groups[k]
		if g == nil {
			g = &RecallGroup{Name: k}
			groups[k] = g
		}
		g.All++
		if s.Caught {
			g.Caught++
		} else {
			g.Missed = append(g.Missed, strings.TrimPrefix(s.Scenario.ID, "stratus:"))
		}
	}
	out := make([]RecallGroup, 0, len(groups))
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		out = append(out, *groups[k])
	}
	return out
}

// Backend is a store under test.
type Backend struct {
	Name  string // embedded, elasticsearch, opensearch
	Store store.Backend
	URL   string // cluster URL, for cleanup; "" for embedded
	// ScanRate, for the embedded store: time a cold scan of everything.
	Reopen func() (store.Backend, error)
}

// Dataset is generated CloudTrail files on disk.
type Dataset struct {
	Dir    string
	Labels *synth.Labels
	Bytes  int64 // compressed
}

// Generate writes a dataset of about n events (files are reused when dir
// already holds one with the same labels).
func Generate(ctx context.Context, dir string, n, identities int) (*Dataset, error) {
	days := DaysFor(n, identities)
	labelsPath := filepath.Join(dir, "labels.json")
	l, err := synth.ReadLabels(labelsPath)
	if err != nil || !l.End.Equal(End) || int(l.End.Sub(l.Start).Hours()/24) != days {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if l, err = synth.Generate(ctx, synth.Config{OutDir: dir, Identities: identities, Days: days, Seed: 1, End: End}); err != nil {
			return nil, err
		}
	}
	ds := &Dataset{Dir: dir, Labels: l}
	for _, f := range ds.files() {
		if fi, err := os.Stat(f); err == nil {
			ds.Bytes += fi.Size()
		}
	}
	return ds, nil
}

func (d *Dataset) files() []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(d.Dir, "AWSLogs"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".json.gz") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Gunzip times plain decompression of the dataset's files: the limit any
// reader of them meets.
func Gunzip(d *Dataset) (time.Duration, int64, error) {
	start := time.Now()
	var raw int64
	for _, f := range d.files() {
		fh, err := os.Open(f)
		if err != nil {
			return 0, 0, err
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			fh.Close()
			return 0, 0, fmt.Errorf("%s: %w", f, err)
		}
		n, err := io.Copy(io.Discard, zr)
		fh.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", f, err)
		}
		raw += n
	}
	return time.Since(start), raw, nil
}

// Loaded is what Load did.
type Loaded struct {
	Events int64
	Took   time.Duration
	// Cached: the documents came from the dataset's shaped cache, so Took
	// is the bulk writer and the engine alone.
	Cached bool
	// Partial: loading stopped at the time limit; the files are fed newest
	// first, so the index holds the most recent part of the history.
	Partial bool
}

// Target is a store and the index to load into it.
type Target struct {
	Store store.Backend
	Index string
}

// errTimeUp stops a load at its time limit.
var errTimeUp = errors.New("load time limit reached")

// Load indexes the dataset as `offtrail load` does: CloudTrail reader,
// ECS shaper, bulk writer, with files decoded and shaped on every core and
// one goroutine adding to the writers (the embedded writer is not safe for
// concurrent use). Every target gets the same documents from one shaping
// pass. The shaped documents are also written to a cache in the dataset's
// directory, and a later complete Load of the same files sends the cache
// instead: at 10M events shaping costs as much CPU as indexing, and this
// machine has two cores. Files are fed newest first, so a load stopped
// after within (0: no limit) holds the most recent history. The indices
// are created with refresh off and an async translog: nothing searches
// them before the final refresh.
func Load(ctx context.Context, targets []Target, d *Dataset, geo cloudtrail.Geo, within time.Duration) ([]Loaded, error) {
	for _, tg := range targets {
		if err := installTemplate(ctx, tg.Store, tg.Index); err != nil {
			return nil, err
		}
	}
	cache := filepath.Join(d.Dir, "ecs.ndjson.gz")
	if geo == nil {
		cache = filepath.Join(d.Dir, "ecs-nogeo.ndjson.gz")
	}
	start := time.Now()
	var bws []store.BulkWriter
	for _, tg := range targets {
		bw, err := tg.Store.NewBulkWriter(ctx, tg.Index, nil)
		if err != nil {
			return nil, fmt.Errorf("bulk writer %s: %w", tg.Index, err)
		}
		bws = append(bws, bw)
	}
	feedCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if within > 0 {
		t := time.AfterFunc(within, func() { cancel(errTimeUp) })
		defer t.Stop()
	}
	docs := make(chan store.Doc, 4096)
	added := make(chan error, 1)
	cached := false
	var (
		feedErr error
		cw      *cacheWriter
	)
	if f, err := os.Open(cache); err == nil && within == 0 {
		cached = true
		go func() { added <- addAll(ctx, cancel, bws, docs, nil) }()
		feedErr = readCache(feedCtx, f, docs)
		f.Close()
	} else {
		if f != nil {
			f.Close()
		}
		if within == 0 {
			if cw, err = newCacheWriter(cache); err != nil {
				return nil, err
			}
			defer cw.abort()
		}
		go func() { added <- addAll(ctx, cancel, bws, docs, cw) }()
		files := newestFirst(d.files())
		var r cloudtrail.Reader
		shape := ingest.Shape{Profile: "ecs", Geo: geo, Ingested: ingest.Delivered(5 * time.Minute)}
		_, feedErr = r.ReadParallel(feedCtx, files, runtime.GOMAXPROCS(0), func(rec cloudtrail.Record) error {
			doc, _, err := shape.Doc(rec)
			if err != nil {
				return err
			}
			select {
			case docs <- doc:
				return nil
			case <-feedCtx.Done():
				return context.Cause(feedCtx)
			}
		})
	}
	close(docs)
	addErr := <-added
	partial := errors.Is(feedErr, errTimeUp) || errors.Is(context.Cause(feedCtx), errTimeUp)
	if partial {
		feedErr = nil
	}
	out := make([]Loaded, len(targets))
	var errs []error
	for i, bw := range bws {
		indexed, failed, err := bw.Close(ctx)
		out[i] = Loaded{Events: indexed, Cached: cached, Partial: partial}
		if err != nil || failed > 0 {
			errs = append(errs, fmt.Errorf("load %s: %d failed: %v", targets[i].Index, failed, err))
		}
	}
	if err := errors.Join(feedErr, addErr, errors.Join(errs...)); err != nil {
		return out, err
	}
	for _, tg := range targets {
		if err := tg.Store.Refresh(ctx, tg.Index); err != nil {
			return out, err
		}
	}
	took := time.Since(start)
	for i := range out {
		out[i].Took = took
	}
	if cw != nil && !partial {
		if err := cw.commit(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// newestFirst orders CloudTrail files by the delivery time in their names
// (Account_CloudTrail_Region_YYYYMMDDTHHmmZ_Unique.json.gz), latest first:
// path order groups them by account and region instead.
func newestFirst(files []string) []string {
	stamp := func(p string) string {
		if f := strings.Split(filepath.Base(p), "_"); len(f) >= 5 {
			return f[3]
		}
		return ""
	}
	slices.SortStableFunc(files, func(a, b string) int {
		if c := strings.Compare(stamp(b), stamp(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return files
}

// addAll adds every document to every writer (and to the cache when cw is
// set); after an error it cancels the producers and drains docs so none
// blocks. The time limit's cancellation does not stop it: what was shaped
// is still indexed.
func addAll(ctx context.Context, cancel context.CancelCauseFunc, ws []store.BulkWriter, docs <-chan store.Doc, cw *cacheWriter) error {
	var err error
	for doc := range docs {
		if err != nil {
			continue
		}
		if cw != nil {
			err = cw.add(doc)
		}
		for _, w := range ws {
			if err == nil {
				err = w.Add(ctx, doc)
			}
		}
		if err != nil {
			cancel(err)
		}
	}
	return err
}

// The cache is gzip lines of "id\tsource\n": JSON encodes tabs and
// newlines inside strings, so neither occurs in a source.
type cacheWriter struct {
	path string
	f    *os.File
	bw   *bufio.Writer
	zw   *gzip.Writer
}

func newCacheWriter(path string) (*cacheWriter, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".ecs-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("shaped cache: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed) // a valid level cannot fail
	return &cacheWriter{path: path, f: f, bw: bw, zw: zw}, nil
}

func (c *cacheWriter) add(doc store.Doc) error {
	if _, err := fmt.Fprintf(c.zw, "%s\t%s\n", doc.ID, doc.Source); err != nil {
		return fmt.Errorf("shaped cache: %w", err)
	}
	return nil
}

func (c *cacheWriter) commit() error {
	err := errors.Join(c.zw.Close(), c.bw.Flush(), c.f.Close())
	if err == nil {
		err = os.Rename(c.f.Name(), c.path)
	}
	if err != nil {
		return fmt.Errorf("shaped cache: %w", err)
	}
	c.f = nil
	return nil
}

// abort removes an uncommitted cache file.
func (c *cacheWriter) abort() {
	if c.f != nil {
		c.f.Close()
		os.Remove(c.f.Name())
	}
}

func readCache(ctx context.Context, f *os.File, docs chan<- store.Doc) error {
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("shaped cache %s: %w", f.Name(), err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		id, src, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			return fmt.Errorf("shaped cache %s: line without a tab", f.Name())
		}
		select {
		case docs <- store.Doc{ID: id, Source: []byte(src)}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("shaped cache %s: %w", f.Name(), err)
	}
	return nil
}

// installTemplate installs the ecs template narrowed to the bench index.
func installTemplate(ctx context.Context, st store.Backend, index string) error {
	ct, _ := mappings.CloudTrailIndexFor("ecs")
	// A bench index is searched only after Load's refresh.
	return ingest.EnsureTemplate(ctx, st, ct.Template, index, map[string]any{"refresh_interval": "-1", "translog.durability": "async"})
}

// templateName is the name ingest.Template gives a bench index's template.
func templateName(index string) string { return "offtrail-cloudtrail-ecs-" + index }

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ScanAll times a cold query that must read every document once: a count
// by action over the whole period.
func ScanAll(ctx context.Context, st store.Backend, index string, d *Dataset) (time.Duration, int64, error) {
	start := time.Now()
	var n int64
	err := st.CountGroups(ctx, store.CountRequest{
		Query:   store.Query{Index: []string{index}, TimeField: "@timestamp", Window: store.Window{From: d.Labels.Start.Add(-time.Hour), To: d.Labels.End.Add(time.Hour)}},
		GroupBy: []string{"event.action"},
	}, func(g store.Group) error { n += g.Count; return nil })
	return time.Since(start), n, err
}

// DeleteIndex drops a bench index and its template from st's cluster
// (DropIndices).
func DeleteIndex(ctx context.Context, st store.Backend, index string) error {
	if err := DropIndices(ctx, st, []string{index}, []string{templateName(index)}); err != nil {
		return fmt.Errorf("cleanup %s: %w", index, err)
	}
	return nil
}

// IndexCount returns the documents searchable in a cluster index, or -1
// when it does not exist: a kept bench index is reused only when complete.
func IndexCount(ctx context.Context, st store.Backend, index string) (int64, error) {
	t, ok := st.(transporter)
	if !ok || t.Transport() == nil {
		return 0, fmt.Errorf("count %s: the %s store has no cluster", index, st.Kind())
	}
	status, body, err := t.Transport().Do(ctx, http.MethodGet, dsl.Path([]string{index}, "_count"), nil, nil)
	switch {
	case err != nil:
		return 0, fmt.Errorf("count %s: %w", index, err)
	case status == http.StatusNotFound:
		return -1, nil
	case status != http.StatusOK:
		return 0, fmt.Errorf("count %s: status %d: %.200s", index, status, body)
	}
	var out struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Count == nil {
		return 0, fmt.Errorf("count %s: no count in %.200s", index, body)
	}
	return *out.Count, nil
}

// LoadAverage is the 1, 5 and 15-minute load averages ("" where unknown):
// the machine is shared, and timings mean little without it.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// MiB formats bytes.
func MiB(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// Ms formats a duration in milliseconds.
func Ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
