package schedule

import (
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/elastic"
	ostore "github.com/offtrail/offtrail/detector/store/opensearch"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/rules"
)

// cutProxy is a loopback TCP proxy in front of a real engine that can
// drop every connection and refuse new ones: a network outage, for real.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut drops every open connection and refuses new ones until restore.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// An engine that goes away mid-run (every connection dropped, new ones
// refused) makes rules fail after retries without a crash and without
// moving their checkpoints; when it returns, the missed windows are caught
// up and the signals are exactly those of an undisturbed run on the same
// engine — none lost, none written twice.
func TestEngineOutageThroughProxy(t *testing.T) {
	const steps = 6
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) {
			e := open(t)
			base := testRules(t)
			start := ts("2024-03-05T09:10:00Z")
			run := func(st store.Backend, env scenarioEnv, between func(i int, m *Manager)) []string {
				clock := newClock(start)
				m := newTestManager(t, st, newDetector(t, st), clock, "replica", func(o *Options) {
					o.SignalsIndex, o.StateIndex = env.signals, env.state
				})
				var rs []*rules.Rule
				for _, r := range base {
					c := cloneRule(r, r.ID)
					c.Source.Index = []string{env.source}
					rs = append(rs, c)
				}
				m.Reload(rs)
				for i := 0; i < steps; i++ {
					if between != nil {
						between(i, m)
					}
					_ = m.SyncLeases(t.Context()) // fails during the outage: logged by the manager
					for _, r := range rs {
						_ = m.RunRule(t.Context(), r.ID) // failures are the subject; health tells them
					}
					clock.Advance(time.Hour)
				}
				return signalIDs(t, e, env.signals)
			}
			load := func() scenarioEnv {
				env := engineEnv(t, e)
				storetest.Load(t, e, env.source, storetest.FixtureN(1, 3000))
				if err := e.Refresh(t.Context(), env.source); err != nil {
					t.Fatal(err)
				}
				return env
			}

			refEnv := load()
			want := run(e, refEnv, nil)
			if len(want) == 0 {
				t.Fatal("the undisturbed run found no signals; the scenario tests nothing")
			}

			env := load()
			u, err := url.Parse(e.url)
			if err != nil {
				t.Fatal(err)
			}
			proxy := newCutProxy(t, u.Host)
			viaProxy := openVia(t, name, proxy.url())
			var before map[string]time.Time
			got := run(viaProxy, env, func(i int, m *Manager) {
				switch i {
				case 2:
					before = map[string]time.Time{}
					for _, h := range m.Health() {
						before[h.Rule] = h.Checkpoint
					}
					proxy.cut()
				case 4:
					// A replica that cannot reach the store cannot renew its
					// leases: it must stop evaluating (or fail), and no
					// checkpoint may move.
					for _, h := range m.Health() {
						if h.Leased && h.Health != HealthFailing {
							t.Errorf("during the outage, a rule still leased and healthy: %+v", h)
						}
						if !h.Checkpoint.Equal(before[h.Rule]) {
							t.Errorf("%s: checkpoint moved during the outage: %s, was %s", h.Rule, h.Checkpoint, before[h.Rule])
						}
					}
					proxy.restore()
				}
			})
			if !slices.Equal(got, want) {
				t.Fatalf("signals after an outage and catch-up differ from an undisturbed run:\n got %d %v\nwant %d %v", len(got), got, len(want), want)
			}
			t.Logf("%s: %d signals, identical after a two-hour outage", name, len(got))
		})
	}
}

// openVia opens the named engine's backend at u (the proxy).
func openVia(t *testing.T, engine, u string) store.Backend {
	t.Helper()
	var (
		st  store.Backend
		err error
	)
	switch engine {
	case "elasticsearch":
		st, err = elastic.New(elasticsearch.Config{Addresses: []string{u}, MaxRetries: 1})
	default:
		st, err = ostore.New(opensearch.Config{Addresses: []string{u}, MaxRetries: 1})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
