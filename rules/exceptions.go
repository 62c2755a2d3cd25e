package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/mappings"
)

// Exceptions follow Elastic's model: an exception list holds entries, each
// a conjunction of conditions on logical fields with a reason, an author
// and an optional expiry. A rule names the shared lists that apply to it
// (exceptions.lists) and may hold entries of its own (exceptions.entries);
// a list declared global applies to every rule. Exceptions suppress alerts:
// the detector drops the matching events from the rule's window query, not
// from its history, so what is normal for an actor is learned as before.

// Exception operators, as written in YAML.
const (
	OpIs      = "is"
	OpIsOneOf = "is one of"
	OpInList  = "in list"
	OpMatches = "matches"
)

var (
	exceptionOps       = []string{OpIs, OpIsOneOf, OpInList, OpMatches}
	exceptionListKeys  = []string{"id", "description", "global", "entries"}
	exceptionEntryKeys = []string{"id", "description", "reason", "author", "expires", "conditions"}
	ruleExceptionKeys  = []string{"lists", "entries"}
)

// addressFields are the logical fields that hold IP addresses: their
// values are addresses or CIDR blocks, compared as addresses.
var addressFields = []string{"source.ip", "source.network"}

// exceptionAliases are logical names exceptions accept beyond the profiles'
// own: the AS number written by an ASN (GeoIP) enrichment step, under its
// ECS name in both shapes.
var exceptionAliases = map[string]string{"source.asn": "source.as.number"}

// ExceptionList is one shared list of exception entries.
type ExceptionList struct {
	ID          string            `json:"id"`
	Description string            `json:"description,omitempty"`
	Global      bool              `json:"global,omitempty"`
	Entries     []*ExceptionEntry `json:"entries"`
	File        string            `json:"-"`
	Line        int               `json:"-"`
}

// ExceptionEntry is one exception: events that meet every condition are
// left out of the rule's window while the entry is in force.
type ExceptionEntry struct {
	ID          string               `json:"id"`
	Description string               `json:"description,omitempty"`
	Reason      string               `json:"reason"`
	Author      string               `json:"author"`
	Expires     time.Time            `json:"expires,omitzero"` // zero: never
	Conditions  []ExceptionCondition `json:"conditions"`
	File        string               `json:"-"`
	Line        int                  `json:"-"`
	Column      int                  `json:"-"`
}

// ExceptionCondition is one condition of an entry.
type ExceptionCondition struct {
	// Field is the field as written: logical (identity, source.ip, …) or
	// physical.
	Field string `json:"field"`
	Op    string `json:"op"`
	// Values are the alternatives: one for "is", the list for "is one of",
	// the lines of the files for "in list", the patterns for "matches".
	Values []string `json:"values"`
	// Lists are the value-list files of "in list", as written.
	Lists []string `json:"lists,omitempty"`
}

// Address reports whether the condition compares IP addresses (CIDR
// blocks match every address inside them).
func (c ExceptionCondition) Address() bool { return slices.Contains(addressFields, c.Field) }

// PhysicalField resolves the condition's field through a profile.
func (c ExceptionCondition) PhysicalField(p *mappings.Profile) string {
	if a, ok := exceptionAliases[c.Field]; ok {
		return a
	}
	return p.Physical(c.Field)
}

// ActiveAt reports whether the entry is in force for a run whose window
// ends at t: an entry applies to windows that end at or before its expiry,
// so a backtest of last month uses the entries that were in force then,
// and a window that straddles the expiry is judged without the entry.
func (e *ExceptionEntry) ActiveAt(t time.Time) bool {
	return e.Expires.IsZero() || !t.After(e.Expires)
}

// AppliedException is an entry in force for a rule, with its list.
type AppliedException struct {
	List  string
	Entry *ExceptionEntry
}

// Name is "list/entry", as signals record it.
func (a AppliedException) Name() string { return a.List + "/" + a.Entry.ID }

