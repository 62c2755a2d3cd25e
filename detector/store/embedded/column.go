package embedded

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/offtrail/offtrail/detector/store"
)

// A column holds one field's values for every document of an index,
// dictionary-encoded: queries then group and filter on small integers and
// never touch JSON again. Columns are built on first use of a field and
// dropped when the index changes.
type column struct {
	dict []string
	// codes[i] is 0 when document i lacks the field, multiCode when it has
	// several values (see multi), else 1 + the value's position in dict.
	codes []uint32
	multi map[int32][]uint32 // positions in dict
}

const multiCode = math.MaxUint32

// noTime marks a document without a (parseable) time.
const noTime = math.MinInt64

// values appends document i's dictionary positions to buf.
func (c *column) values(i int, buf []uint32) []uint32 {
	switch code := c.codes[i]; code {
	case 0:
		return buf
	case multiCode:
		return append(buf, c.multi[int32(i)]...)
	default:
		return append(buf, code-1)
	}
}

// colCache holds the columns built for one version of an index's docs.
type colCache struct {
	mu    sync.Mutex
	cols  map[string]*column
	times map[string][]int64 // unix nanoseconds, noTime when missing
	// byTime[f] lists document positions in order of times[f], so a query
	// visits only the documents of its window (binary search) instead of
	// every document: a 2-hour window over a month of history is ~0.3%.
	byTime map[string][]int32
}

// timeOrder returns the documents' positions sorted by time (stable, so
// equal times keep index order).
func timeOrder(times []int64) []int32 {
	order := make([]int32, len(times))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(times[a], times[b]) })
	return order
}

func newColCache() *colCache {
	return &colCache{cols: map[string]*column{}, times: map[string][]int64{}, byTime: map[string][]int32{}}
}

type columnBuilder struct {
	col   *column
	index map[string]uint32
}

func newColumnBuilder(capacity int) columnBuilder {
	return columnBuilder{col: &column{codes: make([]uint32, 0, capacity)}, index: map[string]uint32{}}
}

// add appends the next document's values (its position is len(codes)).
func (b *columnBuilder) add(vals [][]byte) {
	i := len(b.col.codes)
	if len(vals) == 0 {
		b.col.codes = append(b.col.codes, 0)
		return
	}
	pos := func(v []byte) uint32 {
		p, ok := b.index[string(v)] // no allocation for a known value
		if !ok {
			p = uint32(len(b.col.dict))
			s := string(v)
			b.col.dict = append(b.col.dict, s)
			b.index[s] = p
		}
		return p
	}
	if len(vals) == 1 {
		b.col.codes = append(b.col.codes, pos(vals[0])+1)
		return
	}
	ps := make([]uint32, len(vals))
	for j, v := range vals {
		ps[j] = pos(v)
	}
	b.col.codes = append(b.col.codes, multiCode)
	if b.col.multi == nil {
		b.col.multi = map[int32][]uint32{}
	}
	b.col.multi[int32(i)] = ps
}

// bytes estimates the column's memory for cache accounting.
func (c *column) bytes() int64 {
	n := int64(cap(c.codes))*4 + int64(len(c.dict))*16
	for _, s := range c.dict {
		n += int64(len(s))
	}
	for _, ps := range c.multi {
		n += 48 + int64(len(ps))*4
	}
	return n
}

// ensure builds the missing value and time columns for docs in one parsing
// pass and returns them. It is called with the index read-locked.
func (cc *colCache) ensure(ix *index, fields, timeFields []string) (map[string]*column, map[string][]int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var needF, needT []string
	for _, f := range fields {
		if _, ok := cc.cols[f]; !ok && !slices.Contains(needF, f) {
			needF = append(needF, f)
		}
	}
	for _, f := range timeFields {
		if _, ok := cc.times[f]; !ok && !slices.Contains(needT, f) {
			needT = append(needT, f)
		}
	}
	if len(needF)+len(needT) > 0 {
		cc.build(ix, needF, needT)
	}
	cols := make(map[string]*column, len(fields))
	for _, f := range fields {
		cols[f] = cc.cols[f]
	}
	tcols := make(map[string][]int64, len(timeFields))
	for _, f := range timeFields {
		tcols[f] = cc.times[f]
	}
	return cols, tcols
}

// order returns the time order of a time column built by ensure.
func (cc *colCache) order(timeField string) []int32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.byTime[timeField]
}

// build parses every document once and extracts the fields.
func (cc *colCache) build(ix *index, needF, needT []string) {
	ex := newExtractor(needF, needT, len(ix.docs))
	for _, d := range ix.docs {
		if err := ex.add(d.src); err != nil {
			ix.log.Warn().Str("index", ix.name).Str("id", d.id).Err(err).Msg("undecodable document")
		}
	}
	cols, times := ex.finish()
	for f, c := range cols {
		cc.cols[f] = c
	}
	for f, t := range times {
		cc.times[f] = t
		cc.byTime[f] = timeOrder(t)
	}
}

