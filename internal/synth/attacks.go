package synth

import (
	"fmt"
	"sort"
	"time"
)

// attacker builds the records of one hand-written attack scenario.
type attacker struct {
	g      *gen
	victim *identity
	acct   int
	sess   *session
	ip, ua string
	cli    bool
	tag    int
	r      *rngT
	t      float64
	geo    geoNovelty
	calls  []call
	events []event
}

func (g *gen) newAttacker(victim *identity, acct int, key string, mfa bool, start time.Time, ip, ua string, tag int) *attacker {
	created := start.Add(-time.Duration(5+tag) * time.Minute).Unix()
	if key == "" {
		key = "ASIA" + upperOf(mix64(g.cfg.Seed^uint64(tag)*0x51), 16)
	}
	s := &session{arn: victim.arn(acct), ui: renderIdentity(victim, acct, key, created, mfa)}
	return &attacker{g: g, victim: victim, acct: acct, sess: s, ip: ip, ua: ua, tag: tag, r: newRNG(g.cfg.Seed, 'x', uint64(tag)), t: float64(start.Unix()),
		cli: len(ua) > 8 && ua[len(ua)-8:] == "command/"}
}

type callOpt func(*event)

func withErr(code, msg string) callOpt {
	return func(e *event) { e.err = &errorSpec{code: code, msg: msg} }
}
func withParams(js string) callOpt { return func(e *event) { e.params = []byte(js) } }
func withResp(js string) callOpt   { return func(e *event) { e.resp = []byte(js) } }

// call adds one record, gap seconds (on average) after the previous one.
func (a *attacker) call(key string, region int, gap float64, opts ...callOpt) {
	act := act(key)
	if act.svc.global {
		region = rUSEast1
	}
	a.t += gap * (0.5 + a.r.Float64())
	e := event{t: int64(a.t), acct: uint8(a.acct), region: uint8(region), act: act, who: a.sess, ip: a.ip, ua: a.ua,
		id: a.r.uuid(), pick: a.r.Uint64(), tag: uint16(a.tag)}
	if a.cli {
		e.flags = flagCLI
	}
	if act.console {
		e.flags = 0
	}
	for _, o := range opts {
		o(&e)
	}
	a.events = append(a.events, e)
	code := ""
	if e.err != nil {
		code = e.err.code
	}
	a.calls = append(a.calls, call{t: e.t, name: act.name, svc: act.svc.source, region: regions[region], errCode: code, console: act.console, noMFA: e.flags&flagMFA == 0, fromVictim: true, geo: a.geo})
}

// finish labels the scenario and queues its records.
func (a *attacker) finish() {
	s := a.g.scenarios[a.tag-1]
	s.planned = true
	s.Identities = []string{a.sess.arn}
	s.Account = accounts[a.acct].ID
	for _, e := range a.events {
		s.EventIDs = append(s.EventIDs, e.id.String())
	}
	s.EventCount = len(a.events)
	s.Start = time.Unix(a.events[0].t, 0).UTC()
	s.End = time.Unix(a.events[len(a.events)-1].t, 0).UTC()
	s.ExpectedRules = a.g.expectRules(a.victim, a.calls)
	a.g.attacks = append(a.g.attacks, a.events...)
}

// handWrittenSpan bounds how long a hand-written attack on a person
// lasts (each call comes at most 1.5 gaps after the previous one).
const handWrittenSpan = 20 * time.Minute

// humanAttack decides the origin and start of the k-th attack on a
// person; the caller has drawn the external attacker's address and hours
// from the attack stream already, whatever the profile, so that stream is
// the same under every profile.
func (g *gen) humanAttack(k int, vic *identity, ip, country, toolUA string, attackerAt time.Time) (origin, time.Time) {
	o := g.humanOrigin(k, vic, ip, country, toolUA)
	return o, g.attackStart(o, k, vic, attackerAt, handWrittenSpan)
}

