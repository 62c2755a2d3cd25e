package synth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed stratus/detonation_logs.jsonl.gz
var stratusLogs []byte

//go:embed stratus/techniques.tsv
var stratusTechniques string

type stratusTechnique struct {
	id, title, tactic string
	records           []map[string]any
}

var (
	stratusOnce sync.Once
	stratusList []*stratusTechnique
	stratusErr  error
)

// loadStratus parses the embedded detonation logs, grouped by technique
// (sorted by id) with each technique's records in time order.
func loadStratus() ([]*stratusTechnique, error) {
	stratusOnce.Do(func() {
		titles := map[string][2]string{}
		for _, line := range strings.Split(stratusTechniques, "\n")[1:] {
			f := strings.Split(line, "\t")
			if len(f) >= 3 {
				titles[f[0]] = [2]string{f[1], f[2]}
			}
		}
		zr, err := gzip.NewReader(bytes.NewReader(stratusLogs))
		if err != nil {
			stratusErr = fmt.Errorf("synth: stratus logs: %w", err)
			return
		}
		by := map[string]*stratusTechnique{}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				stratusErr = fmt.Errorf("synth: stratus logs: %w", err)
				return
			}
			id, _ := rec["_stratus_technique_id"].(string)
			delete(rec, "_stratus_technique_id")
			t := by[id]
			if t == nil {
				t = &stratusTechnique{id: id, title: titles[id][0], tactic: titles[id][1]}
				by[id] = t
				stratusList = append(stratusList, t)
			}
			t.records = append(t.records, rec)
		}
		if err := sc.Err(); err != nil {
			stratusErr = fmt.Errorf("synth: stratus logs: %w", err)
			return
		}
		sort.Slice(stratusList, func(i, j int) bool { return stratusList[i].id < stratusList[j].id })
		for _, t := range stratusList {
			sort.SliceStable(t.records, func(i, j int) bool { return str(t.records[i], "eventTime") < str(t.records[j], "eventTime") })
		}
	})
	return stratusList, stratusErr
}

// StratusTechniques lists the technique ids whose records are planted.
func StratusTechniques() ([]string, error) {
	ts, err := loadStratus()
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.id)
	}
	return ids, err
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// stratusCampaign is a group of techniques replayed as one intruder.
type stratusCampaign struct {
	name, desc string
	tactics    []string // technique id prefixes
	victim     *identity
	acct       int
	region     int
	start      time.Time
	ip, ua     string
	consoleUA  string // for ConsoleLogin records when the victim's browser is used
	origin     origin
}

// stratusHuman makes a campaign against a person, k-th among attacks on
// people; toolUA, ip and start are what an external intruder would use.
func (g *gen) stratusHuman(k int, c *stratusCampaign, ip, country, toolUA string) *stratusCampaign {
	c.origin = g.humanOrigin(k, c.victim, ip, country, toolUA)
	c.ip, c.ua = c.origin.ip, c.origin.ua
	if c.origin.profile != ProfileExternal {
		c.consoleUA = c.victim.consoleUA
	}
	return c
}

