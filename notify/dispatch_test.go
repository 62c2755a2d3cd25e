package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
	return d, c, reg
}

func TestSuppressionOneMessagePerIncident(t *testing.T) {
	slack, pd := &recorder{}, &recorder{}
	d, clk, reg := newTestDispatcher(t, map[string]Channel{
		"slack": {Notifier: slack},                          // default 1h
		"pd":    {Notifier: pd, SuppressFor: 4 * time.Hour}, // its own window
	}, Options{})
	ctx := context.Background()

	// 8 overlapping windows, 15 minutes apart, each finding alice again
	// (with a new signal id: new first event) — and bob once.
	for i := range 8 {
		sigs := []*detector.Signal{signal("r1", "alice", "StopLogging", i)}
		if i == 3 {
			sigs = append(sigs, signal("r1", "bob", "StopLogging", i))
		}
		if err := d.Dispatch(ctx, []string{"slack", "pd"}, sigs); err != nil {
			t.Fatal(err)
		}
		clk.Advance(7 * time.Minute)
	}
	// 30 signals of alice in one run: still the same incident.
	var batch []*detector.Signal
	for i := range 30 {
		batch = append(batch, signal("r1", "alice", fmt.Sprintf("Action%d", i), 100+i))
	}
	if err := d.Dispatch(ctx, []string{"slack", "pd"}, batch); err != nil {
		t.Fatal(err)
	}
	// A re-run of a window yields signals already counted: not counted again.
	if err := d.Dispatch(ctx, []string{"slack"}, []*detector.Signal{signal("r1", "alice", "StopLogging", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := labels(slack.sent); got != "r1/alice/0/0 r1/bob/3/0" {
		t.Fatalf("slack got %s, want alice's first and bob's", got)
	}
	// Another rule is another incident.
	if err := d.Dispatch(ctx, []string{"slack"}, []*detector.Signal{signal("r2", "alice", "x", 0)}); err != nil {
		t.Fatal(err)
	}

	// After the hour, alice's next signal goes out with the count of the
	// 7 + 30 held back; PagerDuty's 4h window still holds.
	clk.Advance(time.Hour)
	if err := d.Dispatch(ctx, []string{"slack", "pd"}, []*detector.Signal{signal("r1", "alice", "DeleteTrail", 999)}); err != nil {
		t.Fatal(err)
	}
	if got := labels(slack.sent); got != "r1/alice/0/0 r1/bob/3/0 r2/alice/0/0 r1/alice/999/37" {
		t.Errorf("slack got %s", got)
	}
	if got := labels(pd.sent); got != "r1/alice/0/0 r1/bob/3/0" {
		t.Errorf("pagerduty got %s", got)
	}
	if n := testutil.ToFloat64(d.total.WithLabelValues("slack", OutcomeSent)); n != 4 {
		t.Errorf("slack sent metric %v", n)
	}
	if n := testutil.ToFloat64(d.total.WithLabelValues("slack", OutcomeSuppressed)); n != 37 {
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
		if err := d.Dispatch(context.Background(), []string{"mail"}, []*detector.Signal{signal("r1", "alice", "x", i)}); err != nil {
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
			err := d.Dispatch(context.Background(), []string{"c"}, []*detector.Signal{signal("r1", "alice", "x", 0)})
			if (err != nil) != tc.fail {
				t.Errorf("err = %v, want failure %v", err, tc.fail)
			}
			if r.calls != tc.calls {
				t.Errorf("%d calls, want %d", r.calls, tc.calls)
			}
			if got := fmt.Sprint(clk.sleeps); got != tc.sleeps {
				t.Errorf("slept %s, want %s", got, tc.sleeps)
			}
			if n := testutil.ToFloat64(d.total.WithLabelValues("c", OutcomeFailed)); (n == 1) != tc.fail {
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
	ctx := context.Background()
	if err := d.Dispatch(ctx, []string{"c"}, []*detector.Signal{signal("r1", "alice", "x", 0)}); err == nil {
		t.Fatal("no error")
	}
	if err := d.Dispatch(ctx, []string{"c"}, []*detector.Signal{signal("r1", "alice", "x", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := labels(r.sent); got != "r1/alice/1/0" {
		t.Errorf("sent %s", got)
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	r := &recorder{script: []result{{retry: true, err: errors.New("503")}, {retry: true, err: errors.New("503")}}}
	d, _, _ := newTestDispatcher(t, map[string]Channel{"c": {Notifier: r}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.Dispatch(ctx, []string{"c"}, []*detector.Signal{signal("r1", "alice", "x", 0), signal("r1", "bob", "x", 0)})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if r.calls != 1 {
		t.Errorf("%d calls after cancel, want 1", r.calls)
	}
}

func TestRoutingAndMinSeverity(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	d, _, _ := newTestDispatcher(t, map[string]Channel{
		"a": {Notifier: a},
		"b": {Notifier: b, MinSeverity: "critical"},
	}, Options{DefaultChannels: []string{"a", "b"}})
	ctx := context.Background()
	if err := d.Dispatch(ctx, nil, []*detector.Signal{signal("r1", "alice", "x", 0)}); err != nil {
		t.Fatal(err)
	}
	crit := signal("r2", "alice", "x", 0)
	crit.Severity = "critical"
	if err := d.Dispatch(ctx, []string{"b", "b"}, []*detector.Signal{crit}); err != nil {
		t.Fatal(err)
	}
	if len(a.sent) != 1 || len(b.sent) != 1 || b.sent[0].RuleID != "r2" {
		t.Errorf("a %s, b %s", labels(a.sent), labels(b.sent))
	}
	if err := d.Dispatch(ctx, []string{"a", "nope"}, []*detector.Signal{crit}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
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
	ctx := context.Background()
	for i := range 3 {
		if err := d.Dispatch(ctx, []string{"a", "b"}, []*detector.Signal{signal("r1", "alice", "x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Hour)
	if err := d.Dispatch(ctx, []string{"a", "b"}, []*detector.Signal{signal("r1", "alice", "x", 9)}); err != nil {
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
// notifier that does nothing.
func BenchmarkDispatch(b *testing.B) {
	var sigs []*detector.Signal
	for i := range 100 {
		sigs = append(sigs, signal("r1", fmt.Sprintf("user%d", i%10), fmt.Sprintf("A%d", i), i))
	}
	nop := &recorder{}
	d, err := NewDispatcher(map[string]Channel{"a": {Notifier: nop}, "b": {Notifier: nop}}, Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		nop.sent = nop.sent[:0]
		for _, c := range d.channels {
			clear(c.state)
		}
		if err := d.Dispatch(ctx, []string{"a", "b"}, sigs); err != nil {
			b.Fatal(err)
		}
	}
}
