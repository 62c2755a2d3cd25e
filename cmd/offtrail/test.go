package main

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/internal/ruletest"
)

func init() {
	register(command{
		name:    "test",
		summary: "run rule tests (*_test.yml beside the rules; default: the builtin pack's)",
		run:     runTest,
	})
}

// runTest runs every test file of the paths (or the builtin pack's),
// printing a diff per failed case and a summary per file; it exits 1 when
// any case fails or any file is invalid.
func runTest(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "test", "[-v] [PATH...]")
	verbose := fs.Bool("v", false, "also list passed cases and what they fired")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	// Cases log nothing worth reading (the detector's debug lines would
	// bury the diff); warnings and errors still show.
	rn := &ruletest.Runner{Log: env.log.Level(max(env.log.GetLevel(), zerolog.WarnLevel))}
	files, cases, failed := 0, 0, 0
	report := func(f *ruletest.FileResult) {
		ruletest.Write(env.stdout, f, *verbose)
		files++
		cases += len(f.Cases)
		if f.Failed() {
			failed++
		}
	}
	if len(paths) == 0 {
		err = rn.RunBuiltin(ctx, report)
	} else {
		var found []string
		if found, err = ruletest.Find(paths); err == nil {
			err = rn.RunFiles(ctx, found, report)
		}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d test %s failed", failed, files, plural(files, "file"))}
	}
	if files > 1 {
		fmt.Fprintf(env.stdout, "%d test files, %d cases: all passed\n", files, cases)
	}
	return nil
}
