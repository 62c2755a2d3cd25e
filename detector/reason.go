package detector

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// Reasons are one plain sentence with the numbers behind the score, so a
// person can judge an alert without opening a query.

func describeValue(value []Field) string {
	names := make([]string, len(value))
	vals := make([]string, len(value))
	for i, f := range value {
		names[i], vals[i] = f.Name, f.Value
	}
	switch strings.Join(names, ",") {
	case "action":
		return "called " + vals[0]
	case "service":
		return "used " + vals[0]
	case "service,region":
		return fmt.Sprintf("used %s in %s", vals[0], vals[1])
	case "action,region":
		return fmt.Sprintf("called %s in %s", vals[0], vals[1])
	case "region":
		return "acted in region " + vals[0]
	case "error_code":
		return "got error " + vals[0]
	case "source.city":
		return "was seen from " + vals[0]
	case "source.country":
		return "was seen from country " + vals[0]
	case "user_agent":
		return "used the client " + vals[0]
	}
	parts := make([]string, len(value))
	for i := range value {
		parts[i] = names[i] + "=" + vals[i]
	}
	return "had " + strings.Join(parts, ", ")
}

func times(n int64) string {
	if n == 1 {
		return "once"
	}
	return commas(n) + " times"
}

// commas writes 4210 as 4,210.
func commas(n int64) string {
	s := fmt.Sprintf("%d", n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func oneIn(p float64) string {
	if p <= 0 {
		return "never"
	}
	return "1 in " + commas(int64(1/p+0.5))
}

// habitPhrase describes a baseline in the terms of the judged field.
func habitPhrase(value []Field, events int64, distinct int) string {
	n := commas(events)
	kinds := fmt.Sprintf("%d", distinct)
	switch value[0].Name {
	case "source.city", "source.country":
		return fmt.Sprintf("%s calls from %s places", n, kinds)
	case "error_code":
		return fmt.Sprintf("%s errors of %s kinds", n, kinds)
	case "service":
		return fmt.Sprintf("%s calls to %s service/place combinations", n, kinds)
	case "region":
		return fmt.Sprintf("%s calls in %s regions", n, kinds)
	}
	return fmt.Sprintf("%s calls of %s kinds", n, kinds)
}

// peerNoun names the entity's peers after the entity field.
func peerNoun(entity []Field) string {
	if len(entity) == 0 {
		return "peers"
	}
	switch entity[len(entity)-1].Name {
	case "action":
		return "other commands"
	case "service":
		return "other services"
	case "account":
		return "other accounts"
	}
	return "peers"
}

func rareReason(ev *evaluation, s *Signal, c *candidate) string {
	b := s.Baseline
	var sb strings.Builder
	what := describeValue(s.Value)
	if c.est.Novel {
		if b.Events == 0 {
			fmt.Fprintf(&sb, "%s %s (%s in this window); no baseline: %s", s.Label, what, times(c.count), noBaselineText(s))
		} else {
			fmt.Fprintf(&sb, "%s %s for the first time (%s in this window); the previous %s had %s",
				s.Label, what, times(c.count), b.History, habitPhrase(s.Value, b.Events, b.Distinct))
		}
		if !c.freshSince.IsZero() {
			// Still new: its only earlier uses are this intrusion's own.
			fmt.Fprintf(&sb, "; its %s before were all since %s UTC, within the %s a value stays new",
				times(c.freshEvents), c.freshSince.UTC().Format("Jan 2 15:04"), shortDuration(time.Duration(ev.rule.Rare.Fresh)))
		}
		if b.PeersNearest {
			fmt.Fprintf(&sb, "; %d of its %d most similar peers (by what they do) did the same", b.PeersWithValue, b.Peers)
		} else {
			fmt.Fprintf(&sb, "; %d of %d %s did the same", b.PeersWithValue, b.Peers, peerNoun(s.Entity))
		}
	} else {
		fmt.Fprintf(&sb, "%s %s %s in this window; in the previous %s only %s of %s did (%s)",
			s.Label, what, times(c.count), b.History, commas(b.ValueEvents), habitPhrase(s.Value, b.Events, b.Distinct), oneIn(c.est.Probability))
	}
	if c.automation {
		fmt.Fprintf(&sb, "; it behaves like automation (%s calls of only %d kinds), so a departure weighs more", commas(b.Events), b.Distinct)
	}
	if s.HighRisk != "" {
		fmt.Fprintf(&sb, "; high-risk action (%s)", s.HighRisk)
	}
	if s.Floor != "" {
		fmt.Fprintf(&sb, "; a first %s alerts whatever the history (%s)", valueString(s.Value), s.Floor)
	}
	return sb.String() + "."
}

// noBaselineText says what an entity without history is judged on: the
// span searched, and how long ago it was first seen (its first event in
// the window), rather than quoting a past it does not have.
func noBaselineText(s *Signal) string {
	ago := s.Window.To.Sub(s.Events[0].Time).Round(time.Minute)
	return fmt.Sprintf("no events in the %s before this window, first seen %s before its end", s.Baseline.History, shortDuration(ago))
}

// shortDuration writes 40m, 3h10m, 2d.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f hours", d.Hours())
	}
	return fmt.Sprintf("%.0f days", d.Hours()/24)
}

