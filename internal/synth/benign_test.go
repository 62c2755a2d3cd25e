package synth

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// benignRun generates a small organisation without attacks and hands
// every labelled event, with its scenario, to check.
func benignRun(t *testing.T, seed uint64, check func(g *gen, s *scenarioState, e *event)) (*gen, *Labels) {
	t.Helper()
	cfg := Config{Identities: 24, Days: 14, Seed: seed, End: testEnd.Add(7 * time.Hour), NoAttacks: true}
	g, err := newGen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := g.run(context.Background(), func(c *chunkCtx) error {
		for i := range c.events {
			if e := &c.events[i]; e.tag > 0 {
				check(g, g.scenarios[e.tag-1], e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, l
}

// owner is the identity behind a generated event.
func owner(g *gen, e *event) *identity {
	for _, id := range g.ids {
		for a := range accounts {
			if id.arn(a) == e.who.arn {
				return id
			}
		}
	}
	return nil
}

// Benign novelty must be planted whatever the seed and timezone layout,
// and each new habit must look the way its description says.
func TestBenignAcrossSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	always := []string{"benign-new-hire", "benign-service-adoption", "benign-oncall-incident", "benign-new-region", "benign-new-api",
		"benign-weekend-worker", "benign-travel", "benign-team-change"}
	checks := map[string]func(t *testing.T, g *gen, id *identity, e *event){
		"benign-weekend-worker": func(t *testing.T, g *gen, id *identity, e *event) {
			l := time.Unix(e.t, 0).In(id.tz)
			if weekday(l) || l.Hour() < 11 || l.Hour() > 16 {
				t.Errorf("weekend worker %s at %s", id.name, l)
			}
			if !slices.Contains(id.ips[1:], e.ip) && !slices.Contains(vpnExits, e.ip) {
				t.Errorf("weekend worker %s from %s, not home (%v)", id.name, e.ip, id.ips[1:])
			}
			if g.dayIndex(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, id.tz)) < g.days-7 {
				t.Errorf("weekend session of %s labelled before the last week", l)
			}
		},
		"benign-travel": func(t *testing.T, g *gen, id *identity, e *event) {
			if slices.Contains(id.ips, e.ip) {
				t.Errorf("traveller %s from their home address %s", id.name, e.ip)
			}
			if c := fakeLocate()(e.ip); c == id.loc.country || (c == "" && !slices.Contains(vpnExits, e.ip)) {
				t.Errorf("traveller %s from %s (%q), not abroad", id.name, e.ip, c)
			}
			if !id.trip.covers(time.Unix(e.t, 0).UTC().Date()) && !id.trip.covers(time.Unix(e.t-12*3600, 0).UTC().Date()) && !id.trip.covers(time.Unix(e.t+12*3600, 0).UTC().Date()) {
				t.Errorf("traveller %s at %s, outside the trip", id.name, time.Unix(e.t, 0).UTC())
			}
		},
		"benign-team-change": func(t *testing.T, g *gen, id *identity, e *event) {
			if e.act.name != "ConsoleLogin" && !id.change.table.has(e.act.name) {
				t.Errorf("%s after the team change calls %s, not in the new role's table", id.name, e.act.name)
			}
		},
		"benign-oncall-nights": func(t *testing.T, g *gen, id *identity, e *event) {
			if h := time.Unix(e.t, 0).In(id.tz).Hour(); id.oncallRank < 0 || h > 7 {
				t.Errorf("on-call night page by %s at %02d local", id.name, h)
			}
		},
	}
	nights := 0
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("seed"+string(rune('0'+seed)), func(t *testing.T) {
			g, l := benignRun(t, seed, func(g *gen, s *scenarioState, e *event) {
				if check := checks[s.ID]; check != nil {
					check(t, g, owner(g, e), e)
				}
			})
			var got []string
			for _, s := range l.Scenarios {
				got = append(got, s.ID)
				if s.EventCount == 0 || len(s.ExpectedRules) == 0 {
					t.Errorf("%s: %d events, rules %v", s.ID, s.EventCount, s.ExpectedRules)
				}
			}
			for _, id := range always {
				if !slices.Contains(got, id) {
					t.Errorf("benign scenario %s missing: %v", id, got)
				}
			}
			if slices.Contains(got, "benign-oncall-nights") {
				nights++
			}
			if len(g.findAll(func(id *identity) bool { return id.weekendTag > 0 })) < 2 {
				t.Error("fewer than two weekend workers")
			}
			if tr := g.find(func(id *identity) bool { return id.trip != nil }); tr == nil || len(tr.trip.dates) < 3 || len(tr.trip.dates) > 4 {
				t.Errorf("trip: %+v", tr)
			}
			if s := strings.Join(got, " "); strings.Count(s, "benign-") != len(got) {
				t.Errorf("attacks planted with NoAttacks: %v", got)
			}
		})
	}
	if nights == 0 {
		t.Error("no on-call night page in three seeds")
	}
}
