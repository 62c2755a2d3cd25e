package embedded

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// On disk, an index is read one data file (segment) at a time: only small
// per-file metadata stays resident (time range per time field, sorted id
// hashes), and the columns a query needs are built per file and kept in a
// cache bounded by a byte budget shared by the whole store. A query visits
// only the files whose time range meets its window, so memory and work
// follow the window, not the history.

// DefaultCacheBytes is the column cache budget when Options.CacheBytes is 0
// and CacheEnv is unset.
const DefaultCacheBytes = 512 << 20

// DefaultSegmentDocs is how many documents a bulk writer puts in one segment
// file before starting the next, so one segment's columns stay small against
// the cache budget (about 100 bytes a document for a rule's fields).
const DefaultSegmentDocs = 32 << 10

// CacheEnv names the environment variable read when Options.CacheBytes is 0:
// a size such as "256MiB", "1GiB" or a number of bytes.
const CacheEnv = "OFFTRAIL_EMBEDDED_CACHE"

// ParseSize reads a byte size: a number with an optional KiB/MiB/GiB (or
// K/M/G, KB/MB/GB, all powers of 1024) suffix.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// timeRange is the span of a file's parseable times on one time field.
type timeRange struct {
	min, max int64
	any      bool // false: no document has a time there
}

func (r timeRange) meets(from, to int64) bool {
	return r.any && r.max >= from && r.min < to
}

// fileMeta is what stays resident for one data file: 8 bytes a document
// (the id hashes that tell whether a later file replaces a document) and a
// few bytes per time field.
type fileMeta struct {
	name  string
	path  string
	stamp fileStamp

	mu      sync.Mutex
	scanned bool     // docs and hashes are known
	docs    int      // documents read, shadowed ones included
	hashes  []uint64 // sorted hashes of the ids
	ranges  map[string]timeRange
}

func (m *fileMeta) rangeOf(timeField string) (timeRange, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.ranges[timeField]
	return r, ok
}

func (m *fileMeta) idHashes() ([]uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hashes, m.scanned
}

func (m *fileMeta) key() string {
	return m.path + "\x00" + strconv.FormatInt(m.stamp.size, 10) + "\x00" + strconv.FormatInt(m.stamp.mtime, 10)
}

// hashID is 64-bit FNV-1a: collisions are confirmed against the ids.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// segment is one data file's columns, built on demand and cached.
type segment struct {
	key  string
	meta *fileMeta

	mu    sync.Mutex // guards everything below
	built bool
	n     int
	idBuf []byte
	idOff []uint32 // n+1 offsets into idBuf
	// inner marks documents replaced by a later line of the same file;
	// dead adds those replaced by later files. dead is replaced, never
	// modified, once a query may hold it.
	inner   []bool
	dead    []bool
	checked map[string]fileStamp // later files dead accounts for
	deadGen int64                // the index's file generation dead is up to date with
	cols    map[string]*column
	times   map[string][]int64
	order   map[string][]int32
	size    int64

	// A sources segment (key suffix srcSuffix) holds, instead of columns,
	// some of the file's document sources for Events: at[i] locates
	// source i in raw. Both are replaced, never modified.
	raw []byte
	at  map[int32][2]uint32

	elem *list.Element // guarded by the cache's mutex; nil once evicted
}

func (g *segment) id(i int) string { return string(g.idBuf[g.idOff[i]:g.idOff[i+1]]) }

// bytesLocked is the segment's accounted size.
func (g *segment) bytesLocked() int64 {
	n := int64(cap(g.idBuf)) + int64(cap(g.idOff))*4 + int64(cap(g.inner)) + int64(cap(g.dead)) + 512 +
		int64(cap(g.raw)) + int64(len(g.at))*24
	for _, c := range g.cols {
		n += c.bytes() + 64
	}
	for _, t := range g.times {
		n += int64(cap(t)) * 8
	}
	for _, o := range g.order {
		n += int64(cap(o)) * 4
	}
	return n
}

