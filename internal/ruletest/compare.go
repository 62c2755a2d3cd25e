package ruletest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/offtrail/offtrail/detector"
)

// compare matches what fired against what the case expects and returns the
// differences, one line each ("- " expected but missing, "+ " fired but
// not expected), empty when the case passes.
func compare(c *Case, sigs []*detector.Signal, incs []*detector.Incident) []string {
	var out []string
	if c.Expect.CheckSignals {
		out = append(out, diff("signal", len(c.Expect.Signals), len(sigs), c.Expect.Exhaustive,
			func(i, j int) []string { return signalMismatch(c.Expect.Signals[i], sigs[j]) },
			func(i int) string { return c.Expect.Signals[i].String() },
			func(j int) string { return signalLine(sigs[j]) })...)
	}
	if c.Expect.CheckInc {
		alerting := Alerting(incs)
		out = append(out, diff("incident", len(c.Expect.Incidents), len(alerting), c.Expect.Exhaustive,
			func(i, j int) []string { return incidentMismatch(c.Expect.Incidents[i], alerting[j]) },
			func(i int) string { return c.Expect.Incidents[i].String() },
			func(j int) string { return incidentLine(alerting[j]) })...)
	}
	return out
}

// Alerting keeps the incidents at or above their threshold: what a person
// would be told about, and what expected incidents are matched against.
func Alerting(incs []*detector.Incident) []*detector.Incident {
	var out []*detector.Incident
	for _, inc := range incs {
		if inc.Alert {
			out = append(out, inc)
		}
	}
	return out
}

// diff pairs wants with gots (a maximum matching, so the order of the
// expectations does not matter) and describes what is left: a missing
// want with the nearest got and why it does not match, and, when
// exhaustive, every got nothing asked for.
func diff(kind string, nWant, nGot int, exhaustive bool, mismatch func(i, j int) []string, want, got func(int) string) []string {
	ok := make([][]bool, nWant)
	for i := range ok {
		ok[i] = make([]bool, nGot)
		for j := range ok[i] {
			ok[i][j] = len(mismatch(i, j)) == 0
		}
	}
	wantOf := matching(ok, nGot)
	matched := make([]bool, nWant)
	for j := range wantOf {
		if wantOf[j] >= 0 {
			matched[wantOf[j]] = true
		}
	}
	var out []string
	shown := make([]bool, nGot) // a nearest got is not listed again as unexpected
	for i := range nWant {
		if matched[i] {
			continue
		}
		line := fmt.Sprintf("- missing %s: %s", kind, want(i))
		best, bestWhy := -1, []string(nil)
		for j := range nGot {
			if why := mismatch(i, j); best < 0 || len(why) < len(bestWhy) {
				best, bestWhy = j, why
			}
		}
		if best < 0 {
			line += fmt.Sprintf(" (no %s fired)", kind)
		} else {
			line += fmt.Sprintf("\n    nearest: %s\n    differs: %s", got(best), strings.Join(bestWhy, "; "))
			shown[best] = wantOf[best] < 0
		}
		out = append(out, line)
	}
	if exhaustive {
		for j := range nGot {
			if wantOf[j] < 0 && !shown[j] {
				out = append(out, fmt.Sprintf("+ unexpected %s: %s", kind, got(j)))
			}
		}
	}
	return out
}

// matching is Kuhn's augmenting paths: wantOf[j] is the want matched to got
// j, or -1. Cases are small, so the simple algorithm is enough.
func matching(ok [][]bool, nGot int) []int {
	wantOf := make([]int, nGot)
	for j := range wantOf {
		wantOf[j] = -1
	}
	var try func(i int, seen []bool) bool
	try = func(i int, seen []bool) bool {
		for j := range nGot {
			if !ok[i][j] || seen[j] {
				continue
			}
			seen[j] = true
			if wantOf[j] < 0 || try(wantOf[j], seen) {
				wantOf[j] = i
				return true
			}
		}
		return false
	}
	for i := range ok {
		try(i, make([]bool, nGot))
	}
	return wantOf
}

func signalMismatch(w SignalWant, s *detector.Signal) []string {
	var why []string
	if w.Rule != "" && w.Rule != s.RuleID {
		why = append(why, fmt.Sprintf("rule %s, want %s", s.RuleID, w.Rule))
	}
	if w.Entity != "" && !entityMatches(w.Entity, s) {
		why = append(why, fmt.Sprintf("entity %q, want %q", s.Label, w.Entity))
	}
	if w.Value != "" && w.Value != ValueOf(s) {
		why = append(why, fmt.Sprintf("value %q, want %q", ValueOf(s), w.Value))
	}
	why = append(why, scoreMismatch(s.Score, w.MinScore, w.MaxScore)...)
	if w.Severity != "" && w.Severity != s.Severity {
		why = append(why, fmt.Sprintf("severity %s, want %s", s.Severity, w.Severity))
	}
	if w.Reason != "" && !strings.Contains(s.Reason, w.Reason) {
		why = append(why, fmt.Sprintf("reason lacks %q", w.Reason))
	}
	if w.NoBaseline != nil && *w.NoBaseline != s.NoBaseline() {
		why = append(why, fmt.Sprintf("no_baseline %t, want %t", s.NoBaseline(), *w.NoBaseline))
	}
	return why
}