// plantQuietRole: the low-volume reporting role, which makes a handful of
// calls at the same time each night, acts mid-afternoon from an AWS
// address it never uses, with its own user agent, and enumerates IAM and
// reads secrets. Its own stream, so the Stratus campaigns planted after
// it draw what they drew before it existed.
func (g *gen) plantQuietRole(v *victims) {
	vic := v.pick(func(id *identity) bool { return id.auto != nil && id.auto.role == quietRole })
	if vic == nil {
		return
	}
	r := newRNG(g.cfg.Seed, 'A', 'q')
	at := g.localAt(time.UTC, 0, 15, r.IntN(40))
	ip := newEgressIP(vic, r)
	tag := g.addScenario(Scenario{ID: "attack-quiet-role-abuse", Kind: "attack", Campaign: "automation-abuse", Profile: ProfileAutomation,
		Description: fmt.Sprintf("the %s role, which makes a handful of calls at %02d:00 UTC each night, acts at %s UTC from an AWS address it never uses, with its own user agent, enumerating IAM and reading Secrets Manager and SSM", vic.name, int(vic.auto.at), at.Format("15:04"))})
	a := g.newAttacker(vic, vic.homeAcct, "", false, at, ip, vic.auto.ua, tag)
	a.geo = geoFamiliar // AWS's us-east-1 egress, where the role always runs
	a.call("sts:GetCallerIdentity", rUSEast1, 0)
	for _, k := range []string{"iam:ListRoles", "iam:ListUsers", "iam:ListAttachedRolePolicies", "iam:GetRole"} {
		a.call(k, rUSEast1, 2)
	}
	a.call("secretsmanager:ListSecrets", rUSEast1, 3)
	for k := 0; k < 3; k++ {
		a.call("secretsmanager:GetSecretValue", rUSEast1, 2, withParams(fmt.Sprintf(`{"secretId":"%s"}`, g.res[vic.homeAcct].secrets[k])))
	}
	a.call("ssm:GetParametersByPath", rUSEast1, 3)
	a.finish()
}

// newEgressIP is an AWS us-east-1 egress address outside the /16 the
// role always uses: its credentials used from someone else's instance or
// function in the same region.
func newEgressIP(id *identity, r *rngT) string {
	var pool []string
	for _, p := range awsEgress[rUSEast1] {
		if p != slash16(id.fixedIP) {
			pool = append(pool, p)
		}
	}
	return fmt.Sprintf("%s%d.%d", pool[r.IntN(len(pool))], 1+r.IntN(254), 1+r.IntN(254))
}

func attackerIP(r *rngT, k int) (string, string) {
	o := attackerOrigins[k%len(attackerOrigins)]
	return fmt.Sprintf("%s%d.%d", o.prefix, 1+r.IntN(254), 1+r.IntN(254)), o.country
}

const (
	kaliCLI   = "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0-kali9-amd64 exe/x86_64.kali.2023 prompt/off command/"
	pacuBoto  = "Boto3/1.26.90 Python/3.11.2 Linux/6.1.0-kali9-amd64 Botocore/1.29.90"
	linuxFF   = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"
	goMiner   = "aws-sdk-go/1.44.298 (go1.20.5; linux; amd64)"
	exfilCurl = "aws-cli/1.29.20 Python/3.8.10 Linux/5.15.0-78-generic botocore/1.31.20"
)

// victims chooses who is compromised, deterministically and, where the
// organisation is big enough, a different identity per scenario.
type victims struct {
	g    *gen
	used map[*identity]bool
}

func (v *victims) pick(pred func(*identity) bool) *identity {
	for _, id := range v.g.ids {
		if !v.used[id] && id.firstDay == 0 && id.special == nil && !id.benignLead && pred(id) {
			v.used[id] = true
			return id
		}
	}
	for _, id := range v.g.ids { // small organisations: share
		if pred(id) {
			return id
		}
	}
	return nil
}

