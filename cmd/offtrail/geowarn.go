package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// The rule checker warns, from the profile alone, about every field only a
// GeoIP step fills (source.country, source.city). With a store at hand
// check and backtest look at the data instead: the warning is true only
// when the events hold no location.

// isGeoWarning reports a checker warning about a field only GeoIP fills.
func isGeoWarning(d rules.Diagnostic) bool {
	return d.Warning && strings.Contains(d.Message, "a GeoIP step")
}

// splitGeo separates the GeoIP warnings from the other diagnostics.
func splitGeo(diags rules.Diagnostics) (geo, rest rules.Diagnostics) {
	for _, d := range diags {
		if isGeoWarning(d) {
			geo = append(geo, d)
		} else {
			rest = append(rest, d)
		}
	}
	return geo, rest
}

// geoNeed is what the rules reading one source need GeoIP for.
type geoNeed struct {
	src    source
	fields []string            // physical names, sorted
	rules  map[string][]string // physical name -> the ids of the rules reading it, sorted
	diags  rules.Diagnostics
}

// geoNeeds maps the GeoIP warnings to the rules (of rs) they are about,
// grouped by the source those rules read.
func geoNeeds(rs []*rules.Rule, geo rules.Diagnostics) []*geoNeed {
	var out []*geoNeed
	for _, d := range geo {
		r := ruleAt(rs, d)
		if r == nil {
			continue // a rule not selected
		}
		src := source{index: r.Source.Index, timeField: r.Profile().Time}
		i := slices.IndexFunc(out, func(n *geoNeed) bool { return n.src.String() == src.String() && n.src.timeField == src.timeField })
		if i < 0 {
			out = append(out, &geoNeed{src: src, rules: map[string][]string{}})
			i = len(out) - 1
		}
		n := out[i]
		n.diags = append(n.diags, d)
		p := r.Profile()
		for _, l := range p.Enriched {
			if !strings.HasPrefix(l, "source.") || !strings.Contains(d.Message, strconv.Quote(l)) {
				continue
			}
			f := p.Physical(l)
			if !slices.Contains(n.fields, f) {
				n.fields = append(n.fields, f)
			}
			if !slices.Contains(n.rules[f], r.ID) {
				n.rules[f] = append(n.rules[f], r.ID)
			}
		}
	}
	for _, n := range out {
		slices.Sort(n.fields)
		for _, ids := range n.rules {
			slices.Sort(ids)
		}
	}
	return out
}

// ruleAt is the rule of rs a diagnostic points into: the last one of its
// file starting at or before the diagnostic's line.
func ruleAt(rs []*rules.Rule, d rules.Diagnostic) *rules.Rule {
	var best *rules.Rule
	for _, r := range rs {
		if r.File == d.File && r.Line <= d.Line && (best == nil || r.Line > best.Line) {
			best = r
		}
	}
	return best
}

var errFound = errors.New("found")

// hasField reports whether any event of src in w has field (one grouped
// count that stops at its first group).
func hasField(ctx context.Context, st store.Backend, src source, field string, w store.Window) (bool, error) {
	err := st.CountGroups(ctx, store.CountRequest{
		Query:    store.Query{Index: src.index, TimeField: src.timeField, Window: w},
		GroupBy:  []string{field},
		PageSize: 1,
	}, func(store.Group) error { return errFound })
	switch {
	case errors.Is(err, errFound):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read %s: %w", src, err)
	}
	return false, nil
}

// geoMissing says, for n's source over w, which GeoIP fields no event
// has: "" when every field is there somewhere.
func geoMissing(ctx context.Context, st store.Backend, n *geoNeed, w store.Window) (string, error) {
	var missing, blind []string
	for _, f := range n.fields {
		ok, err := hasField(ctx, st, n.src, f, w)
		if err != nil {
			return "", err
		}
		if !ok {
			missing = append(missing, f)
			for _, id := range n.rules[f] {
				if !slices.Contains(blind, id) {
					blind = append(blind, id)
				}
			}
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	slices.Sort(blind)
	what := "rule " + blind[0] + " is"
	if len(blind) > 1 {
		what = "rules " + strings.Join(blind, ", ") + " are"
	}
	return fmt.Sprintf("no %s in %s between %s and %s: the %s blind; load with --geoip, or add a GeoIP step at ingest",
		strings.Join(missing, " or "), n.src, stamp(w.From), stamp(w.To), what), nil
}

// lastDay is the day up to the newest event of src, found by bisection
// with one-event queries (the backends have no "newest first"); ok is
// false when src holds no event.
func lastDay(ctx context.Context, st store.Backend, src source) (w store.Window, ok bool, err error) {
	first, err := firstEvent(ctx, st, src, beginning, farFuture)
	if err != nil || first == nil {
		return store.Window{}, false, err
	}
	last, lo, hi := first.Time, first.Time, farFuture
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		ev, err := firstEvent(ctx, st, src, mid, farFuture)
		switch {
		case err != nil:
			return store.Window{}, false, err
		case ev == nil:
			hi = mid
		default:
			last, lo = ev.Time, ev.Time.Add(time.Nanosecond)
		}
	}
	end := last.Add(time.Second).Truncate(time.Second)
	return store.Window{From: end.Add(-24 * time.Hour), To: end}, true, nil
}

// loadPackGeo is loadPack holding the GeoIP warnings back: the caller
// checks them against the data.
func loadPackGeo(env *cliEnv, path string) (*rules.Pack, rules.Diagnostics, error) {
	var pack *rules.Pack
	var diags rules.Diagnostics
	if path == "" {
		pack, diags = rules.Builtin()
	} else {
		pack, diags = rules.LoadFiles(path)
	}
	geo, rest := splitGeo(diags)
	for _, d := range rest.Warnings() {
		fmt.Fprintln(env.stderr, d.String())
	}
	if rest.HasErrors() {
		for _, d := range rest.Errors() {
			fmt.Fprintln(env.stderr, d.String())
		}
		return nil, nil, &exitError{code: 1, err: fmt.Errorf("%d invalid rule(s)", len(rest.Errors()))}
	}
	return pack, geo, nil
}