func entityMatches(want string, s *detector.Signal) bool {
	if want == s.Label || want == s.Actor.Label || want == s.Actor.Identity {
		return true
	}
	return slices.ContainsFunc(s.Entity, func(f detector.Field) bool { return f.Value == want })
}

// ValueOf is a signal's value as tests name it: the value fields joined by
// " / " (ec2.amazonaws.com / ap-southeast-2).
func ValueOf(s *detector.Signal) string {
	vals := make([]string, len(s.Value))
	for i, f := range s.Value {
		vals[i] = f.Value
	}
	return strings.Join(vals, " / ")
}

func scoreMismatch(score, lo, hi float64) []string {
	var why []string
	if score < lo {
		why = append(why, fmt.Sprintf("score %.2f < min_score %g", score, lo))
	}
	if hi > 0 && score > hi {
		why = append(why, fmt.Sprintf("score %.2f > max_score %g", score, hi))
	}
	return why
}

func incidentMismatch(w IncidentWant, inc *detector.Incident) []string {
	var why []string
	if w.Actor != "" && w.Actor != inc.Actor.Label && w.Actor != inc.Actor.Identity {
		why = append(why, fmt.Sprintf("actor %q, want %q", inc.Actor.Label, w.Actor))
	}
	if w.Rules != nil && !slices.Equal(w.Rules, inc.Rules) {
		why = append(why, fmt.Sprintf("rules [%s], want [%s]", strings.Join(inc.Rules, ", "), strings.Join(w.Rules, ", ")))
	}
	why = append(why, scoreMismatch(inc.Score, w.MinScore, w.MaxScore)...)
	if w.Severity != "" && w.Severity != inc.Severity {
		why = append(why, fmt.Sprintf("severity %s, want %s", inc.Severity, w.Severity))
	}
	if w.Evidence > 0 && w.Evidence != inc.Evidence {
		why = append(why, fmt.Sprintf("evidence %d, want %d", inc.Evidence, w.Evidence))
	}
	if w.NoBaseline != nil && *w.NoBaseline != inc.NoBaseline {
		why = append(why, fmt.Sprintf("no_baseline %t, want %t", inc.NoBaseline, *w.NoBaseline))
	}
	if w.Summary != "" && !strings.Contains(inc.Summary, w.Summary) {
		why = append(why, fmt.Sprintf("summary lacks %q", w.Summary))
	}
	return why
}

// String renders an expectation as it is checked.
func (w SignalWant) String() string {
	parts := []string{orAny(w.Rule), orAny(w.Entity), orAny(w.Value)}
	parts = append(parts, scoreWant(w.MinScore, w.MaxScore)...)
	if w.Severity != "" {
		parts = append(parts, "severity "+w.Severity)
	}
	if w.NoBaseline != nil {
		parts = append(parts, fmt.Sprintf("no_baseline %t", *w.NoBaseline))
	}
	if w.Reason != "" {
		parts = append(parts, fmt.Sprintf("reason ~ %q", w.Reason))
	}
	return strings.Join(parts, " | ")
}

// String renders an expectation as it is checked.
func (w IncidentWant) String() string {
	parts := []string{"actor " + orAny(w.Actor)}
	if w.Rules != nil {
		parts = append(parts, "rules ["+strings.Join(w.Rules, ", ")+"]")
	}
	parts = append(parts, scoreWant(w.MinScore, w.MaxScore)...)
	if w.Severity != "" {
		parts = append(parts, "severity "+w.Severity)
	}
	if w.Evidence > 0 {
		parts = append(parts, fmt.Sprintf("evidence %d", w.Evidence))
	}
	if w.NoBaseline != nil {
		parts = append(parts, fmt.Sprintf("no_baseline %t", *w.NoBaseline))
	}
	if w.Summary != "" {
		parts = append(parts, fmt.Sprintf("summary ~ %q", w.Summary))
	}
	return strings.Join(parts, " | ")
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func scoreWant(lo, hi float64) []string {
	switch {
	case hi > 0:
		return []string{fmt.Sprintf("score %g..%g", lo, hi)}
	case lo > 0:
		return []string{fmt.Sprintf("score >= %g", lo)}
	}
	return nil
}

func signalLine(s *detector.Signal) string {
	return fmt.Sprintf("%s | %s | %s | score %.2f | severity %s | confidence %s", s.RuleID, s.Label, ValueOf(s), s.Score, s.Severity, s.Confidence)
}

func incidentLine(inc *detector.Incident) string {
	return fmt.Sprintf("actor %s | rules [%s] | score %.2f | severity %s | evidence %d", inc.Actor.Label, strings.Join(inc.Rules, ", "), inc.Score, inc.Severity, inc.Evidence)
}
