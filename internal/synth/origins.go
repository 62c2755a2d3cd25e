package synth

import (
	"fmt"
	"strings"
	"time"
)

// Attacker profiles: where a planted attack comes from and with what
// client. Real intrusions rarely announce themselves with a foreign
// address and a pentest tool; stolen sessions are replayed from the
// victim's country with the victim's browser or CLI, and insiders use
// their own laptop at their desk. Planting every kind of attack under
// each profile keeps detectors that trust a familiar country and client
// honest.
const (
	// ProfileExternal: a foreign network and the attacker's own tool.
	ProfileExternal = "external"
	// ProfileReplayed: stolen credentials or a stolen session replayed
	// from the victim's country, from a network the victim never uses,
	// with the victim's own user agent, at the attacker's hours.
	ProfileReplayed = "replayed"
	// ProfileInsider: the victim's own device (office or home address,
	// their user agent) on a weekday in their working hours.
	ProfileInsider = "insider"
	// ProfileAutomation: an automation role's credentials.
	ProfileAutomation = "automation"
)

// humanProfiles rotate over the attacks on people.
var humanProfiles = [...]string{ProfileExternal, ProfileReplayed, ProfileInsider}

// humanProfile is the profile of the k-th attack (or Stratus campaign) on
// a person. Adding the seed rotates every kind through all three
// profiles over consecutive seeds, so a benchmark pooled over seeds sees
// each kind under each profile about equally.
func (g *gen) humanProfile(k int) string {
	return humanProfiles[(uint64(k)+g.cfg.Seed)%uint64(len(humanProfiles))]
}

// geoNovelty is how new an attack's address is, for expectRules. The
// zero value is the old assumption: a country nobody works from.
type geoNovelty uint8

const (
	geoForeign  geoNovelty = iota // a country nobody in the organisation works from
	geoNewCity                    // a familiar country, a network (likely a city) never used
	geoFamiliar                   // an address the victim uses, or its city
)

// origin is where one attack comes from.
type origin struct {
	profile string
	ip, ua  string
	country string
	geo     geoNovelty
}

// humanOrigin decides the origin of the k-th attack on a person. extIP,
// extCountry and toolUA are what an external attacker would use; the
// other profiles draw from their own stream, so the attack's own stream
// (and everything planted after it) does not depend on the profile.
func (g *gen) humanOrigin(k int, vic *identity, extIP, extCountry, toolUA string) origin {
	p := g.humanProfile(k)
	r := newRNG(g.cfg.Seed, 'P', uint64(k))
	switch p {
	case ProfileReplayed:
		return origin{profile: p, ip: g.replayIP(vic, r), ua: victimUA(vic, toolOf(toolUA)), country: vic.loc.country, geo: geoNewCity}
	case ProfileInsider:
		return origin{profile: p, ip: vic.ips[r.IntN(len(vic.ips))], ua: victimUA(vic, toolOf(toolUA)), country: vic.loc.country, geo: geoFamiliar}
	}
	return origin{profile: p, ip: extIP, ua: toolUA, country: extCountry, geo: geoForeign}
}

// attackStart is when an attack of about dur begins: the attacker's hours
// (attackerAt) unless the victim is the actor.
func (g *gen) attackStart(o origin, k int, vic *identity, attackerAt time.Time, dur time.Duration) time.Time {
	if o.profile != ProfileInsider {
		return attackerAt
	}
	return g.insiderStart(vic, dur, newRNG(g.cfg.Seed, 'P', uint64(k), 't'))
}

// phrase says the origin for a scenario description.
func (o origin) phrase(vic *identity, at time.Time) string {
	local := at.In(vic.tz).Format("15:04")
	switch o.profile {
	case ProfileReplayed:
		return fmt.Sprintf("replayed from the victim's country (%s) with their user agent, from a network they never use, at %s their time", o.country, local)
	case ProfileInsider:
		return fmt.Sprintf("by an insider, the victim on their own device (their address and user agent), at %s their time on a weekday in their working hours", local)
	}
	return fmt.Sprintf("from a foreign network (%s) with an attacker's tool, at %s their time", o.country, local)
}

