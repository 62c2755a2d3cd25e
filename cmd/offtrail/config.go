package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/rules"
)

// openConfigured opens the store a run configuration names. run writes
// signals and state, but its CloudTrail must already be there: an embedded
// directory that does not exist is a mistake in the configuration.
func openConfigured(ctx context.Context, env *cliEnv, cfg *config.Config) (store.Backend, error) {
	return openConnection(ctx, env, cfg.Conn, forReading)
}

// templateFor returns the embedded template name ("signals", "state")
// for index: as shipped when index matches its patterns, otherwise
// narrowed to exactly that index so a custom name still gets the mapping.
func templateFor(name, index string) (string, json.RawMessage, error) {
	patterns, err := mappings.TemplatePatterns(name)
	if err != nil {
		return "", nil, err
	}
	if mappings.MatchesPattern(index, patterns) {
		b, err := mappings.Template(name)
		return "offtrail-" + name, b, err
	}
	b, err := mappings.TemplateWith(name, mappings.TemplateOptions{IndexPatterns: []string{index}})
	return "offtrail-" + name + "-" + index, b, err
}

// ensureTemplate installs the template for index.
func ensureTemplate(ctx context.Context, st store.Backend, name, index string) error {
	tname, body, err := templateFor(name, index)
	if err != nil {
		return err
	}
	if err := st.EnsureTemplate(ctx, tname, body); err != nil {
		return fmt.Errorf("install template %s: %w", tname, err)
	}
	return nil
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
