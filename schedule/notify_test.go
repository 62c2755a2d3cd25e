package schedule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/webhook"
	"github.com/offtrail/offtrail/rules"
)

// enqueue wires a dispatcher as `offtrail run` does.
func enqueue(t *testing.T, d *notify.Dispatcher) func(*rules.Rule, []*detector.Signal) {
	return func(r *rules.Rule, created []*detector.Signal) {
		for _, s := range created {
			m, err := notify.FromSignal(s, nil)
			if err != nil {
				t.Error(err)
				continue
			}
			if err := d.Enqueue(r.Notify, m); err != nil {
				t.Error(err)
			}
		}
	}
}

// hangingDispatcher sends to a webhook whose server accepts requests and
// never answers (until the test ends).
func hangingDispatcher(t *testing.T, reg prometheus.Registerer) *notify.Dispatcher {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	n, err := webhook.New(webhook.Config{URL: notify.Secret(srv.URL)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	d, err := notify.NewDispatcher(map[string]notify.Channel{"hook": {Notifier: n}},
		notify.Options{Logger: zerolog.Nop(), DefaultChannels: []string{"hook"}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A channel whose server hangs delays neither the rule's runs nor its
// checkpoint: signals are written, the checkpoint saved and the messages
// queued; the queue shows in the metrics and shutdown gives up on it at
// its deadline.
func TestHungChannelDoesNotDelayCheckpoint(t *testing.T) {
	st := fixtureStore(t)
	rs := testRules(t)
	reg := prometheus.NewRegistry()
	disp := hangingDispatcher(t, reg)
	disp.Start(st, "offtrail-state-test")
	clock := newClock(ts("2024-03-05T09:10:00Z"))
	m := newTestManager(t, st, newDetector(t, st), clock, "a", func(o *Options) { o.OnCreated = enqueue(t, disp) })
	m.Reload(rs)
	for step := 0; step < 6; step++ {
		if err := m.SyncLeases(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			start := time.Now()
			if err := m.RunRule(t.Context(), r.ID); err != nil {
				t.Fatalf("step %d %s: %v", step, r.ID, err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("step %d %s: run took %s with a hung channel", step, r.ID, took)
			}
			if err := m.SyncLeases(t.Context()); err != nil { // writes the checkpoints due
				t.Fatal(err)
			}
			want := TimingOf(r).End(clock.Now())
			if cp := readCheckpoint(t, st, "offtrail-state-test", r.ID); !cp.End.Equal(want) {
				t.Errorf("step %d %s: checkpoint %s, want %s", step, r.ID, cp.End, want)
			}
		}
		clock.Advance(time.Hour)
	}
	written := len(signalIDs(t, st, "logs-offtrail.alerts-test"))
	if written < 2 {
		t.Fatalf("%d signals written; the test needs several", written)
	}
	queued := gauge(t, reg, "offtrail_notification_queue_depth")
	if queued < 1 {
		t.Errorf("queue depth %v with a hung channel and %d signals", queued, written)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := disp.Close(ctx); err == nil {
		t.Error("Close reported everything delivered")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %s past its deadline", took)
	}
	t.Logf("%d signals written, checkpoints on time, %v queued behind the hung channel", written, queued)
}

// gauge is the value of the one series of a gauge family.
func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}
