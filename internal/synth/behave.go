package synth

import (
	"math"
	"time"
)

// event is one CloudTrail record before rendering. Everything random about
// it is decided when it is made (pick seeds the template choices), so it
// renders the same whichever order records are written in.
type event struct {
	t      int64
	seq    uint32
	acct   uint8
	region uint8
	tag    uint16 // 1 + index of the labelled scenario it belongs to, 0 if none
	flags  uint8
	pick   uint64
	id     uuid
	act    *action
	who    *session
	ip     string
	ua     string
	err    *errorSpec
	params []byte // overrides the action's template when set
	resp   []byte
	raw    []byte // a complete record (replayed attacks)
}

const (
	flagCLI       = 1 << iota // append the aws-cli command to ua
	flagMFA                   // ConsoleLogin with MFA
	flagLoginFail             // ConsoleLogin that failed
)

// session is a rendered userIdentity for one identity, account and day.
type session struct {
	ui  []byte
	arn string
}

// burst is a run of calls one identity makes in one sitting.
type burst struct {
	t       int64
	n       int
	gap     float64 // mean seconds between calls
	seed    uint64
	acct    int
	region  int // -1: each call picks from the identity's regions
	tool    tool
	ip      string
	table   *actTable
	tag     int
	login   bool // starts with a ConsoleLogin
	sessDay int64
	sessT   int64 // session creation time
}

// chunkCtx collects one UTC day's events.
type chunkCtx struct {
	g      *gen
	lo, hi int64
	events []event
	sess   map[sessKey]*session
	seq    uint32
}

type sessKey struct {
	idx     int
	day     int64
	acct    int
	console bool
}

func (c *chunkCtx) add(e event) {
	if e.t < c.lo || e.t >= c.hi {
		return
	}
	c.seq++
	e.seq = c.seq
	c.events = append(c.events, e)
}

