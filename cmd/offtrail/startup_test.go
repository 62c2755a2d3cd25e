package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store/dsl"
	"github.com/offtrail/offtrail/internal/testenv"
)

// freeAddr returns a local address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// forward accepts on addr and pipes every connection to target: the
// cluster "comes up" at addr when the test calls it.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
}

func (p *proc) lines(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, line := range p.logs {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && l["message"] == msg {
			out = append(out, l)
		}
	}
	return out
}

const startupRule = `id: starttest-first-action
name: Test first-time action for an identity
type: rare
schedule: {interval: 2s, lookback: 1h}
source: {index: ["%s"], profile: ecs}
rare: {field: action, by: identity, history: 1d, mode: first_seen}
`

// A real `offtrail run` started before its cluster listens retries with
// logged, growing delays, answers /healthz but not /readyz meanwhile, and
// comes up once the cluster (Elasticsearch, through a proxy started
// late) is there; then every rule run logs one line.
func TestRunWaitsForCluster(t *testing.T) {
	esURL := testenv.ElasticsearchURL(t)
	es, err := url.Parse(esURL)
	if err != nil {
		t.Fatal(err)
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	id := hex.EncodeToString(rb[:])
	source, signals, state := "offtrail-starttest-"+id+"-events-*", "offtrail-starttest-"+id+"-signals", "offtrail-starttest-"+id+"-state"
	t.Cleanup(func() {
		deletePaths(esURL, "/"+signals+","+state+"?ignore_unavailable=true",
			"/_index_template/offtrail-signals-"+signals, "/_index_template/offtrail-state-"+state)
	})
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules", "r.yml"), fmt.Appendf(nil, startupRule, source), 0o644); err != nil {
		t.Fatal(err)
	}
	cluster, listen := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "offtrail.yml")
	body := fmt.Sprintf("store: {url: http://%s}\nsignals_index: %s\nstate_index: %s\nrules: [rules]\nlisten: %s\n", cluster, signals, state, listen)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}

	p := startRun(t, "waiting", cfg)
	// A bound, not a timing: the retries come within seconds, but a child
	// process starting under the parallel packages' load once took longer
	// than 20 s to log its second.
	waitFor(t, time.Minute, "two logged retries", func() bool { return len(p.lines("cluster not reachable; retrying")) >= 2 })
	retries := p.lines("cluster not reachable; retrying")
	for i, l := range retries[:2] {
		if !strings.Contains(fmt.Sprint(l["error"]), cluster) || l["retry_in"] == nil || l["attempt"] != float64(i+1) {
			t.Errorf("retry line %d names neither the cluster, the attempt nor the delay: %v", i+1, l)
		}
	}
	if d0, d1 := retries[0]["retry_in"].(float64), retries[1]["retry_in"].(float64); d1 != 2*d0 {
		t.Errorf("backoff %vms then %vms, want it doubled", d0, d1)
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		resp, err := http.Get("http://" + listen + path)
		if err != nil {
			t.Fatalf("%s while waiting: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s while waiting: %d, want %d", path, resp.StatusCode, want)
		}
	}

	forward(t, cluster, es.Host)
	if addr := p.waitAddr(t); addr != listen {
		t.Errorf("running on %s, want %s", addr, listen)
	}
	if len(p.lines("cluster reachable")) != 1 {
		t.Error("no 'cluster reachable' line after the retries")
	}
	waitFor(t, 20*time.Second, "a rule run logged", func() bool { return len(p.lines("rule run")) > 0 })
	l := p.lines("rule run")[0]
	if l["level"] != "info" || l["rule"] != "starttest-first-action" || l["windows"] != float64(1) || l["span"] == nil ||
		l["signals"] == nil || l["created"] == nil || l["incidents"] == nil || l["took"] == nil {
		t.Errorf("rule run line: %v", l)
	}
	resp, err := http.Get("http://" + listen + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz once running: %d", resp.StatusCode)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("no exit on SIGTERM")
	}
}

// --startup-timeout bounds the wait; errors a retry cannot fix end it at once.
func TestRunStartupTimeout(t *testing.T) {
	defer func(a, b time.Duration) { startupBackoff, startupBackoffMax = a, b }(startupBackoff, startupBackoffMax)
	startupBackoff, startupBackoffMax = 50*time.Millisecond, 200*time.Millisecond
	t.Setenv("OFFTRAIL_STORE_URL", "http://"+freeAddr(t))
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := runMain([]string{"run", "--listen", "127.0.0.1:0", "--startup-timeout", "1s"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "cluster not reachable after") || !strings.Contains(stderr.String(), "--startup-timeout") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s, want about 1s", took)
	}
	if n := strings.Count(stderr.String(), "cluster not reachable; retrying"); n < 3 {
		t.Errorf("%d retries logged in 1s at 50ms doubling to 200ms", n)
	}

	t.Setenv(envStartupTimeout, "soon")
	stderr.Reset()
	if code := runMain([]string{"run", "--listen", "127.0.0.1:0"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), envStartupTimeout) {
		t.Errorf("bad %s: exit %d: %s", envStartupTimeout, code, stderr.String())
	}
}

func TestRetryableAtStartup(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("open cluster http://x: %w", &url.Error{Op: "Get", URL: "http://x/", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}), true},
		{errors.New("open cluster http://x: GET / answered 503: master_not_discovered"), true},
		{&dsl.ResponseError{Status: 503}, true},
		{&dsl.ResponseError{Status: 429}, true},
		{&dsl.ResponseError{Status: 400}, false},
		{errors.New("open cluster http://x: GET / answered 401: check the credentials"), false},
		{errors.New("open cluster http://x: unsupported Elasticsearch 7.10.2"), false},
		{fmt.Errorf("open cluster: CA certificate: %w", os.ErrNotExist), false},
	} {
		if got := retryableAtStartup(tc.err); got != tc.want {
			t.Errorf("retryableAtStartup(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
