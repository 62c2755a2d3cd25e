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

func (b *columnBuilder) add(i int, vals [][]byte) {
	if len(vals) == 0 {
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
		b.col.codes[i] = pos(vals[0]) + 1
		return
	}
	ps := make([]uint32, len(vals))
	for j, v := range vals {
		ps[j] = pos(v)
	}
	b.col.codes[i] = multiCode
	if b.col.multi == nil {
		b.col.multi = map[int32][]uint32{}
	}
	b.col.multi[int32(i)] = ps
}

// ensure builds the missing value and time columns for docs in one parsing
// pass and returns them. It is called with the index read-locked.
func (cc *colCache) ensure(ix *index, fields, timeFields []string) (map[string]*column, map[string][]int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var needF, needT []string
	for _, f := range fields {
		if _, ok := cc.cols[f]; !ok && !contains(needF, f) {
			needF = append(needF, f)
		}
	}
	for _, f := range timeFields {
		if _, ok := cc.times[f]; !ok && !contains(needT, f) {
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

// build parses every document once with a reused fastjson parser (no
// per-document maps) and extracts the fields.
func (cc *colCache) build(ix *index, needF, needT []string) {
	docs := ix.docs
	builders := make([]columnBuilder, len(needF))
	for j := range needF {
		builders[j] = columnBuilder{col: &column{codes: make([]uint32, len(docs))}, index: map[string]uint32{}}
	}
	times := make([][]int64, len(needT))
	for j := range needT {
		times[j] = make([]int64, len(docs))
	}
	var (
		p       fastjson.Parser
		vals    []*fastjson.Value
		strs    [][]byte
		scratch []byte
	)
	for i, d := range docs {
		v, err := p.ParseBytes(d.src)
		var obj *fastjson.Object
		if err == nil {
			obj, err = v.Object()
		}
		if err != nil {
			ix.log.Warn().Str("index", ix.name).Str("id", d.id).Err(err).Msg("undecodable document")
		}
		for j, f := range needF {
			vals = lookupAll(obj, f, vals[:0])
			strs, scratch = strs[:0], scratch[:0]
			for _, v := range vals {
				var s []byte
				s, scratch = stringify(v, scratch)
				if s != nil && !containsBytes(strs, s) {
					strs = append(strs, s)
				}
			}
			builders[j].add(i, strs)
		}
		for j, f := range needT {
			times[j][i] = noTime
			vals = lookupAll(obj, f, vals[:0])
			if len(vals) > 0 {
				if t, ok := parseTime(vals[0]); ok {
					times[j][i] = t
				}
			}
		}
	}
	for j, f := range needF {
		cc.cols[f] = builders[j].col
	}
	for j, f := range needT {
		cc.times[f] = times[j]
		cc.byTime[f] = timeOrder(times[j])
	}
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

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
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
