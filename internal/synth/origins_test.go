package synth

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeLocate places the generator's own prefixes, as a GeoIP database
// would, so tests can check countries without one.
func fakeLocate() func(string) string {
	by := map[string]string{}
	for _, l := range locations {
		by[slash16(l.office)] = l.country
		for _, p := range l.home {
			by[p] = l.country
		}
	}
	for c, ps := range replayNetworks {
		for _, p := range ps {
			by[p] = c
		}
	}
	for _, o := range attackerOrigins {
		by[o.prefix] = o.country
	}
	for _, p := range azureRunnerPrefixes {
		by[p] = "US"
	}
	return func(ip string) string { return by[slash16(ip)] }
}

// planted is one seed's organisation with its attacks planned (no events
// generated: attack records are all known up front).
type planted struct {
	g       *gen
	byTag   map[int][]event
	victims map[int]*identity
}

func plant(t *testing.T, seed uint64, days int) *planted {
	t.Helper()
	g, err := newGen(Config{Identities: 30, Days: days, Seed: seed, End: testEnd, Locate: fakeLocate()})
	if err != nil {
		t.Fatal(err)
	}
	p := &planted{g: g, byTag: map[int][]event{}, victims: map[int]*identity{}}
	for _, e := range g.attacks {
		p.byTag[int(e.tag)] = append(p.byTag[int(e.tag)], e)
	}
	arns := map[string]*identity{}
	for _, id := range g.ids {
		for a := range accounts {
			if s := id.arn(a); s != "" {
				arns[s] = id
			}
		}
	}
	for i, s := range g.scenarios {
		for _, arn := range s.Identities {
			if id := arns[arn]; id != nil {
				p.victims[i+1] = id
				break
			}
		}
	}
	return p
}

// rec is what the checks need of a planted record.
type rec struct {
	t      int64
	ip, ua string
	arn    string
}

func recOf(e event) rec {
	if e.raw == nil {
		return rec{t: e.t, ip: e.ip, ua: e.ua, arn: e.who.arn}
	}
	var m map[string]any
	if err := json.Unmarshal(e.raw, &m); err != nil {
		panic(err)
	}
	ui, _ := m["userIdentity"].(map[string]any)
	return rec{t: e.t, ip: str(m, "sourceIPAddress"), ua: str(m, "userAgent"), arn: str(ui, "arn")}
}

