package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/rules"
)

// openConfigured opens the store a run configuration names.
func openConfigured(ctx context.Context, env *cliEnv, cfg *config.Config) (store.Backend, error) {
	if cfg.EmbeddedDir != "" {
		return embedded.Open(cfg.EmbeddedDir, embeddedOptions(env))
	}
	s := cfg.Store
	opts := backends.Options{
		URLs:               s.AllURLs(),
		Username:           s.Username,
		Password:           s.Password.Reveal(),
		APIKey:             s.APIKey.Reveal(),
		CACertFile:         s.CACert,
		InsecureSkipVerify: s.InsecureSkipVerify,
	}
	if s.AWSSigV4 != nil {
		opts.AWS = &backends.AWSOptions{Region: s.AWSSigV4.Region, Service: s.AWSSigV4.Service}
	}
	if s.InsecureSkipVerify {
		env.log.Warn().Msg("TLS certificate verification is disabled (store.insecure_skip_verify)")
	}
	return backends.Open(ctx, opts, env.log)
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
