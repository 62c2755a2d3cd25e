// Package rules defines offtrail's rule schema, loads rule files with
// file:line:column diagnostics for every problem at once, and embeds the
// shipped AWS rule pack (rules/aws).
//
// Loading follows Prometheus' model/rulefmt: files are decoded into yaml.v3
// Nodes and walked by hand, so each error points at the exact key or value
// that caused it, and one run reports all errors of all files.
package rules

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/mappings"
)

// Rule types.
const (
	TypeRare     = "rare"
	TypeOffHours = "off_hours"
	TypeBurst    = "burst"
)

// Burst counts: what a burst's hourly count is of.
const (
	CountEvents   = "events"
	CountDistinct = "distinct"
)

// Rare modes.
const (
	ModeRare      = "rare"
	ModeFirstSeen = "first_seen"
)

// Schedule windows: which time field bounds a run's window.
const (
	WindowEvent    = "event"
	WindowIngested = "ingested"
)

// Defaults applied when a rule leaves a key out.
const (
	DefaultVersion          = 1
	DefaultProfile          = "ecs"
	DefaultAnomalyThreshold = 75
	DefaultSeverity         = "low"
	DefaultMaxSignals       = 100
	DefaultTimezone         = "UTC"
	DefaultStart            = "09:00"
	DefaultEnd              = "17:00"
	DefaultInterval         = Duration(15 * time.Minute)
	DefaultLookback         = Duration(2 * time.Hour)
	DefaultHistory          = Duration(30 * 24 * time.Hour)
)

// DefaultEntity is the logical field whose habits rules learn by default.
const DefaultEntity = "identity"

// severityScores maps severities to ECS event.severity numbers, which are
// also the default risk scores (as in Elastic's detection rules).
var severityScores = map[string]int{"low": 21, "medium": 47, "high": 73, "critical": 99}

// SeverityScore returns the ECS numeric severity (21/47/73/99) of a
// severity name, or 0 for an unknown one.
func SeverityScore(severity string) int { return severityScores[severity] }

// Severities lists the valid severities, least severe first.
func Severities() []string { return []string{"low", "medium", "high", "critical"} }

// Duration is a time.Duration written the Prometheus way in YAML: "15m",
// "2h", "30d", "1w", "1h30m".
type Duration time.Duration

// ParseDuration parses "15m", "2h", "30d", "1w" and combinations.
func ParseDuration(s string) (Duration, error) {
	d, err := model.ParseDuration(s)
	return Duration(d), err
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return model.Duration(d).String() }