// RuleExceptions is a rule's exceptions block.
type RuleExceptions struct {
	// Lists are the ids of the shared lists the rule names.
	Lists []string `yaml:"lists,omitempty" json:"lists,omitempty"`
	// Entries are the rule's own, recorded under the rule's id.
	Entries []*ExceptionEntry `yaml:"-" json:"entries,omitempty"`

	listNodes []*yaml.Node
}

// ExceptionsAt returns the entries in force for the rule for a window that
// ends at t: its own, then those of the lists bound to it (global and
// named), in list order.
func (r *Rule) ExceptionsAt(t time.Time) []AppliedException {
	var out []AppliedException
	if r.Exceptions != nil {
		for _, e := range r.Exceptions.Entries {
			if e.ActiveAt(t) {
				out = append(out, AppliedException{List: r.ID, Entry: e})
			}
		}
	}
	for _, l := range r.boundLists {
		for _, e := range l.Entries {
			if e.ActiveAt(t) {
				out = append(out, AppliedException{List: l.ID, Entry: e})
			}
		}
	}
	return out
}

// ExceptionLists returns the shared lists bound to the rule.
func (r *Rule) ExceptionLists() []*ExceptionList { return r.boundLists }

// Exceptions is a loaded set of exception lists.
type Exceptions struct {
	Lists []*ExceptionList
}

// Get returns the list with the id.
func (x *Exceptions) Get(id string) (*ExceptionList, bool) {
	if x == nil {
		return nil, false
	}
	for _, l := range x.Lists {
		if l.ID == id {
			return l, true
		}
	}
	return nil, false
}

// Bind gives every rule of pack the lists that apply to it: the global
// ones and those it names. A name with no list is an error at the rule.
// Binding replaces what an earlier Bind gave.
func (x *Exceptions) Bind(pack *Pack) Diagnostics {
	var diags Diagnostics
	var ids []string
	if x != nil {
		for _, l := range x.Lists {
			ids = append(ids, l.ID)
		}
	}
	for _, r := range pack.Rules {
		r.boundLists = nil
		if x != nil {
			for _, l := range x.Lists {
				if l.Global {
					r.boundLists = append(r.boundLists, l)
				}
			}
		}
		if r.Exceptions == nil {
			continue
		}
		for i, id := range r.Exceptions.Lists {
			l, ok := x.Get(id)
			if !ok {
				d := Diagnostic{File: r.File, Line: r.Line, Message: fmt.Sprintf("rule %s: exceptions.lists: no exception list %q%s (lists come from --exceptions or the configuration's exceptions)", r.ID, id, didYouMean(id, ids))}
				if i < len(r.Exceptions.listNodes) {
					if n := r.Exceptions.listNodes[i]; n != nil {
						d.Line, d.Column = n.Line, n.Column
					}
				}
				diags = append(diags, d)
				continue
			}
			if !slices.Contains(r.boundLists, l) {
				r.boundLists = append(r.boundLists, l)
			}
		}
	}
	diags.sort()
	return diags
}

// Expiring is an entry that has expired or will within the horizon.
type Expiring struct {
	List    string
	Entry   *ExceptionEntry
	Expired bool
}

// Diagnostic renders the expiry as a warning at the entry.
func (e Expiring) Diagnostic(now time.Time) Diagnostic {
	when := e.Entry.Expires.UTC().Format(time.RFC3339)
	msg := fmt.Sprintf("exception %s/%s expires %s (in %s): %s", e.List, e.Entry.ID, when, humanSpan(e.Entry.Expires.Sub(now)), e.Entry.Reason)
	if e.Expired {
		msg = fmt.Sprintf("exception %s/%s expired %s (%s ago) and no longer applies: %s", e.List, e.Entry.ID, when, humanSpan(now.Sub(e.Entry.Expires)), e.Entry.Reason)
	}
	return Diagnostic{File: e.Entry.File, Line: e.Entry.Line, Column: e.Entry.Column, Message: msg, Warning: true}
}

func humanSpan(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dm", max(0, int(d.Minutes())))
}

