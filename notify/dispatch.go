package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/rules"
)

// Defaults of the dispatcher.
const (
	DefaultSuppressFor    = time.Hour
	DefaultAttempts       = 4
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	// DefaultQueueSize bounds each channel's queue: a day-long outage of a
	// channel keeps at most this many messages, the newest dropped.
	DefaultQueueSize = 1000
	// DefaultAttemptTimeout bounds one delivery attempt, so a server that
	// accepts the connection and never answers holds its channel that long.
	DefaultAttemptTimeout = 30 * time.Second
)

// ValidSeverity reports whether s is a severity a rule can have.
func ValidSeverity(s string) bool { return rules.SeverityScore(s) > 0 }

// Channel is one named destination.
type Channel struct {
	Notifier Notifier
	// SuppressFor is how long after a message of a group further ones are
	// held back (default DefaultSuppressFor; negative disables).
	SuppressFor time.Duration
	// MinSeverity drops messages below it ("" sends all).
	MinSeverity string
}

// Retry bounds the attempts for one message: Attempts tries in all, waiting
// Initial, 2*Initial, … capped at Max in between. No jitter: offtrail sends a
// handful of messages per run, not a thundering herd.
type Retry struct {
	Attempts int           `yaml:"attempts" json:"attempts"`
	Initial  time.Duration `yaml:"initial_backoff" json:"initial_backoff"`
	Max      time.Duration `yaml:"max_backoff" json:"max_backoff"`
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultAttempts
	}
	if r.Initial <= 0 {
		r.Initial = DefaultInitialBackoff
	}
	if r.Max <= 0 {
		r.Max = DefaultMaxBackoff
	}
	return r
}

