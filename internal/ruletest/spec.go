// Package ruletest runs rule unit tests: YAML files beside the rules
// (x_test.yml) that declare a small CloudTrail history and window in a
// compact form, the time of evaluation and the signals and incidents
// expected, in the manner of promtool's `test rules` and Panther's
// `Tests:`. Each case runs on an in-memory embedded store through the real
// detector and incident builder, so a test proves what the service would
// do, never a re-implementation of it.
package ruletest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/rules"
)

// File is one decoded test file.
type File struct {
	Name  string // as shown in messages
	Cases []*Case
}

// Case is one test: rules, events, the evaluation time and what must come
// out.
type Case struct {
	Name         string
	Line, Column int
	Rules        []string
	// ruleNodes position "unknown rule" errors.
	ruleNodes []*yaml.Node
	At        time.Time
	// Threshold is the incident score that alerts (default 75).
	Threshold float64
	Events    []Event
	Expect    Expect
}

// Event is one CloudTrail event to render (repeats already expanded).
type Event struct {
	At                                         time.Time
	Identity, Action, Service, Region, Account string
	IP, Country, City, UserAgent, Error, Key   string
	MFA                                        string // "", "true" or "false"
	serviceSet, regionSet                      bool
	Line, Column                               int
}

// Expect is what a case must produce. Listed expectations are exhaustive
// unless Exhaustive is false: every signal of a rule under test, and every
// alerting incident, must match one of them.
type Expect struct {
	Signals      []SignalWant
	CheckSignals bool
	Incidents    []IncidentWant
	CheckInc     bool
	Exhaustive   bool
}

// SignalWant is an expected rule signal; empty fields match anything.
type SignalWant struct {
	Rule, Entity, Value, Severity, Reason string
	MinScore, MaxScore                    float64 // MaxScore 0: no bound
	NoBaseline                            *bool
	Line, Column                          int
}

// IncidentWant is an expected alerting incident.
type IncidentWant struct {
	Actor, Severity, Summary string
	Rules                    []string // exactly these, when set
	MinScore, MaxScore       float64
	Evidence                 int // independent pieces of evidence, when > 0
	NoBaseline               *bool
	Line, Column             int
}

// Defaults every event gets unless the test says otherwise.
const (
	DefaultAccount   = "111111111111"
	DefaultIdentity  = "alice"
	DefaultAction    = "DescribeInstances"
	DefaultRegion    = "eu-west-1"
	DefaultIP        = "198.51.100.10"
	DefaultUserAgent = "aws-cli/2.15.0 Python/3.11.8 Linux/6.1 exe/x86_64"
	maxEvents        = 100000
)

var (
	fileKeys     = []string{"defaults", "cases"}
	caseKeys     = []string{"name", "rule", "rules", "at", "incident_threshold", "defaults", "history", "events", "expect"}
	eventKeys    = []string{"at", "identity", "action", "service", "region", "account", "ip", "country", "city", "ua", "error", "mfa", "key", "repeat"}
	defaultKeys  = slices.DeleteFunc(slices.Clone(eventKeys), func(k string) bool { return k == "at" || k == "repeat" })
	repeatKeys   = []string{"every", "times"}
	expectKeys   = []string{"none", "signals", "incidents", "exhaustive"}
	signalKeys   = []string{"rule", "entity", "value", "min_score", "max_score", "severity", "reason", "no_baseline"}
	incidentKeys = []string{"actor", "rules", "min_score", "max_score", "severity", "evidence", "no_baseline", "summary"}
	severities   = []string{"low", "medium", "high", "critical"}
)

// Decode reads a test file; its problems come back as positioned
// diagnostics and the file holds the cases that decoded cleanly.
func Decode(name string, data []byte) (*File, rules.Diagnostics) {
	d := rules.NewNodeDecoder(name)
	f := &File{Name: name}
	docs := d.Documents(data)
	if len(docs) == 0 && !d.HasErrors() {
		d.Errorf(nil, "", "no test cases (want a mapping with \"cases:\")")
	}
	for _, root := range docs {
		vals, _, ok := d.Mapping(root, "", fileKeys)
		if !ok {
			continue
		}
		d.Required(root, vals, "", "cases")
		defaults := map[string]*yaml.Node{}
		if n, ok := vals["defaults"]; ok {
			if m, _, ok := d.Mapping(n, "defaults", defaultKeys); ok {
				defaults = m
			}
		}
		list := rules.Deref(vals["cases"])
		if list == nil {
			continue
		}
		if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
			d.Errorf(list, "cases", "expected a non-empty list of test cases, got %s", rules.Describe(list))
			continue
		}
		for i, c := range list.Content {
			cd := &caseDec{d: d, path: fmt.Sprintf("cases[%d]", i), fileDefaults: defaults}
			if tc := cd.decode(c); tc != nil {
				f.Cases = append(f.Cases, tc)
			}
		}
	}
	return f, d.Diagnostics()
}