func (g *gen) plantStratus(r *rngT, v *victims, iamUser, sso func(*identity) bool) error {
	techs, err := loadStratus()
	if err != nil {
		return err
	}
	var camps []*stratusCampaign
	// The campaigns on people are the 5th and 6th attacks on people (k 4
	// and 5, after the four hand-written ones) for the profile rotation.
	if vic := v.pick(iamUser); vic != nil {
		ip, country := attackerIP(r, 4)
		camps = append(camps, g.stratusHuman(4, &stratusCampaign{name: "stratus-stolen-user-key", desc: "an IAM user's credentials", victim: vic, acct: vic.homeAcct, region: rUSEast1,
			tactics: []string{"aws.credential-access.", "aws.discovery.", "aws.initial-access.", "aws.exfiltration."},
			start:   g.localAt(vic.tz, 2, 23, r.IntN(40))}, ip, country, kaliCLI))
	}
	if vic := v.pick(sso); vic != nil {
		ip, country := attackerIP(r, 5)
		camps = append(camps, g.stratusHuman(5, &stratusCampaign{name: "stratus-persistence", desc: "an SSO session", victim: vic, acct: acctProd, region: rEUWest1,
			tactics: []string{"aws.persistence.", "aws.privilege-escalation.", "aws.defense-evasion."},
			start:   g.localAt(vic.tz, 1, 1, r.IntN(40))}, ip, country, pacuBoto))
	}
	if vic := v.pick(func(id *identity) bool { return id.auto != nil && id.auto.kind == kindCI && id.accW[acctProd] > 0 }); vic != nil {
		// Leaked from the pipeline and used from outside: automation
		// victim, external origin.
		ip, country := attackerIP(r, 6)
		camps = append(camps, &stratusCampaign{name: "stratus-ci-role", desc: "the CI deploy role's leaked credentials", victim: vic, acct: acctProd, region: rUSEast1,
			tactics: []string{"aws.execution.", "aws.lateral-movement.", "aws.impact."},
			start:   g.localAt(time.UTC, 1, 4, r.IntN(40)), ip: ip, ua: goMiner,
			origin: origin{profile: ProfileAutomation, ip: ip, ua: goMiner, country: country, geo: geoForeign}})
	}
	if len(camps) == 0 {
		return fmt.Errorf("synth: no identity to compromise")
	}
	campOf := func(id string) *stratusCampaign {
		for _, c := range camps {
			for _, p := range c.tactics {
				if strings.HasPrefix(id, p) {
					return c
				}
			}
		}
		return camps[0]
	}
	// Lay techniques out one after another within their campaign, then
	// pull a campaign back if it would run past the end of the period.
	type slot struct {
		t     *stratusTechnique
		c     *stratusCampaign
		at    int64
		spans int64
	}
	var slots []*slot
	next := map[*stratusCampaign]int64{}
	for _, t := range techs {
		c := campOf(t.id)
		if _, ok := next[c]; !ok {
			next[c] = c.start.Unix()
		}
		first, _ := time.Parse(time.RFC3339, str(t.records[0], "eventTime"))
		last, _ := time.Parse(time.RFC3339, str(t.records[len(t.records)-1], "eventTime"))
		s := &slot{t: t, c: c, at: next[c], spans: int64(last.Sub(first).Seconds())}
		next[c] = s.at + s.spans + 60 + int64(r.IntN(300))
		slots = append(slots, s)
	}
	// An insider works in their working hours: move the whole campaign
	// into a slot of them that fits it.
	for k, c := range camps {
		if c.origin.profile != ProfileInsider {
			continue
		}
		span := time.Duration(next[c]-c.start.Unix()) * time.Second
		at := g.insiderStart(c.victim, span, newRNG(g.cfg.Seed, 'P', 's', uint64(k)))
		shift := at.Unix() - c.start.Unix()
		c.start = at
		next[c] += shift
		for _, s := range slots {
			if s.c == c {
				s.at += shift
			}
		}
	}
	for _, c := range camps {
		if over := next[c] - (g.end.Unix() - 60); over > 0 {
			for _, s := range slots {
				if s.c == c {
					s.at -= over
				}
			}
		}
	}
	for _, s := range slots {
		if err := g.replayTechnique(s.t, s.c, s.at, r); err != nil {
			return err
		}
	}
	return nil
}