// segCache is an LRU of segments bounded by a byte budget. A segment in use
// by a query when evicted stays alive until the query drops it, so the heap
// can exceed the budget by the segments queries hold at that moment (one
// per running query).
type segCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	peak   int64
	lru    list.List // front: most recently used
	byKey  map[string]*segment

	hits, misses, evictions int64
}

func newSegCache(budget int64) *segCache {
	return &segCache{budget: budget, byKey: map[string]*segment{}}
}

// acquire returns the cached segment for m, or a new empty one it caches.
func (c *segCache) acquire(m *fileMeta) *segment { return c.acquireKey(m, m.key()) }

// srcSuffix marks the key of a file's sources segment.
const srcSuffix = "\x00sources"

func (c *segCache) acquireKey(m *fileMeta, key string) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.byKey[key]; g != nil {
		c.hits++
		c.lru.MoveToFront(g.elem)
		return g
	}
	c.misses++
	g := &segment{key: key, meta: m}
	g.elem = c.lru.PushFront(g)
	c.byKey[key] = g
	return g
}

// resize records g's new size and evicts the least recently used other
// segments until the cache is within budget.
func (c *segCache) resize(g *segment, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g.elem == nil {
		return // evicted meanwhile: no longer accounted
	}
	c.used += size - g.size
	g.size = size
	for c.used > c.budget {
		e := c.lru.Back()
		if e == nil || e == g.elem {
			break // g alone is over budget: it stays, for its query
		}
		c.removeLocked(e.Value.(*segment))
		c.evictions++
	}
	c.peak = max(c.peak, c.used)
}

func (c *segCache) removeLocked(g *segment) {
	c.lru.Remove(g.elem)
	g.elem = nil
	delete(c.byKey, g.key)
	c.used -= g.size
}

// drop forgets the segments of files that changed or went away.
func (c *segCache) drop(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		for _, k := range []string{k, k + srcSuffix} {
			if g := c.byKey[k]; g != nil {
				c.removeLocked(g)
			}
		}
	}
}

func (c *segCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*segment).elem = nil
	}
	c.lru.Init()
	c.byKey = map[string]*segment{}
	c.used = 0
}

// CacheStats reports the on-disk store's memory accounting.
type CacheStats struct {
	Budget    int64 // bytes the column cache may hold
	Used      int64 // bytes it holds now
	Peak      int64 // most it held after any load (at most Budget unless one segment alone is larger)
	Segments  int   // segments cached now
	MetaBytes int64 // resident per-file metadata (id hashes), outside the budget
	Hits      int64
	Misses    int64
	Evictions int64
}

// CacheStats returns the cache's accounting; zero for an in-memory store.
func (s *Store) CacheStats() CacheStats {
	if s.cache == nil {
		return CacheStats{}
	}
	c := s.cache
	c.mu.Lock()
	st := CacheStats{Budget: c.budget, Used: c.used, Peak: c.peak, Segments: len(c.byKey), Hits: c.hits, Misses: c.misses, Evictions: c.evictions}
	c.mu.Unlock()
	s.mu.Lock()
	ixs := make([]*index, 0, len(s.indices))
	for _, ix := range s.indices {
		ixs = append(ixs, ix)
	}
	s.mu.Unlock()
	for _, ix := range ixs {
		for _, m := range ix.snapshotFiles() {
			h, _ := m.idHashes()
			st.MetaBytes += int64(cap(h))*8 + 256
		}
	}
	return st
}

// snapshotFiles returns the index's files in name order.
func (ix *index) snapshotFiles() []*fileMeta {
	files, _ := ix.filesAndGen()
	return files
}

// filesAndGen returns the index's files and their generation, which
// changes whenever the list does.
func (ix *index) filesAndGen() ([]*fileMeta, int64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.files, ix.gen
}

