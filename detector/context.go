package detector

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// ContextResult says whether a signal's events came from contexts (country,
// client, ...) its actor had used before, and what that did to the score.
type ContextResult struct {
	// Familiar: every judged field's values were familiar to the actor.
	Familiar bool `json:"familiar"`
	// Discount is the surprisal, in powers of ten, taken off the score.
	Discount float64 `json:"discount"`
	// Penalty is the surprisal added for new strong evidence (a new
	// network, key or MFA habit).
	Penalty float64 `json:"penalty,omitempty"`
	// ScoreBefore is the score before the discount.
	ScoreBefore float64 `json:"score_before"`
	// New lists context values the actor had not used before, "field=value".
	New []string `json:"new,omitempty"`
}

// SurprisalFromScore inverts ScoreFromSurprisal, so a discount can apply
// to any score, including the fixed off-hours policy score.
func SurprisalFromScore(score float64) float64 {
	score = math.Min(math.Max(score, 1e-9), 100-1e-9)
	return ScoreMid - ScoreWidth*math.Log(100/score-1)
}

// applyContext looks up, in one grouped count per context field, which of
// the signals' actors had used each context value before the settle
// horizon, lowers the score of signals whose context is familiar and
// raises those with new strong evidence. Automation (a narrow routine,
// round-the-clock or scheduled activity) earns no discount: its place and
// client never change, so "familiar" says nothing about who holds its
// credentials; a new network still counts against it.
func (ev *evaluation) applyContext(ctx context.Context, sigs []*Signal) error {
	cx := ev.rule.Context
	if cx == nil || len(sigs) == 0 {
		return nil
	}
	byF := ev.prof.Physical(cx.By)
	fields := ev.physical(cx.Fields)
	actors := map[string]bool{}
	for _, s := range sigs {
		for _, e := range s.Events {
			if a := ev.physicalValue(e, byF); a != "" {
				actors[a] = true
			}
		}
	}
	if len(actors) == 0 {
		return nil
	}
	q := store.Query{
		Index:     ev.rule.Source.Index,
		TimeField: ev.prof.Time,
		Window: store.Window{
			From: historyStart(ev.window.From.Add(-time.Duration(cx.History))),
			To:   settledEnd(ev.window.From, time.Duration(cx.Settle)),
		},
	}
	seen := make([]map[string]int64, len(fields))   // actor \x1e normalised value -> events
	distinct := make([]map[string]int, len(fields)) // actor -> normalised values used
	for i, f := range fields {
		seen[i], distinct[i] = map[string]int64{}, map[string]int{}
		err := ev.count(ctx, store.CountRequest{Query: q, GroupBy: []string{byF, f}, Restrict: map[string][]string{byF: sortedKeys(actors)}}, func(g store.Group) error {
			k := g.Key[0] + "\x1e" + normaliseContext(cx.Fields[i], g.Key[1])
			if seen[i][k] == 0 {
				distinct[i][g.Key[0]]++
			}
			seen[i][k] += g.Count
			return nil
		})
		if err != nil {
			return fmt.Errorf("context %s: %w", cx.Fields[i], err)
		}
	}
	for _, s := range sigs {
		s.Context = ev.judgeContext(s, fields, seen, distinct)
		if s.Automation {
			s.Context.Discount = 0
		}
		if d := s.Context.Discount - s.Context.Penalty; d != 0 {
			s.discount(d)
		}
	}
	return nil
}

// contextWeight is what one context field is worth, in powers of ten of
// surprisal. Weak fields are chosen by the caller (the user-agent string)
// or coarse (a country shared by millions): familiar, they take a little
// off; new, they add little or nothing. Strong fields are hard for an
// intruder to choose: the network the address belongs to, the long-term
// access key, the MFA habit. New, they add surprisal and forbid any
// discount; familiar, they take off more.
type contextWeight struct {
	familiar, novel float64
	strong          bool
}

var contextWeights = map[string]contextWeight{
	"user_agent":     {familiar: 0.25},
	"source.country": {familiar: 0.25, novel: 0.25},
	"source.city":    {familiar: 0.15},
	"source.network": {familiar: 0.5, novel: 0.5, strong: true},
	"access_key":     {familiar: 0.25, novel: 0.5, strong: true},
	"mfa_used":       {familiar: 0.25, novel: 1, strong: true},
}

// maxContextPenalty bounds what new context adds: it sharpens an anomaly,
// it is not one on its own.
const maxContextPenalty = 1.0

func weightOf(field string) contextWeight {
	if w, ok := contextWeights[field]; ok {
		return w
	}
	return contextWeight{familiar: 0.25}
}

