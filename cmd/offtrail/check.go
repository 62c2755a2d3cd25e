package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/rules"
)

func init() {
	register(command{
		name:    "check",
		summary: "validate rule files (default: the builtin AWS pack)",
		run:     runCheck,
	})
}

// runCheck prints every diagnostic of every file as file:line:col and
// exits 1 when any is an error (warnings alone pass).
func runCheck(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "check", "[--profile P] [--store URL|file:DIR] [--exceptions PATH]... [PATH...]")
	profile := fs.String("profile", "", "check every rule against this field profile ("+
		strings.Join(mappings.ProfileNames(), ", ")+") instead of its own, e.g. cloudtrail to see what the pack needs on raw CloudTrail")
	storeSpec := fs.String("store", "", "also check the data: warn about the GeoIP fields (source.geo.*) only when the last day of events has none "+
		"(Elasticsearch/OpenSearch URL, or file:DIR; without it the warnings come from the rule's profile)")
	excPaths := addExceptionsFlag(fs)
	at := fs.String("at", "now", "judge exception expiry as of this time: RFC 3339, a date or now[-DURATION]")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *profile != "" {
		if _, ok := mappings.LookupProfile(*profile); !ok {
			return &exitError{code: 2, err: fmt.Errorf("unknown profile %q (known: %s)", *profile, strings.Join(mappings.ProfileNames(), ", "))}
		}
	}
	loader := rules.Loader{Profile: *profile}
	var (
		pack  *rules.Pack
		diags rules.Diagnostics
	)
	if len(paths) == 0 {
		pack, diags = loader.Builtin()
	} else {
		pack, diags = loader.LoadFiles(paths...)
	}
	// Exceptions: their errors are the check's; entries that expired or
	// expire within a week are warnings (they stop applying on their own).
	now, err := parseWhen(*at, time.Now().UTC())
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--at: %w", err)}
	}
	x, xdiags := loadExceptions(*excPaths, pack)
	diags = append(diags, xdiags...)
	diags = append(diags, expiryWarnings(x, pack, now)...)
	var dataWarnings []string
	if *storeSpec != "" && !diags.HasErrors() {
		geo, rest := splitGeo(diags)
		if dataWarnings, err = checkGeoData(ctx, env, *storeSpec, pack.Rules, geo); err != nil {
			return err
		}
		diags = rest
	}
	for _, d := range diags {
		fmt.Fprintln(env.stdout, d)
	}
	for _, w := range dataWarnings {
		fmt.Fprintln(env.stdout, w)
	}
	errs, warns := len(diags.Errors()), len(diags.Warnings())+len(dataWarnings)
	if errs > 0 {
		fmt.Fprintf(env.stdout, "%d %s, %d %s\n", errs, plural(errs, "error"), warns, plural(warns, "warning"))
		return &exitError{code: 1, err: errors.New("rules are invalid")}
	}
	n := len(pack.Rules)
	what := fmt.Sprintf("%d %s", n, plural(n, "rule"))
	if len(*excPaths) > 0 {
		e := 0
		for _, l := range x.Lists {
			e += len(l.Entries)
		}
		entries := "entries"
		if e == 1 {
			entries = "entry"
		}
		what += fmt.Sprintf(", %d exception %s in %d %s", e, entries, len(x.Lists), plural(len(x.Lists), "list"))
	}
	if warns > 0 {
		fmt.Fprintf(env.stdout, "%s OK, %d %s\n", what, warns, plural(warns, "warning"))
		return nil
	}
	fmt.Fprintf(env.stdout, "%s OK\n", what)
	return nil
}

// parseInterspersed lets flags follow paths ("check rules/ --profile
// cloudtrail"), which the flag package alone stops at.
func parseInterspersed(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// checkGeoData replaces the profile's GeoIP warnings by what the store
// shows: per source the rules read, the last day of its events is asked
// for each GeoIP field. A source with no events keeps the profile's
// warnings, after a line saying so.
func checkGeoData(ctx context.Context, env *cliEnv, spec string, rs []*rules.Rule, geo rules.Diagnostics) ([]string, error) {
	needs := geoNeeds(rs, geo)
	if len(needs) == 0 {
		return nil, nil
	}
	st, err := openStore(ctx, env, spec, forReading)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var out []string
	for _, n := range needs {
		w, ok, err := lastDay(ctx, st, n.src)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, fmt.Sprintf("warning: no events in %s: cannot tell whether GeoIP fills %s", n.src, strings.Join(n.fields, ", ")))
			for _, d := range n.diags {
				out = append(out, d.String())
			}
			continue
		}
		msg, err := geoMissing(ctx, st, n, w)
		if err != nil {
			return nil, err
		}
		if msg != "" {
			out = append(out, "warning: "+msg)
		}
	}
	return out, nil
}
