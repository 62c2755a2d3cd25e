package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offtrail/offtrail/rules"
)

// Reasons of offtrail_notifications_dropped_total.
const (
	DropQueueFull = "queue_full" // the channel's queue was full at Enqueue
	DropShutdown  = "shutdown"   // still queued when Close's deadline passed
)

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("notify: dispatcher closed")

// lifecycle is the dispatcher's start, pending count and stop.
type lifecycle struct {
	// mu is held shared by Enqueue and exclusively by Close, so nothing is
	// ever sent on a closed queue.
	mu      sync.RWMutex
	started bool
	closed  bool

	pmu     sync.Mutex
	pending int           // enqueued and not yet handled
	idle    chan struct{} // closed when pending drops to 0

	ctx     context.Context    // the workers' context, for channels Adopt adds
	cancel  context.CancelFunc // aborts deliveries after Close's deadline
	workers sync.WaitGroup
}

type metrics struct {
	total           *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	attemptFailures *prometheus.CounterVec
	depth           *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_notifications_total",
			Help: "Notifications by channel and outcome (sent, failed, suppressed, filtered, dropped).",
		}, []string{"channel", "outcome"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_notifications_dropped_total",
			Help: "Notifications never attempted, by channel and reason (queue_full, shutdown).",
		}, []string{"channel", "reason"}),
		attemptFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_notification_attempt_failures_total",
			Help: "Failed delivery attempts by channel, each retry counted.",
		}, []string{"channel"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "offtrail_notification_queue_depth",
			Help: "Notifications waiting in the channel's queue.",
		}, []string{"channel"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.total, m.dropped, m.attemptFailures, m.depth} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Start starts one delivery worker per channel. Suppression state is kept
// in st under index (the scheduler's state index), so that restarts and
// replicas share it; st nil keeps it in this process only.
func (d *Dispatcher) Start(st StateStore, index string) {
	l := &d.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return
	}
	l.started = true
	if st == nil {
		st = newMemState()
	}
	d.supp = newSuppressor(st, index)
	ctx, cancel := context.WithCancel(context.Background())
	l.ctx, l.cancel = ctx, cancel
	for _, c := range d.channels {
		l.workers.Go(func() { d.work(ctx, c) })
	}
}

// push queues m on c without blocking; the caller holds life.mu shared.
func (d *Dispatcher) push(c *channel, m *Message) error {
	if c.MinSeverity != "" && rules.SeverityScore(m.Severity) < rules.SeverityScore(c.MinSeverity) {
		d.metrics.total.WithLabelValues(c.name, OutcomeFiltered).Inc()
		return nil
	}
	l := &d.life
	l.add(1)
	select {
	case c.queue <- m:
		d.metrics.depth.WithLabelValues(c.name).Set(float64(len(c.queue)))
	default:
		l.add(-1)
		d.drop(c, m, DropQueueFull)
	}
	return nil
}

func (d *Dispatcher) drop(c *channel, m *Message, reason string) {
	d.metrics.total.WithLabelValues(c.name, OutcomeDropped).Inc()
	d.metrics.dropped.WithLabelValues(c.name, reason).Inc()
	d.log.Warn().Str("channel", c.name).Str("rule", m.RuleID).Str("signal", m.SignalID).Str("reason", reason).Msg("notification dropped")
}

// work delivers c's messages in order until its queue is closed; after
// ctx is cancelled the rest are counted as dropped.
func (d *Dispatcher) work(ctx context.Context, c *channel) {
	for m := range c.queue {
		d.metrics.depth.WithLabelValues(c.name).Set(float64(len(c.queue)))
		if ctx.Err() != nil {
			d.drop(c, m, DropShutdown)
		} else {
			d.handle(ctx, c, m)
		}
		d.life.add(-1)
	}
}

func (l *lifecycle) add(n int) {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	if l.pending == 0 && n > 0 {
		l.idle = make(chan struct{})
	}
	l.pending += n
	if l.pending == 0 && l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
}

// Flush waits until every message enqueued so far was handled (sent,
// suppressed, failed or dropped), or ctx is done. It needs Start.
func (d *Dispatcher) Flush(ctx context.Context) error {
	l := &d.life
	l.pmu.Lock()
	idle := l.idle
	l.pmu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notify: flush: %w", ctx.Err())
	}
}

// Close stops accepting messages and delivers what is queued until ctx is
// done; then in-flight deliveries are cancelled and the rest counted as
// dropped (reason shutdown). It returns when the workers have stopped.
func (d *Dispatcher) Close(ctx context.Context) error {
	l := &d.life
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for _, c := range d.channels {
		close(c.queue)
	}
	started := l.started
	l.mu.Unlock()
	if !started {
		for _, c := range d.channels {
			for m := range c.queue {
				d.drop(c, m, DropShutdown)
				l.add(-1)
			}
		}
		return nil
	}
	stopped := make(chan struct{})
	go func() { l.workers.Wait(); close(stopped) }()
	select {
	case <-stopped:
		l.cancel()
		return nil
	case <-ctx.Done():
	}
	l.mu.RLock()
	n := l.pendingNow()
	l.mu.RUnlock()
	l.cancel()
	<-stopped
	return fmt.Errorf("notify: %d notification(s) not delivered before the shutdown deadline: %w", n, ctx.Err())
}

func (l *lifecycle) pendingNow() int {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	return l.pending
}

// Adopt replaces the channels, default channels and link template with
// next's (a dispatcher built from a reloaded configuration, never
// started), keeping this one's queues' messages, metrics and suppression
// state. Messages already queued are delivered as configured when they
// were queued: each retired channel's worker drains its queue and stops.
// Enqueue after Adopt uses the new channels only. next must not be used
// afterwards.
func (d *Dispatcher) Adopt(next *Dispatcher) error {
	l := &d.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	old := d.channels
	d.channels, d.defaults, d.link = next.channels, next.defaults, next.link
	for name, c := range d.channels {
		if p, ok := old[name]; ok && !l.started {
			// Nobody drains an unstarted queue: carry its messages over.
			moveQueued(p, c)
		}
		d.metrics.depth.WithLabelValues(name).Set(float64(len(c.queue)))
	}
	for name, c := range old {
		close(c.queue)
		if !l.started {
			for m := range c.queue { // left only where no channel of that name remains
				d.drop(c, m, DropShutdown)
				l.add(-1)
			}
		}
		if _, kept := d.channels[name]; !kept {
			d.metrics.depth.DeleteLabelValues(name)
		}
	}
	if l.started {
		for _, c := range d.channels {
			l.workers.Go(func() { d.work(l.ctx, c) })
		}
	}
	return nil
}

// moveQueued moves what fits of from's queued messages onto to.
func moveQueued(from, to *channel) {
	for {
		select {
		case m := <-from.queue:
			select {
			case to.queue <- m:
			default:
				from.queue <- m // no room: left for the caller to drop
				return
			}
		default:
			return
		}
	}
}
