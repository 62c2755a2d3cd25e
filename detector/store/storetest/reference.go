package storetest

import (
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// reference evaluates requests over the fixture in plain Go: the truth every
// backend is compared with. It is deliberately naive.
type reference struct {
	indices map[string][]Doc
}

type refHit struct {
	index string
	doc   Doc
	t     time.Time
}

// values returns the stringified values of field in src; a JSON array
// contributes each distinct element, as a keyword field's doc values do.
func values(src map[string]any, field string) []string {
	v, ok := store.Lookup(src, field)
	if !ok {
		return nil
	}
	if arr, ok := v.([]any); ok {
		var out []string
		seen := map[string]bool{}
		for _, e := range arr {
			if s, ok := store.Stringify(e); ok && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := store.Stringify(v); ok {
		return []string{s}
	}
	return nil
}

func anyIn(vals, set []string) bool {
	for _, v := range vals {
		for _, s := range set {
			if v == s {
				return true
			}
		}
	}
	return false
}

func (r reference) hits(q store.Query, restrict map[string][]string) []refHit {
	chosen := map[string]bool{}
	for _, pat := range q.Index {
		for name := range r.indices {
			if ok, _ := path.Match(pat, name); ok {
				chosen[name] = true
			}
		}
	}
	var out []refHit
	for name := range chosen {
	docs:
		for _, d := range r.indices[name] {
			tv, ok := store.Lookup(d.Source, q.TimeField)
			if !ok {
				continue
			}
			t, ok := store.ParseTime(tv)
			if !ok || !q.Window.Contains(t) {
				continue
			}
			for f, vs := range q.Filter.Terms {
				if !anyIn(values(d.Source, f), vs) {
					continue docs
				}
			}
			for f, vs := range q.Filter.Not {
				if anyIn(values(d.Source, f), vs) {
					continue docs
				}
			}
			for f, vs := range restrict {
				if !anyIn(values(d.Source, f), vs) {
					continue docs
				}
			}
			for _, c := range q.Filter.Exclude {
				if satisfies(d.Source, c) {
					continue docs
				}
			}
			out = append(out, refHit{index: name, doc: d, t: t})
		}
	}
	return out
}

// keys returns every key tuple a document contributes (the cross product of
// multi-valued fields); none when a field is missing.
func keys(src map[string]any, fields []string) [][]string {
	out := [][]string{nil}
	for _, f := range fields {
		vs := values(src, f)
		var next [][]string
		for _, k := range out {
			for _, v := range vs {
				next = append(next, append(append([]string(nil), k...), v))
			}
		}
		out = next
	}
	return out
}

func (r reference) count(req store.CountRequest) map[string]int64 {
	out := map[string]int64{}
	for _, h := range r.hits(req.Query, req.Restrict) {
		for _, k := range keys(h.doc.Source, req.GroupBy) {
			if req.HourBuckets {
				k = append(k, h.t.UTC().Truncate(time.Hour).Format("2006-01-02T15:04:05Z"))
			}
			out[store.KeyString(k)]++
		}
	}
	return out
}

type refStats struct {
	total    int64
	distinct map[string]bool
}

func (r reference) stats(req store.StatsRequest) map[string][2]int64 {
	acc := map[string]*refStats{}
	for _, h := range r.hits(req.Query, req.Restrict) {
		for _, k := range keys(h.doc.Source, req.By) {
			ks := store.KeyString(k)
			s := acc[ks]
			if s == nil {
				s = &refStats{distinct: map[string]bool{}}
				acc[ks] = s
			}
			s.total++
			for _, v := range values(h.doc.Source, req.Distinct) {
				s.distinct[v] = true
			}
		}
	}
	out := map[string][2]int64{}
	for k, s := range acc {
		out[k] = [2]int64{s.total, int64(len(s.distinct))}
	}
	return out
}

func (r reference) events(q store.Query, limit int) []refHit {
	hs := r.hits(q, nil)
	sort.Slice(hs, func(i, j int) bool {
		if !hs[i].t.Equal(hs[j].t) {
			return hs[i].t.Before(hs[j].t)
		}
		return hs[i].doc.ID < hs[j].doc.ID
	})
	if len(hs) > limit {
		hs = hs[:limit]
	}
	return hs
}

// satisfies reports whether a document meets every condition of c, each
// judged naively: CIDR by parsing, wildcards through a regular expression.
func satisfies(src map[string]any, c store.Clause) bool {
	for _, cond := range c {
		met := false
		for _, v := range values(src, cond.Field) {
			for _, w := range cond.Values {
				if refMatch(cond.Op, w, v) {
					met = true
				}
			}
		}
		if !met {
			return false
		}
	}
	return true
}

func refMatch(op, want, v string) bool {
	switch op {
	case store.OpTerms:
		return v == want
	case store.OpCIDR:
		p, err := netip.ParsePrefix(want)
		if err != nil {
			a, err := netip.ParseAddr(want)
			if err != nil {
				return false
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		a, err := netip.ParseAddr(v)
		return err == nil && p.Masked().Contains(a)
	case store.OpWildcard:
		re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(want)) + "$"
		return regexp.MustCompile("(?s)" + re).MatchString(v)
	}
	return false
}