// refreshFiles brings the list of data files up to date, keeping the
// metadata of unchanged files and dropping the cached columns of changed
// ones.
func (ix *index) refreshFiles(cache *segCache) error {
	stamps, err := ix.listStamps()
	if err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	same := len(stamps) == len(ix.files)
	for _, m := range ix.files {
		if st, ok := stamps[m.name]; !ok || st != m.stamp {
			same = false
			break
		}
	}
	if same {
		return nil
	}
	old := map[string]*fileMeta{}
	for _, m := range ix.files {
		old[m.name] = m
	}
	files := make([]*fileMeta, 0, len(stamps))
	var gone []string
	for name, st := range stamps {
		if m := old[name]; m != nil && m.stamp == st {
			files = append(files, m)
			delete(old, name)
			continue
		}
		files = append(files, &fileMeta{name: name, path: filepath.Join(ix.dir, name), stamp: st, ranges: map[string]timeRange{}})
	}
	for _, m := range old {
		gone = append(gone, m.key())
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	ix.files = files
	ix.gen++
	cache.drop(gone)
	return nil
}

// fieldsFile keeps, in an index directory this package writes segments
// to, the fields queries asked for, so that the next process reads every
// column it will want in one pass over a file rather than one per field.
const fieldsFile = ".fields.json"

type knownFields struct {
	Fields     []string `json:"fields"`
	TimeFields []string `json:"time_fields"`
}

// loadKnownFields reads the index's fields file, if any.
func (ix *index) loadKnownFields() {
	b, err := os.ReadFile(filepath.Join(ix.dir, fieldsFile))
	if err != nil {
		return
	}
	var k knownFields
	if json.Unmarshal(b, &k) == nil {
		ix.known, ix.knownTime = k.Fields, k.TimeFields
	}
}

// noteFields records fields queries asked for, so that a segment read for
// one query builds the columns the next ones will want in the same pass.
func (ix *index) noteFields(fields, timeFields []string) ([]string, []string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	grew := false
	for _, f := range fields {
		if !slices.Contains(ix.known, f) {
			ix.known = append(ix.known, f)
			grew = true
		}
	}
	for _, f := range timeFields {
		if !slices.Contains(ix.knownTime, f) {
			ix.knownTime = append(ix.knownTime, f)
			grew = true
		}
	}
	if grew && slices.ContainsFunc(ix.files, func(m *fileMeta) bool { return strings.HasPrefix(m.name, "seg-") }) {
		b, _ := json.Marshal(knownFields{Fields: ix.known, TimeFields: ix.knownTime})
		if err := writeFileAtomic(filepath.Join(ix.dir, fieldsFile), b); err != nil {
			ix.log.Debug().Str("index", ix.name).Err(err).Msg("keeping the queried fields")
		}
	}
	return slices.Clone(ix.known), slices.Clone(ix.knownTime)
}

// segmentFor returns m's segment with at least the given columns built.
func (s *Store) segmentFor(ix *index, m *fileMeta, fields, timeFields []string) (*segment, error) {
	allF, allT := ix.noteFields(fields, timeFields)
	g := s.cache.acquire(m)
	g.mu.Lock()
	var needF, needT []string
	for _, f := range allF {
		if _, ok := g.cols[f]; !ok {
			needF = append(needF, f)
		}
	}
	for _, f := range allT {
		if _, ok := g.times[f]; !ok {
			needT = append(needT, f)
		}
	}
	var err error
	if !g.built || len(needF)+len(needT) > 0 {
		start := time.Now()
		err = s.buildLocked(ix, g, needF, needT)
		s.log.Debug().Str("index", ix.name).Str("file", m.name).Strs("fields", needF).Strs("time_fields", needT).
			Int("docs", g.n).Dur("took", time.Since(start)).Msg("read segment columns")
	}
	size := g.bytesLocked()
	g.mu.Unlock()
	if err != nil {
		s.cache.drop([]string{g.key})
		return nil, fmt.Errorf("file %s: %w", m.name, err)
	}
	s.cache.resize(g, size)
	return g, nil
}

var errChanged = errors.New("file changed while reading; retry")

// buildLocked adds the missing columns to g. Columns of a segment this
// package wrote (immutable, "seg-*") are kept beside it once built, so a
// segment read again after eviction, or by the next process, loads them
// instead of decompressing and parsing its documents; anything else is read
// from the file, the first read also taking the ids and the file's
// metadata.
func (s *Store) buildLocked(ix *index, g *segment, needF, needT []string) error {
	m := g.meta
	side := sidecarFor(ix, m)
	if !g.built && side != nil {
		if ids, ok := side.readIDs(); ok {
			g.initIDs(ids)
		}
	}
	if g.built && side != nil {
		var missF, missT []string
		for _, f := range needF {
			if c, ok := side.readValues(f, g.n); ok {
				g.cols[f] = c
			} else {
				missF = append(missF, f)
			}
		}
		for _, f := range needT {
			if t, ok := side.readTimes(f, g.n); ok {
				g.addTime(f, t)
			} else {
				missT = append(missT, f)
			}
		}
		needF, needT = missF, missT
		if len(needF)+len(needT) == 0 {
			return nil
		}
	}
	first := !g.built
	ex := newExtractor(needF, needT, g.n)
	var (
		ids      []string
		i        int
		mismatch bool
	)
	err := readDataFile(m.path, func(d rawDoc) {
		if !first {
			// Later reads see the same documents in the same order; lines
			// appended since the first read are not part of this segment.
			if mismatch || i >= g.n {
				return
			}
			if g.id(i) != d.id {
				mismatch = true
				return
			}
		} else {
			ids = append(ids, d.id)
		}
		if err := ex.add(d.src); err != nil {
			s.log.Warn().Str("index", ix.name).Str("id", d.id).Err(err).Msg("undecodable document")
		}
		i++
	}, func(line int, err error) {
		if first {
			s.log.Warn().Str("index", ix.name).Str("file", m.name).Int("line", line).Err(err).Msg("skipping unreadable line")
		}
	})
	if errors.Is(err, fs.ErrNotExist) {
		return errChanged
	}
	if err != nil && first {
		// Keep what was read: a truncated foreign file should not hide
		// the rest of the index.
		s.log.Error().Str("index", ix.name).Str("file", m.name).Err(err).Msg("reading data file")
		side = nil // and keep nothing of it
	} else if err != nil {
		return err
	}
	if !first && (mismatch || i != g.n) {
		return errChanged
	}
	if first {
		g.initIDs(ids)
		if side != nil {
			side.writeIDs(ids)
		}
	}
	cols, times := ex.finish()
	for f, c := range cols {
		g.cols[f] = c
		if side != nil {
			side.writeValues(f, c)
		}
	}
	for f, t := range times {
		g.addTime(f, t)
		if side != nil {
			side.writeTimes(f, t)
		}
	}
	return nil
}

// initIDs sets a segment's documents from their ids in file order, marks
// those a later line of the file replaces and fills the file's metadata.
func (g *segment) initIDs(ids []string) {
	size := 0
	for _, id := range ids {
		size += len(id)
	}
	g.n = len(ids)
	g.idBuf = make([]byte, 0, size)
	g.idOff = make([]uint32, 1, len(ids)+1)
	g.inner = make([]bool, len(ids))
	hashes := make([]uint64, len(ids))
	last := make(map[string]int32, len(ids))
	for i, id := range ids {
		if p, ok := last[id]; ok {
			g.inner[p] = true
		}
		last[id] = int32(i)
		g.idBuf = append(g.idBuf, id...)
		g.idOff = append(g.idOff, uint32(len(g.idBuf)))
		hashes[i] = hashID(id)
	}
	g.dead = g.inner
	g.checked = map[string]fileStamp{}
	g.cols = map[string]*column{}
	g.times = map[string][]int64{}
	g.order = map[string][]int32{}
	g.built = true
	slices.Sort(hashes)
	m := g.meta
	m.mu.Lock()
	m.scanned, m.docs, m.hashes = true, g.n, hashes
	m.mu.Unlock()
}

// addTime adds a time column, its order and the file's range on it.
func (g *segment) addTime(f string, t []int64) {
	g.times[f] = t
	g.order[f] = timeOrder(t)
	r := timeRange{min: noTime, max: noTime}
	for _, v := range t {
		if v == noTime {
			continue
		}
		if !r.any || v < r.min {
			r.min = v
		}
		if !r.any || v > r.max {
			r.max = v
		}
		r.any = true
	}
	m := g.meta
	m.mu.Lock()
	m.ranges[f] = r
	m.mu.Unlock()
}

// hashesOf returns a file's sorted id hashes, reading the file if needed.
func (s *Store) hashesOf(ix *index, m *fileMeta, timeFields []string) ([]uint64, error) {
	if h, ok := m.idHashes(); ok {
		return h, nil
	}
	if _, err := s.segmentFor(ix, m, nil, timeFields); err != nil {
		return nil, err
	}
	h, _ := m.idHashes()
	return h, nil
}

// deadFor returns which of g's documents a later line or a later file
// (files[me+1:]) replaces. Files only get added in practice, so the work is
// incremental: each later file is checked once per segment.
func (s *Store) deadFor(ix *index, g *segment, files []*fileMeta, gen int64, me int, timeFields []string) ([]bool, error) {
	later := files[me+1:]
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deadGen == gen {
		return g.dead, nil
	}
	if len(g.checked) > 0 {
		cur := make(map[string]fileStamp, len(later))
		for _, f := range later {
			cur[f.name] = f.stamp
		}
		for name, st := range g.checked {
			if cur[name] != st {
				// A file we accounted for changed or went: start over.
				g.dead, g.checked = g.inner, map[string]fileStamp{}
				break
			}
		}
	}
	mine, _ := g.meta.idHashes()
	var dead []bool // copy on first change
	for _, f := range later {
		if st, ok := g.checked[f.name]; ok && st == f.stamp {
			continue
		}
		theirs, err := s.hashesOf(ix, f, timeFields)
		if err != nil {
			return nil, err
		}
		common := intersectSorted(mine, theirs)
		if len(common) > 0 {
			if dead == nil {
				dead = slices.Clone(g.dead)
			}
			if err := s.markReplaced(ix, g, f, common, dead, timeFields); err != nil {
				return nil, err
			}
		}
		g.checked[f.name] = f.stamp
	}
	if dead != nil {
		g.dead = dead
	}
	g.deadGen = gen
	return g.dead, nil
}

// markReplaced marks g's documents whose id the later file f also holds,
// confirming each hash match against the ids themselves.
func (s *Store) markReplaced(ix *index, g *segment, f *fileMeta, common map[uint64]struct{}, dead []bool, timeFields []string) error {
	byID := map[string][]int{}
	for i := 0; i < g.n; i++ {
		id := g.id(i)
		if _, ok := common[hashID(id)]; ok {
			byID[id] = append(byID[id], i)
		}
	}
	fg, err := s.segmentFor(ix, f, nil, timeFields)
	if err != nil {
		return err
	}
	fg.mu.Lock()
	defer fg.mu.Unlock()
	for j := 0; j < fg.n; j++ {
		for _, i := range byID[fg.id(j)] {
			dead[i] = true
		}
	}
	return nil
}

func intersectSorted(a, b []uint64) map[uint64]struct{} {
	var out map[uint64]struct{}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			if out == nil {
				out = map[uint64]struct{}{}
			}
			out[a[i]] = struct{}{}
			i++
			j++
		}
	}
	return out
}

