package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
func runCheck(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "check", "[--profile P] [PATH...]")
	profile := fs.String("profile", "", "check every rule against this field profile ("+
		strings.Join(mappings.ProfileNames(), ", ")+") instead of its own, e.g. cloudtrail to see what the pack needs on raw CloudTrail")
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
	for _, d := range diags {
		fmt.Fprintln(env.stdout, d)
	}
	errs, warns := len(diags.Errors()), len(diags.Warnings())
	if errs > 0 {
		fmt.Fprintf(env.stdout, "%d %s, %d %s\n", errs, plural(errs, "error"), warns, plural(warns, "warning"))
		return &exitError{code: 1, err: errors.New("rules are invalid")}
	}
	n := len(pack.Rules)
	if warns > 0 {
		fmt.Fprintf(env.stdout, "%d %s OK, %d %s\n", n, plural(n, "rule"), warns, plural(warns, "warning"))
		return nil
	}
	fmt.Fprintf(env.stdout, "%d %s OK\n", n, plural(n, "rule"))
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
