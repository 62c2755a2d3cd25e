package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

const hourNanos = int64(time.Hour)

// cond is one field condition compiled against a column's dictionary.
type cond struct {
	col     *column
	allowed []bool // by dictionary position
}

func newCond(col *column, vals []string) cond {
	set := make(map[string]bool, len(vals))
	for _, v := range vals {
		set[v] = true
	}
	allowed := make([]bool, len(col.dict))
	for i, v := range col.dict {
		allowed[i] = set[v]
	}
	return cond{col: col, allowed: allowed}
}

// newPredCond allows the dictionary values pred accepts: exclusion
// conditions, judged once per distinct value rather than per document.
func newPredCond(col *column, pred func(string) bool) cond {
	allowed := make([]bool, len(col.dict))
	for i, v := range col.dict {
		allowed[i] = pred(v)
	}
	return cond{col: col, allowed: allowed}
}

func (c cond) match(i int) bool {
	switch code := c.col.codes[i]; code {
	case 0:
		return false
	case multiCode:
		for _, p := range c.col.multi[int32(i)] {
			if c.allowed[p] {
				return true
			}
		}
		return false
	default:
		return c.allowed[code-1]
	}
}

// scan is a query compiled against one index's columns.
type scan struct {
	times    []int64
	order    []int32 // document positions by time
	from, to int64
	must     []cond
	not      []cond
	exclude  [][]cond // a document satisfying every cond of one is dropped
	cols     map[string]*column
	dead     []bool   // replaced documents, on disk; nil in memory
	seg      *segment // the file scanned, on disk; nil in memory
}

func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64+1)):
		return math.MinInt64 + 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// each calls fn for every document of the scan, in time order (ties in