func dayNames(days []time.Weekday) string {
	if len(days) == 5 && days[0] == time.Monday && days[4] == time.Friday {
		return "Mon-Fri"
	}
	names := make([]string, len(days))
	for i, d := range days {
		names[i] = d.String()[:3]
	}
	return strings.Join(names, ",")
}

func fixedHoursReason(oh *rules.OffHours, loc *time.Location, off, total int64) func(*evaluation, *Signal, *candidate) string {
	return func(ev *evaluation, s *Signal, c *candidate) string {
		first := s.Events[0]
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s was active outside business hours (%s-%s %s, %s): %s in this window, first %s at %s local",
			s.Label, oh.Start, oh.End, dayNames(oh.Days), loc, times(int64(len(s.Events))), ev.eventField(first, "action"),
			first.Time.In(loc).Format("Mon 15:04"))
		if ip := ev.eventField(first, "source.ip"); ip != "" {
			fmt.Fprintf(&sb, " from %s", ip)
		}
		switch strings.ToLower(ev.eventField(first, "mfa_used")) {
		case "true", "yes":
			sb.WriteString(" with MFA")
		case "false", "no":
			sb.WriteString(" without MFA")
		}
		if total == 0 {
			sb.WriteString("; no baseline: " + noBaselineText(s))
		} else {
			fmt.Fprintf(&sb, "; %s of its %s events in the previous 30d were outside those hours", commas(off), commas(total))
		}
		return sb.String() + "."
	}
}

func learnedHoursReason(p *hourProfile, sl slot, loc *time.Location) func(*evaluation, *Signal, *candidate) string {
	return func(ev *evaluation, s *Signal, c *candidate) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s was active at %s (%s), %s in this window", s.Label, sl, loc, times(c.count))
		if p.total == 0 {
			sb.WriteString("; no baseline: " + noBaselineText(s))
		} else {
			fmt.Fprintf(&sb, "; in the previous %s only %s of its %s events fell in that hour (%s); it is usually active %s",
				s.Baseline.History, commas(p.counts[sl.index()]), commas(p.total), oneIn(c.est.Probability), usualHours(p))
		}
		switch {
		case c.automation && p.activeSlots() >= roundTheClockSlots:
			sb.WriteString("; it is active round the clock like automation, so a departure weighs more")
		case c.automation:
			sb.WriteString("; it runs on a schedule like automation, so a departure weighs more")
		}
		return sb.String() + "."
	}
}

// usualHours names the entity's busiest slots.
func usualHours(p *hourProfile) string {
	type sc struct {
		s slot
		n int64
	}
	var all []sc
	for i, n := range p.counts {
		if n > 0 {
			all = append(all, sc{slot{weekend: i >= 24, hour: i % 24}, n})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].s.index() < all[j].s.index()
	})
	if len(all) > 3 {
		all = all[:3]
	}
	names := make([]string, len(all))
	for i, x := range all {
		names[i] = x.s.String()
	}
	return strings.Join(names, ", ")
}

// eventField reads a logical field from an event as a string.
func (ev *evaluation) eventField(e store.Event, logical string) string {
	v, ok := store.Lookup(e.Source, ev.prof.Physical(logical))
	if !ok {
		return ""
	}
	s, _ := store.Stringify(v)
	return s
}