// MarshalYAML writes the duration as "30d", "2h".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads "30d", "2h", "15m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration like 15m or 30d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalText lets durations appear in JSON and flags as "30d".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "30d", "2h".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Rule is one anomaly job.
type Rule struct {
	ID          string `yaml:"id" json:"id"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Version     int    `yaml:"version" json:"version"`
	Type        string `yaml:"type" json:"type"`

	Schedule Schedule  `yaml:"schedule" json:"schedule"`
	Source   Source    `yaml:"source" json:"source"`
	Rare     *Rare     `yaml:"rare,omitempty" json:"rare,omitempty"`
	OffHours *OffHours `yaml:"off_hours,omitempty" json:"off_hours,omitempty"`
	Burst    *Burst    `yaml:"burst,omitempty" json:"burst,omitempty"`
	Context  *Context  `yaml:"context,omitempty" json:"context,omitempty"`

	AnomalyThreshold float64 `yaml:"anomaly_threshold" json:"anomaly_threshold"`
	RiskScore        int     `yaml:"risk_score" json:"risk_score"`
	Severity         string  `yaml:"severity" json:"severity"`
	MaxSignals       int     `yaml:"max_signals" json:"max_signals"`

	Threat         []Threat `yaml:"threat,omitempty" json:"threat,omitempty"`
	Notify         []string `yaml:"notify,omitempty" json:"notify,omitempty"`
	Investigation  string   `yaml:"investigation,omitempty" json:"investigation,omitempty"`
	FalsePositives string   `yaml:"false_positives,omitempty" json:"false_positives,omitempty"`
	References     []string `yaml:"references,omitempty" json:"references,omitempty"`
	Tags           []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	Enabled        bool     `yaml:"enabled" json:"enabled"`

	// Exceptions are the shared lists the rule names and its own entries.
	Exceptions *RuleExceptions `yaml:"exceptions,omitempty" json:"exceptions,omitempty"`
	// boundLists are the shared lists in force for the rule (Exceptions.Bind).
	boundLists []*ExceptionList

	// File and Line say where the rule was loaded from.
	File string `yaml:"-" json:"-"`
	Line int    `yaml:"-" json:"-"`
}

// Schedule says how often a rule runs and over which window.
type Schedule struct {
	Interval   Duration `yaml:"interval" json:"interval"`
	Lookback   Duration `yaml:"lookback" json:"lookback"`
	QueryDelay Duration `yaml:"query_delay,omitempty" json:"query_delay,omitempty"`
	// Window is "event" (bound runs by event time, the default) or
	// "ingested" (by ingest time, for late CloudTrail deliveries).
	Window string `yaml:"window,omitempty" json:"window,omitempty"`
}

// Source says where a rule reads events and which ones.
type Source struct {
	Index   []string `yaml:"index" json:"index"`
	Profile string   `yaml:"profile" json:"profile"`
	Where   Where    `yaml:"where,omitempty" json:"where,omitempty"`
}

// Where is a structured filter: within a field the values are
// alternatives, fields combine with AND; Not excludes. Its shape matches
// store.Filter so a physical Where converts directly.
type Where struct {
	Terms map[string][]string `json:"terms,omitempty"`
	Not   map[string][]string `json:"not,omitempty"`
}

// IsZero reports whether the filter matches everything.
func (w Where) IsZero() bool { return len(w.Terms) == 0 && len(w.Not) == 0 }

// MarshalYAML writes the flat rule form {field: values, not: {...}}.
func (w Where) MarshalYAML() (any, error) {
	out := map[string]any{}
	for k, v := range w.Terms {
		out[k] = v
	}
	if len(w.Not) > 0 {
		out["not"] = w.Not
	}
	return out, nil
}

// Fields lists the fields the filter names, sorted.
func (w Where) Fields() []string {
	seen := map[string]bool{}
	for k := range w.Terms {
		seen[k] = true
	}
	for k := range w.Not {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Rare configures a rare-by-field job.
type Rare struct {
	// Field is the value being judged; several fields form a tuple.
	Field []string `yaml:"field" json:"field"`
	// By is the entity whose habits are learned.
	By []string `yaml:"by" json:"by"`
	// Partition keeps separate models per value (e.g. per account).
	Partition []string `yaml:"partition,omitempty" json:"partition,omitempty"`
	// History is the baseline window before the lookback.
	History Duration `yaml:"history" json:"history"`
	// Mode is "rare" (score by probability) or "first_seen" (any value the
	// entity never produced in the history).
	Mode string `yaml:"mode" json:"mode"`
	// MinHistoryEvents: entities with fewer baseline events are "new": a
	// broken habit (NovelFloor) needs at least this much habit.
	MinHistoryEvents int `yaml:"min_history_events,omitempty" json:"min_history_events,omitempty"`
	// NovelFloor, when set, is the least score of a value the entity never
	// produced in at least MinHistoryEvents events: a habit broken (a sign-in
	// without MFA by someone who always used it) is evidence whatever the
	// peers do.
	NovelFloor float64 `yaml:"novel_floor,omitempty" json:"novel_floor,omitempty"`
	// Settle ends the baseline this long before the window, so an intrusion
	// that lasts hours keeps being judged against the time before it, not
	// against its own first hour.
	Settle Duration `yaml:"settle,omitempty" json:"settle,omitempty"`
	// Fresh keeps a value new for this long after the entity first
	// produced it: a value whose every baseline occurrence lies within
	// Fresh before the window is judged as never seen ("first seen 40
	// minutes ago"). A chained intrusion reuses its own first calls
	// minutes later; without it, they already read as habit.
	Fresh Duration `yaml:"fresh,omitempty" json:"fresh,omitempty"`
}

// Burst configures a burst job: an hourly count (of events, or of distinct
// values of Field) that is unusual for the entity against its own hourly
// counts over History. It finds the "spike in errors" and "many regions
// at once" family that rarity misses: every single call is familiar, only
// their number is not.
type Burst struct {
	// By is the entity whose hourly rate is learned.
	By []string `yaml:"by" json:"by"`
	// Partition keeps separate models per value (e.g. per account).
	Partition []string `yaml:"partition,omitempty" json:"partition,omitempty"`
	// Count is "events" (events per hour) or "distinct" (distinct values
	// of Field per hour).
	Count string `yaml:"count" json:"count"`
	// Field is the field whose distinct values are counted (count: distinct).
	Field string `yaml:"field,omitempty" json:"field,omitempty"`
	// History is the span before the window the hourly counts are learned on.
	History Duration `yaml:"history" json:"history"`
	// MinCount: an hour with a smaller count is never a burst, however
	// quiet the entity's past (three denied calls are a typo, not a spike).
	MinCount int `yaml:"min_count" json:"min_count"`
}

// Burst defaults.
const DefaultBurstMinCount = 5

// Context lowers the score of a signal whose every contributing event came
// from where and how its actor has worked before: the same country, the
// same client. A first-time action from the owner's usual laptop is far
// more often the owner trying something new than an intruder, who rarely
// shares both. It is the cheapest discriminator between benign novelty and
// a stolen credential, and it costs one grouped count per field, only when
// a rule has something to alert on.
type Context struct {
	// Fields are the context fields compared (logical or physical).
	Fields []string `yaml:"fields" json:"fields"`
	// Require lists the fields that must be familiar for any discount
	// (default: the first field). A sign-in from a new country, or without
	// MFA for someone who always uses it, earns nothing from a familiar
	// browser.
	Require []string `yaml:"require" json:"require"`
	// By is the actor whose familiar contexts are learned.
	By string `yaml:"by" json:"by"`
	// History is how far back familiar contexts are learned.
	History Duration `yaml:"history" json:"history"`
	// Settle excludes the most recent span from that history, so an
	// intruder's own earlier activity never makes their context familiar.
	Settle Duration `yaml:"settle" json:"settle"`
	// MinEvents is how many events of the actor a context value needs
	// (before Settle) to count as familiar.
	MinEvents int `yaml:"min_events" json:"min_events"`
	// Discount is how many powers of ten of surprisal a familiar context
	// removes (2 means "a hundred times less surprising").
	Discount float64 `yaml:"discount" json:"discount"`
}

// Context defaults.
const (
	DefaultContextHistory   = Duration(30 * 24 * time.Hour)
	DefaultContextSettle    = Duration(24 * time.Hour)
	DefaultContextMinEvents = 2
	DefaultContextDiscount  = 1.0
)

// OffHours configures an off-hours job: either fixed hours (Start–End on
// Days in Timezone, optionally per-entity timezones) or, with Learn, each
// entity's own hour-of-week profile.
type OffHours struct {
	Start     string         `yaml:"start,omitempty" json:"start,omitempty"`
	End       string         `yaml:"end,omitempty" json:"end,omitempty"`
	Days      []time.Weekday `yaml:"days,omitempty" json:"days,omitempty"`
	Timezone  string         `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	Timezones string         `yaml:"timezones,omitempty" json:"timezones,omitempty"`
	Learn     Duration       `yaml:"learn,omitempty" json:"learn,omitempty"`
	By        []string       `yaml:"by" json:"by"`

	// TimezoneSet tells an explicit off_hours.timezone from the default,
	// so a service-wide default zone can fill only the rules that set none.
	TimezoneSet bool `yaml:"-" json:"-"`

	Location         *time.Location    `yaml:"-" json:"-"`
	TimezoneByEntity map[string]string `yaml:"-" json:"-"`

	// locations caches TimezoneByEntity resolved at load time.
	locations map[string]*time.Location
}

