package schedule

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/elastic"
	ostore "github.com/offtrail/offtrail/detector/store/opensearch"
	"github.com/offtrail/offtrail/rules"
)

// envChild makes the test binary act as one replica (see TestReplicaProcess).
const envChild = "OFFTRAIL_TEST_SCHEDULE_CHILD"

// childSpec is what a child replica runs: one rule on a real engine.
type childSpec struct {
	Mode    string `json:"mode"` // "fence" or "notify"
	Engine  string `json:"engine"`
	URL     string `json:"url"`
	Signals string `json:"signals"`
	State   string `json:"state"`
	Source  string `json:"source"`
	Replica string `json:"replica"`
	Hook    string `json:"hook,omitempty"`
	// Start and Steps: the child runs Steps hourly ticks from Start (a
	// fake clock), for the notify mode.
	Start time.Time `json:"start"`
	Steps int       `json:"steps"`
}

// TestReplicaProcess is not a test: started by startChild with envChild
// set, it runs one replica and exits.
func TestReplicaProcess(t *testing.T) {
	raw := os.Getenv(envChild)
	if raw == "" {
		return
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Println("bad spec:", err)
		os.Exit(2)
	}
	switch spec.Mode {
	case "fence":
		fenceChild(t, spec)
	case "notify":
		notifyChild(t, spec)
	}
	os.Exit(0)
}

func openEngine(t *testing.T, name, url string) store.Backend {
	var (
		s   store.Backend
		err error
	)
	switch name {
	case "elasticsearch":
		s, err = elastic.New(elasticsearch.Config{Addresses: []string{url}})
	default:
		s, err = ostore.New(opensearch.Config{Addresses: []string{url}})
	}
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	return s
}

// child is a running replica process and the lines it prints.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, spec childSpec) *child {
	t.Helper()
	b, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// waitLine returns the first line starting with prefix.
func (c *child) waitLine(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("child printed no %q within %s", prefix, within)
		}
	}
}

// pausing is an evaluator that says when it runs and then takes a moment,
// for the parent to stop the process mid-window.
type pausing struct{ out io.Writer }

func (p pausing) Evaluate(_ context.Context, r *rules.Rule, w store.Window, runID string) (*detector.Result, error) {
	fmt.Fprintf(p.out, "evaluating %s\n", w)
	time.Sleep(1500 * time.Millisecond)
	return &detector.Result{Rule: r.ID, Window: w, RunID: runID}, nil
}

const fenceLease = 3 * time.Second

func fenceManager(t *testing.T, st Store, ev Evaluator, spec childSpec) *Manager {
	m, err := New(Options{
		Store: st, Evaluator: ev, Logger: zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		ReplicaID: spec.Replica, StateIndex: spec.State, SignalsIndex: spec.Signals,
		LeaseDuration: fenceLease, Backoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Reload(testRules(t)[:1])
	return m
}

// fenceChild takes the rule's lease and runs it once with the pausing
// evaluator, printing the outcome.
func fenceChild(t *testing.T, spec childSpec) {
	st := openEngine(t, spec.Engine, spec.URL)
	m := fenceManager(t, st, pausing{os.Stdout}, spec)
	if err := m.SyncLeases(t.Context()); err != nil || !m.Holds(testRules(t)[0].ID) {
		fmt.Println("no lease:", err)
		return
	}
	fmt.Println("held")
	err := m.RunRule(t.Context(), testRules(t)[0].ID)
	fmt.Printf("run: %v\n", err)
}

// A replica stopped (SIGSTOP) in the middle of a window loses its lease
// to another; resumed (SIGCONT), it finishes the window but its checkpoint
// write is refused, and the new owner's progress stands.
func TestEnginePausedReplicaCannotCheckpoint(t *testing.T) {
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) {
			e := open(t)
			env := engineEnv(t, e)
			spec := childSpec{Mode: "fence", Engine: name, URL: e.url, Signals: env.signals, State: env.state, Replica: "paused"}
			rule := testRules(t)[0].ID

			a := startChild(t, spec)
			a.waitLine(t, "held", 30*time.Second)
			a.waitLine(t, "evaluating", 30*time.Second)
			if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()

			spec.Replica = "b"
			b := fenceManager(t, e, newRecorder(nil), spec)
			for !b.Holds(rule) {
				if time.Since(stopped) > fenceLease+20*time.Second {
					t.Fatal("b never took the expired lease")
				}
				if err := b.SyncLeases(t.Context()); err != nil {
					t.Logf("sync: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			before := leaseDoc(t, e, env.state, rule)
			if before.Owner != "b" || before.Checkpoint != nil {
				t.Fatalf("after the takeover: %+v", before)
			}

			if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			if got := a.waitLine(t, "run:", 30*time.Second); !strings.Contains(got, "lease lost") {
				t.Errorf("the resumed replica's run: %q, want its checkpoint refused (lease lost)", got)
			}
			if after := leaseDoc(t, e, env.state, rule); after.Owner != "b" || after.Checkpoint != nil {
				t.Fatalf("the resumed replica wrote: %+v", after)
			}
			if err := b.RunRule(t.Context(), rule); err != nil {
				t.Fatalf("the new owner's run: %v", err)
			}
			if cp := leaseDoc(t, e, env.state, rule).Checkpoint; cp == nil || cp.Owner != "b" {
				t.Fatalf("the new owner's checkpoint: %+v", cp)
			}
		})
	}
}

func leaseDoc(t *testing.T, st StateStore, index, rule string) Lease {
	t.Helper()
	var l Lease
	if _, _, err := getDoc(t.Context(), st, index, leaseID(rule), &l); err != nil {
		t.Fatal(err)
	}
	return l
}
