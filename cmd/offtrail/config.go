package main

import (
	"context"
	"fmt"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/internal/ingest"
	"github.com/offtrail/offtrail/rules"
)

// openConfigured opens the store a run configuration names. run writes
// signals and state, but its CloudTrail must already be there: an embedded
// directory that does not exist is a mistake in the configuration.
func openConfigured(ctx context.Context, env *cliEnv, cfg *config.Config) (store.Backend, error) {
	return openConnection(ctx, env, cfg.Conn, forReading)
}

// ensureTemplate installs the template ("signals", "state") for index.
func ensureTemplate(ctx context.Context, st store.Backend, name, index string) error {
	return ingest.EnsureTemplate(ctx, st, name, index, nil)
}

// loadRunRules loads the configured rules (or the built-in pack). Invalid
// rules are an error unless skip is set, in which case they are logged
// and left out.
func loadRunRules(env *cliEnv, paths []string, skip bool) (*rules.Pack, error) {
	var pack *rules.Pack
	var diags rules.Diagnostics
	if len(paths) == 0 {
		pack, diags = rules.Builtin()
	} else {
		pack, diags = rules.LoadFiles(paths...)
	}
	for _, d := range diags.Warnings() {
		env.log.Warn().Str("diagnostic", d.String()).Msg("rule warning")
	}
	if errs := diags.Errors(); len(errs) > 0 {
		for _, d := range errs {
			env.log.Error().Str("diagnostic", d.String()).Msg("invalid rule")
		}
		if !skip {
			return nil, fmt.Errorf("%d invalid rule(s); fix them (offtrail check) or set skip_invalid_rules", len(errs))
		}
		env.log.Warn().Int("skipped", len(errs)).Msg("skipping invalid rules (skip_invalid_rules)")
	}
	if len(pack.Enabled()) == 0 {
		return nil, fmt.Errorf("no enabled rules")
	}
	return pack, nil
}