// Learned reports whether working hours are learned rather than fixed.
func (o *OffHours) Learned() bool { return o.Learn > 0 }

// LocationFor returns the timezone of an entity: its own from the
// timezones mapping if it has one, else the rule's.
func (o *OffHours) LocationFor(entity string) *time.Location {
	if loc, ok := o.locations[entity]; ok {
		return loc
	}
	if name, ok := o.TimezoneByEntity[entity]; ok {
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	if o.Location != nil {
		return o.Location
	}
	return time.UTC
}

// StartMinute and EndMinute return the fixed hours as minutes after
// midnight (End may be 24*60 for "24:00").
func (o *OffHours) StartMinute() int { m, _ := parseClock(o.Start); return m }

// EndMinute: see StartMinute.
func (o *OffHours) EndMinute() int { m, _ := parseClock(o.End); return m }

// WorkTime reports whether t falls inside the fixed working hours in loc
// (nil means the rule's timezone).
func (o *OffHours) WorkTime(t time.Time, loc *time.Location) bool {
	if loc == nil {
		loc = o.LocationFor("")
	}
	lt := t.In(loc)
	day := false
	for _, d := range o.Days {
		if d == lt.Weekday() {
			day = true
			break
		}
	}
	if !day {
		return false
	}
	m := lt.Hour()*60 + lt.Minute()
	return m >= o.StartMinute() && m < o.EndMinute()
}

// Threat is a MITRE ATT&CK mapping.
type Threat struct {
	Tactic       string `yaml:"tactic" json:"tactic"`
	Technique    string `yaml:"technique,omitempty" json:"technique,omitempty"`
	Subtechnique string `yaml:"subtechnique,omitempty" json:"subtechnique,omitempty"`
}

// tacticNames are the ATT&CK Enterprise tactics, for threat.tactic.name.
var tacticNames = map[string]string{
	"TA0043": "Reconnaissance", "TA0042": "Resource Development",
	"TA0001": "Initial Access", "TA0002": "Execution", "TA0003": "Persistence",
	"TA0004": "Privilege Escalation", "TA0005": "Defense Evasion",
	"TA0006": "Credential Access", "TA0007": "Discovery",
	"TA0008": "Lateral Movement", "TA0009": "Collection",
	"TA0011": "Command and Control", "TA0010": "Exfiltration", "TA0040": "Impact",
}

// TacticName returns the ATT&CK name of the threat's tactic ("" if unknown).
func (t Threat) TacticName() string { return tacticNames[t.Tactic] }

// TacticReference returns the ATT&CK page of the tactic.
func (t Threat) TacticReference() string {
	return "https://attack.mitre.org/tactics/" + t.Tactic + "/"
}

// TechniqueReference returns the ATT&CK page of the (sub)technique.
func (t Threat) TechniqueReference() string {
	if t.Subtechnique != "" {
		return "https://attack.mitre.org/techniques/" + strings.Replace(t.Subtechnique, ".", "/", 1) + "/"
	}
	if t.Technique == "" {
		return ""
	}
	return "https://attack.mitre.org/techniques/" + t.Technique + "/"
}

// Profile returns the rule's field profile (ecs when unset or unknown,
// which a loaded rule never is).
func (r *Rule) Profile() *mappings.Profile {
	if p, ok := mappings.LookupProfile(r.Source.Profile); ok {
		return p
	}
	p, _ := mappings.LookupProfile(DefaultProfile)
	return p
}

// Physical resolves a field name through the rule's profile.
func (r *Rule) Physical(field string) string { return r.Profile().Physical(field) }

// PhysicalAll resolves several field names.
func (r *Rule) PhysicalAll(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = r.Physical(f)
	}
	return out
}

