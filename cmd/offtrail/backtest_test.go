package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// fixtureDir writes the storetest fixture as an embedded store directory
// with index "cloudtrail" (the schedule test rules' source).
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Load(t, st, "cloudtrail", storetest.FixtureN(1, 3000))
	st.Close()
	return dir
}

const testRulesDir = "../../schedule/testdata/rules"

func TestBacktestCommand(t *testing.T) {
	dir := fixtureDir(t)
	base := []string{"backtest", "--store", "file:" + dir, "--rules", testRulesDir,
		"--from", "2024-03-05T09:10:00Z", "--to", "2024-03-05T15:10:00Z"}

	var stdout, stderr bytes.Buffer
	if code := runMain(append(base, "--format", "json", "--write", "logs-offtrail.alerts-backtest"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var d struct {
			ID     string         `json:"_id"`
			Source map[string]any `json:"_source"`
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil || d.ID == "" || d.Source["rule"] == nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		if off, _ := d.Source["offtrail"].(map[string]any); off["kind"] == "incident" {
			continue // the incidents follow the signals
		}
		if seen[d.ID] {
			t.Fatalf("signal %s printed twice", d.ID)
		}
		seen[d.ID] = true
	}
	if len(seen) == 0 {
		t.Fatal("no signals")
	}
	if !strings.Contains(stderr.String(), "100%") {
		t.Errorf("no final progress line on stderr:\n%s", stderr.String())
	}
	// --write put exactly those signals in the index.
	data, err := os.ReadFile(filepath.Join(dir, "logs-offtrail.alerts-backtest", "signals.ndjson"))
	if err != nil {
		matches, _ := filepath.Glob(filepath.Join(dir, "logs-offtrail.alerts-backtest", "*"))
		if len(matches) == 0 {
			t.Fatalf("nothing written: %v", err)
		}
		data, _ = os.ReadFile(matches[0])
	}
	if n := bytes.Count(data, []byte("\n")); n != len(seen) {
		t.Errorf("wrote %d signals, printed %d", n, len(seen))
	}

	stdout.Reset()
	stderr.Reset()
	if code := runMain(append(base, "--rule", "test-rare-action"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	// 09:00..15:00 hourly: 7 windows.
	if !strings.Contains(out, "test-rare-action        7") || !strings.Contains(out, "RULE") || strings.Contains(out, "test-off-hours") {
		t.Errorf("table:\n%s", out)
	}

	for _, bad := range [][]string{
		{"backtest", "--store", "file:" + dir, "--from", "2024-03-05", "--to", "2024-03-04"},
		{"backtest", "--store", "file:" + dir, "--from", "yesterday"},
		{"backtest", "--from", "now-1d"},
	} {
		if code := runMain(bad, io.Discard, io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunCommand(t *testing.T) {
	dir := fixtureDir(t)
	addr := freePort(t)
	cfg := filepath.Join(t.TempDir(), "offtrail.yml")
	abs, _ := filepath.Abs(testRulesDir)
	os.WriteFile(cfg, []byte(fmt.Sprintf("embedded_dir: %s\nrules: [%s]\nlisten: %s\nlease_duration: 3s\n", dir, abs, addr)), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	env := &cliEnv{stdout: io.Discard, stderr: &stderr, log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	done := make(chan error, 1)
	go func() { done <- runService(ctx, env, []string{"--config", cfg}) }()

	get := func(path string) (int, string) {
		var last error
		for i := 0; i < 100; i++ {
			res, err := http.Get("http://" + addr + path)
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				return res.StatusCode, string(b)
			}
			last = err
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("GET %s: %v", path, last)
		return 0, ""
	}
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d %s", code, body)
	}
	// Listening comes first: /readyz turns 200 once the store is open.
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body = get("/readyz"); code == 200 {
			break
		}
	}
	if code != 200 {
		t.Errorf("/readyz %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "offtrail_leases_held") {
		t.Errorf("/metrics %d:\n%s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	// The templates were installed and the lease released on shutdown.
	st, _ := embedded.Open(dir, embedded.Options{})
	defer st.Close()
	raw, _, err := st.GetState(context.Background(), "offtrail-state", "lease:test-rare-action")
	if err != nil || !strings.Contains(string(raw), `"owner":""`) {
		t.Errorf("lease after shutdown: %s %v", raw, err)
	}
}

func TestRunRefusesBadConfigAndRules(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("embedded_dir: "+dir+"\nlisten: 127.0.0.1:0\nmax_catchupp: 3\n"), 0o600)
	var stderr bytes.Buffer
	if code := runMain([]string{"run", "--config", bad}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "line 3") {
		t.Errorf("unknown key: exit %d, stderr %s", code, stderr.String())
	}
	rulesDir := filepath.Join(dir, "rules")
	os.Mkdir(rulesDir, 0o755)
	os.WriteFile(filepath.Join(rulesDir, "broken.yml"), []byte("id: x\ntype: nope\n"), 0o600)
	cfg := filepath.Join(dir, "rules.yml")
	os.WriteFile(cfg, []byte("embedded_dir: "+dir+"\nlisten: 127.0.0.1:0\nrules: [rules]\n"), 0o600)
	stderr.Reset()
	if code := runMain([]string{"run", "--config", cfg}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "invalid rule") {
		t.Errorf("invalid rules: exit %d, stderr %s", code, stderr.String())
	}
}