// ExpiringEntries lists the entries of the lists and of the pack's rules
// that expired by now or expire within horizon, soonest first.
func ExpiringEntries(x *Exceptions, pack *Pack, now time.Time, horizon time.Duration) []Expiring {
	var out []Expiring
	add := func(list string, entries []*ExceptionEntry) {
		for _, e := range entries {
			if e.Expires.IsZero() || e.Expires.After(now.Add(horizon)) {
				continue
			}
			out = append(out, Expiring{List: list, Entry: e, Expired: !e.Expires.After(now)})
		}
	}
	if x != nil {
		for _, l := range x.Lists {
			add(l.ID, l.Entries)
		}
	}
	if pack != nil {
		for _, r := range pack.Rules {
			if r.Exceptions != nil {
				add(r.ID, r.Exceptions.Entries)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Entry.Expires.Before(out[j].Entry.Expires) })
	return out
}

// exceptionDecoder decodes entries; read and resolve load value lists.
type exceptionDecoder struct {
	*dec
	ctx *loadCtx
	// lists caches value-list files read during one load.
	lists map[string][]string
}

// ruleExceptions decodes a rule's exceptions block.
func (rd *ruleDecoder) ruleExceptions(n *yaml.Node) *RuleExceptions {
	out := &RuleExceptions{}
	m, ok := rd.mapping(n, "exceptions", ruleExceptionKeys)
	if !ok {
		return out
	}
	if v, ok := m.get("lists"); ok {
		out.Lists, _ = rd.strList(v, "exceptions.lists")
		v = deref(v)
		for i := range out.Lists {
			at := v
			if v.Kind == yaml.SequenceNode && i < len(v.Content) {
				at = deref(v.Content[i])
			}
			out.listNodes = append(out.listNodes, at)
		}
	}
	if v, ok := m.get("entries"); ok {
		xd := &exceptionDecoder{dec: rd.dec, ctx: rd.ctx, lists: map[string][]string{}}
		out.Entries = xd.entries(v, "exceptions.entries")
	}
	return out
}

// list decodes one exception list file's root mapping.
func (xd *exceptionDecoder) list(n *yaml.Node) *ExceptionList {
	m, ok := xd.mapping(n, "", exceptionListKeys)
	if !ok {
		return nil
	}
	l := &ExceptionList{File: xd.file, Line: n.Line}
	xd.required(m, "", "id", "entries")
	if v, ok := m.get("id"); ok {
		if s, ok := xd.nonEmpty(v, "id"); ok {
			if !idRE.MatchString(s) {
				xd.errf(deref(v), "id", "%q: use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)", s)
			}
			l.ID = s
		}
	}
	if v, ok := m.get("description"); ok {
		l.Description, _ = xd.str(v, "description")
	}
	if v, ok := m.get("global"); ok {
		l.Global, _ = xd.boolv(v, "global")
	}
	if v, ok := m.get("entries"); ok {
		l.Entries = xd.entries(v, "entries")
	}
	return l
}

func (xd *exceptionDecoder) entries(n *yaml.Node, path string) []*ExceptionEntry {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		xd.errf(n, path, "expected a list of entries, got %s", describe(n))
		return nil
	}
	var out []*ExceptionEntry
	seen := map[string]int{}
	for _, c := range n.Content {
		e := xd.entry(c, path)
		if e == nil {
			continue
		}
		if first, dup := seen[e.ID]; dup && e.ID != "" {
			xd.errf(deref(c), path, "duplicate entry id %q (first at line %d)", e.ID, first)
			continue
		}
		seen[e.ID] = e.Line
		out = append(out, e)
	}
	return out
}

