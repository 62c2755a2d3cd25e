package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const reloadException = `id: travel
entries:
  - id: alice-lisbon
    reason: Alice in Lisbon
    author: secops@example.com
    expires: 2030-01-01
    conditions:
      identity: {is: "arn:aws:iam::111111111111:user/alice"}
      source.country: {%s: PT}
`

// SIGHUP reloads rules, exceptions and channels: a bad exception file
// keeps everything running; a good one with a new channel swaps both.
func TestReloadExceptionsAndChannels(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"rules", "exceptions", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules/r.yml", "id: test-rule\nname: Test\ntype: rare\nsource: {index: [cloudtrail], profile: ecs}\nrare: {field: action, mode: first_seen}\nexceptions: {lists: [travel]}\n")
	write("exceptions/travel.yml", strings.Replace(reloadException, "%s", "is", 1))
	cfg := "embedded_dir: data\nlisten: 127.0.0.1:0\nrules: [rules]\nexceptions: [exceptions]\n"
	write("offtrail.yml", cfg)
	p := startRun(t, "reload", filepath.Join(dir, "offtrail.yml"))
	p.waitAddr(t)

	hup := func(want string) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			p.mu.Lock()
			logs := strings.Join(p.logs, "\n")
			p.mu.Unlock()
			if strings.Contains(logs, want) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no %q in the logs after SIGHUP", want)
	}
	// A typo in the operator: the running rules and exceptions stay.
	write("exceptions/travel.yml", strings.Replace(reloadException, "%s", "iss", 1))
	hup("reload failed; keeping the running rules, exceptions and channels")
	p.mu.Lock()
	logs := strings.Join(p.logs, "\n")
	p.mu.Unlock()
	if !strings.Contains(logs, `travel.yml:9:24: entries[alice-lisbon].conditions.source.country: unknown key \"iss\"`) {
		t.Errorf("the positioned error is not logged:\n%s", logs)
	}
	// A bad channel keeps the running ones; the fixed exceptions load.
	write("exceptions/travel.yml", strings.Replace(reloadException, "%s", "is", 1))
	write("offtrail.yml", cfg+"notifications:\n  channels:\n    hook: {type: webhook}\n")
	hup("notification channels invalid; keeping the running channels")
	// A good channel is swapped in.
	write("offtrail.yml", cfg+"notifications:\n  channels:\n    hook: {type: webhook, url: \"http://127.0.0.1:1/hook\"}\n")
	hup(`"channels":["hook"],"time"`)
}
