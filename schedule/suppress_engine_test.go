package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/webhook"
	"github.com/offtrail/offtrail/rules"
)

// notifyChild runs the test rules for spec.Steps hourly ticks from
// spec.Start (a fake clock) with a webhook channel that suppresses for a
// day, prints each signal it created, and drains its queue.
func notifyChild(t *testing.T, spec childSpec) {
	st := openEngine(t, spec.Engine, spec.URL)
	n, err := webhook.New(webhook.Config{URL: notify.Secret(spec.Hook)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock(spec.Start)
	disp, err := notify.NewDispatcher(map[string]notify.Channel{"hook": {Notifier: n, SuppressFor: 24 * time.Hour}},
		notify.Options{Logger: zerolog.New(os.Stderr).Level(zerolog.WarnLevel), DefaultChannels: []string{"hook"}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	disp.Start(st, spec.State)
	var rs []*rules.Rule
	for _, r := range testRules(t) {
		c := cloneRule(r, r.ID)
		c.Source.Index = []string{spec.Source}
		rs = append(rs, c)
	}
	send := enqueue(t, disp)
	m, err := New(Options{
		Store: st, Evaluator: newDetector(t, st), Logger: zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		ReplicaID: spec.Replica, StateIndex: spec.State, SignalsIndex: spec.Signals, Now: clock.Now, Backoff: time.Millisecond,
		OnCreated: func(r *rules.Rule, created []*detector.Signal) {
			for _, s := range created {
				fmt.Printf("created %s %s\n", s.ID, r.ID+"/"+s.Label)
			}
			send(r, created)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Reload(rs)
	for range spec.Steps {
		if err := m.SyncLeases(t.Context()); err != nil {
			fmt.Println("sync:", err)
		}
		for _, r := range rs {
			if err := m.RunRule(t.Context(), r.ID); err != nil {
				fmt.Println("run:", err)
			}
		}
		clock.Advance(time.Hour)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m.Stop(ctx) // a restart: the leases released, so the next process takes them at once
	if err := disp.Close(ctx); err != nil {
		fmt.Println("close:", err)
	}
	fmt.Println("done")
}

// hookSink records the webhook's messages by group (rule/identity).
type hookSink struct {
	mu   sync.Mutex
	sent map[string][]string // group -> signal ids sent
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Messages []notify.Message `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range body.Messages {
		g := m.RuleID + "/" + m.Identity
		h.sent[g] = append(h.sent[g], m.SignalID)
	}
}

// Two real processes, one after the other as across a restart or a lease
// moving to another replica, evaluate consecutive hours into one signals
// and state index: an incident (a rule and an identity) whose signals were
// created by both is one message, because the suppression state is in the
// state index.
func TestEngineSuppressionAcrossProcesses(t *testing.T) {
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) {
			e := open(t)
			env := engineEnv(t, e)
			storetest.Load(t, e, env.source, storetest.FixtureN(1, 3000))
			if err := e.Refresh(t.Context(), env.source); err != nil {
				t.Fatal(err)
			}
			sink := &hookSink{sent: map[string][]string{}}
			srv := httptest.NewServer(sink)
			defer srv.Close()
			start := ts("2024-03-05T09:10:00Z")
			createdBy := map[string]map[string]bool{} // group -> replicas that created its signals
			for i, replica := range []string{"a", "b"} {
				spec := childSpec{Mode: "notify", Engine: name, URL: e.url, Signals: env.signals, State: env.state,
					Source: env.source, Replica: replica, Hook: srv.URL, Start: start.Add(time.Duration(3*i) * time.Hour), Steps: 3}
				c := startChild(t, spec)
				for l := range c.lines {
					if f := strings.SplitN(l, " ", 3); len(f) == 3 && f[0] == "created" {
						if createdBy[f[2]] == nil {
							createdBy[f[2]] = map[string]bool{}
						}
						createdBy[f[2]][replica] = true
					} else if l != "done" {
						t.Errorf("%s: %s", replica, l)
					}
				}
				if err := c.cmd.Wait(); err != nil {
					t.Fatalf("%s: %v", replica, err)
				}
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			both := 0
			for g, reps := range createdBy {
				if n := len(sink.sent[g]); n != 1 {
					t.Errorf("incident %s (signals created by %v): %d messages, want 1", g, reps, n)
				}
				if reps["a"] && reps["b"] {
					both++
				}
			}
			if both == 0 {
				t.Fatalf("no incident had signals created by both processes; the test proves nothing: %v", createdBy)
			}
			t.Logf("%d incidents, %d with signals from both processes, one message each", len(createdBy), both)
		})
	}
}