func (g *gen) plantAttacks() error {
	r := newRNG(g.cfg.Seed, 'A')
	v := &victims{g: g, used: map[*identity]bool{}}
	isIAM := func(role string) func(*identity) bool {
		return func(id *identity) bool { return id.human != nil && id.iamUser && (role == "" || id.human.name == role) }
	}
	isSSO := func(roles ...string) func(*identity) bool {
		return func(id *identity) bool {
			if id.human == nil || id.iamUser {
				return false
			}
			for _, r := range roles {
				if id.human.name == r {
					return true
				}
			}
			return false
		}
	}

	// 2. Console sign-in at 03:00 local, no MFA, from a new country.
	if vic := v.pick(isIAM("admin")); vic != nil {
		ip, country := attackerIP(r, 0)
		o, at := g.humanAttack(0, vic, ip, country, linuxFF, g.localAt(vic.tz, 1, 3, r.IntN(10)))
		tag := g.addScenario(Scenario{ID: "attack-console-login-no-mfa", Kind: "attack", Campaign: "console-takeover", Profile: o.profile,
			Description: fmt.Sprintf("%s's password is used to sign in to the console without MFA %s; the session then looks around IAM, S3 and EC2", vic.name, o.phrase(vic, at))})
		a := g.newAttacker(vic, vic.homeAcct, "", false, at, o.ip, o.ua, tag)
		a.geo = o.geo
		a.call("signin:ConsoleLogin", rUSEast1, 0)
		for _, k := range []string{"iam:GetAccountSummary", "iam:ListUsers", "iam:ListRoles", "iam:ListAccessKeys", "s3:ListBuckets", "s3:GetBucketPolicy", "ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "organizations:DescribeOrganization", "cloudtrail:DescribeTrails", "iam:ListUsers", "s3:ListBuckets"} {
			a.call(k, rUSEast1, 40)
		}
		a.finish()
	}

	// 3. A stolen access key used from a new IP and region to enumerate,
	// then to create a key for another user.
	if vic := v.pick(isIAM("dataeng")); vic != nil {
		ip, country := attackerIP(r, 1)
		o, at := g.humanAttack(1, vic, ip, country, kaliCLI, g.localAt(vic.tz, 2, 2, 10+r.IntN(30)))
		tag := g.addScenario(Scenario{ID: "attack-stolen-key-enumeration", Kind: "attack", Campaign: "stolen-key", Profile: o.profile,
			Description: fmt.Sprintf("%s's long-term access key is used %s, in %s, to enumerate IAM, S3 and EC2, then to create an access key for another IAM user", vic.name, o.phrase(vic, at), regions[regionStolenKey])})
		a := g.newAttacker(vic, vic.homeAcct, vic.akia, false, at, o.ip, o.ua, tag)
		a.geo = o.geo
		a.call("sts:GetCallerIdentity", regionStolenKey, 0)
		a.call("iam:ListUsers", regionStolenKey, 3)
		a.call("iam:ListRoles", regionStolenKey, 3)
		a.call("iam:GetAccountAuthorizationDetails", regionStolenKey, 5, withErr("AccessDenied", "User: $arn is not authorized to perform: iam:GetAccountAuthorizationDetails on resource: * because no identity-based policy allows the iam:GetAccountAuthorizationDetails action"))
		a.call("iam:ListAttachedUserPolicies", regionStolenKey, 4)
		a.call("iam:ListGroups", regionStolenKey, 3)
		a.call("s3:ListBuckets", regionStolenKey, 6)
		for _, reg := range []int{regionStolenKey, rUSEast1, rEUWest1, rUSWest2, regionMining} {
			a.call("ec2:DescribeInstances", reg, 2)
		}
		a.call("ec2:DescribeRegions", regionStolenKey, 2)
		a.call("secretsmanager:ListSecrets", regionStolenKey, 4, withErr("AccessDeniedException", "User: $arn is not authorized to perform: secretsmanager:ListSecrets"))
		a.call("lambda:ListFunctions20150331", regionStolenKey, 3)
		a.call("iam:ListAccessKeys", regionStolenKey, 20, withParams(`{"userName":"partner-sftp"}`))
		a.call("iam:CreateAccessKey", regionStolenKey, 8, withParams(`{"userName":"partner-sftp"}`),
			withResp(fmt.Sprintf(`{"accessKey":{"accessKeyId":"AKIA%s","status":"Active","userName":"partner-sftp","createDate":"%s"}}`, upperOf(r.Uint64(), 16), time.Unix(int64(a.t), 0).UTC().Format("Jan 2, 2006, 3:04:05 PM"))))
		a.finish()
	}

	// 4. Crypto-mining in a region nobody uses.
	if vic := v.pick(isSSO("developer")); vic != nil {
		ip, country := attackerIP(r, 2)
		o, at := g.humanAttack(2, vic, ip, country, goMiner, g.localAt(vic.tz, 0, 0, 40+r.IntN(15)))
		tag := g.addScenario(Scenario{ID: "attack-cryptomining-new-region", Kind: "attack", Campaign: "cryptomining", Profile: o.profile,
			Description: fmt.Sprintf("%s's session, used %s, probes regions and GPU instance offerings, then launches p3/g4dn instances in %s, a region nobody uses", vic.name, o.phrase(vic, at), regions[regionMining])})
		a := g.newAttacker(vic, vic.homeAcct, "", false, at, o.ip, o.ua, tag)
		a.geo = o.geo
		a.call("sts:GetCallerIdentity", rUSEast1, 0)
		a.call("ec2:DescribeRegions", rUSEast1, 2)
		for k, reg := range []int{rUSEast1, rUSWest2, rEUWest1, regionMining, regionStolenKey, rAPSoutheast1, regionMining, rEUCentral1} {
			a.call("ec2:DescribeInstanceTypeOfferings", reg, 1, withParams(fmt.Sprintf(`{"locationType":"availability-zone","filters":[{"name":"instance-type","values":["%s"]}]}`, []string{"p3.16xlarge", "g4dn.12xlarge"}[k%2])))
		}
		a.call("ec2:DescribeImages", regionMining, 3)
		a.call("ec2:DescribeSecurityGroups", regionMining, 2)
		a.call("ec2:ImportKeyPair", regionMining, 4)
		a.call("ec2:AuthorizeSecurityGroupIngress", regionMining, 3, withParams(`{"groupId":"sg-0f3b2c1d4e5a69788","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"groups":{},"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}`))
		for k, it := range []string{"p3.16xlarge", "p3.16xlarge", "g4dn.12xlarge", "g4dn.12xlarge"} {
			opts := []callOpt{withParams(fmt.Sprintf(`{"instancesSet":{"items":[{"imageId":"ami-0a1b2c3d4e5f60718","minCount":1,"maxCount":%d}]},"instanceType":"%s","blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false}`, 8, it))}
			if k == 0 {
				opts = append(opts, withErr("Client.VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 64 allows for the instance bucket that the specified instance type belongs to."))
			}
			a.call("ec2:RunInstances", regionMining, 5, opts...)
		}
		a.call("ec2:DescribeInstances", regionMining, 20)
		a.finish()
	}

	// 5. CloudTrail stopped, then S3 exfiltration.
	if vic := v.pick(isSSO("admin", "oncall")); vic != nil {
		ip, country := attackerIP(r, 3)
		o, at := g.humanAttack(3, vic, ip, country, exfilCurl, g.localAt(vic.tz, 0, 4, r.IntN(30)))
		tag := g.addScenario(Scenario{ID: "attack-cloudtrail-stop-s3-exfil", Kind: "attack", Campaign: "exfiltration", Profile: o.profile,
			Description: fmt.Sprintf("%s's session, used %s, stops the organisation trail and deletes a regional one, then lists and downloads a backup bucket and opens it with a bucket policy and ACL", vic.name, o.phrase(vic, at))})
		a := g.newAttacker(vic, acctProd, "", false, at, o.ip, o.ua, tag)
		a.geo = o.geo
		a.call("cloudtrail:DescribeTrails", rUSEast1, 0)
		a.call("cloudtrail:GetTrailStatus", rUSEast1, 3)
		a.call("cloudtrail:StopLogging", rUSEast1, 5)
		a.call("cloudtrail:DeleteTrail", rEUWest1, 6)
		a.call("s3:ListBuckets", rUSEast1, 10)
		bucket := g.res[acctProd].buckets[4]
		a.call("s3:GetBucketPolicy", rUSEast1, 4, withParams(fmt.Sprintf(`{"bucketName":"%s","Host":"%s.s3.amazonaws.com","policy":""}`, bucket, bucket)), withErr("NoSuchBucketPolicy", "The bucket policy does not exist"))
		a.call("s3:ListObjects", rUSEast1, 3, withParams(fmt.Sprintf(`{"bucketName":"%s","Host":"%s.s3.us-east-1.amazonaws.com","prefix":"","list-type":"2"}`, bucket, bucket)))
		for k := 0; k < 60; k++ {
			a.call("s3:GetObject", rUSEast1, 1.5, withParams(fmt.Sprintf(`{"bucketName":"%s","Host":"%s.s3.us-east-1.amazonaws.com","key":"backups/pg/%s-%03d.sql.gz"}`, bucket, bucket, accounts[acctProd].Name, k)))
		}
		a.call("s3:PutBucketPolicy", rUSEast1, 10, withParams(fmt.Sprintf(`{"bucketName":"%s","Host":"%s.s3.amazonaws.com","policy":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*"}]}}`, bucket, bucket, bucket)))
		a.call("s3:PutBucketAcl", rUSEast1, 5, withParams(fmt.Sprintf(`{"bucketName":"%s","Host":"%s.s3.amazonaws.com","acl":"","x-amz-acl":"public-read"}`, bucket, bucket)))
		a.finish()
	}

	// 6. The nightly job's role, at 14:00, reading IAM and secrets.
	if vic := v.pick(func(id *identity) bool { return id.auto != nil && id.auto.role == "nightly-backup" }); vic != nil {
		tag := g.addScenario(Scenario{ID: "attack-automation-off-schedule", Kind: "attack", Campaign: "automation-abuse", Profile: ProfileAutomation,
			Description: fmt.Sprintf("the %s role, which runs nightly at 02:00 UTC, acts at 14:00 UTC from its usual address with its own user agent and reads IAM and Secrets Manager", vic.name)})
		a := g.newAttacker(vic, acctProd, "", false, g.localAt(time.UTC, 1, 14, r.IntN(20)), vic.fixedIP, vic.auto.ua, tag)
		a.geo = geoFamiliar
		a.call("sts:GetCallerIdentity", rUSEast1, 0)
		for _, k := range []string{"iam:ListUsers", "iam:ListRoles", "iam:GetUser", "iam:ListAccessKeys", "iam:ListAttachedRolePolicies"} {
			a.call(k, rUSEast1, 2)
		}
		a.call("secretsmanager:ListSecrets", rUSEast1, 3)
		for k := 0; k < 4; k++ {
			a.call("secretsmanager:GetSecretValue", rUSEast1, 2, withParams(fmt.Sprintf(`{"secretId":"%s"}`, g.res[acctProd].secrets[k])))
		}
		a.call("secretsmanager:GetSecretValue", rUSEast1, 2, withParams(`{"secretId":"prod/admin/break-glass"}`), withErr("AccessDeniedException", "User: $arn is not authorized to perform: secretsmanager:GetSecretValue on resource: prod/admin/break-glass"))
		a.finish()
	}

	// 7. The quiet reporting role, mid-afternoon, from a new AWS address.
	g.plantQuietRole(v)

	// 1. Every Stratus Red Team technique, in three campaigns.
	if err := g.plantStratus(r, v, isIAM(""), isSSO("admin", "oncall")); err != nil {
		return err
	}
	sort.SliceStable(g.attacks, func(i, j int) bool { return g.attacks[i].t < g.attacks[j].t })
	return nil
}