// judgeContext compares one signal's events with its actors' familiar
// contexts. Each familiar field earns its weight, the sum bounded by the
// rule's discount (1 by default: ten times less surprising, never more),
// but only when the required fields are familiar and no strong field is
// new. New fields add their weight (bounded by maxContextPenalty). An
// actor that used many values of a field (cloud CI runners, staff who
// travel) is not held to it: one more value is what it does.
func (ev *evaluation) judgeContext(s *Signal, fields []string, seen []map[string]int64, distinct []map[string]int) *ContextResult {
	cx := ev.rule.Context
	byF := ev.prof.Physical(cx.By)
	res := &ContextResult{ScoreBefore: s.Score}
	judged := make([]bool, len(fields))
	familiar := make([]bool, len(fields))
	for i := range familiar {
		familiar[i] = true
	}
	newVals := map[string]bool{}
	nomad := make([]bool, len(fields))
	for _, e := range s.Events {
		a := ev.physicalValue(e, byF)
		for i, f := range fields {
			v := normaliseContext(cx.Fields[i], ev.physicalValue(e, f))
			if v == "" {
				continue // not recorded (no GeoIP, say): no evidence either way
			}
			judged[i] = true
			if distinct[i][a] >= nomadValues {
				nomad[i] = true
			}
			if a == "" || seen[i][a+"\x1e"+v] < int64(cx.MinEvents) {
				familiar[i] = false
				newVals[cx.Fields[i]+"="+v] = true
			}
		}
	}
	res.New = sortedKeys(newVals)
	var earned, penalty float64
	blocked := false
	nJudged, nFamiliar := 0, 0
	for i, name := range cx.Fields {
		if !judged[i] {
			continue
		}
		nJudged++
		w := weightOf(name)
		switch {
		case familiar[i]:
			nFamiliar++
			earned += w.familiar
		case nomad[i]:
			// A roaming actor: a new value is neither evidence nor comfort.
		default:
			penalty += w.novel
			blocked = blocked || w.strong || slices.Contains(cx.Require, name)
		}
	}
	res.Familiar = nJudged > 0 && nFamiliar == nJudged
	res.Penalty = round(min(penalty, maxContextPenalty), 3)
	if !blocked {
		res.Discount = round(min(earned, cx.Discount), 3)
	}
	return res
}

// nomadValues: an actor that used this many values of a required field
// (cloud CI runners, staff who travel) is not held to it — one more value
// is what it does.
const nomadValues = 4

// discount lowers a signal's score by d powers of ten of surprisal (raises
// it when d is negative).
// A floor is never discounted: a familiar place or client cannot make a
// first StopLogging, or a sign-in without the usual MFA, routine.
func (s *Signal) discount(d float64) {
	sur := math.Max(0, SurprisalFromScore(s.Score)-d)
	if s.least > 0 {
		sur = math.Max(sur, SurprisalFromScore(s.least))
	}
	s.Surprisal = round(sur, 3)
	s.Probability = math.Pow(10, -sur)
	s.Score = round(ScoreFromSurprisal(sur), 2)
	s.Confidence = ConfidenceFor(s.Score, s.Baseline.Events)
}

func (ev *evaluation) physicalValue(e store.Event, physical string) string {
	v, ok := store.Lookup(e.Source, physical)
	if !ok {
		return ""
	}
	s, _ := store.Stringify(v)
	return s
}

// normaliseContext maps a context value to what identifies a habit: the
// aws-cli and the Go SDK append the command or API they run to the user
// agent, which would make every new command look like a new client.
//
// A network is the address's /16 (IPv4) or /48 (IPv6): the provider or
// site an actor works from, not the address its DHCP lease happens to
// have. Session keys (ASIA…) are new with every session, so they count as
// one value: what is evidence is a long-term key (AKIA…) never used before.
func normaliseContext(logical, v string) string {
	switch logical {
	case "source.network":
		return networkOf(v)
	case "access_key":
		if strings.HasPrefix(v, "ASIA") {
			return "session"
		}
		return v
	case "user_agent":
	default:
		return v
	}
	for _, cut := range []string{" command/", " api/"} {
		if i := strings.Index(v, cut); i >= 0 {
			v = v[:i]
		}
	}
	return v
}

// contextReason is the sentence a context check adds to a signal's reason.
func contextReason(s *Signal, cx *rules.Context) string {
	c := s.Context
	if c == nil {
		return ""
	}
	var sb strings.Builder
	if len(c.New) > 0 {
		vals, more := c.New, ""
		if len(vals) > 3 {
			more = fmt.Sprintf(" and %d more", len(vals)-3)
			vals = vals[:3]
		}
		fmt.Fprintf(&sb, " New for the actor: %s%s.", strings.Join(vals, ", "), more)
	}
	switch {
	case c.Discount > 0 && c.Penalty > 0:
		fmt.Fprintf(&sb, " Context moved the score from %.0f (familiar: -%.2g, new: +%.2g powers of ten).", c.ScoreBefore, c.Discount, c.Penalty)
	case c.Discount > 0 && c.Familiar:
		fmt.Fprintf(&sb, " Every event came from a %s the actor has used before, so the score was lowered from %.0f (at most ten times less surprising).", joinAnd(cx.Fields), c.ScoreBefore)
	case c.Discount > 0:
		fmt.Fprintf(&sb, " The rest was familiar: score lowered from %.0f.", c.ScoreBefore)
	case c.Penalty > 0:
		fmt.Fprintf(&sb, " New strong evidence raised the score from %.0f.", c.ScoreBefore)
	}
	return sb.String()
}

func joinAnd(fields []string) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = strings.ReplaceAll(strings.TrimPrefix(f, "source."), "_", " ")
	}
	sort.Strings(names)
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func networkOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip // AWS service names ("ec2.amazonaws.com") stand for themselves
	}
	bits := 16
	if a.Is6() && !a.Is4In6() {
		bits = 48
	}
	p, err := a.Unmap().Prefix(bits)
	if err != nil {
		return ip
	}
	return p.String()
}