// hasIDDisk reports whether any file of the index holds id.
func (s *Store) hasIDDisk(ix *index, id string) (bool, error) {
	h := hashID(id)
	for _, m := range ix.snapshotFiles() {
		hs, err := s.hashesOf(ix, m, nil)
		if err != nil {
			return false, err
		}
		if _, found := slices.BinarySearch(hs, h); !found {
			continue
		}
		g, err := s.segmentFor(ix, m, nil, nil)
		if err != nil {
			return false, err
		}
		g.mu.Lock()
		for i := 0; i < g.n; i++ {
			if g.id(i) == id {
				g.mu.Unlock()
				return true, nil
			}
		}
		g.mu.Unlock()
	}
	return false, nil
}

// srcSlack is how far before a window Events keeps the sources of a file
// it reads: the detector fetches a window's events once per candidate
// signal, and windows move forward, so one read serves the ticks of the
// next hours while holding a small part of the file.
const srcSlack = int64(6 * time.Hour)

// sources returns the sources of g's documents at positions, found by a
// query on timeField whose window starts at from.
func (s *Store) sources(g *segment, timeField string, from int64, positions []int) ([][]byte, error) {
	src := s.cache.acquireKey(g.meta, g.key+srcSuffix)
	src.mu.Lock()
	covered := src.at != nil
	for _, p := range positions {
		if !covered {
			break
		}
		_, covered = src.at[int32(p)]
	}
	var err error
	if !covered {
		start := time.Now()
		err = src.readSourcesLocked(g, timeField, from-srcSlack, positions)
		s.log.Debug().Str("file", g.meta.name).Int("kept", len(src.at)).Dur("took", time.Since(start)).Msg("read segment sources")
	}
	size := src.bytesLocked()
	raw, at := src.raw, src.at
	src.mu.Unlock()
	if err != nil {
		s.cache.drop([]string{src.key})
		return nil, fmt.Errorf("file %s: %w", g.meta.name, err)
	}
	s.cache.resize(src, size)
	out := make([][]byte, len(positions))
	for k, p := range positions {
		se := at[int32(p)]
		out[k] = raw[se[0]:se[1]:se[1]]
	}
	return out, nil
}

