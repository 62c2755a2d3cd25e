package main

import (
	"context"
	"os"

	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/mappings"
)

// storeHelp documents the store spec and its environment for flag usage.
const storeHelp = `store: ` + config.StoreForms + ` (default $OFFTRAIL_STORE_URL);
credentials from OFFTRAIL_USERNAME, OFFTRAIL_PASSWORD (or OFFTRAIL_PASSWORD_FILE), OFFTRAIL_API_KEY (or OFFTRAIL_API_KEY_FILE),
OFFTRAIL_CA_CERT (PEM file), OFFTRAIL_TLS_INSECURE=true, OFFTRAIL_AWS_REGION and OFFTRAIL_AWS_SERVICE (es|aoss) for SigV4,
OFFTRAIL_HTTP_COMPRESSION=true to have the cluster gzip its answers (for a slow or metered link)`

// storeUse says whether a command may create an embedded store.
type storeUse int

const (
	// forReading: the store must exist; a typo must not read as "no findings".
	forReading storeUse = iota
	// forWriting: load and bench create an embedded directory.
	forWriting
)

// embeddedOptions reads every field a rule can name (either profile's
// physical names) on a segment's first read: a field first asked for in
// the middle of a run, like the context check's user agent, would
// otherwise cost a second pass over the window's segments. The cache
// budget comes from OFFTRAIL_EMBEDDED_CACHE (e.g. 256MiB; default 512MiB).
func embeddedOptions(env *cliEnv) embedded.Options {
	seen := map[string]bool{}
	var fields []string
	for _, name := range mappings.ProfileNames() {
		p, _ := mappings.LookupProfile(name)
		for _, l := range mappings.LogicalFields() {
			if f := p.Physical(l); f != "" && !seen[f] {
				seen[f] = true
				fields = append(fields, f)
			}
		}
	}
	return embedded.Options{Logger: env.log, Fields: fields}
}

// openStore opens the store a --store spec (or $OFFTRAIL_STORE_URL)
// names. Secrets come from the environment or files, never from flags
// (they would show in ps), and are never logged.
func openStore(ctx context.Context, env *cliEnv, spec string, use storeUse) (store.Backend, error) {
	conn, err := config.ForFlag(spec, os.Getenv)
	if err != nil {
		return nil, err
	}
	return openConnection(ctx, env, conn, use)
}

// openConnection opens the embedded store or the cluster of conn; run and
// every other command open their store here.
func openConnection(ctx context.Context, env *cliEnv, conn config.Connection, use storeUse) (store.Backend, error) {
	if conn.Embedded() {
		opts := embeddedOptions(env)
		opts.MustExist = use == forReading
		return embedded.Open(conn.Dir, opts)
	}
	if err := conn.CheckFiles(); err != nil {
		return nil, err
	}
	if conn.InsecureSkipVerify {
		env.log.Warn().Str("set_by", conn.InsecureFrom).Msg("TLS certificate verification is disabled")
	}
	return backends.Open(ctx, conn.BackendOptions(), env.log)
}