// grown returns the columns for ix after documents were written to it:
// those from position from on are new, and when none replaced an earlier
// one (replaced false) the columns built so far are extended by parsing
// only the new documents — an index that grows by appends, like the
// baseline cache's tail, then never re-parses what it held. Otherwise
// every field built so far is rebuilt in one pass. Called with ix locked.
func (cc *colCache) grown(ix *index, from int, replaced bool) *colCache {
	fields := make([]string, 0, len(cc.cols))
	for f := range cc.cols {
		fields = append(fields, f)
	}
	timeFields := make([]string, 0, len(cc.times))
	for f := range cc.times {
		timeFields = append(timeFields, f)
	}
	if len(fields)+len(timeFields) == 0 {
		return newColCache()
	}
	if replaced {
		fresh := newColCache()
		fresh.build(ix, fields, timeFields)
		return fresh
	}
	ex := newExtractor(fields, timeFields, len(ix.docs)-from)
	for _, d := range ix.docs[from:] {
		if err := ex.add(d.src); err != nil {
			ix.log.Warn().Str("index", ix.name).Str("id", d.id).Err(err).Msg("undecodable document")
		}
	}
	cols, times := ex.finish()
	for f, c := range cols {
		cc.cols[f].append(c)
	}
	for f, t := range times {
		cc.times[f] = append(cc.times[f], t...)
		cc.byTime[f] = timeOrder(cc.times[f])
	}
	return cc
}

// append adds o's documents after c's, re-coding o's values in c's
// dictionary.
func (c *column) append(o *column) {
	at := make(map[string]uint32, len(c.dict))
	for i, s := range c.dict {
		at[s] = uint32(i)
	}
	remap := make([]uint32, len(o.dict))
	for i, s := range o.dict {
		p, ok := at[s]
		if !ok {
			p = uint32(len(c.dict))
			c.dict = append(c.dict, s)
			at[s] = p
		}
		remap[i] = p
	}
	offset := int32(len(c.codes))
	for i, code := range o.codes {
		switch code {
		case 0:
			c.codes = append(c.codes, 0)
		case multiCode:
			ps := make([]uint32, len(o.multi[int32(i)]))
			for j, p := range o.multi[int32(i)] {
				ps[j] = remap[p]
			}
			if c.multi == nil {
				c.multi = map[int32][]uint32{}
			}
			c.multi[offset+int32(i)] = ps
			c.codes = append(c.codes, multiCode)
		default:
			c.codes = append(c.codes, remap[code-1]+1)
		}
	}
}

// extractor builds value and time columns from documents given one at a
// time, with a reused fastjson parser (no per-document maps).
type extractor struct {
	fields, timeFields []string
	builders           []columnBuilder
	times              [][]int64

	p       fastjson.Parser
	vals    []*fastjson.Value
	strs    [][]byte
	scratch []byte
}

func newExtractor(fields, timeFields []string, capacity int) *extractor {
	ex := &extractor{fields: fields, timeFields: timeFields}
	ex.builders = make([]columnBuilder, len(fields))
	for j := range fields {
		ex.builders[j] = newColumnBuilder(capacity)
	}
	ex.times = make([][]int64, len(timeFields))
	for j := range timeFields {
		ex.times[j] = make([]int64, 0, capacity)
	}
	return ex
}

// add appends one document; an undecodable one gets no values and no time
// (and the error is returned for logging).
func (ex *extractor) add(src []byte) error {
	v, err := ex.p.ParseBytes(src)
	var obj *fastjson.Object
	if err == nil {
		obj, err = v.Object()
	}
	for j, f := range ex.fields {
		ex.vals = lookupAll(obj, f, ex.vals[:0])
		ex.strs, ex.scratch = ex.strs[:0], ex.scratch[:0]
		for _, v := range ex.vals {
			var s []byte
			s, ex.scratch = stringify(v, ex.scratch)
			if s != nil && !containsBytes(ex.strs, s) {
				ex.strs = append(ex.strs, s)
			}
		}
		ex.builders[j].add(ex.strs)
	}
	for j, f := range ex.timeFields {
		t := int64(noTime)
		ex.vals = lookupAll(obj, f, ex.vals[:0])
		if len(ex.vals) > 0 {
			if pt, ok := parseTime(ex.vals[0]); ok {
				t = pt
			}
		}
		ex.times[j] = append(ex.times[j], t)
	}
	return err
}

func (ex *extractor) finish() (map[string]*column, map[string][]int64) {
	cols := make(map[string]*column, len(ex.fields))
	for j, f := range ex.fields {
		cols[f] = ex.builders[j].col
	}
	times := make(map[string][]int64, len(ex.timeFields))
	for j, f := range ex.timeFields {
		times[f] = ex.times[j]
	}
	return cols, times
}

