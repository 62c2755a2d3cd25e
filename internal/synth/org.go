package synth

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// identity is one principal of the organisation and its habits.
type identity struct {
	idx   int
	info  IdentityInfo
	human *humanRole
	auto  *autoTemplate
	loc   *location
	tz    *time.Location

	name     string // IAM user, SSO user's e-mail, role name or service
	iamUser  bool
	homeAcct int
	accW     []float64
	regW     []float64
	table    *actTable
	session  string // role session name

	// people
	ips                     []string // office, then home addresses
	officeShare             float64
	consoleUA, cliUA, sdkUA string
	workStart, workLen      float64 // local hours
	noMFA                   bool
	firstDay                int // index of the first day with activity (new hires)
	vacStart, vacLen        int
	oncallRank              int // position among on-call engineers, -1 if none

	// principal ids
	akia    string
	aida    string
	roleIDs [3]string // AROA… per account (role or SSO permission set)
	ssoRole [3]string // AWSReservedSSO_<set>_<hex> per account
	fixedIP string    // automation with a stable egress

	// benign novelty hooks
	novel      *actTable
	novelFrom  int
	novelTag   int
	regionTag  int // events in regionLaunch carry this tag
	regionFrom int // day from which the identity also uses regionLaunch
	newHireTag int // events of the first day carry this tag
	special    []burst
	oncallTag  int     // night pages carry this tag
	weekendTag int     // works some weekends; sessions of the last week carry this tag
	weekendDay int     // day index of a weekend session that always happens (0: none)
	trip       *trip   // works from another office's country for a few days
	change     *change // moves to another role
	benignLead bool    // a benign scenario's protagonist: not a victim if avoidable
}

// trip is a few days worked from abroad. Dates are calendar dates, the
// same at home and away: the home plan of those dates is replaced by
// special bursts in the visited timezone.
type trip struct {
	dates []time.Time // midnight UTC of each date
}

func (t *trip) covers(y int, m time.Month, d int) bool {
	if t == nil {
		return false
	}
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	for _, x := range t.dates {
		if x.Equal(day) {
			return true
		}
	}
	return false
}

// change is a move to another role from a day on.
type change struct {
	from  int
	table *actTable
	tag   int
}

func (id *identity) arn(acct int) string {
	a := accounts[acct].ID
	switch {
	case id.auto != nil && id.auto.kind == kindService:
		return ""
	case id.auto != nil:
		return "arn:aws:sts::" + a + ":assumed-role/" + id.name + "/" + id.session
	case id.iamUser:
		return "arn:aws:iam::" + accounts[id.homeAcct].ID + ":user/" + id.name
	default:
		return "arn:aws:sts::" + a + ":assumed-role/" + id.ssoRole[acct] + "/" + id.name
	}
}

// actTable draws actions by weight, with a pull towards the service of
// the previous call (people work on one thing at a time).
type actTable struct {
	acts  []*action
	cum   []float64
	bySvc map[*service]*actTable
}

func newTable(ws []weighted) *actTable {
	t := &actTable{}
	var sum float64
	groups := map[*service][]weighted{}
	var order []*service
	for _, w := range ws {
		sum += w.w
		t.acts = append(t.acts, w.act)
		t.cum = append(t.cum, sum)
		if _, ok := groups[w.act.svc]; !ok {
			order = append(order, w.act.svc)
		}
		groups[w.act.svc] = append(groups[w.act.svc], w)
	}
	t.bySvc = make(map[*service]*actTable, len(groups))
	for _, s := range order {
		sub := &actTable{}
		var s2 float64
		for _, w := range groups[s] {
			s2 += w.w
			sub.acts = append(sub.acts, w.act)
			sub.cum = append(sub.cum, s2)
		}
		t.bySvc[s] = sub
	}
	return t
}

func (t *actTable) pick(r *rngT, prev *action) *action {
	if prev != nil && r.chance(0.6) {
		if sub := t.bySvc[prev.svc]; sub != nil {
			return sub.acts[r.cumPick(sub.cum)]
		}
	}
	return t.acts[r.cumPick(t.cum)]
}

func (t *actTable) has(name string) bool {
	for _, a := range t.acts {
		if a.name == name {
			return true
		}
	}
	return false
}