type caseDec struct {
	d            *rules.NodeDecoder
	path         string
	fileDefaults map[string]*yaml.Node
	bad          bool
	n            int
}

func (c *caseDec) errf(n *yaml.Node, path, format string, a ...any) {
	c.bad = true
	c.d.Errorf(n, path, format, a...)
}

// ok wraps a helper's result: any failure marks the case bad.
func (c *caseDec) ok(good bool) bool {
	if !good {
		c.bad = true
	}
	return good
}

func (c *caseDec) decode(n *yaml.Node) *Case {
	n = rules.Deref(n)
	vals, _, ok := c.d.Mapping(n, c.path, caseKeys)
	if !ok {
		return nil
	}
	before := c.d.ErrorCount()
	tc := &Case{Line: n.Line, Column: n.Column, Threshold: detector.DefaultIncidentThreshold}
	c.d.Required(n, vals, c.path, "name", "at", "expect")
	if _, one := vals["rule"]; !one {
		c.d.Required(n, vals, c.path, "rules")
	}
	if v, ok := vals["name"]; ok {
		tc.Name, _ = c.d.NonEmpty(v, c.path+".name")
	}
	c.decodeRules(tc, vals)
	if v, ok := vals["at"]; ok {
		if t, ok := c.absTime(v, c.path+".at"); ok {
			tc.At = t
		}
	}
	if v, ok := vals["incident_threshold"]; ok {
		if x, good := c.d.Float(v, c.path+".incident_threshold"); c.ok(good) {
			if x <= 0 || x > 100 {
				c.errf(v, c.path+".incident_threshold", "must be in (0, 100], got %g", x)
			}
			tc.Threshold = x
		}
	}
	defaults := c.fileDefaults
	if v, ok := vals["defaults"]; ok {
		if m, _, good := c.d.Mapping(v, c.path+".defaults", defaultKeys); c.ok(good) {
			merged := map[string]*yaml.Node{}
			for k, x := range c.fileDefaults {
				merged[k] = x
			}
			for k, x := range m {
				merged[k] = x
			}
			defaults = merged
		}
	}
	if !tc.At.IsZero() {
		for _, key := range []string{"history", "events"} {
			if v, ok := vals[key]; ok {
				tc.Events = append(tc.Events, c.events(v, c.path+"."+key, tc.At, defaults)...)
			}
		}
	}
	if v, ok := vals["expect"]; ok {
		tc.Expect = c.expect(v, c.path+".expect", tc.Rules)
	}
	// A case with any error is left out: the file fails on its
	// diagnostics, and a half-read case would only add noise.
	if c.bad || c.d.ErrorCount() > before {
		return nil
	}
	return tc
}

func (c *caseDec) decodeRules(tc *Case, vals map[string]*yaml.Node) {
	one, hasOne := vals["rule"]
	many, hasMany := vals["rules"]
	switch {
	case hasOne && hasMany:
		c.errf(many, c.path+".rules", "give rule or rules, not both")
	case hasOne:
		if s, good := c.d.NonEmpty(one, c.path+".rule"); c.ok(good) {
			tc.Rules, tc.ruleNodes = []string{s}, []*yaml.Node{rules.Deref(one)}
		}
	case hasMany:
		if list, good := c.d.StrList(many, c.path+".rules"); c.ok(good) {
			tc.Rules = list
			n := rules.Deref(many)
			for i := range list {
				if n.Kind == yaml.SequenceNode {
					tc.ruleNodes = append(tc.ruleNodes, rules.Deref(n.Content[i]))
				} else {
					tc.ruleNodes = append(tc.ruleNodes, n)
				}
			}
		}
	}
}

// timeLayouts are the forms a time may take; a date-time without a zone is
// UTC, as CloudTrail's are.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