// session returns (and caches) the identity's session for a day.
func (c *chunkCtx) session(id *identity, acct int, day, created int64, console bool) *session {
	k := sessKey{id.idx, day, acct, console}
	if s := c.sess[k]; s != nil {
		return s
	}
	r := newRNG(c.g.cfg.Seed, 's', uint64(id.idx), uint64(day), uint64(acct), b2u(console))
	key := "ASIA" + upperOf(r.Uint64(), 16)
	if id.iamUser && !console {
		key = id.akia
	}
	s := &session{arn: id.arn(acct), ui: renderIdentity(id, acct, key, created, console && !id.noMFA)}
	c.sess[k] = s
	return s
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// expand turns a burst into events.
func (c *chunkCtx) expand(id *identity, b *burst) {
	r := newRNG(b.seed)
	t := float64(b.t)
	hi := float64(c.hi - 1)
	ua := ""
	var flags uint8
	switch b.tool {
	case toolConsole:
		ua = id.consoleUA
	case toolCLI:
		ua, flags = id.cliUA, flagCLI
	case toolSDK:
		ua = id.sdkUA
	}
	if id.auto != nil {
		ua = id.auto.ua
		if len(ua) > 8 && ua[len(ua)-8:] == "command/" {
			flags = flagCLI
		}
		if id.auto.invoked != "" {
			ua = id.auto.invoked
		}
	}
	sess := c.session(id, b.acct, b.sessDay, b.sessT, b.tool == toolConsole)
	if b.login {
		login := catalog["signin:ConsoleLogin"]
		if id.iamUser && r.chance(0.03) {
			c.add(event{t: int64(t), acct: uint8(id.homeAcct), region: rUSEast1, act: login, who: sess, ip: b.ip, ua: ua, flags: flagLoginFail, id: r.uuid(), pick: r.Uint64(), tag: uint16(b.tag)})
			t += 8 + 20*r.Float64()
		}
		f := uint8(0)
		if !id.noMFA {
			f = flagMFA
		}
		c.add(event{t: int64(t), acct: uint8(b.acct), region: rUSEast1, act: login, who: sess, ip: b.ip, ua: ua, flags: f, id: r.uuid(), pick: r.Uint64(), tag: uint16(b.tag)})
		t += 2 + 5*r.Float64()
	}
	var prev *action
	for i := 0; i < b.n; i++ {
		a := b.table.pick(r, prev)
		prev = a
		reg := b.region
		if reg < 0 {
			reg = r.weighted(id.regW)
		}
		if a.svc.global {
			reg = rUSEast1
		}
		e := event{t: int64(min(t, hi)), acct: uint8(b.acct), region: uint8(reg), act: a, who: sess, ip: b.ip, ua: ua, flags: flags, id: r.uuid(), pick: r.Uint64(), tag: uint16(b.tag)}
		if reg == regionLaunch && id.regionTag > 0 && e.tag == 0 {
			e.tag = uint16(id.regionTag)
		}
		if id.auto != nil && id.auto.invoked != "" {
			e.ip = id.auto.invoked
		}
		errRate := 0.004
		if id.human != nil {
			errRate = id.human.errRate
		}
		if r.chance(errRate) && len(a.svc.errs) > 0 {
			es := &a.svc.errs[r.IntN(len(a.svc.errs))]
			if !es.writeOnly || !a.readOnly {
				e.err = es
			}
		}
		c.add(e)
		t += r.ExpFloat64() * b.gap
	}
}

// Planning people. A person's day is planned in their own timezone: work
// hours with a lunch break, weekends and holidays off, now and then a late
// evening, and on-call nights for SREs.

func (g *gen) planHuman(id *identity, y int, m time.Month, d int) []burst {
	day0 := time.Date(y, m, d, 0, 0, 0, 0, id.tz)
	dayIdx := g.dayIndex(day0)
	if dayIdx < id.firstDay || id.trip.covers(y, m, d) {
		return nil // not started yet, or working abroad (trip bursts are special)
	}
	dateKey := uint64(y*10000 + int(m)*100 + d)
	r := newRNG(g.cfg.Seed, 'h', uint64(id.idx), dateKey)
	wd := day0.Weekday()
	off := wd == time.Saturday || wd == time.Sunday || g.isHoliday(id.loc, y, m, d) ||
		(dayIdx >= id.vacStart && dayIdx < id.vacStart+id.vacLen && dayIdx != id.firstDay)
	var spans []span
	rate := id.human.rate * r.lognorm(0.35)
	if off {
		if r.chance(0.06) {
			h := 10 + 9*r.Float64()
			spans = append(spans, span{from: h, to: h + 0.3 + 0.5*r.Float64(), rate: rate * 0.6})
		}
	} else {
		spans = workSpans(spans, id, rate, r)
	}
	if id.oncallRank >= 0 && g.numOncall > 0 && (dayIdx/7)%g.numOncall == id.oncallRank && r.chance(0.12) {
		h := 5.5 * r.Float64()
		spans = append(spans, span{from: h, to: h + 0.3 + 0.7*r.Float64(), rate: rate * 1.5, tag: id.oncallTag})
	}
	if off && id.weekendTag > 0 {
		// Its own stream: the person's other days stay as they were.
		if sp, ok := g.weekendSession(id, day0, dayIdx); ok {
			spans = append(spans, sp)
		}
	}
	if len(spans) == 0 {
		return nil
	}
	ip := id.ips[0]
	if !r.chance(id.officeShare) {
		ip = id.ips[1+r.IntN(len(id.ips)-1)]
	}
	return g.spanBursts(id, spans, day0.Unix(), dayIdx, dateKey, ip, r)
}

// span is a stretch of local hours of one day at a call rate; ip and tag,
// when set, override the day's address and label its calls.
type span struct {
	from, to, rate float64
	ip             string
	tag            int
}

// workSpans appends a working day: morning, lunch, afternoon, and now and
// then a late evening.
func workSpans(spans []span, id *identity, rate float64, r *rngT) []span {
	s := id.workStart + r.NormFloat64()*0.4
	e := s + id.workLen + r.NormFloat64()*0.6
	lunch := 12 + r.Float64()
	spans = append(spans, span{from: s, to: lunch, rate: rate}, span{from: lunch + 0.5 + 0.4*r.Float64(), to: e, rate: rate})
	if r.chance(0.04) {
		h := 21 + 1.5*r.Float64()
		spans = append(spans, span{from: h, to: h + 0.3 + 0.7*r.Float64(), rate: rate * 0.8})
	}
	return spans
}

// spanBursts turns one local day's spans (base is its midnight) into
// bursts of calls from ip.
func (g *gen) spanBursts(id *identity, spans []span, base int64, dayIdx int, dateKey uint64, ip string, r *rngT) []burst {
	sessT := base + int64(spans[0].from*3600) - int64(r.IntN(300))
	table, tag := id.table, 0
	if id.change != nil && dayIdx >= id.change.from {
		table, tag = id.change.table, id.change.tag
	}
	var out []burst
	loggedIn := [3]bool{}
	for _, sp := range spans {
		events := r.poisson(sp.rate * (sp.to - sp.from))
		for events > 0 {
			n := min(events, 1+int(r.ExpFloat64()*6))
			events -= n
			b := burst{
				t: base + int64((sp.from+(sp.to-sp.from)*r.Float64())*3600),
				n: n, gap: 1 + 4*r.Float64(), seed: r.Uint64(),
				acct: r.weighted(id.accW), region: r.weighted(id.regW),
				tool: tool(r.weighted(id.human.tools)), ip: ip, table: table, tag: tag,
				sessDay: int64(dateKey), sessT: sessT,
			}
			if id.iamUser {
				b.acct = id.homeAcct
			}
			if r.chance(0.12) {
				b.ip = vpnExits[r.IntN(len(vpnExits))]
			} else if sp.ip != "" {
				b.ip = sp.ip
			}
			if sp.tag > 0 {
				b.tag = sp.tag
			}
			if id.novel != nil && dayIdx >= id.novelFrom && r.chance(0.25) {
				b.table, b.tag = id.novel, id.novelTag
			}
			if id.regionFrom > 0 && dayIdx >= id.regionFrom && r.chance(0.12) {
				b.region = regionLaunch
			}
			if dayIdx == id.firstDay && id.newHireTag > 0 {
				b.tag = id.newHireTag
			}
			out = append(out, b)
		}
	}
	// The first console visit to an account each day starts with a sign-in.
	sortBursts(out)
	for i := range out {
		if out[i].tool == toolConsole && !loggedIn[out[i].acct] {
			loggedIn[out[i].acct] = true
			out[i].login = true
		}
	}
	return out
}

func sortBursts(bs []burst) {
	// insertion sort: lists are short and this keeps it stable
	for i := 1; i < len(bs); i++ {
		for j := i; j > 0 && bs[j].t < bs[j-1].t; j-- {
			bs[j], bs[j-1] = bs[j-1], bs[j]
		}
	}
}

// dayIndex numbers local dates from the start of the period (the date
// holding the start is day 0 or -1).
func (g *gen) dayIndex(day0 time.Time) int {
	return int(math.Floor(day0.Sub(g.start).Hours() / 24))
}

// isHoliday: the country's public holidays, plus two company days off per
// country drawn from the seed.
func (g *gen) isHoliday(loc *location, y int, m time.Month, d int) bool {
	md := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Format("01-02")
	for _, h := range loc.holidays {
		if h == md {
			return true
		}
	}
	dayIdx := int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(g.start.Truncate(24*time.Hour)).Hours() / 24)
	r := newRNG(g.cfg.Seed, 'H', hashStr(loc.country))
	span := max(1, g.days-4)
	first, second := r.IntN(span), r.IntN(span) // two holidays a period
	return dayIdx == first || dayIdx == second
}

