package embedded

import (
	"bytes"
	"encoding/json"
	"math"
	"sync"

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
}

func newColCache() *colCache {
	return &colCache{cols: map[string]*column{}, times: map[string][]int64{}}
}

type columnBuilder struct {
	col   *column
	index map[string]uint32
}

func (b *columnBuilder) add(i int, vals []string) {
	if len(vals) == 0 {
		return
	}
	pos := func(v string) uint32 {
		p, ok := b.index[v]
		if !ok {
			p = uint32(len(b.col.dict))
			b.col.dict = append(b.col.dict, v)
			b.index[v] = p
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

// ensure builds the missing value and time columns for docs in one decoding
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
		docs := ix.docs
		builders := make([]columnBuilder, len(needF))
		for j := range needF {
			builders[j] = columnBuilder{col: &column{codes: make([]uint32, len(docs))}, index: map[string]uint32{}}
		}
		times := make([][]int64, len(needT))
		for j := range needT {
			times[j] = make([]int64, len(docs))
		}
		var rd bytes.Reader
		var strs []string
		var raw []any
		for i, d := range docs {
			rd.Reset(d.src)
			dec := json.NewDecoder(&rd)
			dec.UseNumber() // keep numbers as written, as keyword fields do
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				ix.log.Warn().Str("index", ix.name).Str("id", d.id).Err(err).Msg("undecodable document")
				m = nil
			}
			for j, f := range needF {
				raw = lookupAll(m, f, raw[:0])
				strs = strs[:0]
				for _, v := range raw {
					if s, ok := store.Stringify(v); ok && !contains(strs, s) {
						strs = append(strs, s)
					}
				}
				builders[j].add(i, strs)
			}
			for j, f := range needT {
				times[j][i] = noTime
				raw = lookupAll(m, f, raw[:0])
				if len(raw) > 0 {
					v := raw[0]
					if n, ok := v.(json.Number); ok {
						fv, err := n.Float64()
						if err != nil {
							continue
						}
						v = fv
					}
					if t, ok := store.ParseTime(v); ok {
						times[j][i] = t.UnixNano()
					}
				}
			}
		}
		for j, f := range needF {
			cc.cols[f] = builders[j].col
		}
		for j, f := range needT {
			cc.times[f] = times[j]
		}
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

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// lookupAll appends every value of a dotted field in doc, as the engines
// index it: nested objects, flat dotted keys or a mix, arrays contributing
// each element and arrays of objects each object's value.
func lookupAll(doc map[string]any, field string, out []any) []any {
	if doc == nil {
		return out
	}
	if v, ok := doc[field]; ok {
		out = appendLeaf(v, out)
	}
	for i := 0; i < len(field); i++ {
		if field[i] != '.' {
			continue
		}
		head, rest := field[:i], field[i+1:]
		switch sub := doc[head].(type) {
		case map[string]any:
			out = lookupAll(sub, rest, out)
		case []any:
			for _, e := range sub {
				if m, ok := e.(map[string]any); ok {
					out = lookupAll(m, rest, out)
				}
			}
		}
	}
	return out
}

func appendLeaf(v any, out []any) []any {
	switch x := v.(type) {
	case nil, map[string]any:
		return out
	case []any:
		for _, e := range x {
			out = appendLeaf(e, out)
		}
		return out
	default:
		return append(out, v)
	}
}
