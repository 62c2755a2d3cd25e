package rules

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/mappings"
)

var (
	ruleKeys = []string{
		"id", "name", "description", "version", "type", "schedule", "source",
		"rare", "off_hours", "anomaly_threshold", "risk_score", "severity",
		"max_signals", "threat", "notify", "investigation", "false_positives",
		"references", "tags", "enabled", "context", "burst",
		"exceptions",
	}
	contextKeys  = []string{"fields", "require", "by", "history", "settle", "min_events", "discount"}
	scheduleKeys = []string{"interval", "lookback", "query_delay", "window"}
	sourceKeys   = []string{"index", "profile", "where"}
	rareKeys     = []string{"field", "by", "partition", "history", "mode", "min_history_events", "settle", "novel_floor", "fresh"}
	offHoursKeys = []string{"start", "end", "days", "timezone", "timezones", "learn", "by"}
	burstKeys    = []string{"by", "partition", "count", "field", "history", "min_count"}
	threatKeys   = []string{"tactic", "technique", "subtechnique"}

	// IDs end up in signal document ids and state keys: keep them plain.
	idRE           = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	tacticRE       = regexp.MustCompile(`^TA[0-9]{4}$`)
	techniqueRE    = regexp.MustCompile(`^T[0-9]{4}$`)
	subtechniqueRE = regexp.MustCompile(`^T[0-9]{4}\.[0-9]{3}$`)
	clockRE        = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$`)
)

// ruleTypes are the job types, each with its block of the same name.
var ruleTypes = []string{TypeRare, TypeOffHours, TypeBurst}

const maxMaxSignals = 10000

// fieldRef is a field name a rule uses, checked against its profile once
// the profile is known.
type fieldRef struct {
	node *yaml.Node
	path string
	name string
}

// ruleDecoder decodes one rule.
type ruleDecoder struct {
	*dec
	l    *Loader
	ctx  *loadCtx
	refs []fieldRef
}

func (l *Loader) decodeRule(d *dec, ctx *loadCtx, n *yaml.Node) (*Rule, *yaml.Node) {
	rd := &ruleDecoder{dec: d, l: l, ctx: ctx}
	return rd.rule(deref(n))
}

// rule returns the decoded rule (nil when not even a mapping) and its id
// node, for duplicate detection.
func (rd *ruleDecoder) rule(n *yaml.Node) (*Rule, *yaml.Node) {
	m, ok := rd.mapping(n, "", ruleKeys)
	if !ok {
		return nil, nil
	}
	r := &Rule{
		Version:          DefaultVersion,
		AnomalyThreshold: DefaultAnomalyThreshold,
		Severity:         DefaultSeverity,
		MaxSignals:       DefaultMaxSignals,
		Enabled:          true,
		File:             rd.file,
		Line:             n.Line,
		Schedule: Schedule{
			Interval: DefaultInterval,
			Lookback: DefaultLookback,
			Window:   WindowEvent,
		},
		Source: Source{Profile: DefaultProfile},
	}
	rd.required(m, "", "id", "name", "type", "source")

	idNode, _ := m.get("id")
	if v, ok := m.get("id"); ok {
		if s, ok := rd.nonEmpty(v, "id"); ok {
			if !idRE.MatchString(s) {
				rd.errf(deref(v), "id", "%q: use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)", s)
			}
			r.ID = s
		}
	}
	if v, ok := m.get("name"); ok {
		r.Name, _ = rd.nonEmpty(v, "name")
	}
	for key, dst := range map[string]*string{
		"description": &r.Description, "investigation": &r.Investigation,
		"false_positives": &r.FalsePositives,
	} {
		if v, ok := m.get(key); ok {
			*dst, _ = rd.str(v, key)
		}
	}
	rd.intIn(m, "version", "version", 1, noMax, &r.Version)
	typeNode, hasType := m.get("type")
	if hasType {
		if s, ok := rd.str(typeNode, "type"); ok {
			if !slices.Contains(ruleTypes, s) {
				rd.errf(deref(typeNode), "type", "unknown type %q: want rare, off_hours or burst%s", s, didYouMean(s, ruleTypes))
			}
			r.Type = s
		}
	}

	if v, ok := m.get("schedule"); ok {
		rd.schedule(v, &r.Schedule)
	}
	if v, ok := m.get("source"); ok {
		rd.source(v, &r.Source)
	}
	if rd.l.Profile != "" {
		r.Source.Profile = rd.l.Profile
	}

	rd.jobBlocks(m, n, r)
	if v, ok := m.get("context"); ok {
		r.Context = rd.context(v)
	}
	if v, ok := m.get("severity"); ok {
		if s, ok := rd.str(v, "severity"); ok {
			if _, known := severityScores[s]; !known {
				rd.errf(deref(v), "severity", "unknown severity %q: want low, medium, high or critical%s", s, didYouMean(s, Severities()))
			}
			r.Severity = s
		}
	}
	r.RiskScore = SeverityScore(r.Severity)
	rd.intIn(m, "risk_score", "risk_score", 0, 100, &r.RiskScore)
	rd.floatIn(m, "anomaly_threshold", "anomaly_threshold", 0, 100, &r.AnomalyThreshold)
	rd.intIn(m, "max_signals", "max_signals", 1, maxMaxSignals, &r.MaxSignals)
	if v, ok := m.get("threat"); ok {
		r.Threat = rd.threats(v)
	}
	for key, dst := range map[string]*[]string{"notify": &r.Notify, "references": &r.References, "tags": &r.Tags} {
		if v, ok := m.get(key); ok {
			*dst, _ = rd.strList(v, key)
		}
	}
	if v, ok := m.get("enabled"); ok {
		if b, ok := rd.boolv(v, "enabled"); ok {
			r.Enabled = b
		}
	}
	if v, ok := m.get("exceptions"); ok {
		r.Exceptions = rd.ruleExceptions(v)
	}

	rd.checkFields(r)
	return r, idNode
}

// jobBlocks decodes the rare, off_hours and burst blocks: the one the
// type names (rare is required; off_hours and burst have a default for
// every key) and none of the others.
func (rd *ruleDecoder) jobBlocks(m *mapping, n *yaml.Node, r *Rule) {
	empty := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	for _, typ := range ruleTypes {
		v, has := m.get(typ)
		if has && r.Type != "" && r.Type != typ && slices.Contains(ruleTypes, r.Type) {
			rd.errf(m.keys[typ], "", "%s is not allowed with type %s", typ, r.Type)
		}
		switch {
		case !has && r.Type != typ:
			continue
		case !has && typ == TypeRare:
			rd.errf(m.node, "", "missing required key \"rare\" (type is rare)")
			continue
		case !has:
			// Fixed 09:00-17:00 weekdays UTC; a burst of events by identity.
			v = empty
		}
		switch typ {
		case TypeRare:
			r.Rare = rd.rare(v)
		case TypeOffHours:
			r.OffHours = rd.offHours(v)
		case TypeBurst:
			r.Burst = rd.burst(v)
		}
	}
	if r.Type == TypeBurst {
		rd.burstSchedule(m, r.Schedule)
	}
}

// burstSchedule: a burst is an hour's count, and the window's leading
// partial hour is left to the earlier run that saw it from its start (so
// a sliding window does not re-alert the rest of the same burst). That
// earlier run exists only when runs overlap by at least an hour.
func (rd *ruleDecoder) burstSchedule(m *mapping, s Schedule) {
	if s.Lookback >= s.Interval+Duration(time.Hour) {
		return
	}
	at := m.node
	if sn, ok := m.get("schedule"); ok {
		at = deref(sn)
		if sm, ok := rd.mappingQuiet(sn); ok {
			if v, ok := sm.get("lookback"); ok {
				at = deref(v)
			}
		}
	}
	rd.errf(at, "schedule.lookback", "type burst counts whole hours: lookback %s must be at least interval %s + 1h, so every hour is seen whole by one run", s.Lookback, s.Interval)
}

// mappingQuiet returns n's entries without reporting anything (the caller
// already decoded n and reported its faults).
func (rd *ruleDecoder) mappingQuiet(n *yaml.Node) (*mapping, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, false
	}
	m := &mapping{node: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode {
			m.keys[k.Value], m.vals[k.Value] = k, n.Content[i+1]
		}
	}
	return m, true
}

// noMax is intIn's "no upper bound".
const noMax = math.MaxInt

// intIn decodes m's key into dst when present and reports a value outside
// [lo, hi], naming the path.
func (rd *ruleDecoder) intIn(m *mapping, key, path string, lo, hi int, dst *int) {
	v, ok := m.get(key)
	if !ok {
		return
	}
	i, ok := rd.intv(v, path)
	if !ok {
		return
	}
	switch {
	case hi == noMax && i < lo:
		rd.errf(deref(v), path, "must be at least %d, got %d", lo, i)
	case hi != noMax && (i < lo || i > hi):
		rd.errf(deref(v), path, "must be between %d and %d, got %d", lo, hi, i)
	}
	*dst = i
}

// floatIn is intIn for numbers.
func (rd *ruleDecoder) floatIn(m *mapping, key, path string, lo, hi float64, dst *float64) {
	v, ok := m.get(key)
	if !ok {
		return
	}
	f, ok := rd.floatv(v, path)
	if !ok {
		return
	}
	if f < lo || f > hi {
		rd.errf(deref(v), path, "must be between %v and %v, got %v", lo, hi, f)
	}
	*dst = f
}

func didYouMean(s string, candidates []string) string {
	if c := suggest(s, candidates); c != "" {
		return "; did you mean " + c + "?"
	}
	return ""
}

func (rd *ruleDecoder) schedule(n *yaml.Node, s *Schedule) {
	m, ok := rd.mapping(n, "schedule", scheduleKeys)
	if !ok {
		return
	}
	intervalNode, hasInterval := m.get("interval")
	if hasInterval {
		if v, ok := rd.duration(intervalNode, "schedule.interval"); ok {
			if v <= 0 {
				rd.errf(deref(intervalNode), "schedule.interval", "must be positive")
			} else {
				s.Interval = v
			}
		}
	}
	lookbackNode, hasLookback := m.get("lookback")
	if hasLookback {
		if v, ok := rd.duration(lookbackNode, "schedule.lookback"); ok {
			if v <= 0 {
				rd.errf(deref(lookbackNode), "schedule.lookback", "must be positive")
			} else {
				s.Lookback = v
			}
		}
	}
	if s.Lookback < s.Interval {
		// Runs would leave gaps between windows.
		at, path := deref(lookbackNode), "schedule.lookback"
		if !hasLookback {
			at, path = deref(intervalNode), "schedule.interval"
		}
		rd.errf(at, path, "lookback %s is shorter than interval %s: events between runs would never be seen", s.Lookback, s.Interval)
	}
	if v, ok := m.get("query_delay"); ok {
		s.QueryDelay, _ = rd.duration(v, "schedule.query_delay")
	}
	if v, ok := m.get("window"); ok {
		if w, ok := rd.str(v, "schedule.window"); ok {
			if w != WindowEvent && w != WindowIngested {
				rd.errf(deref(v), "schedule.window", "unknown window %q (want event or ingested)", w)
			}
			s.Window = w
		}
	}
}

func (rd *ruleDecoder) source(n *yaml.Node, s *Source) {
	m, ok := rd.mapping(n, "source", sourceKeys)
	if !ok {
		return
	}
	rd.required(m, "source", "index")
	if v, ok := m.get("index"); ok {
		s.Index, _ = rd.strList(v, "source.index")
	}
	if v, ok := m.get("profile"); ok {
		if p, ok := rd.str(v, "source.profile"); ok {
			if _, known := mappings.LookupProfile(p); !known && rd.l.Profile == "" {
				rd.errf(deref(v), "source.profile", "unknown profile %q (known: %s)", p, strings.Join(mappings.ProfileNames(), ", "))
			}
			s.Profile = p
		}
	}
	if v, ok := m.get("where"); ok {
		s.Where = rd.where(v)
	}
}

func (rd *ruleDecoder) where(n *yaml.Node) Where {
	w := Where{}
	if n = deref(n); n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return w
	}
	m, ok := rd.mapping(n, "source.where", nil)
	if !ok {
		return w
	}
	w.Terms = rd.terms(m, "source.where", true)
	if v, ok := m.get("not"); ok {
		if nm, ok := rd.mapping(v, "source.where.not", nil); ok {
			w.Not = rd.terms(nm, "source.where.not", false)
		}
	}
	return w
}

func (rd *ruleDecoder) terms(m *mapping, path string, top bool) map[string][]string {
	out := map[string][]string{}
	for _, k := range m.order {
		if k == "not" {
			if !top {
				rd.errf(m.keys[k], path, "\"not\" cannot be nested")
			}
			continue
		}
		p := join(path, k)
		v := deref(m.vals[k])
		rd.refs = append(rd.refs, fieldRef{node: m.keys[k], path: path, name: k})
		var vals []string
		switch {
		case v.Kind == yaml.SequenceNode:
			if len(v.Content) == 0 {
				rd.errf(v, p, "must not be an empty list")
			}
			for _, c := range v.Content {
				if s, ok := rd.value(c, p); ok {
					vals = append(vals, s)
				}
			}
		default:
			if s, ok := rd.value(v, p); ok {
				vals = append(vals, s)
			}
		}
		if len(vals) > 0 {
			out[k] = vals
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fields decodes a field-or-tuple key and remembers the names for the
// profile check; duplicates within the list are errors.
func (rd *ruleDecoder) fields(n *yaml.Node, path string) []string {
	list, _ := rd.strList(n, path)
	seen := map[string]bool{}
	n = deref(n)
	for i, f := range list {
		at := n
		if n.Kind == yaml.SequenceNode && i < len(n.Content) {
			at = deref(n.Content[i])
		}
		if seen[f] {
			rd.errf(at, path, "field %q listed twice", f)
		}
		seen[f] = true
		rd.refs = append(rd.refs, fieldRef{node: at, path: path, name: f})
	}
	return list
}

func (rd *ruleDecoder) rare(n *yaml.Node) *Rare {
	r := &Rare{By: []string{DefaultEntity}, History: DefaultHistory, Mode: ModeRare}
	m, ok := rd.mapping(n, "rare", rareKeys)
	if !ok {
		return r
	}
	rd.required(m, "rare", "field")
	if v, ok := m.get("field"); ok {
		r.Field = rd.fields(v, "rare.field")
	}
	if v, ok := m.get("by"); ok {
		r.By = rd.fields(v, "rare.by")
	} else {
		rd.refs = append(rd.refs, fieldRef{node: m.node, path: "rare.by", name: DefaultEntity})
	}
	if v, ok := m.get("partition"); ok {
		r.Partition = rd.fields(v, "rare.partition")
	}
	// A field that is also the entity or partition is constant per model:
	// nothing could ever be rare.
	for _, f := range r.Field {
		if slices.Contains(r.By, f) {
			rd.errf(m.node, "rare", "field %q is also in by: it could never be rare for its own entity", f)
		}
		if slices.Contains(r.Partition, f) {
			rd.errf(m.node, "rare", "field %q is also in partition: it could never be rare within its partition", f)
		}
	}
	for _, f := range r.By {
		if slices.Contains(r.Partition, f) {
			rd.errf(m.node, "rare", "field %q is in both by and partition", f)
		}
	}
	if v, ok := m.get("history"); ok {
		if h, ok := rd.duration(v, "rare.history"); ok {
			if h <= 0 {
				rd.errf(deref(v), "rare.history", "must be positive: the baseline needs some history")
			}
			r.History = h
		}
	}
	if v, ok := m.get("mode"); ok {
		if s, ok := rd.str(v, "rare.mode"); ok {
			if s != ModeRare && s != ModeFirstSeen {
				rd.errf(deref(v), "rare.mode", "unknown mode %q: want rare or first_seen%s", s, didYouMean(s, []string{ModeRare, ModeFirstSeen}))
			}
			r.Mode = s
		}
	}
	rd.intIn(m, "min_history_events", "rare.min_history_events", 0, noMax, &r.MinHistoryEvents)
	rd.floatIn(m, "novel_floor", "rare.novel_floor", 0, 100, &r.NovelFloor)
	if v, ok := m.get("settle"); ok {
		if d, ok := rd.duration(v, "rare.settle"); ok {
			if d < 0 {
				rd.errf(deref(v), "rare.settle", "must not be negative, got %s", d)
			}
			r.Settle = d
		}
	}
	if v, ok := m.get("fresh"); ok {
		if d, ok := rd.duration(v, "rare.fresh"); ok {
			if d < 0 || d > r.History {
				rd.errf(deref(v), "rare.fresh", "must be between 0 and the history (%s), got %s", r.History, d)
			}
			r.Fresh = d
		}
	}
	return r
}

func (rd *ruleDecoder) burst(n *yaml.Node) *Burst {
	b := &Burst{By: []string{DefaultEntity}, Count: CountEvents, History: DefaultHistory, MinCount: DefaultBurstMinCount}
	m, ok := rd.mapping(n, "burst", burstKeys)
	if !ok {
		return b
	}
	if v, ok := m.get("by"); ok {
		b.By = rd.fields(v, "burst.by")
	} else {
		rd.refs = append(rd.refs, fieldRef{node: m.node, path: "burst.by", name: DefaultEntity})
	}
	if v, ok := m.get("partition"); ok {
		b.Partition = rd.fields(v, "burst.partition")
	}
	for _, f := range b.By {
		if slices.Contains(b.Partition, f) {
			rd.errf(m.node, "burst", "field %q is in both by and partition", f)
		}
	}
	if v, ok := m.get("count"); ok {
		if s, ok := rd.str(v, "burst.count"); ok {
			if s != CountEvents && s != CountDistinct {
				rd.errf(deref(v), "burst.count", "unknown count %q: want events or distinct%s", s, didYouMean(s, []string{CountEvents, CountDistinct}))
			}
			b.Count = s
		}
	}
	rd.burstField(m, b)
	if v, ok := m.get("history"); ok {
		if h, ok := rd.duration(v, "burst.history"); ok {
			if h < Duration(time.Hour) {
				rd.errf(deref(v), "burst.history", "must be at least 1h: the rate is learned on whole hours, got %s", h)
			}
			b.History = h
		}
	}
	rd.intIn(m, "min_count", "burst.min_count", 1, noMax, &b.MinCount)
	return b
}

// burstField decodes burst.field: required by count: distinct, meaningless
// otherwise, and never the entity itself (one value per entity).
func (rd *ruleDecoder) burstField(m *mapping, b *Burst) {
	v, has := m.get("field")
	switch {
	case !has && b.Count == CountDistinct:
		rd.errf(m.node, "burst", "count: distinct needs field: the field whose distinct values are counted (e.g. region)")
		return
	case !has:
		return
	case b.Count != CountDistinct:
		rd.errf(m.keys["field"], "burst.field", "only with count: distinct (count: %s counts events)", b.Count)
	}
	s, ok := rd.nonEmpty(v, "burst.field")
	if !ok {
		return
	}
	rd.refs = append(rd.refs, fieldRef{node: deref(v), path: "burst.field", name: s})
	if slices.Contains(b.By, s) || slices.Contains(b.Partition, s) {
		rd.errf(deref(v), "burst.field", "%q is also the entity: it has one value per entity and hour", s)
	}
	b.Field = s
}

func (rd *ruleDecoder) context(n *yaml.Node) *Context {
	c := &Context{By: DefaultEntity, History: DefaultContextHistory, Settle: DefaultContextSettle,
		MinEvents: DefaultContextMinEvents, Discount: DefaultContextDiscount}
	m, ok := rd.mapping(n, "context", contextKeys)
	if !ok {
		return c
	}
	rd.required(m, "context", "fields")
	if v, ok := m.get("fields"); ok {
		c.Fields = rd.fields(v, "context.fields")
		if len(c.Fields) == 0 {
			rd.errf(deref(v), "context.fields", "list at least one field (e.g. source.country, user_agent)")
		}
	}
	if v, ok := m.get("require"); ok {
		list, _ := rd.strList(v, "context.require")
		for _, f := range list {
			if !slices.Contains(c.Fields, f) {
				rd.errf(deref(v), "context.require", "%q is not one of context.fields %v", f, c.Fields)
			}
		}
		c.Require = list
	} else if len(c.Fields) > 0 {
		c.Require = c.Fields[:1]
	}
	if v, ok := m.get("by"); ok {
		if s, ok := rd.nonEmpty(v, "context.by"); ok {
			c.By = s
			rd.refs = append(rd.refs, fieldRef{node: deref(v), path: "context.by", name: s})
		}
	} else {
		rd.refs = append(rd.refs, fieldRef{node: m.node, path: "context.by", name: DefaultEntity})
	}
	for _, f := range c.Fields {
		if f == c.By {
			rd.errf(m.node, "context", "field %q is also context.by: it is always familiar to itself", f)
		}
	}
	for key, dst := range map[string]*Duration{"history": &c.History, "settle": &c.Settle} {
		if v, ok := m.get(key); ok {
			if d, ok := rd.duration(v, "context."+key); ok {
				if d < 0 || (key == "history" && d == 0) {
					rd.errf(deref(v), "context."+key, "must be positive, got %s", d)
				}
				*dst = d
			}
		}
	}
	if c.Settle >= c.History {
		rd.errf(m.node, "context", "settle (%s) must be shorter than history (%s)", c.Settle, c.History)
	}
	rd.intIn(m, "min_events", "context.min_events", 1, noMax, &c.MinEvents)
	rd.floatIn(m, "discount", "context.discount", 0, 10, &c.Discount)
	return c
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday,
	"saturday": time.Saturday,
}

var (
	weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	weekends = []time.Weekday{time.Saturday, time.Sunday}
	everyday = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
)

func (rd *ruleDecoder) offHours(n *yaml.Node) *OffHours {
	o := &OffHours{
		Days:     append([]time.Weekday(nil), weekdays...),
		Timezone: DefaultTimezone,
		By:       []string{DefaultEntity},
		Location: time.UTC,
	}
	m, ok := rd.mapping(n, "off_hours", offHoursKeys)
	if !ok {
		return o
	}
	if v, ok := m.get("learn"); ok {
		if l, ok := rd.duration(v, "off_hours.learn"); ok {
			if l <= 0 {
				rd.errf(deref(v), "off_hours.learn", "must be positive (or leave it out for fixed hours)")
			}
			o.Learn = l
		}
	}
	startNode, hasStart := m.get("start")
	endNode, hasEnd := m.get("end")
	if o.Learn > 0 && (hasStart || hasEnd) {
		at := m.keys["start"]
		if !hasStart {
			at = m.keys["end"]
		}
		rd.errf(at, "off_hours", "start/end and learn are exclusive: learned hours replace fixed ones")
	}
	if o.Learn <= 0 {
		o.Start, o.End = DefaultStart, DefaultEnd
	}
	startOK, endOK := true, true
	if hasStart {
		o.Start, startOK = rd.clock(startNode, "off_hours.start")
	}
	if hasEnd {
		o.End, endOK = rd.clock(endNode, "off_hours.end")
	}
	if o.Learn <= 0 && startOK && endOK {
		s, _ := parseClock(o.Start)
		e, _ := parseClock(o.End)
		if e <= s {
			at, path := deref(endNode), "off_hours.end"
			if !hasEnd {
				at, path = deref(startNode), "off_hours.start"
			}
			rd.errf(at, path, "end %s must be after start %s", o.End, o.Start)
		}
	}
	if v, ok := m.get("days"); ok {
		o.Days = rd.days(v)
	}
	if v, ok := m.get("timezone"); ok {
		if s, ok := rd.nonEmpty(v, "off_hours.timezone"); ok {
			o.Timezone = s
			o.TimezoneSet = true
			if loc, err := loadLocation(s); err != nil {
				rd.errf(deref(v), "off_hours.timezone", "unknown timezone %q: want an IANA name like Europe/Paris or America/New_York", s)
			} else {
				o.Location = loc
			}
		}
	}
	if v, ok := m.get("timezones"); ok {
		if s, ok := rd.nonEmpty(v, "off_hours.timezones"); ok {
			o.Timezones = s
			rd.timezones(deref(v), o)
		}
	}
	if v, ok := m.get("by"); ok {
		o.By = rd.fields(v, "off_hours.by")
	} else {
		rd.refs = append(rd.refs, fieldRef{node: m.node, path: "off_hours.by", name: DefaultEntity})
	}
	return o
}

func (rd *ruleDecoder) clock(n *yaml.Node, path string) (string, bool) {
	s, ok := rd.str(n, path)
	if !ok {
		return "", false
	}
	if _, err := parseClock(s); err != nil {
		rd.errf(deref(n), path, "bad time %q: want HH:MM on a 24-hour clock, like 09:00 or 17:30", s)
		return s, false
	}
	return s, true
}

type clockError string

func (e clockError) Error() string { return string(e) }

// parseClock turns "HH:MM" into minutes after midnight ("24:00" is 1440).
func parseClock(s string) (int, error) {
	m := clockRE.FindStringSubmatch(s)
	if m == nil {
		return 0, clockError("bad time " + s)
	}
	if s == "24:00" {
		return 24 * 60, nil
	}
	return int(m[1][0]-'0')*600 + int(m[1][1]-'0')*60 + int(m[2][0]-'0')*10 + int(m[2][1]-'0'), nil
}

func (rd *ruleDecoder) days(n *yaml.Node) []time.Weekday {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		s, ok := rd.str(n, "off_hours.days")
		if !ok {
			return append([]time.Weekday(nil), weekdays...)
		}
		switch strings.ToLower(s) {
		case "weekdays":
			return append([]time.Weekday(nil), weekdays...)
		case "weekends":
			return append([]time.Weekday(nil), weekends...)
		case "everyday", "every day", "all":
			return append([]time.Weekday(nil), everyday...)
		}
		if d, ok := dayNames[strings.ToLower(s)]; ok {
			return []time.Weekday{d}
		}
		rd.errf(n, "off_hours.days", "unknown days %q: want weekdays, weekends, everyday or a list like [mon, tue]", s)
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		rd.errf(n, "off_hours.days", "expected a list of days or weekdays/weekends/everyday, got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		rd.errf(n, "off_hours.days", "must not be an empty list (every hour would be off hours)")
	}
	var out []time.Weekday
	seen := map[time.Weekday]bool{}
	for _, c := range n.Content {
		s, ok := rd.str(c, "off_hours.days")
		if !ok {
			continue
		}
		d, known := dayNames[strings.ToLower(s)]
		if !known {
			rd.errf(deref(c), "off_hours.days", "unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", s)
			continue
		}
		if seen[d] {
			rd.errf(deref(c), "off_hours.days", "day %q listed twice", s)
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	return out
}

func (rd *ruleDecoder) threats(n *yaml.Node) []Threat {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		rd.errf(n, "threat", "expected a list of {tactic, technique, subtechnique}, got %s", describe(n))
		return nil
	}
	var out []Threat
	for _, c := range n.Content {
		m, ok := rd.mapping(c, "threat", threatKeys)
		if !ok {
			continue
		}
		rd.required(m, "threat", "tactic")
		var t Threat
		if v, ok := m.get("tactic"); ok {
			if s, ok := rd.str(v, "threat.tactic"); ok {
				switch {
				case !tacticRE.MatchString(s):
					rd.errf(deref(v), "threat.tactic", "%q is not an ATT&CK tactic id like TA0005", s)
				case tacticNames[s] == "":
					rd.warnf(deref(v), "threat.tactic", "%q is not an ATT&CK Enterprise tactic", s)
				}
				t.Tactic = s
			}
		}
		if v, ok := m.get("technique"); ok {
			if s, ok := rd.str(v, "threat.technique"); ok {
				switch {
				case subtechniqueRE.MatchString(s):
					rd.errf(deref(v), "threat.technique", "%q is a sub-technique: write technique: %s and subtechnique: %s", s, s[:5], s)
				case !techniqueRE.MatchString(s):
					rd.errf(deref(v), "threat.technique", "%q is not an ATT&CK technique id like T1078", s)
				}
				t.Technique = s
			}
		}
		if v, ok := m.get("subtechnique"); ok {
			if s, ok := rd.str(v, "threat.subtechnique"); ok {
				switch {
				case !subtechniqueRE.MatchString(s):
					rd.errf(deref(v), "threat.subtechnique", "%q is not an ATT&CK sub-technique id like T1078.004", s)
				case t.Technique == "":
					t.Technique = s[:5]
				case !strings.HasPrefix(s, t.Technique+"."):
					rd.errf(deref(v), "threat.subtechnique", "%s is not a sub-technique of %s", s, t.Technique)
				}
				t.Subtechnique = s
			}
		}
		out = append(out, t)
	}
	return out
}

// checkFields validates every field the rule names against its profile.
func (rd *ruleDecoder) checkFields(r *Rule) {
	p, ok := mappings.LookupProfile(r.Source.Profile)
	if !ok {
		return // already reported
	}
	for _, ref := range rd.refs {
		rd.checkField(p, ref)
	}
}

// checkField accepts a logical field of the profile, or a physical name —
// one with a dot, '@' or an uppercase letter — unless it is one edit away
// from a dotted logical name (source.cty). A bare lowercase word that is
// not logical is an error: it is nearly always a typo.
func (rd *ruleDecoder) checkField(p *mappings.Profile, ref fieldRef) {
	name := ref.name
	if p.IsLogical(name) {
		// A context field without its enrichment is simply not compared.
		if p.NeedsEnrichment(name) && ref.path != "context.fields" {
			how := "an enrichment step"
			if strings.HasPrefix(name, "source.") && name != "source.ip" {
				how = "a GeoIP step (at ingest or in offtrail)"
			}
			effect := "events without it are never scored"
			switch ref.path {
			case "source.where":
				effect = "events without it never match"
			case "source.where.not":
				effect = "events without it are never excluded"
			}
			rd.warnf(ref.node, ref.path, "field %q (%s) is filled only by %s in profile %s: %s", name, p.Physical(name), how, p.Name, effect)
		}
		return
	}
	logical := mappings.LogicalFields()
	if strings.ContainsAny(name, ".@") || strings.ToLower(name) != name {
		for _, l := range logical {
			if strings.Contains(l, ".") && distance(name, l) == 1 && !isPhysicalAnywhere(name) {
				rd.errf(ref.node, ref.path, "unknown field %q (did you mean %q?)", name, l)
				return
			}
		}
		// A physical name of another profile is probably a copy-paste
		// from a rule written for that shape.
		for _, pn := range mappings.ProfileNames() {
			other, _ := mappings.LookupProfile(pn)
			if pn == p.Name {
				continue
			}
			if l := other.Logical(name); l != name && p.Physical(l) != name {
				rd.warnf(ref.node, ref.path, "field %q is profile %s's name for %q; profile %s calls it %q (write %q to work with both)", name, pn, l, p.Name, p.Physical(l), l)
				return
			}
		}
		return
	}
	s := suggest(name, logical)
	if s == "" {
		// eventname for eventName: suggest the logical name behind it.
		for _, pn := range mappings.ProfileNames() {
			other, _ := mappings.LookupProfile(pn)
			for _, l := range logical {
				if strings.EqualFold(other.Physical(l), name) {
					s = l
				}
			}
		}
	}
	if s != "" {
		rd.errf(ref.node, ref.path, "unknown field %q (did you mean %q?)", name, s)
		return
	}
	rd.errf(ref.node, ref.path, "unknown field %q: not a logical field of profile %s (%s), and physical names contain a '.' or an uppercase letter",
		name, p.Name, strings.Join(logical, ", "))
}

func isPhysicalAnywhere(name string) bool {
	for _, pn := range mappings.ProfileNames() {
		p, _ := mappings.LookupProfile(pn)
		if p.Logical(name) != name {
			return true
		}
	}
	return false
}