// toolOf says which kind of client a user agent is.
func toolOf(ua string) tool {
	switch {
	case strings.HasPrefix(ua, "Mozilla/"):
		return toolConsole
	case strings.HasPrefix(ua, "aws-cli/"):
		return toolCLI
	}
	return toolSDK
}

// victimUA is the person's own client of that kind.
func victimUA(id *identity, t tool) string {
	if id.auto != nil {
		return id.auto.ua
	}
	switch t {
	case toolConsole:
		return id.consoleUA
	case toolCLI:
		return id.cliUA
	}
	return id.sdkUA
}

// slash16 is the "a.b." prefix of an IPv4 address.
func slash16(ip string) string {
	if i := strings.IndexByte(ip, '.'); i >= 0 {
		if j := strings.IndexByte(ip[i+1:], '.'); j >= 0 {
			return ip[:i+1+j+1]
		}
	}
	return ip
}

// replayIP is an address in the victim's country on a network the victim
// never uses: the attacker's home line or a rented server near the
// victim, which a country check cannot tell from the victim.
func (g *gen) replayIP(vic *identity, r *rngT) string {
	used := map[string]bool{}
	for _, ip := range append(append([]string(nil), vic.ips...), vpnExits...) {
		used[slash16(ip)] = true
	}
	var pool []string
	for _, p := range replayNetworks[vic.loc.country] {
		if !used[p] {
			pool = append(pool, p)
		}
	}
	return g.placed(vic.loc.country, func() string {
		return fmt.Sprintf("%s%d.%d", pool[r.IntN(len(pool))], 1+r.IntN(254), 1+r.IntN(254))
	})
}

// insiderStart is a time when an attack of dur fits in the victim's
// usual working hours (with a quarter of an hour to spare each side) on
// a working day among the last three days of the period, or failing
// that, on the latest working day that has room.
func (g *gen) insiderStart(vic *identity, dur time.Duration, r *rngT) time.Time {
	lo := g.end.Add(-72*time.Hour + 10*time.Minute)
	hi := g.end.Add(-10*time.Minute - dur)
	wins := g.workWindows(vic, dur, lo, hi, 5)
	if len(wins) == 0 {
		wins = g.workWindows(vic, dur, g.start, hi, g.days+1)
		if len(wins) == 0 { // a period too short for a working day
			return hi
		}
		wins = wins[:1]
	}
	w := wins[r.IntN(len(wins))]
	return w[0].Add(time.Duration(r.Int64N(int64(w[1].Sub(w[0])/time.Second)+1)) * time.Second)
}

// workWindows lists, latest first, the ranges of start times on the last
// n local working days for which [start, start+dur] lies in the person's
// working hours and start in [lo, hi].
func (g *gen) workWindows(vic *identity, dur time.Duration, lo, hi time.Time, n int) [][2]time.Time {
	var out [][2]time.Time
	e := g.end.In(vic.tz)
	for k := 0; k < n; k++ {
		d := time.Date(e.Year(), e.Month(), e.Day()-k, 0, 0, 0, 0, vic.tz)
		idx := g.dayIndex(d)
		if !weekday(d) || g.isHoliday(vic.loc, d.Year(), d.Month(), d.Day()) || (idx >= vic.vacStart && idx < vic.vacStart+vic.vacLen) {
			continue
		}
		// Wall-clock minutes, so a DST change that day moves nothing.
		a := time.Date(d.Year(), d.Month(), d.Day(), 0, int((vic.workStart+0.25)*60), 0, 0, vic.tz)
		b := time.Date(d.Year(), d.Month(), d.Day(), 0, int((vic.workStart+vic.workLen-0.25)*60), 0, 0, vic.tz).Add(-dur)
		if a.Before(lo) {
			a = lo
		}
		if b.After(hi) {
			b = hi
		}
		if b.After(a) {
			out = append(out, [2]time.Time{a, b})
		}
	}
	return out
}