func (xd *exceptionDecoder) entry(n *yaml.Node, path string) *ExceptionEntry {
	m, ok := xd.mapping(n, path, exceptionEntryKeys)
	if !ok {
		return nil
	}
	e := &ExceptionEntry{File: xd.file, Line: m.node.Line, Column: m.node.Column}
	xd.required(m, path, "id", "reason", "author", "conditions")
	if v, ok := m.get("id"); ok {
		if s, ok := xd.nonEmpty(v, path+".id"); ok {
			if !idRE.MatchString(s) {
				xd.errf(deref(v), path+".id", "%q: use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)", s)
			}
			e.ID = s
		}
	}
	if e.ID != "" {
		path += "[" + e.ID + "]"
	}
	for key, dst := range map[string]*string{"reason": &e.Reason, "author": &e.Author} {
		if v, ok := m.get(key); ok {
			*dst, _ = xd.nonEmpty(v, path+"."+key)
		}
	}
	if v, ok := m.get("description"); ok {
		e.Description, _ = xd.str(v, path+".description")
	}
	if v, ok := m.get("expires"); ok {
		e.Expires = xd.expires(v, path+".expires")
	}
	if v, ok := m.get("conditions"); ok {
		e.Conditions = xd.conditions(v, path+".conditions")
	}
	return e
}

// expires reads a date (the entry stops applying at 00:00 UTC that day)
// or an RFC 3339 time.
func (xd *exceptionDecoder) expires(n *yaml.Node, path string) time.Time {
	s, ok := xd.scalar(n, path, "a date like 2024-06-21 or an RFC 3339 time")
	if !ok {
		return time.Time{}
	}
	if t, err := time.Parse(time.DateOnly, s.Value); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
		return t.UTC()
	}
	xd.errf(s, path, "bad date %q: want a date like 2024-06-21 (the entry stops applying at 00:00 UTC that day) or an RFC 3339 time like 2024-06-21T18:00:00+02:00", s.Value)
	return time.Time{}
}

// conditions decodes {field: {op: value}}: every field one operator.
func (xd *exceptionDecoder) conditions(n *yaml.Node, path string) []ExceptionCondition {
	m, ok := xd.mapping(n, path, nil)
	if !ok {
		return nil
	}
	if len(m.order) == 0 {
		xd.errf(m.node, path, "must not be empty: an entry without conditions would silence the rule")
		return nil
	}
	var out []ExceptionCondition
	for _, field := range m.order {
		if c, ok := xd.condition(m.keys[field], m.vals[field], path, field); ok {
			out = append(out, c)
		}
	}
	return out
}