// Options configure a Dispatcher. The zero value works.
type Options struct {
	Logger zerolog.Logger
	// LinkTemplate renders the Link of each message that has none (nil: no
	// link).
	LinkTemplate *template.Template
	// DefaultChannels receive the messages of rules that name none.
	DefaultChannels []string
	Retry           Retry
	// QueueSize bounds each channel's queue (default DefaultQueueSize).
	QueueSize int
	// AttemptTimeout bounds one delivery attempt (default
	// DefaultAttemptTimeout).
	AttemptTimeout time.Duration
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now and Sleep are the clock (default the real one); tests use a fake.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Dispatcher delivers messages to named channels in the background.
//
// Enqueue never blocks: each channel has a bounded queue and one worker
// that sends its messages one at a time, each retried on its own, so a
// slow or failing channel delays neither detection nor the other channels.
//
// Suppression: one incident is one message. Per channel, the first message
// of a group (Message.GroupKey) is sent; others are held back for
// SuppressFor, and the next message after that says how many were. The
// state is kept in the StateStore given to Start (the scheduler's state
// index), so restarts and replicas share it.
type Dispatcher struct {
	channels map[string]*channel
	defaults []string
	link     *template.Template
	retry    Retry
	timeout  time.Duration
	log      zerolog.Logger
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	metrics  *metrics
	supp     *suppressor
	life     lifecycle
}

type channel struct {
	Channel
	name  string
	queue chan *Message
}

// Outcomes counted in offtrail_notifications_total.
const (
	OutcomeSent       = "sent"
	OutcomeFailed     = "failed" // every attempt failed, or a permanent error
	OutcomeSuppressed = "suppressed"
	OutcomeFiltered   = "filtered" // below the channel's min_severity
	OutcomeDropped    = "dropped"  // never attempted: see the drop reasons
)

// NewDispatcher returns a dispatcher over the named channels. Messages
// enqueued before Start wait in the queues.
func NewDispatcher(channels map[string]Channel, opts Options) (*Dispatcher, error) {
	d := &Dispatcher{
		channels: make(map[string]*channel, len(channels)),
		defaults: opts.DefaultChannels,
		link:     opts.LinkTemplate,
		retry:    opts.Retry.withDefaults(),
		timeout:  opts.AttemptTimeout,
		log:      opts.Logger,
		now:      opts.Now,
		sleep:    opts.Sleep,
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.sleep == nil {
		d.sleep = sleepCtx
	}
	if d.timeout <= 0 {
		d.timeout = DefaultAttemptTimeout
	}
	size := opts.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	for name, c := range channels {
		if c.Notifier == nil {
			return nil, fmt.Errorf("channel %s: no notifier", name)
		}
		if c.MinSeverity != "" && !ValidSeverity(c.MinSeverity) {
			return nil, fmt.Errorf("channel %s: min_severity %q: want low, medium, high or critical", name, c.MinSeverity)
		}
		if c.SuppressFor == 0 {
			c.SuppressFor = DefaultSuppressFor
		}
		d.channels[name] = &channel{Channel: c, name: name, queue: make(chan *Message, size)}
	}
	if err := d.Check(d.defaults); err != nil {
		return nil, fmt.Errorf("default_channels: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	d.metrics = m
	for name := range d.channels {
		m.depth.WithLabelValues(name).Set(0)
	}
	return d, nil
}

// Check reports channel names that are not configured, so that a rule
// naming a missing channel is caught at load time, not at 3 a.m.
func (d *Dispatcher) Check(names []string) error {
	d.life.mu.RLock()
	defer d.life.mu.RUnlock()
	return d.check(names)
}

// check is Check with the lifecycle lock held (channels change on Adopt).
func (d *Dispatcher) check(names []string) error {
	var errs []error
	for _, n := range names {
		if _, ok := d.channels[n]; !ok {
			errs = append(errs, fmt.Errorf("unknown notification channel %q", n))
		}
	}
	return errors.Join(errs...)
}

// Channels returns the configured channel names, sorted.
func (d *Dispatcher) Channels() []string {
	d.life.mu.RLock()
	defer d.life.mu.RUnlock()
	out := make([]string, 0, len(d.channels))
	for n := range d.channels {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Enqueue hands msgs to the queues of the named channels (the default
// channels when none are named) and returns at once. A full queue drops
// the message (counted); the error reports unknown channels and a closed
// dispatcher only.
func (d *Dispatcher) Enqueue(channels []string, msgs ...*Message) error {
	l := &d.life
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	names := channels
	if len(names) == 0 {
		names = d.defaults
	}
	if err := d.check(names); err != nil {
		return err
	}
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	for _, m := range msgs {
		m = d.withLink(m)
		for _, n := range names {
			if err := d.push(d.channels[n], m); err != nil {
				return err
			}
		}
	}
	return nil
}

// withLink renders the link template into a copy of m. A template that
// fails on this message costs the link, not the message.
func (d *Dispatcher) withLink(m *Message) *Message {
	if d.link == nil || m.Link != "" {
		return m
	}
	var b bytes.Buffer
	if err := d.link.Execute(&b, m); err != nil {
		d.log.Warn().Err(err).Str("signal", m.SignalID).Msg("link_template failed; sending without a link")
		return m
	}
	out := *m
	out.Link = strings.TrimSpace(b.String())
	return &out
}

// handle delivers one dequeued message on c unless its group is suppressed.
func (d *Dispatcher) handle(ctx context.Context, c *channel, m *Message) {
	if c.SuppressFor < 0 {
		d.record(c, m, d.deliver(ctx, c, m))
		return
	}
	cl, err := d.supp.claim(ctx, c.name, c.SuppressFor, m, d.now())
	if err != nil {
		// Without the shared state a duplicate is possible; a lost alert
		// would be worse, so the message goes out.
		d.log.Warn().Err(err).Str("channel", c.name).Str("signal", m.SignalID).Msg("suppression state unavailable; sending anyway")
		d.record(c, m, d.deliver(ctx, c, m))
		return
	}
	if cl.dup {
		return
	}
	if !cl.send {
		d.metrics.total.WithLabelValues(c.name, OutcomeSuppressed).Inc()
		d.log.Debug().Str("channel", c.name).Str("rule", m.RuleID).Str("entity", m.Identity).
			Str("signal", m.SignalID).Msg("notification suppressed")
		return
	}
	out := *m // channels share messages; Suppressed is per channel
	out.Suppressed = cl.held
	err = d.deliver(ctx, c, &out)
	if err != nil {
		// Not marked as sent: the group's next message tries again.
		d.supp.unclaim(context.WithoutCancel(ctx), cl, d.now())
	}
	d.record(c, m, err)
}

func (d *Dispatcher) record(c *channel, m *Message, err error) {
	if err != nil {
		d.metrics.total.WithLabelValues(c.name, OutcomeFailed).Inc()
		d.log.Error().Err(err).Str("channel", c.name).Str("rule", m.RuleID).Str("signal", m.SignalID).Msg("notification failed")
		return
	}
	d.metrics.total.WithLabelValues(c.name, OutcomeSent).Inc()
}

// deliver sends one message, retrying transient failures with backoff.
func (d *Dispatcher) deliver(ctx context.Context, c *channel, m *Message) error {
	wait := d.retry.Initial
	for attempt := 1; ; attempt++ {
		retry, err := d.attempt(ctx, c, m)
		if err == nil {
			if attempt > 1 {
				d.log.Info().Str("channel", c.name).Str("signal", m.SignalID).Int("attempt", attempt).Msg("notification sent after retry")
			}
			return nil
		}
		d.metrics.attemptFailures.WithLabelValues(c.name).Inc()
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w (gave up: %w)", err, cerr)
		}
		if !retry || attempt >= d.retry.Attempts {
			return fmt.Errorf("after %d attempt(s): %w", attempt, err)
		}
		d.log.Debug().Err(err).Str("channel", c.name).Str("signal", m.SignalID).Int("attempt", attempt).Dur("backoff", wait).Msg("notification failed, retrying")
		if serr := d.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (gave up: %w)", err, serr)
		}
		wait = min(2*wait, d.retry.Max)
	}
}

// attempt is one try, bounded by the attempt timeout; a timeout is worth
// retrying (the server may be back).
func (d *Dispatcher) attempt(ctx context.Context, c *channel, m *Message) (bool, error) {
	actx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	retry, err := c.Notifier.Notify(actx, m)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return true, fmt.Errorf("no answer within %s: %w", d.timeout, err)
	}
	return retry, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
