package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/offtrail/offtrail/rules"
)

// expiryHorizon is how far ahead check warns about expiring exceptions.
const expiryHorizon = 7 * 24 * time.Hour

// exceptionsFlag is --exceptions: a file or directory of exception lists,
// repeatable (like the configuration's exceptions list).
type exceptionsFlag []string

func (f *exceptionsFlag) String() string { return strings.Join(*f, ",") }

func (f *exceptionsFlag) Set(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("empty path")
	}
	*f = append(*f, p)
	return nil
}

func addExceptionsFlag(fs *flag.FlagSet) *exceptionsFlag {
	f := &exceptionsFlag{}
	fs.Var(f, "exceptions", "exception list file or directory (exceptions/*.yml), repeatable; rules name the lists, global lists apply to every rule")
	return f
}

// loadExceptions loads the lists at paths and binds them to pack's rules.
// Everything is positioned as file:line:col; errors (in a list, or a rule
// naming a list that does not exist) are returned as diagnostics.
func loadExceptions(paths []string, pack *rules.Pack) (*rules.Exceptions, rules.Diagnostics) {
	x := &rules.Exceptions{}
	var diags rules.Diagnostics
	if len(paths) > 0 {
		x, diags = rules.LoadExceptions(paths...)
	}
	return x, append(diags, x.Bind(pack)...)
}

// bindExceptions is loadExceptions for once and backtest: diagnostics to
// w, an error when any is one.
func bindExceptions(w io.Writer, paths []string, pack *rules.Pack) error {
	_, diags := loadExceptions(paths, pack)
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
	}
	if n := len(diags.Errors()); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d invalid exception(s)", n)}
	}
	return nil
}

// bindRunExceptions is loadExceptions for the service: diagnostics logged;
// any error refuses the pack (at start-up, or on SIGHUP, which keeps the
// running rules and exceptions).
func bindRunExceptions(env *cliEnv, paths []string, pack *rules.Pack) error {
	_, diags := loadExceptions(paths, pack)
	for _, d := range diags.Warnings() {
		env.log.Warn().Str("diagnostic", d.String()).Msg("exception warning")
	}
	errs := diags.Errors()
	for _, d := range errs {
		env.log.Error().Str("diagnostic", d.String()).Msg("invalid exception")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d invalid exception(s); fix them (offtrail check --exceptions)", len(errs))
	}
	return nil
}

// expiryWarnings lists the entries that expired or expire within a week.
func expiryWarnings(x *rules.Exceptions, pack *rules.Pack, now time.Time) rules.Diagnostics {
	var out rules.Diagnostics
	for _, e := range rules.ExpiringEntries(x, pack, now, expiryHorizon) {
		out = append(out, e.Diagnostic(now))
	}
	return out
}
