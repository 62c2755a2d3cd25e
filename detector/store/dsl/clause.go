package dsl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/offtrail/offtrail/detector/store"
)

// clause renders one exclusion clause: a bool filter of its conditions, so
// must_not drops only the documents that satisfy all of them.
func clause(c store.Clause, r Resolver) map[string]any {
	filter := make([]any, 0, len(c))
	for _, cond := range c {
		filter = append(filter, condition(cond, r))
	}
	return map[string]any{"bool": map[string]any{"filter": filter}}
}

func condition(c store.Cond, r Resolver) map[string]any {
	f := r.field(c.Field)
	switch c.Op {
	case store.OpWildcard:
		var should []any
		for _, p := range c.Values {
			should = append(should, map[string]any{"wildcard": map[string]any{f: map[string]any{"value": p}}})
		}
		return anyOf(should)
	case store.OpCIDR:
		if r.ip(c.Field) {
			// An ip field's terms query takes CIDRs and compares addresses.
			var cidrs []string
			for _, v := range c.Values {
				if p, err := store.ParsePrefix(v); err == nil { // invalid: never matches, as in the embedded store
					cidrs = append(cidrs, p.String())
				}
			}
			if len(cidrs) == 0 {
				return matchNone()
			}
			return terms(f, cidrs)
		}
		return keywordCIDR(f, c.Values)
	}
	return terms(f, c.Values)
}

// anyOf ORs clauses; one needs no bool.
func anyOf(should []any) map[string]any {
	switch len(should) {
	case 0:
		return matchNone()
	case 1:
		return should[0].(map[string]any)
	}
	return map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}}
}

func matchNone() map[string]any { return map[string]any{"match_none": map[string]any{}} }

// keywordCIDR matches addresses written as text (raw CloudTrail's
// sourceIPAddress is a keyword: it also holds service names) against
// prefixes, with prefix queries on the canonical text: an IPv4 /20 is the
// 16 prefixes "10.1.16." to "10.1.31.", a /26 its 64 addresses. IPv6 is
// exact for whole addresses and for prefixes on 16-bit boundaries without
// a zero group ("2001:db8::/32" is "2001:db8:"); other IPv6 prefixes match
// nothing here: an exception that cannot be applied lets the alert through.
func keywordCIDR(field string, values []string) map[string]any {
	var should []any
	for _, v := range values {
		p, err := store.ParsePrefix(v)
		if err != nil {
			continue
		}
		exact, prefixes := textForms(p)
		if len(exact) > 0 {
			should = append(should, terms(field, exact))
		}
		for _, pre := range prefixes {
			should = append(should, map[string]any{"prefix": map[string]any{field: pre}})
		}
	}
	return anyOf(should)
}

// textForms lists the exact addresses or the text prefixes of p.
func textForms(p netip.Prefix) (exact, prefixes []string) {
	a, bits := p.Addr(), p.Bits()
	if bits == a.BitLen() {
		return []string{a.String()}, nil
	}
	if !a.Is4() {
		return nil, ipv6Prefix(p)
	}
	o := a.As4()
	full, rest := bits/8, bits%8
	if rest == 0 && full > 0 {
		return nil, []string{octets(o[:full]) + "."}
	}
	n := 1 << (8 - rest)
	for i := range n {
		x := o
		x[full] = o[full] + byte(i)
		if full == 3 {
			exact = append(exact, netip.AddrFrom4(x).String())
		} else {
			prefixes = append(prefixes, octets(x[:full+1])+".")
		}
	}
	return exact, prefixes
}

func octets(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = strconv.Itoa(int(x))
	}
	return strings.Join(parts, ".")
}

func ipv6Prefix(p netip.Prefix) []string {
	if p.Bits()%16 != 0 || p.Bits() == 0 {
		return nil
	}
	b := p.Addr().As16()
	var groups []string
	for i := 0; i < p.Bits()/8; i += 2 {
		g := uint16(b[i])<<8 | uint16(b[i+1])
		if g == 0 {
			return nil // may be compressed to "::" in the text
		}
		groups = append(groups, fmt.Sprintf("%x", g))
	}
	return []string{strings.Join(groups, ":") + ":"}
}
