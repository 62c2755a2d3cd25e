package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
)

// recorder is a Notifier that records what it is sent and answers from a
// script (then succeeds).
type recorder struct {
	mu     sync.Mutex
	sent   []*Message
	calls  int
	script []result
}

type result struct {
	retry bool
	err   error
}

func (r *recorder) Notify(_ context.Context, msgs ...*Message) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.script) > 0 {
		res := r.script[0]
		r.script = r.script[1:]
		if res.err != nil {
			return res.retry, res.err
		}
	}
	r.sent = append(r.sent, msgs...)
	return false, nil
}

// clock is a fake clock; Sleep advances it and records the waits.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

var t0 = time.Date(2024, 3, 5, 2, 15, 0, 0, time.UTC)

func signal(rule, who, action string, n int) *detector.Signal {
	return &detector.Signal{
		ID:         fmt.Sprintf("%s-%s-%s-%d", rule, who, action, n),
		RuleID:     rule,
		RuleName:   "Rule " + rule,
		Label:      who,
		Entity:     []detector.Field{{Name: "identity", Value: "arn:aws:iam::123456789012:user/" + who}},
		Value:      []detector.Field{{Name: "action", Value: action}},
		Score:      88.5,
		Confidence: detector.ConfidenceMedium,
		Severity:   "high",
		RiskScore:  73,
		Reason:     who + " called " + action + " for the first time",
		Count:      3,
		Window:     store.Window{From: t0.Add(-2 * time.Hour), To: t0},
		Events: []store.Event{
			{ID: "e1", Time: t0.Add(-90 * time.Minute)},
			{ID: "e2", Time: t0.Add(-10 * time.Minute)},
		},
	}
}

func newTestDispatcher(t *testing.T, chans map[string]Channel, opts Options) (*Dispatcher, *clock, *prometheus.Registry) {
	t.Helper()
	c := &clock{now: t0}
	reg := prometheus.NewRegistry()
	opts.Now, opts.Sleep, opts.Registerer, opts.Logger = c.Now, c.Sleep, reg, zerolog.Nop()
	d, err := NewDispatcher(chans, opts)
	if err != nil {
		t.Fatal(err)
	}
	d.Start(nil, "")
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d, c, reg
}