// personalTable reorders a role's actions by noisy weight and gives them
// Zipf weights by rank: a few calls dominate each identity, with a long
// tail, and no two identities share exactly the same order.
func personalTable(r *rngT, ws []weighted, keep float64) *actTable {
	type ranked struct {
		weighted
		score float64
	}
	rs := make([]ranked, len(ws))
	for i, w := range ws {
		rs[i] = ranked{w, w.w * r.lognorm(0.7)}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].score > rs[j].score })
	n := max(6, int(math.Ceil(float64(len(rs))*keep)))
	n = min(n, len(rs))
	out := make([]weighted, n)
	for i := 0; i < n; i++ {
		out[i] = weighted{rs[i].act, 1 / math.Pow(float64(i+1), 1.1)}
	}
	return newTable(out)
}

// buildOrg makes the identities: people first, then automation.
func (g *gen) buildOrg() error {
	n := g.cfg.Identities
	nAuto := max(len(autoTemplates), n/5)
	if n < len(autoTemplates)+minHumans {
		return fmt.Errorf("synth: need at least %d identities, got %d", len(autoTemplates)+minHumans, n)
	}
	nHuman := n - nAuto
	if nHuman < minHumans {
		nHuman = minHumans
		nAuto = n - nHuman
	}
	r := newRNG(g.cfg.Seed, 'o')
	used := map[string]bool{}
	oncall := 0
	for i := 0; i < nHuman; i++ {
		role := humanRoles[humanRoleCycle[i%len(humanRoleCycle)]]
		loc := &locations[humanLocations[i%len(humanLocations)]]
		tz, err := time.LoadLocation(loc.tz)
		if err != nil {
			return fmt.Errorf("synth: timezone %s: %w", loc.tz, err)
		}
		var name string
		for {
			name = firstNames[r.IntN(len(firstNames))] + "." + lastNames[r.IntN(len(lastNames))]
			if !used[name] {
				used[name] = true
				break
			}
		}
		id := &identity{idx: len(g.ids), human: role, loc: loc, tz: tz, oncallRank: -1}
		id.iamUser = r.chance(role.iamUser) || i == 2 || i == 3 || i == 15 // a few legacy users, always
		if id.iamUser {
			id.name = name
			id.homeAcct = acctProd
			if role.name == "auditor" {
				id.homeAcct = acctSecurity
			}
			id.accW = make([]float64, len(accounts))
			id.accW[id.homeAcct] = 1
			id.aida = "AIDA" + upperOf(r.Uint64(), 17)
			id.akia = "AKIA" + upperOf(r.Uint64(), 16)
			id.noMFA = r.chance(0.15)
		} else {
			id.name = name + "@example.com"
			id.accW = append([]float64(nil), role.accounts...)
			for a := range accounts {
				id.accW[a] *= r.lognorm(0.3)
			}
			id.homeAcct = argmax(id.accW)
		}
		id.regW = make([]float64, len(regions))
		copy(id.regW, loc.regions)
		for j := range id.regW {
			id.regW[j] *= r.lognorm(0.4)
		}
		id.table = personalTable(r, parseWeights(role.actions), 0.6+0.35*r.Float64())
		id.ips = []string{loc.office + fmt.Sprint(10+r.IntN(200))}
		for h := 0; h < 1+r.IntN(2); h++ {
			id.ips = append(id.ips, g.placed(loc.country, func() string {
				p := loc.home[r.IntN(len(loc.home))]
				return fmt.Sprintf("%s%d.%d", p, 1+r.IntN(254), 1+r.IntN(254))
			}))
		}
		id.officeShare = 0.2 + 0.6*r.Float64()
		id.consoleUA = browserUAs[r.IntN(len(browserUAs))]
		id.cliUA = cliUAs[r.IntN(len(cliUAs))]
		id.sdkUA = sdkUAs[r.IntN(len(sdkUAs))]
		id.workStart = 8 + 2*r.Float64()
		id.workLen = 7.5 + 1.5*r.Float64()
		id.vacStart, id.vacLen = r.IntN(max(1, g.days*3/4)), 2+r.IntN(4)
		if role.name == "oncall" {
			id.oncallRank = oncall
			oncall++
		}
		for a := range accounts {
			id.roleIDs[a] = "AROA" + upperOf(mix64(g.cfg.Seed^hashStr(role.permSet+accounts[a].ID)), 17)
			id.ssoRole[a] = "AWSReservedSSO_" + role.permSet + "_" + hexOf(mix64(g.cfg.Seed^hashStr(role.permSet+accounts[a].ID+"sso")), 16)
		}
		id.info = IdentityInfo{Name: name, Kind: "human", Role: role.name, Timezone: loc.tz, Country: loc.country, City: loc.city, Account: accounts[id.homeAcct].ID, IAMUser: id.iamUser}
		g.ids = append(g.ids, id)
	}
	g.numOncall = oncall
	for i := 0; i < nAuto; i++ {
		t := autoTemplates[i%len(autoTemplates)]
		round := i / len(autoTemplates)
		if round > 0 {
			// More identities: more Lambda functions and scheduled jobs.
			switch t.kind {
			case kindLambda:
				fn := extraLambdaNames[(i/len(autoTemplates)*3+i)%len(extraLambdaNames)]
				t.role, t.session = fmt.Sprintf("%s-lambda-%d", fn, round), fn
				t.perHour *= 0.5 + r.Float64()
			case kindScheduled:
				t.role = fmt.Sprintf("%s-%d", t.role, round)
				t.at = math.Mod(t.at+float64(round)*5.5, 24)
			case kindCI:
				t.role = fmt.Sprintf("%s-%d", t.role, round)
			default:
				t = autoTemplates[2] // another Lambda
				fn := extraLambdaNames[(i+round)%len(extraLambdaNames)]
				t.role, t.session = fmt.Sprintf("%s-lambda-%d", fn, round), fn
			}
		}
		tt := t
		id := &identity{idx: len(g.ids), auto: &tt, tz: time.UTC, oncallRank: -1, session: tt.session}
		id.name = tt.role
		if tt.kind == kindService {
			id.name = tt.invoked
		}
		id.accW = tt.accounts
		id.homeAcct = argmax(tt.accounts)
		id.regW = make([]float64, len(regions))
		copy(id.regW, tt.regions)
		keep := 1.0
		if tt.kind == kindTerraform || tt.kind == kindScanner {
			keep = 0.9
		}
		id.table = personalTable(r, parseWeights(tt.actions), keep)
		for a := range accounts {
			id.roleIDs[a] = "AROA" + upperOf(r.Uint64(), 17)
		}
		if tt.kind == kindScheduled || tt.kind == kindScanner || tt.kind == kindTerraform {
			pool := awsEgress[rUSEast1]
			id.fixedIP = fmt.Sprintf("%s%d.%d", pool[r.IntN(len(pool))], 1+r.IntN(254), 1+r.IntN(254))
		}
		id.info = IdentityInfo{Name: id.name, Kind: "automation", Role: tt.kind, Timezone: "UTC", Account: accounts[id.homeAcct].ID}
		g.ids = append(g.ids, id)
	}
	for _, id := range g.ids {
		for a := range accounts {
			if id.accW[a] > 0 || (id.iamUser && a == id.homeAcct) {
				if s := id.arn(a); s != "" {
					id.info.ARNs = append(id.info.ARNs, s)
				}
			}
		}
		id.info.ARN = id.arn(id.homeAcct)
	}
	return nil
}

// minHumans keeps the documented minimum of 24 identities with one
// automation template per remaining slot: 11 people still hold every
// role of humanRoleCycle (only its second administrator is missing).
const minHumans = 11

func argmax(w []float64) int {
	best := 0
	for i, x := range w {
		if x > w[best] {
			best = i
		}
	}
	return best
}

func hashStr(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// find returns the first identity matching pred, in index order.
func (g *gen) find(pred func(*identity) bool) *identity {
	for _, id := range g.ids {
		if pred(id) {
			return id
		}
	}
	return nil
}

func (g *gen) findAll(pred func(*identity) bool) []*identity {
	var out []*identity
	for _, id := range g.ids {
		if pred(id) {
			out = append(out, id)
		}
	}
	return out
}
