package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/offtrail/offtrail/internal/config"
)

func init() {
	register(command{
		name:    "healthcheck",
		summary: "probe a running offtrail (container HEALTHCHECK; exit 0 when healthy)",
		run:     runHealthcheck,
	})
}

// runHealthcheck exists because the distroless image has no shell or curl:
// Docker's HEALTHCHECK runs the binary itself against /healthz.
func runHealthcheck(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "healthcheck", "[--config FILE | --url URL] [--timeout DURATION]")
	u := fs.String("url", "http://"+config.DefaultListen+"/healthz", "endpoint to probe (/healthz: alive, /readyz: store reachable and rules loaded)")
	cfgPath := fs.String("config", "", "probe the listen address of this run configuration (its /healthz)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath != "" {
		url, err := healthURL(*cfgPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		*u = url
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *u, nil)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: 1, err: fmt.Errorf("%s: status %d: %s", *u, resp.StatusCode, uiSnippet(body))}
	}
	return nil
}

// healthURL is /healthz on a configuration's listen address; an
// all-interfaces address is probed on loopback.
func healthURL(path string) (string, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