// PhysicalWhere returns the rule's filter with physical field names; it
// converts to store.Filter directly.
func (r *Rule) PhysicalWhere() Where {
	w := Where{}
	conv := func(in map[string][]string) map[string][]string {
		if len(in) == 0 {
			return nil
		}
		out := make(map[string][]string, len(in))
		for k, v := range in {
			p := r.Physical(k)
			out[p] = append(out[p], v...)
		}
		return out
	}
	w.Terms = conv(r.Source.Where.Terms)
	w.Not = conv(r.Source.Where.Not)
	return w
}

// Entity returns the fields naming the rule's entity (rare.by,
// off_hours.by or burst.by).
func (r *Rule) Entity() []string {
	switch {
	case r.Rare != nil:
		return r.Rare.By
	case r.OffHours != nil:
		return r.OffHours.By
	case r.Burst != nil:
		return r.Burst.By
	}
	return []string{DefaultEntity}
}

func (r *Rule) String() string { return r.ID }

// Pack is a set of rules, sorted by ID.
type Pack struct {
	Rules []*Rule
}

// Get returns the rule with the given id.
func (p *Pack) Get(id string) (*Rule, bool) {
	if p == nil {
		return nil, false
	}
	i := sort.Search(len(p.Rules), func(i int) bool { return p.Rules[i].ID >= id })
	if i < len(p.Rules) && p.Rules[i].ID == id {
		return p.Rules[i], true
	}
	return nil, false
}

