package detector

import (
	"context"
	"fmt"
	"math"
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
// horizon, and lowers the score of signals whose every event is familiar.
// Automation (a narrow routine, round-the-clock or scheduled activity) is
// exempt: its place and client never change, so "familiar" says nothing
// about who holds its credentials, and its departures weigh more, not less.
func (ev *evaluation) applyContext(ctx context.Context, sigs []*Signal) error {
	cx := ev.rule.Context
	if cx == nil || len(sigs) == 0 {
		return nil
	}
	byF := ev.prof.Physical(cx.By)
	fields := ev.physical(cx.Fields)
	actors := map[string]bool{}
	for _, s := range sigs {
		if s.Automation {
			continue
		}
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
			From: ev.window.From.Add(-time.Duration(cx.History)),
			To:   ev.window.From.Add(-time.Duration(cx.Settle)),
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
		if s.Automation {
			continue
		}
		s.Context = ev.judgeContext(s, fields, seen, distinct)
		if d := s.Context.Discount; d > 0 {
			s.discount(d)
		}
	}
	return nil
}

// judgeContext compares one signal's events with its actors' familiar
// contexts. Each context field whose every value was familiar earns its
// share of the discount, but only when the required fields (the place, by
// default) are familiar: an intruder with a common client string from a
// new country must not pass for the owner. An actor that used many values
// of a required field (cloud CI runners, staff who travel) is not held to
// it.
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
	nJudged, nFamiliar := 0, 0
	for i := range fields {
		if !judged[i] {
			continue
		}
		nJudged++
		if familiar[i] {
			nFamiliar++
		} else if slices.Contains(cx.Require, cx.Fields[i]) && !nomad[i] {
			return res // a required field is new: no discount
		}
	}
	if nJudged > 0 {
		res.Familiar = nFamiliar == nJudged
		res.Discount = round(cx.Discount*float64(nFamiliar)/float64(nJudged), 3)
	}
	return res
}

// nomadValues: an actor that used this many values of a required field
// (cloud CI runners, staff who travel) is not held to it — one more value
// is what it does.
const nomadValues = 4

// discount lowers a signal's score by d powers of ten of surprisal.
// A high-impact floor is never discounted: a familiar place or client
// cannot make a first StopLogging routine.
func (s *Signal) discount(d float64) {
	sur := math.Max(0, SurprisalFromScore(s.Score)-d)
	if s.Floor != "" {
		sur = math.Max(sur, SurprisalFromScore(FloorScore))
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
func normaliseContext(logical, v string) string {
	if logical != "user_agent" {
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
	if c.Familiar && c.Discount > 0 {
		return fmt.Sprintf(" Every event came from a %s the actor has used before, so the score was lowered from %.0f.", joinAnd(cx.Fields), c.ScoreBefore)
	}
	if len(c.New) == 0 {
		return ""
	}
	lowered := ""
	if c.Discount > 0 {
		lowered = fmt.Sprintf(" (the rest was familiar: score lowered from %.0f)", c.ScoreBefore)
	}
	vals := c.New
	more := ""
	if len(vals) > 3 {
		more = fmt.Sprintf(" and %d more", len(vals)-3)
		vals = vals[:3]
	}
	return fmt.Sprintf(" New for the actor: %s%s%s.", strings.Join(vals, ", "), more, lowered)
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