func (c *caseDec) absTime(n *yaml.Node, path string) (time.Time, bool) {
	s, good := c.d.NonEmpty(n, path)
	if !c.ok(good) {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	c.errf(rules.Deref(n), path, "bad time %q: want RFC 3339 like 2026-03-02T10:00:00Z", s)
	return time.Time{}, false
}

// eventTime is an absolute time or an offset from the case's time of
// evaluation (-30m, -20d, +0s), which keeps histories short to write.
func (c *caseDec) eventTime(n *yaml.Node, path string, at time.Time) (time.Time, bool) {
	s, _ := c.d.Str(n, path)
	if s != "" && (s[0] == '-' || s[0] == '+') {
		d, err := rules.ParseDuration(s[1:])
		if err != nil {
			c.errf(rules.Deref(n), path, "bad offset %q: want -DURATION like -30m or -20d (from the case's at)", s)
			return time.Time{}, false
		}
		if s[0] == '-' {
			return at.Add(-d.Std()), true
		}
		return at.Add(d.Std()), true
	}
	return c.absTime(n, path)
}

func (c *caseDec) events(n *yaml.Node, path string, at time.Time, defaults map[string]*yaml.Node) []Event {
	n = rules.Deref(n)
	if n.Kind != yaml.SequenceNode {
		c.errf(n, path, "expected a list of events, got %s", rules.Describe(n))
		return nil
	}
	var out []Event
	for i, e := range n.Content {
		out = append(out, c.event(e, fmt.Sprintf("%s[%d]", path, i), at, defaults)...)
	}
	return out
}

func (c *caseDec) event(n *yaml.Node, path string, at time.Time, defaults map[string]*yaml.Node) []Event {
	n = merged(rules.Deref(n))
	vals, _, ok := c.d.Mapping(n, path, eventKeys)
	if !c.ok(ok) {
		return nil
	}
	c.d.Required(n, vals, path, "at")
	if vals["at"] == nil {
		c.bad = true
		return nil
	}
	e := Event{Identity: DefaultIdentity, Action: DefaultAction, Region: DefaultRegion, Account: DefaultAccount,
		IP: DefaultIP, UserAgent: DefaultUserAgent, Line: n.Line, Column: n.Column}
	for _, src := range []map[string]*yaml.Node{defaults, vals} {
		for k, v := range src {
			c.field(&e, k, v, path)
		}
	}
	t, ok := c.eventTime(vals["at"], path+".at", at)
	if !ok {
		return nil
	}
	e.At = t
	offsets := []time.Duration{0}
	if v, ok := vals["repeat"]; ok {
		if offsets = c.repeats(v, path+".repeat"); offsets == nil {
			return nil
		}
	}
	if c.n += len(offsets); c.n > maxEvents {
		c.errf(n, path, "more than %d events in one case: tests should be small", maxEvents)
		return nil
	}
	out := make([]Event, len(offsets))
	for i, off := range offsets {
		out[i] = e
		out[i].At = t.Add(off)
	}
	return out
}

// repeats is one {every, times} or a list of them, nested: [{every: 24h,
// times: 20}, {every: 10s, times: 30}] is 30 events ten seconds apart on
// each of 20 days.
func (c *caseDec) repeats(n *yaml.Node, path string) []time.Duration {
	n = rules.Deref(n)
	levels := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			c.errf(n, path, "must not be an empty list")
			return nil
		}
		levels = n.Content
	}
	out := []time.Duration{0}
	for i, l := range levels {
		p := path
		if n.Kind == yaml.SequenceNode {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		every, times, ok := c.repeat(l, p)
		if !ok {
			return nil
		}
		if len(out)*times > maxEvents {
			c.errf(rules.Deref(l), p, "more than %d events in one case: tests should be small", maxEvents)
			return nil
		}
		next := make([]time.Duration, 0, len(out)*times)
		for _, base := range out {
			for k := 0; k < times; k++ {
				next = append(next, base+time.Duration(k)*every)
			}
		}
		out = next
	}
	return out
}

