// Package synth generates a synthetic but realistic AWS organisation's
// CloudTrail — people in several timezones with their own habits,
// automation with its own rhythms, benign novelty — and plants labelled
// attacks in it: the real Stratus Red Team detonation records, normalised,
// and a handful of classic intrusions. It is the data behind offtrail's
// demo and benchmark. The output is the S3 layout CloudTrail delivers, plus
// labels.json saying what was planted where.
package synth

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Config says what to generate. The zero value of every field but OutDir
// means the default.
type Config struct {
	OutDir     string    // where files go (Generate only)
	Identities int       // people and automation; default 50, at least 24
	Days       int       // length of the period; default 30
	Seed       uint64    // same seed, same output, byte for byte
	End        time.Time // end of the period; default now, truncated to the hour
	NoAttacks  bool      // leave the planted attacks out
	Workers    int       // parallel day generators; default GOMAXPROCS (at most 8)
	// Locate, when set, places an address (ISO country code). People's
	// office and home addresses, and hosted CI runners, are redrawn until
	// they land where real ones would: a random address in an ISP's /16 can
	// geolocate abroad, which would plant travel nobody made. Must be safe
	// for concurrent use. Same seed and same database, same output.
	Locate func(ip string) string
}

func (c Config) withDefaults() Config {
	if c.Identities == 0 {
		c.Identities = 50
	}
	if c.Days == 0 {
		c.Days = 30
	}
	if c.End.IsZero() {
		c.End = time.Now().UTC().Truncate(time.Hour)
	}
	c.End = c.End.UTC().Truncate(time.Second)
	if c.Workers <= 0 {
		c.Workers = min(runtime.GOMAXPROCS(0), 8)
	}
	return c
}