func (xd *exceptionDecoder) condition(key, n *yaml.Node, path, field string) (ExceptionCondition, bool) {
	c := ExceptionCondition{Field: field}
	cpath := path + "." + field
	good := xd.exceptionField(key, cpath, field)
	m, ok := xd.mapping(n, cpath, exceptionOps)
	if !ok {
		return c, false
	}
	if len(m.order) != 1 {
		if len(m.order) > 1 {
			xd.errf(m.node, cpath, "one operator per field (got %s): write another entry for an alternative", strings.Join(m.order, ", "))
		} else if len(m.node.Content) == 0 {
			xd.errf(m.node, cpath, "expected one operator: %s", strings.Join(exceptionOps, ", "))
		}
		return c, false
	}
	c.Op = m.order[0]
	v := m.vals[c.Op]
	opath := cpath + "." + c.Op
	switch c.Op {
	case OpIs:
		s, ok := xd.scalar(v, opath, "one value (use \"is one of\" for several)")
		if !ok {
			return c, false
		}
		val, _ := xd.value(s, opath)
		c.Values = []string{val}
		good = xd.checkValues(c, []*yaml.Node{s}, opath) && good
	case OpIsOneOf:
		v = deref(v)
		if v.Kind != yaml.SequenceNode {
			xd.errf(v, opath, "expected a list of values, got %s", describe(v))
			return c, false
		}
		if len(v.Content) == 0 {
			xd.errf(v, opath, "must not be an empty list")
			return c, false
		}
		for _, e := range v.Content {
			if val, ok := xd.value(e, opath); ok {
				c.Values = append(c.Values, val)
			} else {
				good = false
			}
		}
		good = xd.checkValues(c, v.Content, opath) && good
	case OpInList:
		files, ok := xd.strList(v, opath)
		if !ok {
			return c, false
		}
		c.Lists = files
		for _, f := range files {
			vals, ok := xd.valueList(deref(v), opath, f, c.Address())
			good = good && ok
			c.Values = append(c.Values, vals...)
		}
	case OpMatches:
		pats, ok := xd.strList(v, opath)
		if !ok {
			return c, false
		}
		if c.Address() {
			xd.errf(deref(v), opath, "%s holds IP addresses: use \"is\" or \"is one of\" with CIDR blocks like 10.0.0.0/8", field)
			return c, false
		}
		for _, p := range pats {
			if strings.Contains(p, `\`) {
				xd.errf(deref(v), opath, "pattern %q: a backslash is not supported (* is any text, ? one character)", p)
				good = false
			}
		}
		c.Values = pats
	}
	return c, good
}

// exceptionField accepts a logical field (of any profile), an alias, or a
// physical name (with a '.', '@' or an uppercase letter).
func (xd *exceptionDecoder) exceptionField(key *yaml.Node, path, field string) bool {
	logical := mappings.LogicalFields()
	if _, alias := exceptionAliases[field]; alias || slices.Contains(logical, field) {
		if field == "time" {
			xd.errf(key, path, "exceptions do not take the event time: use expires")
			return false
		}
		return true
	}
	known := slices.DeleteFunc(append(slices.Clone(logical), "source.asn"), func(f string) bool { return f == "time" })
	if strings.ContainsAny(field, ".@") || strings.ToLower(field) != field {
		for _, l := range known {
			if strings.Contains(l, ".") && distance(field, l) == 1 && !isPhysicalAnywhere(field) {
				xd.errf(key, path, "unknown field %q (did you mean %q?)", field, l)
				return false
			}
		}
		return true
	}
	msg := fmt.Sprintf("unknown field %q", field)
	if s := suggest(field, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		msg += ": not a logical field (" + strings.Join(known, ", ") + "), and physical names contain a '.' or an uppercase letter"
	}
	xd.errf(key, path, "%s", msg)
	return false
}

// checkValues validates addresses on address fields.
func (xd *exceptionDecoder) checkValues(c ExceptionCondition, nodes []*yaml.Node, path string) bool {
	if !c.Address() {
		return true
	}
	ok := true
	for i, v := range c.Values {
		if _, err := parsePrefix(v); err != nil {
			at := (*yaml.Node)(nil)
			if i < len(nodes) {
				at = deref(nodes[i])
			}
			xd.errf(at, path, "%v", err)
			ok = false
		}
	}
	return ok
}

// valueList reads a value-list file: one value a line, '#' starts a
// comment, blank lines are skipped. On address fields every value must be
// an IP address or a CIDR block.
func (xd *exceptionDecoder) valueList(at *yaml.Node, path, ref string, address bool) ([]string, bool) {
	name, err := xd.ctx.resolve(xd.raw, ref)
	if err != nil {
		xd.errf(at, path, "%v", err)
		return nil, false
	}
	if vals, ok := xd.lists[name+fmt.Sprint(address)]; ok {
		return vals, true
	}
	data, err := xd.ctx.read(name)
	if err != nil {
		xd.errf(at, path, "value list %q: %s", ref, pathErr(err))
		return nil, false
	}
	display := xd.ctx.display(name)
	var vals []string
	ok := true
	for i, line := range strings.Split(string(data), "\n") {
		if c := strings.Index(line, "#"); c >= 0 {
			line = line[:c]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if address {
			if _, err := parsePrefix(line); err != nil {
				// Positioned in the list file, not the YAML.
				xd.diags = append(xd.diags, Diagnostic{File: display, Line: i + 1, Column: 1, Message: err.Error()})
				xd.bad, ok = true, false
				continue
			}
		}
		vals = append(vals, line)
	}
	if len(vals) == 0 && ok {
		xd.errf(at, path, "value list %q holds no values", ref)
		return nil, false
	}
	if ok {
		xd.lists[name+fmt.Sprint(address)] = vals
	}
	return vals, ok
}

// parsePrefix accepts an address or a CIDR block (store.ParsePrefix's
// rules, kept here so rules stay free of the store package).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: want an address/length like 10.0.0.0/8", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad IP address %q: want an address like 192.0.2.10 or a CIDR block like 10.0.0.0/8", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
