package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
)

// Defaults of the dispatcher.
const (
	DefaultSuppressFor    = time.Hour
	DefaultAttempts       = 4
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 30 * time.Second
)

// Severities in increasing order, for a channel's minimum severity.
var severityRank = map[string]int{"low": 1, "medium": 2, "high": 3, "critical": 4}

// ValidSeverity reports whether s is a severity a rule can have.
func ValidSeverity(s string) bool { return severityRank[s] > 0 }

// Channel is one named destination.
type Channel struct {
	Notifier Notifier
	// SuppressFor is how long after a message for a rule and entity further
	// ones are held back (default DefaultSuppressFor; negative disables).
	SuppressFor time.Duration
	// MinSeverity drops signals below it ("" sends all).
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
	// LinkTemplate renders each message's Link (nil: no link).
	LinkTemplate *template.Template
	// DefaultChannels receive the signals of rules that name none.
	DefaultChannels []string
	Retry           Retry
	// Registerer receives offtrail_notifications_total; nil leaves it
	// unregistered.
	Registerer prometheus.Registerer
	// Now and Sleep are the clock (default the real one); tests use a fake.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Dispatcher sends signals to the channels their rule names.
//
// Suppression: one incident is one message. Per channel, the first signal of
// a rule for an entity (the rule id and the entity label) is sent; others for
// the same pair are held back for SuppressFor, and the next message after
// that says how many were. The state is in memory: after a restart, or with
// several replicas, each process may send the first message once.
type Dispatcher struct {
	channels map[string]*channel
	defaults []string
	link     *template.Template
	retry    Retry
	log      zerolog.Logger
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	total    *prometheus.CounterVec
}

type channel struct {
	Channel
	name string

	mu    sync.Mutex // serialises sends and guards state
	state map[string]*incident
}

// incident is the suppression state of one rule and entity on one channel.
type incident struct {
	until      time.Time       // messages before this are held back
	suppressed int             // held back since the last message
	seen       map[string]bool // signal ids counted, so re-runs count once
}

// Outcomes counted in offtrail_notifications_total.
const (
	OutcomeSent       = "sent"
	OutcomeFailed     = "failed"
	OutcomeSuppressed = "suppressed"
	OutcomeFiltered   = "filtered" // below the channel's min_severity
)

// NewDispatcher returns a dispatcher over the named channels.
func NewDispatcher(channels map[string]Channel, opts Options) (*Dispatcher, error) {
	d := &Dispatcher{
		channels: make(map[string]*channel, len(channels)),
		defaults: opts.DefaultChannels,
		link:     opts.LinkTemplate,
		retry:    opts.Retry.withDefaults(),
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
		d.channels[name] = &channel{Channel: c, name: name, state: map[string]*incident{}}
	}
	if err := d.Check(d.defaults); err != nil {
		return nil, fmt.Errorf("default_channels: %w", err)
	}
	d.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "offtrail_notifications_total",
		Help: "Notifications by channel and outcome (sent, failed, suppressed, filtered).",
	}, []string{"channel", "outcome"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(d.total); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return d, nil
}

// Check reports channel names that are not configured, so that a rule
// naming a missing channel is caught at load time, not at 3 a.m.
func (d *Dispatcher) Check(names []string) error {
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
	out := make([]string, 0, len(d.channels))
	for n := range d.channels {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Dispatch sends sigs to ruleChannels (the dispatcher's default channels
// when empty). Channels are served concurrently, so a slow one does not hold
// up the others; within a channel messages go one at a time, each retried on
// its own so a retry never repeats a message that already went out. It
// returns when every channel is done, with the errors of those that failed.
func (d *Dispatcher) Dispatch(ctx context.Context, ruleChannels []string, sigs []*detector.Signal) error {
	if len(sigs) == 0 {
		return nil
	}
	names := ruleChannels
	if len(names) == 0 {
		names = d.defaults
	}
	if err := d.Check(names); err != nil {
		return err
	}
	msgs := make([]*Message, 0, len(sigs))
	var errs []error
	for _, s := range sigs {
		m, err := FromSignal(s, d.link)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msgs = append(msgs, m)
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		c := d.channels[n]
		wg.Go(func() {
			if err := d.send(ctx, c, msgs); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("channel %s: %w", c.name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func incidentKey(m *Message) string { return m.RuleID + "\x00" + m.Identity }

func (d *Dispatcher) send(ctx context.Context, c *channel, msgs []*Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := d.now()
	c.sweep(now)
	var errs []error
	for _, m := range msgs {
		if c.MinSeverity != "" && severityRank[m.Severity] < severityRank[c.MinSeverity] {
			d.total.WithLabelValues(c.name, OutcomeFiltered).Inc()
			continue
		}
		key := incidentKey(m)
		inc := c.state[key]
		if c.SuppressFor > 0 && inc != nil && now.Before(inc.until) {
			if !inc.seen[m.SignalID] {
				inc.seen[m.SignalID] = true
				inc.suppressed++
				d.total.WithLabelValues(c.name, OutcomeSuppressed).Inc()
				d.log.Debug().Str("channel", c.name).Str("rule", m.RuleID).Str("entity", m.Identity).
					Str("signal", m.SignalID).Msg("notification suppressed")
			}
			continue
		}
		out := *m // channels share msgs; Suppressed is per channel
		if inc != nil {
			out.Suppressed = inc.suppressed
		}
		if err := d.deliver(ctx, c, &out); err != nil {
			d.total.WithLabelValues(c.name, OutcomeFailed).Inc()
			errs = append(errs, fmt.Errorf("signal %s: %w", m.SignalID, err))
			if ctx.Err() != nil {
				break
			}
			// Not marked as sent: the incident's next signal tries again.
			continue
		}
		d.total.WithLabelValues(c.name, OutcomeSent).Inc()
		if c.SuppressFor > 0 {
			c.state[key] = &incident{until: now.Add(c.SuppressFor), seen: map[string]bool{m.SignalID: true}}
		}
	}
	return errors.Join(errs...)
}

// deliver sends one message, retrying transient failures with backoff.
func (d *Dispatcher) deliver(ctx context.Context, c *channel, m *Message) error {
	wait := d.retry.Initial
	for attempt := 1; ; attempt++ {
		retry, err := c.Notifier.Notify(ctx, m)
		if err == nil {
			if attempt > 1 {
				d.log.Info().Str("channel", c.name).Str("signal", m.SignalID).Int("attempt", attempt).Msg("notification sent after retry")
			}
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w (gave up: %w)", err, cerr)
		}
		if !retry || attempt >= d.retry.Attempts {
			d.log.Warn().Err(err).Str("channel", c.name).Str("signal", m.SignalID).Int("attempts", attempt).Bool("retryable", retry).Msg("notification failed")
			return err
		}
		d.log.Debug().Err(err).Str("channel", c.name).Str("signal", m.SignalID).Int("attempt", attempt).Dur("backoff", wait).Msg("notification failed, retrying")
		if serr := d.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (gave up: %w)", err, serr)
		}
		wait = min(2*wait, d.retry.Max)
	}
}

// sweep forgets incidents whose window is over. One that held messages back
// is kept for a day longer, so its count can go out with the next message.
func (c *channel) sweep(now time.Time) {
	for k, inc := range c.state {
		keep := inc.until
		if inc.suppressed > 0 {
			keep = keep.Add(24 * time.Hour)
		}
		if !now.Before(keep) {
			delete(c.state, k)
		}
	}
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
