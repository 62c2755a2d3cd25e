package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/mappings"
)

// storeHelp documents the store spec and its environment for flag usage.
const storeHelp = `store: file:DIR or DIR (embedded), or http(s)://host:port[,http(s)://…] (Elasticsearch 8 / OpenSearch, detected);
credentials from OFFTRAIL_USERNAME, OFFTRAIL_PASSWORD (or OFFTRAIL_PASSWORD_FILE), OFFTRAIL_API_KEY (or OFFTRAIL_API_KEY_FILE),
OFFTRAIL_CA_CERT (PEM file), OFFTRAIL_TLS_INSECURE=true, OFFTRAIL_AWS_REGION and OFFTRAIL_AWS_SERVICE (es|aoss) for SigV4`

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

// openStore opens the backend a spec names: a cluster URL (comma-separated
// for several nodes) or a directory for the embedded store. Secrets come
// from the environment or files, never from flags (they would show in ps)
// and are never logged.
func openStore(ctx context.Context, env *cliEnv, spec string) (store.Backend, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("no store given (%s)", storeHelp)
	}
	if !strings.HasPrefix(spec, "http://") && !strings.HasPrefix(spec, "https://") {
		dir := strings.TrimPrefix(spec, "file:")
		st, err := embedded.Open(dir, embeddedOptions(env))
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	opts := backends.Options{
		URLs:       strings.Split(spec, ","),
		Username:   os.Getenv("OFFTRAIL_USERNAME"),
		CACertFile: os.Getenv("OFFTRAIL_CA_CERT"),
	}
	var err error
	if opts.Password, err = secret("OFFTRAIL_PASSWORD"); err != nil {
		return nil, err
	}
	if opts.APIKey, err = secret("OFFTRAIL_API_KEY"); err != nil {
		return nil, err
	}
	if v := os.Getenv("OFFTRAIL_TLS_INSECURE"); v != "" {
		if opts.InsecureSkipVerify, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("OFFTRAIL_TLS_INSECURE: %w", err)
		}
		if opts.InsecureSkipVerify {
			env.log.Warn().Msg("TLS certificate verification is disabled (OFFTRAIL_TLS_INSECURE)")
		}
	}
	if region, service := os.Getenv("OFFTRAIL_AWS_REGION"), os.Getenv("OFFTRAIL_AWS_SERVICE"); region != "" || service != "" {
		opts.AWS = &backends.AWSOptions{Region: region, Service: service}
	}
	return backends.Open(ctx, opts, env.log)
}

// secret reads NAME, or the file NAME_FILE names (Docker and Kubernetes
// secrets are files).
func secret(name string) (string, error) {
	if v := os.Getenv(name); v != "" {
		return v, nil
	}
	path := os.Getenv(name + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}