// Planning automation, per UTC day. Each kind has its own rhythm.

type autoPlanner func(g *gen, id *identity, day0 int64, r *rngT) []burst

var autoPlanners = map[string]autoPlanner{
	kindCI:        planRuns(13, 9, true),
	kindTerraform: planRuns(9, 8, true),
	kindLinked:    planRuns(0, 24, false),
	kindLambda:    planHourly,
	kindService:   planHourly,
	kindScanner:   planHourly,
	kindScheduled: planScheduled,
}

// planRuns: runs at random times in [from, from+width) UTC, perHour runs a
// day on weekdays (a tenth of that at weekends when weekdays is set).
func planRuns(from, width float64, weekdays bool) autoPlanner {
	return func(g *gen, id *identity, day0 int64, r *rngT) []burst {
		mean := id.auto.perHour
		wd := time.Unix(day0, 0).UTC().Weekday()
		if weekdays && (wd == time.Saturday || wd == time.Sunday) {
			mean /= 10
		}
		var out []burst
		for k := r.poisson(mean); k > 0; k-- {
			out = append(out, g.autoBurst(id, day0+int64((from+width*r.Float64())*3600), r))
		}
		return out
	}
}

// planHourly: round-the-clock calls, busier in the (US/EU) day.
func planHourly(g *gen, id *identity, day0 int64, r *rngT) []burst {
	var out []burst
	for h := 0; h < 24; h++ {
		diurnal := 0.6 + 0.4*math.Sin(float64(h-9)/24*2*math.Pi)
		if id.auto.kind == kindScanner {
			out = append(out, g.autoBurst(id, day0+int64(h)*3600+300+int64(r.IntN(60)), r))
			continue
		}
		mean := id.auto.perHour * diurnal
		if id.auto.kind == kindLambda {
			mean /= float64(id.auto.size[0]+id.auto.size[1]) / 2
		}
		for k := r.poisson(mean); k > 0; k-- {
			out = append(out, g.autoBurst(id, day0+int64(h)*3600+int64(r.IntN(3600)), r))
		}
	}
	return out
}

