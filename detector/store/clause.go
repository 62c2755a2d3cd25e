package store

import (
	"fmt"
	"net/netip"
	"strings"
)

// Condition operators of a Clause.
const (
	// OpTerms: the field has one of the values exactly.
	OpTerms = "terms"
	// OpCIDR: the field holds an IP address inside one of the prefixes
	// (IPv4 or IPv6, "10.0.0.0/8"; a bare address is its own /32 or /128).
	OpCIDR = "cidr"
	// OpWildcard: the field matches one of the patterns, where * is any
	// run of characters and ? any one character; case-sensitive, as the
	// engines' wildcard query on a keyword field.
	OpWildcard = "wildcard"
)

// Clause is a conjunction: a document satisfies it when it satisfies every
// condition. A document missing a condition's field does not satisfy it.
type Clause []Cond

// Cond is one condition of a Clause: Field satisfies Op with any of Values
// (alternatives). Multi-valued fields satisfy it when any value does.
type Cond struct {
	Field  string   `json:"field"`
	Op     string   `json:"op"`
	Values []string `json:"values"`
}

// Validate reports a condition no backend could evaluate.
func (c Cond) Validate() error {
	switch c.Op {
	case OpTerms, OpWildcard:
	case OpCIDR:
		for _, v := range c.Values {
			if _, err := ParsePrefix(v); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("condition on %s: unknown op %q", c.Field, c.Op)
	}
	if c.Field == "" {
		return fmt.Errorf("condition without a field")
	}
	return nil
}

// ParsePrefix reads "10.0.0.0/8", "2001:db8::/32" or a bare address (its
// own /32 or /128). The prefix is masked: 10.1.2.3/8 is 10.0.0.0/8.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: want an address/length like 10.0.0.0/8", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: write IPv4 prefixes in dotted form", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad IP address %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// MatchValue reports whether one stringified document value satisfies c.
// Backends that evaluate conditions themselves (the embedded store) call
// it, so every backend agrees on what a condition means.
func (c Cond) MatchValue(v string) bool {
	switch c.Op {
	case OpTerms:
		for _, w := range c.Values {
			if v == w {
				return true
			}
		}
	case OpCIDR:
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return false
		}
		a = a.Unmap()
		for _, w := range c.Values {
			if p, err := ParsePrefix(w); err == nil && p.Contains(a) {
				return true
			}
		}
	case OpWildcard:
		for _, w := range c.Values {
			if Wildcard(w, v) {
				return true
			}
		}
	}
	return false
}

// Wildcard matches s against pattern: * is any run of characters (also
// none), ? exactly one character; everything else is literal (there is no
// escape, as no shipped field needs one).
func Wildcard(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	// Iterative with one backtrack point: linear in practice, no regexp.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
