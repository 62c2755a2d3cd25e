package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"syscall"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
	"github.com/offtrail/offtrail/internal/config"
)

// envStartupTimeout is run's --startup-timeout default.
const envStartupTimeout = "OFFTRAIL_STARTUP_TIMEOUT"

// startupBackoff is the wait before the second attempt to reach the
// cluster at start-up; it doubles after each failure up to
// startupBackoffMax. Tests shorten them.
var (
	startupBackoff    = time.Second
	startupBackoffMax = 30 * time.Second
)

// startup retries run's first contact with the cluster (detecting the
// engine, installing the templates) while the cluster cannot be reached:
// a service started before its cluster, or during an outage, waits for it
// instead of exiting. Errors a retry cannot fix (credentials, an engine
// offtrail does not support, a bad CA file, a refused request) end it at
// once, as do the context (SIGINT/SIGTERM) and the deadline, if any.
type startup struct {
	env      *cliEnv
	deadline time.Time // zero: wait as long as it takes
	attempts int
	began    time.Time
}

func newStartup(env *cliEnv, timeout time.Duration) *startup {
	s := &startup{env: env, began: time.Now()}
	if timeout > 0 {
		s.deadline = s.began.Add(timeout)
	}
	return s
}

// do runs fn (what is being done: "open the cluster") until it succeeds,
// fails for good, or the wait is over. Each failed attempt is logged with
// its error and the delay before the next one.
func (s *startup) do(ctx context.Context, what string, fn func(context.Context) error) error {
	wait := startupBackoff
	for attempt := 1; ; attempt++ {
		s.attempts++
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				s.env.log.Info().Str("step", what).Int("attempts", attempt).Dur("waited", time.Since(s.began).Round(time.Millisecond)).
					Msg("cluster reachable")
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped while waiting for the cluster (%s): %w", what, err)
		}
		if !retryableAtStartup(err) {
			return err
		}
		if !s.deadline.IsZero() && time.Now().Add(wait).After(s.deadline) {
			return fmt.Errorf("cluster not reachable after %s (%d attempts, --startup-timeout): %w",
				time.Since(s.began).Round(time.Second), s.attempts, err)
		}
		s.env.log.Warn().Err(err).Str("step", what).Int("attempt", attempt).Dur("retry_in", wait).
			Msg("cluster not reachable; retrying")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("stopped while waiting for the cluster (%s): %w", what, err)
		case <-t.C:
		}
		wait = min(2*wait, startupBackoffMax)
	}
}

// answeredRetryable matches the engine probe's "GET / answered 503: …"
// (an engine that is up but not ready, or a proxy without a backend).
var answeredRetryable = regexp.MustCompile(`GET / answered (429|5\d\d)\b`)

// retryableAtStartup tells a cluster that cannot be reached yet (refused,
// reset, timed out, unknown host, 429/5xx) from a configuration a retry
// cannot fix.
func retryableAtStartup(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		re        *dsl.ResponseError
		dnsErr    *net.DNSError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &record):
		return false // TLS set up wrong: waiting does not help
	case errors.As(err, &re):
		return re.Status == http.StatusTooManyRequests || re.Status >= 500
	case errors.As(err, &dnsErr):
		return true // a name not (yet) resolvable: a cluster service still starting
	case errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return answeredRetryable.MatchString(err.Error())
}

// openRunStore opens run's store and installs its templates, retrying an
// unreachable cluster (see startup). A role not allowed to install
// templates is warned about, not fatal.
func openRunStore(ctx context.Context, env *cliEnv, cfg *config.Config, timeout time.Duration) (store.Backend, error) {
	s := newStartup(env, timeout)
	var st store.Backend
	if err := s.do(ctx, "open the cluster", func(ctx context.Context) (err error) {
		st, err = openConfigured(ctx, env, cfg)
		return err
	}); err != nil {
		return nil, err
	}
	if !cfg.TemplatesToInstall() {
		return st, nil
	}
	for _, t := range [][2]string{{"signals", cfg.SignalsIndex}, {"state", cfg.StateIndex}} {
		err := s.do(ctx, "install the "+t[0]+" template", func(ctx context.Context) error {
			return ensureTemplate(ctx, st, t[0], t[1])
		})
		var re *dsl.ResponseError
		switch {
		case errors.As(err, &re) && re.Status == http.StatusForbidden:
			// The least-privilege runner role cannot install templates;
			// an installer (or `offtrail run` once with that role) did.
			env.log.Warn().Err(err).Msg("not allowed to install index templates: assuming they are installed (install_templates: false silences this)")
		case err != nil:
			st.Close()
			return nil, err
		}
	}
	return st, nil
}