// stringify renders a value as store.Stringify does, numbers exactly as
// written (as a keyword field keeps them). The result may point into v or
// into scratch, which it may grow.
func stringify(v *fastjson.Value, scratch []byte) ([]byte, []byte) {
	switch v.Type() {
	case fastjson.TypeString:
		return v.GetStringBytes(), scratch
	case fastjson.TypeTrue:
		return trueBytes, scratch
	case fastjson.TypeFalse:
		return falseBytes, scratch
	case fastjson.TypeNumber:
		n := len(scratch)
		scratch = v.MarshalTo(scratch)
		return scratch[n:len(scratch):len(scratch)], scratch
	}
	return nil, scratch
}

var trueBytes, falseBytes = []byte("true"), []byte("false")

// parseTime reads a date as store.ParseTime does (strings, epoch millis).
func parseTime(v *fastjson.Value) (int64, bool) {
	var t time.Time
	var ok bool
	switch v.Type() {
	case fastjson.TypeString:
		t, ok = store.ParseTime(string(v.GetStringBytes()))
	case fastjson.TypeNumber:
		t, ok = store.ParseTime(v.GetFloat64())
	}
	if !ok {
		return 0, false
	}
	return t.UnixNano(), true
}

func containsBytes(s [][]byte, v []byte) bool {
	for _, x := range s {
		if bytes.Equal(x, v) {
			return true
		}
	}
	return false
}

// lookupAll appends every value of a dotted field, as the engines index
// it: nested objects, flat dotted keys or a mix, arrays contributing each
// element and arrays of objects each object's value. (store.Lookup finds
// only the first of these.)
func lookupAll(o *fastjson.Object, field string, out []*fastjson.Value) []*fastjson.Value {
	if o == nil {
		return out
	}
	if v := o.Get(field); v != nil {
		out = appendLeaf(v, out)
	}
	for i := 0; i < len(field); i++ {
		if field[i] != '.' {
			continue
		}
		sub := o.Get(field[:i])
		if sub == nil {
			continue
		}
		rest := field[i+1:]
		switch sub.Type() {
		case fastjson.TypeObject:
			so, _ := sub.Object()
			out = lookupAll(so, rest, out)
		case fastjson.TypeArray:
			arr, _ := sub.Array()
			for _, e := range arr {
				if eo, err := e.Object(); err == nil {
					out = lookupAll(eo, rest, out)
				}
			}
		}
	}
	return out
}

func appendLeaf(v *fastjson.Value, out []*fastjson.Value) []*fastjson.Value {
	switch v.Type() {
	case fastjson.TypeNull, fastjson.TypeObject:
		return out
	case fastjson.TypeArray:
		arr, _ := v.Array()
		for _, e := range arr {
			out = appendLeaf(e, out)
		}
		return out
	default:
		return append(out, v)
	}
}

// retain returns the columns of the n documents' subset at kept (old
// positions, ascending), renumbered from 0: what building them from those
// documents alone would give, dictionaries included.
func (cc *colCache) retain(kept []int32, n int) *colCache {
	out := newColCache()
	for f, c := range cc.cols {
		out.cols[f] = c.retain(kept)
	}
	at := make([]int32, n) // new position + 1; 0: dropped
	for k, p := range kept {
		at[p] = int32(k) + 1
	}
	for f, t := range cc.times {
		nt := make([]int64, len(kept))
		for k, p := range kept {
			nt[k] = t[p]
		}
		out.times[f] = nt
		// The time order filtered is the new time order: positions keep
		// their relative order, so ties stay in index order.
		order := make([]int32, 0, len(kept))
		for _, p := range cc.byTime[f] {
			if q := at[p]; q > 0 {
				order = append(order, q-1)
			}
		}
		out.byTime[f] = order
	}
	return out
}

// retain returns the column of the documents at kept, its dictionary
// holding only their values, in the order they first appear.
func (c *column) retain(kept []int32) *column {
	out := &column{codes: make([]uint32, len(kept))}
	at := make([]uint32, len(c.dict)) // new position + 1; 0: not used yet
	use := func(v uint32) uint32 {
		if at[v] == 0 {
			out.dict = append(out.dict, c.dict[v])
			at[v] = uint32(len(out.dict))
		}
		return at[v] - 1
	}
	for k, p := range kept {
		switch code := c.codes[p]; code {
		case 0:
		case multiCode:
			ps := c.multi[p]
			nps := make([]uint32, len(ps))
			for j, v := range ps {
				nps[j] = use(v)
			}
			if out.multi == nil {
				out.multi = map[int32][]uint32{}
			}
			out.multi[int32(k)] = nps
			out.codes[k] = multiCode
		default:
			out.codes[k] = use(code-1) + 1
		}
	}
	return out
}