// replayTechnique rewrites one technique's records into the organisation:
// the operator becomes the victim, accounts become the victim's account,
// fake regions real ones, invalid addresses the intruder's, times move
// into the slot keeping their spacing, and every record gets a new id.
func (g *gen) replayTechnique(t *stratusTechnique, c *stratusCampaign, at int64, r *rngT) error {
	// The operator is the principal that ran the technique: its IAM user
	// if there is one, else its most frequent identity.
	counts := map[string]int{}
	types := map[string]string{}
	oldAccts := map[string]bool{}
	for _, rec := range t.records {
		ui, _ := rec["userIdentity"].(map[string]any)
		arn := str(ui, "arn")
		counts[arn]++
		types[arn] = str(ui, "type")
		for _, k := range []string{"recipientAccountId"} {
			if a := str(rec, k); a != "" {
				oldAccts[a] = true
			}
		}
		if a := str(ui, "accountId"); a != "" {
			oldAccts[a] = true
		}
	}
	operator, best := "", -1
	for arn, n := range counts {
		score := n
		if types[arn] == "IAMUser" {
			score += 1 << 20
		}
		if score > best || (score == best && arn < operator) {
			operator, best = arn, score
		}
	}
	acctID := accounts[c.acct].ID
	victimARN := c.victim.arn(c.acct)
	var pairs []string
	pairs = append(pairs, operator, victimARN)
	for _, a := range sortedKeys(oldAccts) {
		pairs = append(pairs, a, acctID)
	}
	for _, rec := range t.records {
		if reg := str(rec, "awsRegion"); reg != "" && !isRealRegion(reg) {
			pairs = append(pairs, reg, regions[c.region])
		}
	}
	rep := strings.NewReplacer(dedupPairs(pairs)...)
	created := time.Unix(at-600, 0).UTC()
	key := c.victim.akia
	if key == "" || c.victim.human == nil {
		key = "ASIA" + upperOf(mix64(g.cfg.Seed^hashStr(t.id)), 16)
	}
	var victimUI map[string]any
	if err := json.Unmarshal(renderIdentity(c.victim, c.acct, key, created.Unix(), false), &victimUI); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	first, _ := time.Parse(time.RFC3339, str(t.records[0], "eventTime"))
	tag := g.addScenario(Scenario{ID: "stratus:" + t.id, Kind: "attack", Technique: t.id, Campaign: c.name, Profile: c.origin.profile,
		Description: fmt.Sprintf("Stratus Red Team %q (%s), replayed into the organisation with %s, %s", t.title, t.id, c.desc, c.phrase(at))})
	s := g.scenarios[tag-1]
	s.planned = true
	s.Account = acctID
	var calls []call
	for _, orig := range t.records {
		rec := rewrite(orig, rep).(map[string]any)
		ui, _ := rec["userIdentity"].(map[string]any)
		fromVictim := str(orig["userIdentity"].(map[string]any), "arn") == operator
		if fromVictim {
			rec["userIdentity"] = victimUI
			ui = victimUI
		} else if attrs, ok := dig(ui, "sessionContext", "attributes"); ok {
			if ct, err := time.Parse(time.RFC3339, str(attrs, "creationDate")); err == nil {
				attrs["creationDate"] = time.Unix(at+int64(ct.Sub(first).Seconds()), 0).UTC().Format(rfc3339Sec)
			}
		}
		et, err := time.Parse(time.RFC3339, str(orig, "eventTime"))
		if err != nil {
			return fmt.Errorf("synth: stratus %s: %w", t.id, err)
		}
		ts := at + int64(et.Sub(first).Seconds())
		rec["eventTime"] = time.Unix(ts, 0).UTC().Format(rfc3339Sec)
		if _, err := netip.ParseAddr(str(orig, "sourceIPAddress")); err == nil || looksLikeIP(str(orig, "sourceIPAddress")) {
			rec["sourceIPAddress"] = c.ip
		}
		// The tool's records, and all of the operator's, carry the
		// campaign's client.
		if ua := str(orig, "userAgent"); fromVictim || strings.HasPrefix(ua, "stratus-red-team") || strings.Contains(ua, "grimoire") {
			rec["userAgent"] = strings.TrimSuffix(c.ua, "command/")
			if str(rec, "eventName") == "ConsoleLogin" && c.consoleUA != "" {
				rec["userAgent"] = c.consoleUA
			} else if strings.HasSuffix(c.ua, "command/") {
				src := strings.TrimSuffix(str(rec, "eventSource"), ".amazonaws.com")
				rec["userAgent"] = c.ua + cliServiceName(src) + "." + kebab(str(rec, "eventName"))
			}
		}
		id := r.uuid()
		rec["eventID"] = id.String()
		if _, ok := rec["requestID"]; ok {
			rec["requestID"] = r.uuid().String()
		}
		region := regionIndex(str(rec, "awsRegion"))
		if region < 0 {
			region = c.region
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("synth: stratus %s: %w", t.id, err)
		}
		raw := bytes.TrimRight(buf.Bytes(), "\n")
		g.attacks = append(g.attacks, event{t: ts, acct: uint8(c.acct), region: uint8(region), id: id, raw: raw, tag: uint16(tag)})
		s.EventIDs = append(s.EventIDs, id.String())
		if arn := str(ui, "arn"); arn != "" && !slices.Contains(s.Identities, arn) {
			s.Identities = append(s.Identities, arn)
		}
		add, _ := rec["additionalEventData"].(map[string]any)
		calls = append(calls, call{t: ts, name: str(rec, "eventName"), svc: str(rec, "eventSource"), region: str(rec, "awsRegion"),
			errCode: str(rec, "errorCode"), console: str(rec, "eventName") == "ConsoleLogin", noMFA: str(add, "MFAUsed") == "No", fromVictim: fromVictim, geo: c.origin.geo})
		if s.Start.IsZero() {
			s.Start = time.Unix(ts, 0).UTC()
		}
		s.End = time.Unix(ts, 0).UTC()
	}
	s.EventCount = len(s.EventIDs)
	sort.Strings(s.Identities)
	s.ExpectedRules = g.expectRules(c.victim, calls)
	return nil
}

// phrase says where the campaign comes from, for descriptions.
func (c *stratusCampaign) phrase(at int64) string {
	if c.origin.profile == ProfileAutomation {
		return fmt.Sprintf("from a foreign network (%s) with an attacker's tool", c.origin.country)
	}
	return c.origin.phrase(c.victim, time.Unix(at, 0))
}

// rewrite copies a decoded JSON value, applying rep to every string.
func rewrite(v any, rep *strings.Replacer) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = rewrite(val, rep)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = rewrite(val, rep)
		}
		return out
	case string:
		return rep.Replace(x)
	}
	return v
}

func dig(m map[string]any, keys ...string) (map[string]any, bool) {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	return m, true
}

// looksLikeIP catches the upstream anonymiser's not-quite addresses
// (253.252.51.07, 06.237.252.245).
func looksLikeIP(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func isRealRegion(r string) bool { return regionIndex(r) >= 0 }

func regionIndex(r string) int {
	for i, x := range regions {
		if x == r {
			return i
		}
	}
	return -1
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dedupPairs keeps the first replacement for each old string, longest
// first so an ARN is replaced before the account id inside it.
func dedupPairs(p []string) []string {
	seen := map[string]bool{}
	type pr struct{ o, n string }
	var ps []pr
	for i := 0; i+1 < len(p); i += 2 {
		if p[i] == "" || seen[p[i]] {
			continue
		}
		seen[p[i]] = true
		ps = append(ps, pr{p[i], p[i+1]})
	}
	sort.SliceStable(ps, func(i, j int) bool { return len(ps[i].o) > len(ps[j].o) })
	out := make([]string, 0, 2*len(ps))
	for _, x := range ps {
		out = append(out, x.o, x.n)
	}
	return out
}