// Enabled returns the rules that are enabled.
func (p *Pack) Enabled() []*Rule {
	var out []*Rule
	for _, r := range p.Rules {
		if r.Enabled {
			out = append(out, r)
		}
	}
	return out
}

// Diagnostic is one problem found while loading rules.
type Diagnostic struct {
	File         string
	Line, Column int
	Message      string
	Warning      bool
}

// String renders "file:line:col: message", or "file:line:col: warning:
// message" for warnings (the compiler convention editors understand).
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d", d.Line)
		if d.Column > 0 {
			fmt.Fprintf(&b, ":%d", d.Column)
		}
	}
	b.WriteString(": ")
	if d.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is a list of problems; it is an error when it has errors.
type Diagnostics []Diagnostic

// Errors returns the diagnostics that are errors.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if !d.Warning {
			out = append(out, d)
		}
	}
	return out
}

// Warnings returns the diagnostics that are warnings.
func (ds Diagnostics) Warnings() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Warning {
			out = append(out, d)
		}
	}
	return out
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if !d.Warning {
			return true
		}
	}
	return false
}

// Error joins the diagnostics one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Err returns the diagnostics as an error when there are errors, else nil.
func (ds Diagnostics) Err() error {
	if e := ds.Errors(); len(e) > 0 {
		return e
	}
	return nil
}

func (ds Diagnostics) sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// MarshalYAML writes days as names ("mon") so a marshalled rule loads
// again.
func (o OffHours) MarshalYAML() (any, error) {
	days := make([]string, len(o.Days))
	for i, d := range o.Days {
		days[i] = strings.ToLower(d.String()[:3])
	}
	tz := o.Timezone
	if !o.TimezoneSet {
		tz = "" // the default: leave it to whoever loads the rule
	}
	return struct {
		Start     string   `yaml:"start,omitempty"`
		End       string   `yaml:"end,omitempty"`
		Days      []string `yaml:"days,omitempty"`
		Timezone  string   `yaml:"timezone,omitempty"`
		Timezones string   `yaml:"timezones,omitempty"`
		Learn     Duration `yaml:"learn,omitempty"`
		By        []string `yaml:"by"`
	}{o.Start, o.End, days, tz, o.Timezones, o.Learn, o.By}, nil
}
