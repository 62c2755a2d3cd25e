package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/rules"
)

// evalFlags are the flags of the commands that evaluate rules over a store
// (once, backtest): where the data is, which rules, and the output format.
type evalFlags struct {
	store, rules, rule, format string
	exceptions                 *exceptionsFlag
	baselines                  *baselineFlags
	cache                      *baseline.Cache
}

// addEvalFlags registers them; verb says what is done to the one --rule.
func addEvalFlags(fs *flag.FlagSet, verb, formatHelp string) *evalFlags {
	f := &evalFlags{}
	fs.StringVar(&f.store, "store", "", storeHelp)
	fs.Func("rules", "rule file or directory (default: the built-in AWS pack)", func(p string) error {
		if strings.TrimSpace(p) == "" {
			// An unset variable in a script, not a wish for the built-in pack.
			return errors.New("empty path (leave --rules out for the built-in pack)")
		}
		f.rules = p
		return nil
	})
	fs.StringVar(&f.rule, "rule", "", verb+" only this rule (default: every enabled rule)")
	f.exceptions = addExceptionsFlag(fs)
	fs.StringVar(&f.format, "format", "table", formatHelp)
	f.baselines = addBaselineFlags(fs)
	return f
}

// detectorStore is what the detector counts through: st, behind the
// baseline cache unless --baselines=false. report says what it did.
func (f *evalFlags) detectorStore(env *cliEnv, st store.Backend) detector.Store {
	ds, c, err := f.baselines.store(env, st)
	if err != nil { // check refused an empty --state-index already
		env.log.Warn().Err(err).Msg("baselines off")
		return st
	}
	f.cache = c
	return ds
}

func (f *evalFlags) report(env *cliEnv) { reportBaselines(env, f.cache) }

// needStore reports a usage error when neither --store nor
// $OFFTRAIL_STORE_URL names a store.
func needStore(flag string) error {
	if flag == "" && os.Getenv(config.EnvStoreURL) == "" {
		return &exitError{code: 2, err: fmt.Errorf("--store is required (or %s): %s", config.EnvStoreURL, config.StoreForms)}
	}
	return nil
}

// check reports a missing store or an unknown --format as a usage error.
func (f *evalFlags) check() error {
	if err := needStore(f.store); err != nil {
		return err
	}
	if f.format != "table" && f.format != "json" {
		return &exitError{code: 2, err: fmt.Errorf("--format must be table or json")}
	}
	if f.baselines.on && f.baselines.stateIndex == "" {
		return &exitError{code: 2, err: fmt.Errorf("--state-index is empty (or give --baselines=false)")}
	}
	return nil
}

// open loads and selects the rules, then opens the store; the caller closes it.
func (f *evalFlags) open(ctx context.Context, env *cliEnv) ([]*rules.Rule, store.Backend, error) {
	pack, err := loadPack(env, f.rules)
	if err != nil {
		return nil, nil, err
	}
	if err := bindExceptions(env.stderr, *f.exceptions, pack); err != nil {
		return nil, nil, err
	}
	selected, err := selectRules(pack, f.rule)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, env, f.store, forReading)
	if err != nil {
		return nil, nil, err
	}
	return selected, st, nil
}