func (c *caseDec) field(e *Event, k string, v *yaml.Node, path string) {
	p := path + "." + k
	switch k {
	case "at", "repeat":
		return
	case "mfa":
		if b, good := c.d.Bool(v, p); c.ok(good) {
			e.MFA = fmt.Sprint(b)
		}
		return
	}
	s, good := c.d.Value(v, p)
	if !c.ok(good) {
		return
	}
	switch k {
	case "identity":
		e.Identity = s
	case "action":
		e.Action = s
	case "service":
		e.Service, e.serviceSet = s, true
	case "region":
		e.Region, e.regionSet = s, true
	case "account":
		e.Account = s
	case "ip":
		e.IP = s
	case "country":
		e.Country = strings.ToUpper(s)
	case "city":
		e.City = s
	case "ua":
		e.UserAgent = s
	case "error":
		e.Error = s
	case "key":
		e.Key = s
	}
}

func (c *caseDec) repeat(n *yaml.Node, path string) (time.Duration, int, bool) {
	vals, _, ok := c.d.Mapping(n, path, repeatKeys)
	if !c.ok(ok) {
		return 0, 0, false
	}
	c.d.Required(n, vals, path, "every", "times")
	if vals["every"] == nil || vals["times"] == nil {
		c.bad = true
		return 0, 0, false
	}
	every, okE := c.d.Duration(vals["every"], path+".every")
	times, okT := c.d.Int(vals["times"], path+".times")
	switch {
	case !okE || !okT:
		c.bad = true
		return 0, 0, false
	case every <= 0:
		c.errf(rules.Deref(vals["every"]), path+".every", "must be positive")
		return 0, 0, false
	case times < 1 || times > maxEvents:
		c.errf(rules.Deref(vals["times"]), path+".times", "must be between 1 and %d", maxEvents)
		return 0, 0, false
	}
	return every.Std(), times, true
}

func (c *caseDec) expect(n *yaml.Node, path string, ruleIDs []string) Expect {
	ex := Expect{Exhaustive: true}
	vals, _, ok := c.d.Mapping(n, path, expectKeys)
	if !c.ok(ok) {
		return ex
	}
	if v, ok := vals["exhaustive"]; ok {
		if b, good := c.d.Bool(v, path+".exhaustive"); c.ok(good) {
			ex.Exhaustive = b
		}
	}
	if v, ok := vals["none"]; ok {
		b, good := c.d.Bool(v, path+".none")
		if c.ok(good) && !b {
			c.errf(rules.Deref(v), path+".none", "none: false says nothing; list the signals or incidents expected")
		}
		if vals["signals"] != nil || vals["incidents"] != nil {
			c.errf(rules.Deref(v), path+".none", "none: true cannot go with signals or incidents")
		}
		ex.CheckSignals, ex.CheckInc = true, true
		return ex
	}
	if vals["signals"] == nil && vals["incidents"] == nil {
		c.errf(rules.Deref(n), path, "expect signals, incidents, or none: true")
	}
	if v, ok := vals["signals"]; ok {
		ex.CheckSignals = true
		for i, s := range c.list(v, path+".signals") {
			if w, ok := c.signal(s, fmt.Sprintf("%s.signals[%d]", path, i), ruleIDs); ok {
				ex.Signals = append(ex.Signals, w)
			}
		}
	}
	if v, ok := vals["incidents"]; ok {
		ex.CheckInc = true
		for i, s := range c.list(v, path+".incidents") {
			if w, ok := c.incident(s, fmt.Sprintf("%s.incidents[%d]", path, i)); ok {
				ex.Incidents = append(ex.Incidents, w)
			}
		}
	}
	return ex
}

// list accepts a list, or null / [] for "nothing".
func (c *caseDec) list(n *yaml.Node, path string) []*yaml.Node {
	n = rules.Deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		c.errf(n, path, "expected a list (or [] for none), got %s", rules.Describe(n))
		return nil
	}
	return n.Content
}

func (c *caseDec) signal(n *yaml.Node, path string, ruleIDs []string) (SignalWant, bool) {
	n = rules.Deref(n)
	w := SignalWant{Line: n.Line, Column: n.Column}
	vals, _, ok := c.d.Mapping(n, path, signalKeys)
	if !c.ok(ok) {
		return w, false
	}
	if len(ruleIDs) > 1 {
		c.d.Required(n, vals, path, "rule")
	}
	for _, k := range []string{"rule", "entity", "value", "reason"} {
		if v, ok := vals[k]; ok {
			s, good := c.d.NonEmpty(v, path+"."+k)
			c.ok(good)
			switch k {
			case "rule":
				w.Rule = s
				if good && !slices.Contains(ruleIDs, s) {
					c.errf(rules.Deref(v), path+".rule", "%q is not one of the case's rules (%s)", s, strings.Join(ruleIDs, ", "))
				}
			case "entity":
				w.Entity = s
			case "value":
				w.Value = s
			case "reason":
				w.Reason = s
			}
		}
	}
	if w.Rule == "" && len(ruleIDs) == 1 {
		w.Rule = ruleIDs[0]
	}
	w.MinScore, w.MaxScore = c.scores(vals, path)
	w.Severity = c.severity(vals, path)
	w.NoBaseline = c.optBool(vals, "no_baseline", path)
	return w, true
}