// dispatch enqueues the signals' messages and waits until they are handled.
func dispatch(t testing.TB, d *Dispatcher, channels []string, sigs ...*detector.Signal) error {
	t.Helper()
	msgs := make([]*Message, len(sigs))
	for i, s := range sigs {
		m, err := FromSignal(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	if err := d.Enqueue(channels, msgs...); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return nil
}

func TestSuppressionOneMessagePerIncident(t *testing.T) {
	slack, pd := &recorder{}, &recorder{}
	d, clk, reg := newTestDispatcher(t, map[string]Channel{
		"slack": {Notifier: slack},                          // default 1h
		"pd":    {Notifier: pd, SuppressFor: 4 * time.Hour}, // its own window
	}, Options{})

	// 8 overlapping windows, 15 minutes apart, each finding alice again
	// (with a new signal id: new first event) — and bob once.
	for i := range 8 {
		sigs := []*detector.Signal{signal("r1", "alice", "StopLogging", i)}
		if i == 3 {
			sigs = append(sigs, signal("r1", "bob", "StopLogging", i))
		}
		if err := dispatch(t, d, []string{"slack", "pd"}, sigs...); err != nil {
			t.Fatal(err)
		}
		clk.Advance(7 * time.Minute)
	}
	// 30 signals of alice in one run: still the same incident.
	var batch []*detector.Signal
	for i := range 30 {
		batch = append(batch, signal("r1", "alice", fmt.Sprintf("Action%d", i), 100+i))
	}
	if err := dispatch(t, d, []string{"slack", "pd"}, batch...); err != nil {
		t.Fatal(err)
	}
	// A re-run of a window yields signals already counted: not counted again.
	if err := dispatch(t, d, []string{"slack"}, signal("r1", "alice", "StopLogging", 1)); err != nil {
		t.Fatal(err)
	}
	if got := labels(slack.sent); got != "r1/alice/0/0 r1/bob/3/0" {
		t.Fatalf("slack got %s, want alice's first and bob's", got)
	}
	// Another rule is another incident.
	if err := dispatch(t, d, []string{"slack"}, signal("r2", "alice", "x", 0)); err != nil {
		t.Fatal(err)
	}

	// After the hour, alice's next signal goes out with the count of the
	// 7 + 30 held back; PagerDuty's 4h window still holds.
	clk.Advance(time.Hour)
	if err := dispatch(t, d, []string{"slack", "pd"}, signal("r1", "alice", "DeleteTrail", 999)); err != nil {
		t.Fatal(err)
	}
	if got := labels(slack.sent); got != "r1/alice/0/0 r1/bob/3/0 r2/alice/0/0 r1/alice/999/37" {
		t.Errorf("slack got %s", got)
	}
	if got := labels(pd.sent); got != "r1/alice/0/0 r1/bob/3/0" {
		t.Errorf("pagerduty got %s", got)
	}
	if n := testutil.ToFloat64(d.metrics.total.WithLabelValues("slack", OutcomeSent)); n != 4 {
		t.Errorf("slack sent metric %v", n)
	}
	if n := testutil.ToFloat64(d.metrics.total.WithLabelValues("slack", OutcomeSuppressed)); n != 37 {
		t.Errorf("slack suppressed metric %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "offtrail_notifications_total"); err != nil || n != 4 {
		t.Errorf("series %d, %v", n, err)
	}
}

// labels is rule/identity/signal-number/suppressed for each message.
func labels(ms []*Message) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s/%s/%s/%d", m.RuleID, m.Identity, m.SignalID[strings.LastIndex(m.SignalID, "-")+1:], m.Suppressed))
	}
	return strings.Join(out, " ")
}

func TestSuppressionOff(t *testing.T) {
	r := &recorder{}
	d, _, _ := newTestDispatcher(t, map[string]Channel{"mail": {Notifier: r, SuppressFor: -1}}, Options{})
	for i := range 3 {
		if err := dispatch(t, d, []string{"mail"}, signal("r1", "alice", "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.sent) != 3 {
		t.Errorf("%d sent, want 3", len(r.sent))
	}
}

func TestRetry(t *testing.T) {
	transient := result{retry: true, err: errors.New("429 rate_limited")}
	for _, tc := range []struct {
		name   string
		script []result
		calls  int
		sleeps string
		fail   bool
	}{
		{"ok", nil, 1, "[]", false},
		{"transient twice", []result{transient, transient}, 3, "[1s 2s]", false},
		{"always transient: bounded", []result{transient, transient, transient, transient, transient, transient}, 5, "[1s 2s 4s 4s]", true},
		{"permanent", []result{{retry: false, err: errors.New("400 invalid_payload")}}, 1, "[]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{script: tc.script}
			d, clk, _ := newTestDispatcher(t, map[string]Channel{"c": {Notifier: r}}, Options{Retry: Retry{Attempts: 5, Initial: time.Second, Max: 4 * time.Second}})
			if err := dispatch(t, d, []string{"c"}, signal("r1", "alice", "x", 0)); err != nil {
				t.Fatal(err)
			}
			if r.calls != tc.calls {
				t.Errorf("%d calls, want %d", r.calls, tc.calls)
			}
			if got := fmt.Sprint(clk.sleeps); got != tc.sleeps {
				t.Errorf("slept %s, want %s", got, tc.sleeps)
			}
			if n := testutil.ToFloat64(d.metrics.total.WithLabelValues("c", OutcomeFailed)); (n == 1) != tc.fail {
				t.Errorf("failed metric %v", n)
			}
		})
	}
}

// A message that could not be sent does not open a suppression window: the
// incident's next signal is tried again.
func TestFailureDoesNotSuppress(t *testing.T) {
	r := &recorder{script: []result{{retry: false, err: errors.New("410 channel_is_archived")}}}
	d, _, _ := newTestDispatcher(t, map[string]Channel{"c": {Notifier: r}}, Options{})

	if err := dispatch(t, d, []string{"c"}, signal("r1", "alice", "x", 0)); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(d.metrics.total.WithLabelValues("c", OutcomeFailed)); n != 1 {
		t.Fatalf("failed metric %v", n)
	}
	if err := dispatch(t, d, []string{"c"}, signal("r1", "alice", "x", 1)); err != nil {
		t.Fatal(err)
	}
	if got := labels(r.sent); got != "r1/alice/1/0" {
		t.Errorf("sent %s", got)
	}
}

// Close delivers what is queued until its deadline, then cancels the
// delivery under way and counts the rest as dropped.
func TestCloseDrainsUntilDeadline(t *testing.T) {
	hang := &blocking{release: make(chan struct{})}
	defer close(hang.release)
	d, _, _ := newTestDispatcher(t, map[string]Channel{"c": {Notifier: hang, SuppressFor: -1}}, Options{Retry: Retry{Attempts: 1}})
	var msgs []*Message
	for i := range 3 {
		m, _ := FromSignal(signal("r1", "alice", "x", i), nil)
		msgs = append(msgs, m)
	}
	if err := d.Enqueue([]string{"c"}, msgs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.Close(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "3 notification(s)") {
		t.Errorf("Close = %v, want 3 not delivered and the deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s past its 200ms deadline", took)
	}
	if n := testutil.ToFloat64(d.metrics.dropped.WithLabelValues("c", DropShutdown)); n != 2 {
		t.Errorf("dropped at shutdown %v, want the 2 never attempted", n)
	}
	if n := testutil.ToFloat64(d.metrics.total.WithLabelValues("c", OutcomeFailed)); n != 1 {
		t.Errorf("failed %v, want the cancelled one", n)
	}
	if err := d.Enqueue([]string{"c"}, msgs[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close = %v", err)
	}
}

// blocking is a Notifier whose server never answers until released.
type blocking struct {
	release chan struct{}
	calls   atomic.Int64
}

func (b *blocking) Notify(ctx context.Context, _ ...*Message) (bool, error) {
	b.calls.Add(1)
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	case <-b.release:
		return false, nil
	}
}

// Enqueue never waits for a channel: a hung one fills its bounded queue
// (then drops, counted) while another channel keeps delivering; each
// attempt is bounded by the attempt timeout.
func TestHungChannelDoesNotBlock(t *testing.T) {
	hang := &blocking{release: make(chan struct{})}
	defer close(hang.release)
	ok := &recorder{}
	d, _, reg := newTestDispatcher(t, map[string]Channel{
		"hung": {Notifier: hang, SuppressFor: -1},
		"ok":   {Notifier: ok, SuppressFor: -1},
	}, Options{QueueSize: 2, AttemptTimeout: time.Hour})
	for i := range 10 {
		m, _ := FromSignal(signal("r1", "alice", "x", i), nil)
		start := time.Now()
		if err := d.Enqueue([]string{"hung", "ok"}, m); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Enqueue took %s with a hung channel", took)
		}
		// The healthy channel delivers each one while the other hangs.
		deadline := time.Now().Add(5 * time.Second)
		for ok.count() < i+1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := ok.count(); n != i+1 {
			t.Fatalf("the healthy channel got %d of %d", n, i+1)
		}
	}
	// One in flight, two queued, the other seven dropped (eight when the
	// worker had not yet picked up the first).
	dropped := testutil.ToFloat64(d.metrics.dropped.WithLabelValues("hung", DropQueueFull))
	depth := testutil.ToFloat64(d.metrics.depth.WithLabelValues("hung"))
	if dropped < 7 || dropped > 8 || depth != 2 {
		t.Errorf("hung channel: dropped %v depth %v, want 7-8 and 2", dropped, depth)
	}
	for _, name := range []string{"offtrail_notification_queue_depth", "offtrail_notifications_dropped_total", "offtrail_notifications_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
}

// A delivery attempt that gets no answer is cut at the attempt timeout and
// retried: the queue moves on.
func TestAttemptTimeout(t *testing.T) {
	hang := &blocking{release: make(chan struct{})}
	defer close(hang.release)
	d, clk, _ := newTestDispatcher(t, map[string]Channel{"c": {Notifier: hang}}, Options{
		AttemptTimeout: 20 * time.Millisecond, Retry: Retry{Attempts: 2, Initial: time.Second},
	})
	if err := dispatch(t, d, []string{"c"}, signal("r1", "alice", "x", 0)); err != nil {
		t.Fatal(err)
	}
	if n := hang.calls.Load(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
	if got := fmt.Sprint(clk.sleeps); got != "[1s]" {
		t.Errorf("slept %s", got)
	}
	if n := testutil.ToFloat64(d.metrics.attemptFailures.WithLabelValues("c")); n != 2 {
		t.Errorf("attempt failures %v", n)
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

func TestRoutingAndMinSeverity(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	d, _, _ := newTestDispatcher(t, map[string]Channel{
		"a": {Notifier: a},
		"b": {Notifier: b, MinSeverity: "critical"},
	}, Options{DefaultChannels: []string{"a", "b"}})

	if err := dispatch(t, d, nil, signal("r1", "alice", "x", 0)); err != nil {
		t.Fatal(err)
	}
	crit := signal("r2", "alice", "x", 0)
	crit.Severity = "critical"
	if err := dispatch(t, d, []string{"b", "b"}, crit); err != nil {
		t.Fatal(err)
	}
	if len(a.sent) != 1 || len(b.sent) != 1 || b.sent[0].RuleID != "r2" {
		t.Errorf("a %s, b %s", labels(a.sent), labels(b.sent))
	}
	if err := dispatch(t, d, []string{"a", "nope"}, crit); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown channel: %v", err)
	}
	if _, err := NewDispatcher(map[string]Channel{"a": {Notifier: a}}, Options{DefaultChannels: []string{"x"}}); err == nil {
		t.Error("unknown default channel accepted")
	}
	if _, err := NewDispatcher(map[string]Channel{"a": {Notifier: a, MinSeverity: "urgent"}}, Options{}); err == nil {
		t.Error("bad min_severity accepted")
	}
}

// Messages carry the channel's own suppressed count: one channel's count
// must not leak into another's copy of the message.
func TestChannelsGetOwnCopies(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	d, clk, _ := newTestDispatcher(t, map[string]Channel{"a": {Notifier: a}, "b": {Notifier: b, SuppressFor: -1}}, Options{})

	for i := range 3 {
		if err := dispatch(t, d, []string{"a", "b"}, signal("r1", "alice", "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Hour)
	if err := dispatch(t, d, []string{"a", "b"}, signal("r1", "alice", "x", 9)); err != nil {
		t.Fatal(err)
	}
	if got := labels(a.sent); got != "r1/alice/0/0 r1/alice/9/2" {
		t.Errorf("a: %s", got)
	}
	if got := labels(b.sent); got != "r1/alice/0/0 r1/alice/1/0 r1/alice/2/0 r1/alice/9/0" {
		t.Errorf("b: %s", got)
	}
}

// BenchmarkDispatch measures the dispatcher's own cost for a run of 100
// signals of 10 identities on two channels (90 suppressed), with a
// notifier that does nothing and suppression state in memory.
func BenchmarkDispatch(b *testing.B) {
	var sigs []*detector.Signal
	for i := range 100 {
		sigs = append(sigs, signal("r1", fmt.Sprintf("user%d", i%10), fmt.Sprintf("A%d", i), i))
	}
	nop := &recorder{}
	b.ReportAllocs()
	for b.Loop() {
		nop.sent = nop.sent[:0]
		d, err := NewDispatcher(map[string]Channel{"a": {Notifier: nop}, "b": {Notifier: nop}}, Options{Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		d.Start(nil, "")
		if err := dispatch(b, d, []string{"a", "b"}, sigs...); err != nil {
			b.Fatal(err)
		}
		_ = d.Close(context.Background())
	}
}