// index order). Only the window's documents are visited.
func (sc *scan) each(ctx context.Context, fn func(i int, t int64) error) error {
	lo := sort.Search(len(sc.order), func(k int) bool { return sc.times[sc.order[k]] >= sc.from })
	hi := sort.Search(len(sc.order), func(k int) bool { return sc.times[sc.order[k]] >= sc.to })
	for k := lo; k < hi; k++ {
		i := int(sc.order[k])
		t := sc.times[i]
		if k&8191 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if sc.dead != nil && sc.dead[i] {
			continue
		}
		ok := true
		for _, c := range sc.must {
			if !c.match(i) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for _, c := range sc.not {
			if c.match(i) {
				ok = false
				break
			}
		}
		if ok && sc.excluded(i) {
			ok = false
		}
		if ok {
			if err := fn(i, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// query resolves q's indices and calls fn for each with the index
// read-locked and the query compiled against columns for fields.
func (s *Store) query(ctx context.Context, q store.Query, restrict map[string][]string, fields []string, fn func(ix *index, sc *scan) error) error {
	if err := q.Validate(); err != nil {
		return err
	}
	ixs, err := s.resolve(q.Index)
	if err != nil {
		return err
	}
	need := append([]string(nil), fields...)
	need = append(need, q.Filter.Fields()...)
	for f := range restrict {
		need = append(need, f)
	}
	for _, ix := range ixs {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if ix.dir == "" {
			err = queryMemory(ix, q, restrict, need, fn)
		} else {
			err = s.queryDisk(ctx, ix, q, restrict, need, fn)
		}
		if err != nil {
			return fmt.Errorf("index %s: %w", ix.name, err)
		}
	}
	return nil
}

// compile adds q's filter and restrict to sc as conditions on its columns.
func (sc *scan) compile(q store.Query, restrict map[string][]string) {
	for f, vs := range q.Filter.Terms {
		sc.must = append(sc.must, newCond(sc.cols[f], vs))
	}
	for f, vs := range restrict {
		sc.must = append(sc.must, newCond(sc.cols[f], vs))
	}
	for f, vs := range q.Filter.Not {
		sc.not = append(sc.not, newCond(sc.cols[f], vs))
	}
	for _, cl := range q.Filter.Exclude {
		conds := make([]cond, 0, len(cl))
		for _, c := range cl {
			conds = append(conds, newPredCond(sc.cols[c.Field], c.MatchValue))
		}
		sc.exclude = append(sc.exclude, conds)
	}
}

// excluded reports whether document i satisfies one exclusion clause.
func (sc *scan) excluded(i int) bool {
clauses:
	for _, cl := range sc.exclude {
		for _, c := range cl {
			if !c.match(i) {
				continue clauses
			}
		}
		return true
	}
	return false
}

// queryMemory calls fn once for an in-memory index, read-locked.
func queryMemory(ix *index, q store.Query, restrict map[string][]string, need []string, fn func(ix *index, sc *scan) error) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if len(ix.docs) == 0 {
		return nil
	}
	cols, times := ix.cols.ensure(ix, need, []string{q.TimeField})
	sc := &scan{times: times[q.TimeField], order: ix.cols.order(q.TimeField), from: nanos(q.Window.From), to: nanos(q.Window.To), cols: cols}
	sc.compile(q, restrict)
	return fn(ix, sc)
}

// queryDisk calls fn for each file of an on-disk index whose time range
// meets the window (files never read yet are read to learn it), in name
// order, with the documents later files replace left out. Files are read
// on every core, a few ahead of the scan: reading (gunzip and parse)
// dominates, and at most that many read files wait outside the budget.
func (s *Store) queryDisk(ctx context.Context, ix *index, q store.Query, restrict map[string][]string, need []string, fn func(ix *index, sc *scan) error) error {
	from, to := nanos(q.Window.From), nanos(q.Window.To)
	tf := []string{q.TimeField}
	files, gen := ix.filesAndGen()
	var cands []int
	for me, m := range files {
		if r, ok := m.rangeOf(q.TimeField); !ok || r.meets(from, to) {
			cands = append(cands, me)
		}
	}
	type read struct {
		g   *segment
		err error
	}
	results := make([]chan read, len(cands))
	for k := range results {
		results[k] = make(chan read, 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ahead := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	go func() {
		for k, me := range cands {
			select {
			case ahead <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				g, err := s.segmentFor(ix, files[me], need, tf)
				results[k] <- read{g, err}
			}()
		}
	}()
	for k, me := range cands {
		var r read
		select {
		case r = <-results[k]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-ahead
		if r.err != nil {
			return r.err
		}
		g, m := r.g, files[me]
		if rg, _ := m.rangeOf(q.TimeField); !rg.meets(from, to) {
			continue
		}
		dead, err := s.deadFor(ix, g, files, gen, me, tf)
		if err != nil {
			return err
		}
		g.mu.Lock()
		sc := &scan{times: g.times[q.TimeField], order: g.order[q.TimeField], from: from, to: to,
			cols: make(map[string]*column, len(need)), dead: dead, seg: g}
		for _, f := range need {
			sc.cols[f] = g.cols[f]
		}
		g.mu.Unlock()
		sc.compile(q, restrict)
		if err := fn(ix, sc); err != nil {
			return err
		}
	}
	return nil
}

// keyer builds binary group keys (4 bytes of dictionary position per field,
// then 8 bytes of hour) for a document, one per combination of values.
type keyer struct {
	cols    []*column
	hour    bool
	buf     []byte
	scratch [][]uint32
}

func newKeyer(cols map[string]*column, fields []string, hour bool) *keyer {
	k := &keyer{hour: hour, scratch: make([][]uint32, len(fields))}
	for _, f := range fields {
		k.cols = append(k.cols, cols[f])
	}
	return k
}

func (k *keyer) each(i int, t int64, fn func(key []byte)) {
	k.buf = k.buf[:0]
	single := true
	for _, c := range k.cols {
		code := c.codes[i]
		if code == 0 {
			return
		}
		if code == multiCode {
			single = false
			break
		}
		k.buf = binary.LittleEndian.AppendUint32(k.buf, code-1)
	}
	if single {
		k.leaf(t, fn)
		return
	}
	k.buf = k.buf[:0]
	k.rec(0, i, t, fn)
}

func (k *keyer) leaf(t int64, fn func(key []byte)) {
	if !k.hour {
		fn(k.buf)
		return
	}
	n := len(k.buf)
	h := t - ((t%hourNanos)+hourNanos)%hourNanos
	k.buf = binary.LittleEndian.AppendUint64(k.buf, uint64(h))
	fn(k.buf)
	k.buf = k.buf[:n]
}

func (k *keyer) rec(j, i int, t int64, fn func(key []byte)) {
	if j == len(k.cols) {
		k.leaf(t, fn)
		return
	}
	vals := k.cols[j].values(i, k.scratch[j][:0])
	k.scratch[j] = vals
	n := len(k.buf)
	for _, v := range vals {
		k.buf = binary.LittleEndian.AppendUint32(k.buf[:n], v)
		k.rec(j+1, i, t, fn)
	}
	k.buf = k.buf[:n]
}

func (k *keyer) decode(key []byte) []string {
	out := make([]string, 0, len(k.cols)+1)
	for _, c := range k.cols {
		out = append(out, c.dict[binary.LittleEndian.Uint32(key)])
		key = key[4:]
	}
	if k.hour {
		h := int64(binary.LittleEndian.Uint64(key))
		out = append(out, time.Unix(0, h).UTC().Format("2006-01-02T15:04:05Z"))
	}
	return out
}

// CountGroups implements store.Backend; fn sees groups in key order.
func (s *Store) CountGroups(ctx context.Context, req store.CountRequest, fn func(store.Group) error) error {
	if len(req.GroupBy) == 0 && !req.HourBuckets {
		return errors.New("count: no group-by field")
	}
	counts := map[string]int64{}
	err := s.query(ctx, req.Query, req.Restrict, req.GroupBy, func(ix *index, sc *scan) error {
		k := newKeyer(sc.cols, req.GroupBy, req.HourBuckets)
		// Pointers, so that the hot path only looks up (string(key) in a
		// lookup does not allocate).
		local := map[string]*int64{}
		err := sc.each(ctx, func(i int, t int64) error {
			k.each(i, t, func(key []byte) {
				n := local[string(key)]
				if n == nil {
					n = new(int64)
					local[string(key)] = n
				}
				*n++
			})
			return nil
		})
		for key, n := range local {
			counts[store.KeyString(k.decode([]byte(key)))] += *n
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, key := range sortedKeys(counts) {
		if err := fn(store.Group{Key: key, Count: counts[store.KeyString(key)]}); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) [][]string {
	keys := make([][]string, 0, len(m))
	for k := range m {
		keys = append(keys, store.SplitKey(k))
	}
	sort.Slice(keys, func(i, j int) bool { return slices.Compare(keys[i], keys[j]) < 0 })
	return keys
}

type statsAcc struct {
	total    int64
	distinct map[string]struct{}
}

// Stats implements store.Backend; distinct counts are exact.
func (s *Store) Stats(ctx context.Context, req store.StatsRequest, fn func(store.Stats) error) error {
	if len(req.By) == 0 {
		return errors.New("stats: no group-by field")
	}
	if req.Distinct == "" {
		return errors.New("stats: no distinct field")
	}
	fields := append(append([]string(nil), req.By...), req.Distinct)
	acc := map[string]*statsAcc{}
	err := s.query(ctx, req.Query, req.Restrict, fields, func(ix *index, sc *scan) error {
		k := newKeyer(sc.cols, req.By, false)
		dcol := sc.cols[req.Distinct]
		type localAcc struct {
			total    int64
			distinct map[uint32]struct{}
		}
		local := map[string]*localAcc{}
		var vals []uint32
		err := sc.each(ctx, func(i int, t int64) error {
			vals = dcol.values(i, vals[:0])
			k.each(i, t, func(key []byte) {
				a := local[string(key)]
				if a == nil {
					a = &localAcc{distinct: map[uint32]struct{}{}}
					local[string(key)] = a
				}
				a.total++
				for _, v := range vals {
					a.distinct[v] = struct{}{}
				}
			})
			return nil
		})
		for key, la := range local {
			ks := store.KeyString(k.decode([]byte(key)))
			a := acc[ks]
			if a == nil {
				a = &statsAcc{distinct: map[string]struct{}{}}
				acc[ks] = a
			}
			a.total += la.total
			for v := range la.distinct {
				a.distinct[dcol.dict[v]] = struct{}{}
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, key := range sortedKeys(acc) {
		a := acc[store.KeyString(key)]
		if err := fn(store.Stats{Key: key, Total: a.total, Distinct: int64(len(a.distinct))}); err != nil {
			return err
		}
	}
	return nil
}

// Events implements store.Backend: oldest first, ties by id (then index).
func (s *Store) Events(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	return s.events(ctx, q, limit, false)
}

// CountEvents counts q's events (the baseline tail checks a sealed hour
// with it before reading the hour again).
func (s *Store) CountEvents(ctx context.Context, q store.Query) (int64, error) {
	var n int64
	err := s.query(ctx, q, nil, nil, func(_ *index, sc *scan) error {
		return sc.each(ctx, func(int, int64) error {
			n++
			return nil
		})
	})
	return n, err
}

// RawEvents is Events with each source left undecoded (Event.Raw).
func (s *Store) RawEvents(ctx context.Context, q store.Query, limit int) ([]store.Event, error) {
	return s.events(ctx, q, limit, true)
}

func (s *Store) events(ctx context.Context, q store.Query, limit int, raw bool) ([]store.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	type hit struct {
		t     int64
		id    string
		index string
		src   []byte   // in memory
		seg   *segment // on disk: the source is read back after the cut
		pos   int
	}
	var hits []hit
	err := s.query(ctx, q, nil, nil, func(ix *index, sc *scan) error {
		return sc.each(ctx, func(i int, t int64) error {
			if sc.seg != nil {
				hits = append(hits, hit{t: t, id: sc.seg.id(i), index: ix.name, seg: sc.seg, pos: i})
				return nil
			}
			// Sources are never modified in place, so they outlive the lock.
			d := ix.docs[i]
			hits = append(hits, hit{t: t, id: d.id, index: ix.name, src: d.src})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if a.t != b.t {
			return a.t < b.t
		}
		if a.id != b.id {
			return a.id < b.id
		}
		return a.index < b.index
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	// On disk, read the kept hits' sources, one pass per file.
	wanted := map[*segment][]int{}
	for _, h := range hits {
		if h.seg != nil {
			wanted[h.seg] = append(wanted[h.seg], h.pos)
		}
	}
	srcs := make(map[*segment]map[int][]byte, len(wanted))
	for g, ps := range wanted {
		got, err := s.sources(g, q.TimeField, nanos(q.Window.From), ps)
		if err != nil {
			return nil, err
		}
		srcs[g] = make(map[int][]byte, len(ps))
		for k, p := range ps {
			srcs[g][p] = got[k]
		}
	}
	for i, h := range hits {
		if h.seg != nil {
			hits[i].src = srcs[h.seg][h.pos]
		}
	}
	out := make([]store.Event, 0, len(hits))
	for _, h := range hits {
		if raw {
			out = append(out, store.Event{ID: h.id, Index: h.index, Time: time.Unix(0, h.t).UTC(), Raw: h.src})
			continue
		}
		var src map[string]any
		if err := json.Unmarshal(h.src, &src); err != nil {
			return nil, fmt.Errorf("index %s: document %s: %w", h.index, h.id, err)
		}
		out = append(out, store.Event{ID: h.id, Index: h.index, Time: time.Unix(0, h.t).UTC(), Source: src})
	}
	return out, nil
}