// readSourcesLocked reads from g's file (same documents, ids checked) the
// sources at positions and of every document at or after lo on timeField.
func (src *segment) readSourcesLocked(g *segment, timeField string, lo int64, positions []int) error {
	want := make([]bool, g.n)
	for _, p := range positions {
		want[p] = true
	}
	g.mu.Lock()
	times, order := g.times[timeField], g.order[timeField]
	g.mu.Unlock()
	k := sort.Search(len(order), func(k int) bool { return times[order[k]] >= lo })
	for _, p := range order[k:] {
		want[p] = true
	}
	var (
		raw              []byte
		at               = map[int32][2]uint32{}
		i                int
		mismatch, tooBig bool
	)
	err := readDataFile(g.meta.path, func(d rawDoc) {
		if mismatch || tooBig || i >= g.n {
			return
		}
		if g.id(i) != d.id {
			mismatch = true
			return
		}
		if want[i] {
			start := len(raw)
			raw = append(raw, d.src...)
			if len(raw) > math.MaxUint32 {
				tooBig = true
				return
			}
			at[int32(i)] = [2]uint32{uint32(start), uint32(len(raw))}
		}
		i++
	}, func(int, error) {})
	switch {
	case tooBig:
		return errors.New("sources over 4 GiB: split the file")
	case errors.Is(err, fs.ErrNotExist) || mismatch || i != g.n:
		return errChanged
	case err != nil:
		return err
	}
	src.raw, src.at = slices.Clip(raw), at
	return nil
}

// cacheBudget resolves Options.CacheBytes, then CacheEnv, then the default.
func cacheBudget(opt int64) (int64, error) {
	if opt > 0 {
		return opt, nil
	}
	if v := os.Getenv(CacheEnv); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", CacheEnv, err)
		}
		return n, nil
	}
	return DefaultCacheBytes, nil
}