// planScheduled: one run a day at a fixed time, give or take a minute.
func planScheduled(g *gen, id *identity, day0 int64, r *rngT) []burst {
	return []burst{g.autoBurst(id, day0+int64(id.auto.at*3600)+int64(r.IntN(90)), r)}
}

func (g *gen) autoBurst(id *identity, t int64, r *rngT) burst {
	a := id.auto
	b := burst{
		t: t, n: a.size[0] + r.IntN(a.size[1]-a.size[0]+1), gap: a.gap, seed: r.Uint64(),
		acct: r.weighted(id.accW), region: r.weighted(id.regW), tool: toolSDK, table: id.table,
		sessDay: t / 86400, sessT: t/86400*86400 + int64(mix64(uint64(id.idx))%3600),
	}
	if a.kind == kindTerraform || a.kind == kindScanner || a.kind == kindService {
		b.region = -1
	}
	if id.regionFrom > 0 && int((t-g.start.Unix())/86400) >= id.regionFrom && r.chance(0.3) {
		b.region = regionLaunch
	}
	switch {
	case id.fixedIP != "":
		b.ip = id.fixedIP
	case a.kind == kindCI && a.role[:6] == "github":
		// GitHub-hosted runners run in Azure's US regions.
		b.ip = g.placed("US", func() string {
			p := azureRunnerPrefixes[r.IntN(len(azureRunnerPrefixes))]
			return p + itoa(1+r.IntN(254)) + "." + itoa(1+r.IntN(254))
		})
	default:
		pool := awsEgress[b.region]
		if pool == nil {
			pool = awsEgress[rUSEast1]
		}
		p := pool[r.IntN(len(pool))]
		b.ip = p + itoa(1+r.IntN(254)) + "." + itoa(1+r.IntN(254))
	}
	return b
}

// placed draws addresses until one geolocates to country (or Locate is
// unset, or a few draws failed: the prefix is then simply wrong for it).
func (g *gen) placed(country string, draw func() string) string {
	ip := draw()
	for try := 0; g.cfg.Locate != nil && try < 16 && g.cfg.Locate(ip) != country; try++ {
		ip = draw()
	}
	return ip
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// weekendSession is a weekend worker's midday session on day0, if this is
// one of the (about one in three) weekends they work and the day they
// chose, or the session that always happens. It is drawn per weekend from
// its own stream.
func (g *gen) weekendSession(id *identity, day0 time.Time, dayIdx int) (span, bool) {
	if weekday(day0) {
		return span{}, false // a holiday, not a weekend
	}
	sat := day0
	if sat.Weekday() == time.Sunday {
		sat = sat.AddDate(0, 0, -1)
	}
	r := newRNG(g.cfg.Seed, 'w', uint64(id.idx), uint64(sat.Year()*10000+int(sat.Month())*100+sat.Day()))
	works, sunday := r.chance(1.0/3), r.chance(0.5)
	h := 11 + 2*r.Float64()
	sp := span{from: h, to: h + 1 + 2*r.Float64(), rate: id.human.rate * 0.7, ip: id.ips[1+r.IntN(len(id.ips)-1)]}
	if dayIdx >= g.days-7 {
		sp.tag = id.weekendTag
	}
	if (works && sunday == (day0.Weekday() == time.Sunday)) || (id.weekendDay > 0 && dayIdx == id.weekendDay) {
		return sp, true
	}
	return sp, false
}