func (c *caseDec) incident(n *yaml.Node, path string) (IncidentWant, bool) {
	n = rules.Deref(n)
	w := IncidentWant{Line: n.Line, Column: n.Column}
	vals, _, ok := c.d.Mapping(n, path, incidentKeys)
	if !c.ok(ok) {
		return w, false
	}
	if v, ok := vals["actor"]; ok {
		w.Actor, _ = c.d.NonEmpty(v, path+".actor")
	}
	if v, ok := vals["summary"]; ok {
		w.Summary, _ = c.d.NonEmpty(v, path+".summary")
	}
	if v, ok := vals["rules"]; ok {
		l, good := c.d.StrList(v, path+".rules")
		if c.ok(good) {
			w.Rules = slices.Sorted(slices.Values(l))
		}
	}
	if v, ok := vals["evidence"]; ok {
		x, good := c.d.Int(v, path+".evidence")
		if c.ok(good) && x < 1 {
			c.errf(rules.Deref(v), path+".evidence", "must be at least 1")
		}
		w.Evidence = x
	}
	w.MinScore, w.MaxScore = c.scores(vals, path)
	w.Severity = c.severity(vals, path)
	w.NoBaseline = c.optBool(vals, "no_baseline", path)
	return w, true
}

func (c *caseDec) scores(vals map[string]*yaml.Node, path string) (lo, hi float64) {
	for _, k := range []string{"min_score", "max_score"} {
		v, ok := vals[k]
		if !ok {
			continue
		}
		x, good := c.d.Float(v, path+"."+k)
		if !c.ok(good) {
			continue
		}
		if x < 0 || x > 100 {
			c.errf(rules.Deref(v), path+"."+k, "must be 0-100, got %g", x)
		}
		if k == "min_score" {
			lo = x
		} else {
			hi = x
		}
	}
	if hi > 0 && hi < lo {
		c.errf(rules.Deref(vals["max_score"]), path+".max_score", "%g is below min_score %g", hi, lo)
	}
	return lo, hi
}

func (c *caseDec) severity(vals map[string]*yaml.Node, path string) string {
	v, ok := vals["severity"]
	if !ok {
		return ""
	}
	s, good := c.d.NonEmpty(v, path+".severity")
	if c.ok(good) && !slices.Contains(severities, s) {
		c.errf(rules.Deref(v), path+".severity", "unknown severity %q (want %s)", s, strings.Join(severities, ", "))
	}
	return s
}

func (c *caseDec) optBool(vals map[string]*yaml.Node, key, path string) *bool {
	v, ok := vals[key]
	if !ok {
		return nil
	}
	b, good := c.d.Bool(v, path+"."+key)
	if !c.ok(good) {
		return nil
	}
	return &b
}

// merged resolves YAML merge keys ({<<: *sweep, region: us-east-2}), which
// the Node API leaves as written: keys written in n win over merged ones,
// earlier merged mappings over later ones.
func merged(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	var own, merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			v := rules.Deref(n.Content[i+1])
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					merges = append(merges, merged(rules.Deref(m)))
				}
			} else {
				merges = append(merges, merged(v))
			}
			continue
		}
		own = append(own, n.Content[i], n.Content[i+1])
	}
	if merges == nil {
		return n
	}
	seen := map[string]bool{}
	for i := 0; i < len(own); i += 2 {
		seen[own[i].Value] = true
	}
	out := *n
	out.Content = own
	for _, m := range merges {
		if m == nil || m.Kind != yaml.MappingNode {
			out.Content = append(out.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "<<", Line: m.Line, Column: m.Column}, m)
			continue
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i].Value; !seen[k] {
				seen[k] = true
				out.Content = append(out.Content, m.Content[i], m.Content[i+1])
			}
		}
	}
	return &out
}
