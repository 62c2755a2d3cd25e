package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// dec walks one file's yaml.Nodes and collects diagnostics. Every helper
// reports at the node it was given, so each message has a line and column.
type dec struct {
	file  string // as shown in diagnostics
	raw   string // as read (timezone paths resolve against it)
	diags Diagnostics
	// bad is set by any error; callers reset it per rule to know whether
	// that rule may join the pack.
	bad bool
}

func (d *dec) errf(n *yaml.Node, path, format string, a ...any) {
	d.bad = true
	d.add(n, path, false, format, a...)
}

func (d *dec) warnf(n *yaml.Node, path, format string, a ...any) {
	d.add(n, path, true, format, a...)
}

func (d *dec) add(n *yaml.Node, path string, warning bool, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if path != "" {
		msg = path + ": " + msg
	}
	diag := Diagnostic{File: d.file, Message: msg, Warning: warning}
	if n != nil {
		diag.Line, diag.Column = n.Line, n.Column
	}
	d.diags = append(d.diags, diag)
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a node's kind for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!bool":
			return "a boolean " + n.Value
		case "!!int", "!!float":
			return "a number " + n.Value
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// mapping is a decoded YAML mapping: its values and key nodes by key.
type mapping struct {
	node *yaml.Node
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
	// order keeps keys as written, for keys the schema does not fix
	// (where filters).
	order []string
}

func (m *mapping) get(key string) (*yaml.Node, bool) {
	if m == nil {
		return nil, false
	}
	v, ok := m.vals[key]
	return v, ok
}

// mapping checks n is a mapping and returns its entries. With allowed
// non-nil, other keys are errors (with a suggestion).
func (d *dec) mapping(n *yaml.Node, path string, allowed []string) (*mapping, bool) {
	n = deref(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.errf(n, path, "expected a mapping, got %s", describe(n))
		return nil, false
	}
	m := &mapping{node: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			if k == nil {
				k = n
			}
			d.errf(k, path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		key := k.Value
		if prev, dup := m.keys[key]; dup {
			d.errf(k, path, "duplicate key %q (first at line %d)", key, prev.Line)
			continue
		}
		if allowed != nil && !slices.Contains(allowed, key) {
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(key, allowed); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errf(k, path, "%s", msg)
			continue
		}
		m.keys[key], m.vals[key] = k, v
		m.order = append(m.order, key)
	}
	return m, true
}

// required reports a missing key at the mapping.
func (d *dec) required(m *mapping, path string, keys ...string) {
	for _, k := range keys {
		if _, ok := m.vals[k]; !ok {
			d.errf(m.node, path, "missing required key %q", k)
		}
	}
}

func (d *dec) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		if n == nil {
			return nil, false
		}
		d.errf(n, path, "expected %s, got %s", want, describe(n))
		return nil, false
	}
	return n, true
}

// str accepts text (numbers and dates as written) but not booleans or
// null, which are nearly always a mistake where a name is expected.
func (d *dec) str(n *yaml.Node, path string) (string, bool) {
	s, ok := d.scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	if s.ShortTag() == "!!bool" {
		d.errf(s, path, "expected a string, got %s (quote it)", describe(s))
		return "", false
	}
	return s.Value, true
}

// nonEmpty is str that also rejects "".
func (d *dec) nonEmpty(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if ok && strings.TrimSpace(s) == "" {
		d.errf(deref(n), path, "must not be empty")
		return "", false
	}
	return s, ok
}

// value renders a filter value: strings as written, booleans canonical.
func (d *dec) value(n *yaml.Node, path string) (string, bool) {
	s, ok := d.scalar(n, path, "a value (string, number or boolean)")
	if !ok {
		return "", false
	}
	if s.ShortTag() == "!!bool" {
		var b bool
		if err := s.Decode(&b); err == nil {
			return strconv.FormatBool(b), true
		}
	}
	return s.Value, true
}

// strList accepts one string or a list of them (at least one).
func (d *dec) strList(n *yaml.Node, path string) ([]string, bool) {
	n = deref(n)
	if n == nil {
		return nil, false
	}
	if n.Kind == yaml.ScalarNode {
		s, ok := d.nonEmpty(n, path)
		if !ok {
			return nil, false
		}
		return []string{s}, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errf(n, path, "expected a string or a list of strings, got %s", describe(n))
		return nil, false
	}
	if len(n.Content) == 0 {
		d.errf(n, path, "must not be an empty list")
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for _, c := range n.Content {
		s, good := d.nonEmpty(c, path)
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

func (d *dec) intv(n *yaml.Node, path string) (int, bool) {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return 0, false
	}
	var v int
	if s.ShortTag() != "!!int" || s.Decode(&v) != nil {
		d.errf(s, path, "expected an integer, got %s", describe(s))
		return 0, false
	}
	return v, true
}

func (d *dec) floatv(n *yaml.Node, path string) (float64, bool) {
	s, ok := d.scalar(n, path, "a number")
	if !ok {
		return 0, false
	}
	var v float64
	if (s.ShortTag() != "!!int" && s.ShortTag() != "!!float") || s.Decode(&v) != nil ||
		math.IsNaN(v) || math.IsInf(v, 0) {
		d.errf(s, path, "expected a number, got %s", describe(s))
		return 0, false
	}
	return v, true
}

func (d *dec) boolv(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.scalar(n, path, "true or false")
	if !ok {
		return false, false
	}
	var v bool
	if s.ShortTag() != "!!bool" || s.Decode(&v) != nil {
		d.errf(s, path, "expected true or false, got %s", describe(s))
		return false, false
	}
	return v, true
}

func (d *dec) duration(n *yaml.Node, path string) (Duration, bool) {
	s, ok := d.scalar(n, path, "a duration like 15m, 2h or 30d")
	if !ok {
		return 0, false
	}
	v, err := ParseDuration(s.Value)
	if err != nil {
		d.errf(s, path, "bad duration %q: want a number and a unit (ms, s, m, h, d, w, y) like 15m, 2h, 30d", s.Value)
		return 0, false
	}
	return v, true
}

// Suggest is suggest for other decoders (the run configuration), so that
// every "unknown key" in offtrail offers the same "did you mean".
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo, else "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := distance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(s) > 4 {
		limit = 2
	}
	if len(s) > 10 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// distance is the optimal-string-alignment edit distance (Levenshtein
// plus adjacent transpositions), so "feild" is one edit from "field".
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 { // suggestions are for short names only
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