// Labels describe the generated data: who is who, and what was planted.
type Labels struct {
	Seed       uint64         `json:"seed"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Events     int            `json:"events"`
	Files      int            `json:"files"`
	Accounts   []Account      `json:"accounts"`
	Regions    []string       `json:"regions"`
	Identities []IdentityInfo `json:"identities"`
	Scenarios  []Scenario     `json:"scenarios"`
}

// Account is one AWS account of the organisation.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// IdentityInfo is one principal. ARN is its identity in its home account;
// ARNs lists it in every account it uses (an SSO user has one per account).
type IdentityInfo struct {
	Name     string   `json:"name"`
	ARN      string   `json:"arn"`
	ARNs     []string `json:"arns,omitempty"`
	Kind     string   `json:"kind"` // human | automation
	Role     string   `json:"role"` // admin, developer, …; ci, lambda, scheduled, …
	Timezone string   `json:"timezone"`
	Country  string   `json:"country,omitempty"`
	City     string   `json:"city,omitempty"`
	Account  string   `json:"account"`
	IAMUser  bool     `json:"iam_user,omitempty"`
	FirstDay int      `json:"first_day,omitempty"` // day index of first activity (new hires)
}

// Scenario is one labelled piece of the data: a planted attack, or benign
// novelty that a detector may flag and a person would dismiss.
// ExpectedRules are the shipped rules that should (attacks) or may
// (benign) fire on it. EventIDs holds at most MaxLabelledEvents ids, the
// earliest; EventCount is the full count. Profile says, for attacks,
// where the attacker comes from (ProfileExternal, ProfileReplayed,
// ProfileInsider or ProfileAutomation).
type Scenario struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"` // attack | benign
	Technique     string    `json:"technique,omitempty"`
	Campaign      string    `json:"campaign,omitempty"`
	Profile       string    `json:"profile,omitempty"`
	Description   string    `json:"description"`
	Identities    []string  `json:"identities"`
	Account       string    `json:"account"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	EventIDs      []string  `json:"event_ids"`
	EventCount    int       `json:"event_count"`
	ExpectedRules []string  `json:"expected_rules"`
}

// MaxLabelledEvents caps Scenario.EventIDs for long-running benign novelty.
const MaxLabelledEvents = 2000

// ReadLabels reads a labels.json.
func ReadLabels(path string) (*Labels, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("synth: read labels: %w", err)
	}
	var l Labels
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("synth: parse labels %s: %w", path, err)
	}
	return &l, nil
}

// gen is one generation run.
type gen struct {
	cfg        Config
	start, end time.Time
	days       int
	ids        []*identity
	res        []*resources
	numOncall  int
	scenarios  []*scenarioState
	attacks    []event // planted events, by time
	chunkFirst int64   // UTC midnight on or before start
	nChunks    int
}

type scenarioState struct {
	Scenario
	first, last int64
	planned     bool // attack events known up front (ids filled in already)
}

func newGen(cfg Config) (*gen, error) {
	cfg = cfg.withDefaults()
	if cfg.Days < 3 {
		return nil, errors.New("synth: need at least 3 days")
	}
	g := &gen{cfg: cfg, end: cfg.End, days: cfg.Days}
	g.start = g.end.Add(-time.Duration(cfg.Days) * 24 * time.Hour)
	g.chunkFirst = g.start.Truncate(24 * time.Hour).Unix()
	g.nChunks = int((g.end.Unix() - g.chunkFirst + 86399) / 86400)
	r := newRNG(cfg.Seed, 'r')
	for a := range accounts {
		g.res = append(g.res, newResources(a, r))
	}
	if err := g.buildOrg(); err != nil {
		return nil, err
	}
	g.benign()
	if !cfg.NoAttacks {
		if err := g.plantAttacks(); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(g.attacks, func(i, j int) bool { return g.attacks[i].t < g.attacks[j].t })
	return g, nil
}

func (g *gen) addScenario(s Scenario) int {
	g.scenarios = append(g.scenarios, &scenarioState{Scenario: s})
	return len(g.scenarios)
}

// chunk generates the events of UTC day k, sorted by time.
func (g *gen) chunk(k int) *chunkCtx {
	lo := g.chunkFirst + int64(k)*86400
	c := &chunkCtx{g: g, lo: max(lo, g.start.Unix()), hi: min(lo+86400, g.end.Unix()), sess: map[sessKey]*session{}}
	for _, id := range g.ids {
		var bursts []burst
		if id.human != nil {
			// The local dates this UTC day touches.
			a := time.Unix(c.lo, 0).In(id.tz)
			z := time.Unix(c.hi-1, 0).In(id.tz)
			bursts = g.planHuman(id, a.Year(), a.Month(), a.Day())
			if z.Day() != a.Day() {
				bursts = append(bursts, g.planHuman(id, z.Year(), z.Month(), z.Day())...)
			}
		} else {
			r := newRNG(g.cfg.Seed, 'a', uint64(id.idx), uint64(lo))
			bursts = autoPlanners[id.auto.kind](g, id, lo, r)
		}
		bursts = append(bursts, id.special...)
		for i := range bursts {
			if bursts[i].t >= c.lo && bursts[i].t < c.hi {
				c.expand(id, &bursts[i])
			}
		}
	}
	i := sort.Search(len(g.attacks), func(i int) bool { return g.attacks[i].t >= c.lo })
	for ; i < len(g.attacks) && g.attacks[i].t < c.hi; i++ {
		c.add(g.attacks[i])
	}
	slices.SortFunc(c.events, func(a, b event) int {
		if a.t != b.t {
			return cmp.Compare(a.t, b.t)
		}
		return cmp.Compare(a.seq, b.seq)
	})
	return c
}

// run generates every day on cfg.Workers goroutines and hands them to
// consume in day order.
func (g *gen) run(ctx context.Context, consume func(*chunkCtx) error) (*Labels, error) {
	type result struct {
		c    *chunkCtx
		done chan struct{}
	}
	results := make([]result, g.nChunks)
	for i := range results {
		results[i].done = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < g.cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				results[k].c = g.chunk(k)
				close(results[k].done)
			}
		}()
	}
	go func() {
		defer close(next)
		for k := 0; k < g.nChunks; k++ {
			// Keep at most a few days in memory ahead of the consumer.
			if k >= 2*g.cfg.Workers {
				select {
				case <-results[k-2*g.cfg.Workers].done:
				case <-ctx.Done():
					return
				}
			}
			select {
			case next <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	labels := g.labelsHeader()
	for k := range results {
		select {
		case <-results[k].done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c := results[k].c
		results[k].c = nil
		labels.Events += len(c.events)
		g.collectLabels(c)
		if err := consume(c); err != nil {
			return nil, err
		}
	}
	g.finishLabels(labels)
	return labels, nil
}

func (g *gen) labelsHeader() *Labels {
	l := &Labels{Seed: g.cfg.Seed, Start: g.start, End: g.end, Regions: append([]string(nil), regions...)}
	for _, a := range accounts {
		l.Accounts = append(l.Accounts, Account{ID: a.ID, Name: a.Name})
	}
	for _, id := range g.ids {
		l.Identities = append(l.Identities, id.info)
	}
	return l
}

// collectLabels notes the ids of labelled events generated on the fly.
func (g *gen) collectLabels(c *chunkCtx) {
	for i := range c.events {
		e := &c.events[i]
		if e.tag == 0 {
			continue
		}
		s := g.scenarios[e.tag-1]
		if s.planned {
			continue
		}
		if s.EventCount == 0 {
			s.first = e.t
		}
		s.last = e.t
		s.EventCount++
		if len(s.EventIDs) < MaxLabelledEvents {
			s.EventIDs = append(s.EventIDs, e.id.String())
		}
		if e.who != nil && !slices.Contains(s.Identities, e.who.arn) && e.who.arn != "" {
			s.Identities = append(s.Identities, e.who.arn)
		}
	}
}

func (g *gen) finishLabels(l *Labels) {
	for _, s := range g.scenarios {
		if !s.planned {
			if s.EventCount == 0 {
				continue // the novelty fell outside the period (short runs)
			}
			s.Start, s.End = time.Unix(s.first, 0).UTC(), time.Unix(s.last, 0).UTC()
			sort.Strings(s.Identities)
		}
		if s.EventIDs == nil {
			s.EventIDs = []string{}
		}
		l.Scenarios = append(l.Scenarios, s.Scenario)
	}
}

// Events generates the data without touching disk and calls fn with every
// record, in time order, decoded as encoding/json would (numbers as
// json.Number, like internal/cloudtrail's reader).
func Events(cfg Config, fn func(rec map[string]any) error) (*Labels, error) {
	return EventsContext(context.Background(), cfg, fn)
}

// EventsContext is Events with a context.
func EventsContext(ctx context.Context, cfg Config, fn func(rec map[string]any) error) (*Labels, error) {
	g, err := newGen(cfg)
	if err != nil {
		return nil, err
	}
	var buf []byte
	return g.run(ctx, func(c *chunkCtx) error {
		for i := range c.events {
			buf = g.appendEvent(buf[:0], &c.events[i])
			d := json.NewDecoder(bytes.NewReader(buf))
			d.UseNumber()
			var rec map[string]any
			if err := d.Decode(&rec); err != nil {
				return fmt.Errorf("synth: render: %w", err)
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// Generate writes the data under cfg.OutDir in CloudTrail's S3 layout,
// one gzip file per account, region and hour, and labels.json at the
// root; it returns the labels.
func Generate(ctx context.Context, cfg Config) (*Labels, error) {
	if cfg.OutDir == "" {
		return nil, errors.New("synth: no output directory")
	}
	g, err := newGen(cfg)
	if err != nil {
		return nil, err
	}
	w := &fileWriter{g: g, dir: cfg.OutDir}
	labels, err := g.run(ctx, w.write)
	if err != nil {
		return nil, err
	}
	labels.Files = w.files
	b, err := json.MarshalIndent(labels, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("synth: labels: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.OutDir, "labels.json"), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("synth: write labels: %w", err)
	}
	return labels, nil
}

// fileWriter writes one day's events as S3 deliveries. Writing happens on
// the consumer goroutine; compression is the costly part, so files of a
// day are compressed in parallel.
type fileWriter struct {
	g     *gen
	dir   string
	files int
}

type fileKey struct {
	acct, region uint8
	hour         int64
}

func (w *fileWriter) write(c *chunkCtx) error {
	idx := make([]int, len(c.events))
	for i := range idx {
		idx[i] = i
	}
	ev := c.events
	keyOf := func(e *event) fileKey { return fileKey{e.acct, e.region, e.t / 3600} }
	// Events are in time order, so a stable sort by key keeps each file's
	// records in time order.
	slices.SortStableFunc(idx, func(i, j int) int {
		a, b := keyOf(&ev[i]), keyOf(&ev[j])
		if a.acct != b.acct {
			return cmp.Compare(a.acct, b.acct)
		}
		if a.region != b.region {
			return cmp.Compare(a.region, b.region)
		}
		return cmp.Compare(a.hour, b.hour)
	})
	type job struct {
		key  fileKey
		list []int
	}
	var jobs []job
	for i := 0; i < len(idx); {
		k := keyOf(&ev[idx[i]])
		j := i
		for j < len(idx) && keyOf(&ev[idx[j]]) == k {
			j++
		}
		jobs = append(jobs, job{k, idx[i:j]})
		i = j
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.g.cfg.Workers)
	for n, jb := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[n] = w.writeFile(jb.key, ev, jb.list)
		}()
	}
	wg.Wait()
	w.files += len(jobs)
	return errors.Join(errs...)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

var gzPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}

func (w *fileWriter) writeFile(k fileKey, ev []event, list []int) error {
	acct := accounts[k.acct].ID
	region := regions[k.region]
	r := newRNG(w.g.cfg.Seed, 'f', uint64(k.acct), uint64(k.region), uint64(k.hour))
	// CloudTrail delivers a few minutes after the hour's events.
	delivered := time.Unix(k.hour*3600+3600+int64(2+r.IntN(10))*60, 0).UTC()
	name := fmt.Sprintf("%s_CloudTrail_%s_%s_%s.json.gz", acct, region, delivered.Format("20060102T1504Z"), upperOf(r.Uint64(), 16))
	dir := filepath.Join(w.dir, "AWSLogs", acct, "CloudTrail", region, delivered.Format("2006"), delivered.Format("01"), delivered.Format("02"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	buf = append(buf, `{"Records":[`...)
	for n, i := range list {
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = w.g.appendEvent(buf, &ev[i])
	}
	buf = append(buf, "]}"...)
	*bp = buf
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	zw := gzPool.Get().(*gzip.Writer)
	defer gzPool.Put(zw)
	zw.Reset(f)
	if _, err := zw.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("synth: write %s: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("synth: write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("synth: write %s: %w", name, err)
	}
	return nil
}