func isAddr(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

func ownUA(id *identity, ua string) bool {
	for _, own := range []string{id.consoleUA, id.cliUA, id.sdkUA} {
		if strings.HasPrefix(ua, strings.TrimSuffix(own, "command/")) {
			return true
		}
	}
	return false
}

// kindOf names an attack's kind for the rotation check: the scenario id
// for hand-written attacks, the campaign for Stratus techniques.
func kindOf(s *scenarioState) string {
	if s.Technique != "" {
		return s.Campaign
	}
	return s.ID
}

func TestAttackProfiles(t *testing.T) {
	byKind := map[string]map[string]int{}
	seen := map[string]int{}
	for seed := uint64(1); seed <= 5; seed++ {
		p := plant(t, seed, 8)
		for i, s := range p.g.scenarios {
			if s.Kind != "attack" {
				continue
			}
			if s.Profile == "" {
				t.Errorf("seed %d: %s has no profile", seed, s.ID)
				continue
			}
			if !strings.Contains(s.Description, s.Profile) && s.Profile != ProfileExternal && s.Profile != ProfileAutomation {
				t.Errorf("seed %d: %s: description %q does not say %s", seed, s.ID, s.Description, s.Profile)
			}
			seen[s.Profile]++
			if byKind[kindOf(s)] == nil {
				byKind[kindOf(s)] = map[string]int{}
			}
			byKind[kindOf(s)][s.Profile]++
			vic := p.victims[i+1]
			if vic == nil {
				t.Fatalf("seed %d: %s: no victim among %v", seed, s.ID, s.Identities)
			}
			if (vic.human != nil) == (s.Profile == ProfileAutomation) {
				t.Errorf("seed %d: %s: profile %s for a %s victim", seed, s.ID, s.Profile, vic.info.Kind)
			}
			for _, e := range p.byTag[i+1] {
				checkOrigin(t, seed, s, vic, recOf(e))
			}
		}
	}
	for _, pr := range []string{ProfileExternal, ProfileReplayed, ProfileInsider, ProfileAutomation} {
		if seen[pr] == 0 {
			t.Errorf("profile %s never planted over seeds 1–5", pr)
		}
	}
	// Every kind of attack on a person comes under every human profile.
	for kind, n := range byKind {
		if n[ProfileAutomation] > 0 {
			continue
		}
		for _, pr := range humanProfiles {
			if n[pr] == 0 {
				t.Errorf("%s never planted as %s over seeds 1–5: %v", kind, pr, n)
			}
		}
	}
}

// checkOrigin checks one record against its scenario's profile.
func checkOrigin(t *testing.T, seed uint64, s *scenarioState, vic *identity, r rec) {
	t.Helper()
	locate := fakeLocate()
	fromVictim := slices.Contains(vic.info.ARNs, r.arn) || r.arn == vic.info.ARN
	switch s.Profile {
	case ProfileReplayed:
		if isAddr(r.ip) {
			if c := locate(r.ip); c != vic.loc.country {
				t.Errorf("seed %d: %s: replayed from %s (%s), victim in %s", seed, s.ID, r.ip, c, vic.loc.country)
			}
			for _, own := range append(append([]string(nil), vic.ips...), vpnExits...) {
				if slash16(own) == slash16(r.ip) {
					t.Errorf("seed %d: %s: replayed from %s, in the victim's own %s", seed, s.ID, r.ip, own)
				}
			}
		}
		if fromVictim && !ownUA(vic, r.ua) {
			t.Errorf("seed %d: %s: replayed with user agent %q, not the victim's", seed, s.ID, r.ua)
		}
	case ProfileInsider:
		if isAddr(r.ip) && !slices.Contains(vic.ips, r.ip) {
			t.Errorf("seed %d: %s: insider from %s, not one of %v", seed, s.ID, r.ip, vic.ips)
		}
		if fromVictim && !ownUA(vic, r.ua) {
			t.Errorf("seed %d: %s: insider with user agent %q, not the victim's", seed, s.ID, r.ua)
		}
		l := time.Unix(r.t, 0).In(vic.tz)
		h := float64(l.Hour()) + float64(l.Minute())/60 + float64(l.Second())/3600
		if !weekday(l) || h < vic.workStart || h > vic.workStart+vic.workLen {
			t.Errorf("seed %d: %s: insider at %s, outside working hours %.2f+%.2f", seed, s.ID, l, vic.workStart, vic.workLen)
		}
	case ProfileExternal:
		if isAddr(r.ip) && slices.Contains([]string{"US", "DE", "IN", "GB"}, locate(r.ip)) {
			t.Errorf("seed %d: %s: external attack from %s, an office country", seed, s.ID, r.ip)
		}
	}
	if s.Profile != ProfileExternal && s.Profile != ProfileAutomation {
		for _, rule := range s.ExpectedRules {
			if rule == ruleRareMethodCountry || rule == ruleNewCountry {
				t.Errorf("seed %d: %s: %s attack expects %s", seed, s.ID, s.Profile, rule)
			}
		}
	}
}

// The quiet role makes a handful of calls a night, and its abuse comes
// from an AWS address it never uses, with its own user agent.
func TestQuietRole(t *testing.T) {
	p := plant(t, 3, 30)
	g := p.g
	id := g.find(func(id *identity) bool { return id.auto != nil && id.auto.role == quietRole })
	if id == nil {
		t.Fatal("no quiet role")
	}
	n := 0
	for k := 0; k < g.nChunks; k++ {
		lo := g.chunkFirst + int64(k)*86400
		for _, b := range autoPlanners[id.auto.kind](g, id, lo, newRNG(g.cfg.Seed, 'a', uint64(id.idx), uint64(lo))) {
			if b.t >= g.start.Unix() && b.t < g.end.Unix() {
				n += b.n
			}
		}
	}
	if n == 0 || n >= 200 {
		t.Errorf("quiet role: %d events in 30 days, want 1–199", n)
	}
	i := slices.IndexFunc(g.scenarios, func(s *scenarioState) bool { return s.ID == "attack-quiet-role-abuse" })
	if i < 0 {
		t.Fatal("attack-quiet-role-abuse not planted")
	}
	s := g.scenarios[i]
	if s.Profile != ProfileAutomation || s.EventCount == 0 {
		t.Fatalf("attack-quiet-role-abuse: profile %q, %d events", s.Profile, s.EventCount)
	}
	for _, e := range p.byTag[i+1] {
		if slash16(e.ip) == slash16(id.fixedIP) || e.ua != id.auto.ua {
			t.Errorf("quiet role abused from %s (usual %s) with %q", e.ip, id.fixedIP, e.ua)
		}
		if h := time.Unix(e.t, 0).UTC().Hour(); h < 13 || h > 17 {
			t.Errorf("quiet role abused at %02d UTC, want mid-afternoon", h)
		}
		if id.table.has(e.act.name) {
			t.Errorf("quiet role abused with %s, which it calls every night", e.act.name)
		}
	}
}
