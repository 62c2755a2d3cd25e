package synth

import (
	"fmt"
	"strings"
	"time"
)

// Rule ids of the shipped pack (rules/aws).
const (
	ruleRareMethodUser    = "aws-rare-method-for-user"
	ruleRareMethodCity    = "aws-rare-method-for-city"
	ruleRareMethodCountry = "aws-rare-method-for-country"
	ruleRareError         = "aws-rare-error-code"
	ruleConsoleOffHours   = "aws-console-login-off-hours"
	ruleLearnedHours      = "aws-activity-outside-learned-hours"
	ruleNewServiceRegion  = "aws-new-service-in-region"
	ruleFirstHighRisk     = "aws-first-high-risk-action"
	ruleNewCountry        = "aws-new-country-for-identity"
)

// special is a burst planned by a scenario rather than by habit.
func special(t int64, acct, region int, tl tool, ip string, table *actTable, n int, gap float64, tag int, login bool, seed uint64) burst {
	return burst{t: t, n: n, gap: gap, seed: seed, acct: acct, region: region, tool: tl, ip: ip, table: table, tag: tag, login: login, sessDay: t / 86400, sessT: t - 120}
}

// localAt is hour:minute local time on the date dayBack days before the
// end of the period, moved a day earlier if that is not before the end.
func (g *gen) localAt(tz *time.Location, dayBack int, hour, minute int) time.Time {
	d := g.end.Add(-time.Duration(dayBack) * 24 * time.Hour).In(tz)
	t := time.Date(d.Year(), d.Month(), d.Day(), hour, minute, 0, 0, tz)
	for !t.Before(g.end) {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

func weekday(t time.Time) bool { return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday }

// benign plants the novelty a real organisation has and a detector should
// not mistake for an attack (or should, at low severity, and be dismissed).
func (g *gen) benign() {
	r := newRNG(g.cfg.Seed, 'b')
	humans := g.findAll(func(id *identity) bool { return id.human != nil })

	// 1. A new hire: the last developer starts after day 10.
	if nh := lastOf(humans, func(id *identity) bool { return id.human.name == "developer" }); nh != nil {
		// The first local working day whose index is past day 10 (not a
		// holiday: nobody starts on one, and the day would be empty).
		d := g.start.In(nh.tz)
		d = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, nh.tz)
		for g.dayIndex(d) < min(11, g.days/3) || !weekday(d) || g.isHoliday(nh.loc, d.Year(), d.Month(), d.Day()) {
			d = d.AddDate(0, 0, 1)
		}
		fd := g.dayIndex(d)
		nh.firstDay, nh.info.FirstDay = fd, fd
		tag := g.addScenario(Scenario{ID: "benign-new-hire", Kind: "benign",
			Description: fmt.Sprintf("%s joins the developers on day %d; their first working day is labelled (no history to compare with)", nh.name, fd),
			Account:     accounts[nh.homeAcct].ID, ExpectedRules: []string{ruleNewServiceRegion, ruleRareMethodUser, ruleFirstHighRisk}})
		nh.newHireTag = tag
	}

	// 2. The data team adopts Step Functions half-way through.
	novel := newTable(parseWeights(`states:ListStateMachines 3 states:DescribeStateMachine 4 states:StartExecution 3 states:DescribeExecution 6
		states:ListExecutions 4 states:GetExecutionHistory 3 states:CreateStateMachine 0.3 states:UpdateStateMachine 0.5`))
	tag := g.addScenario(Scenario{ID: "benign-service-adoption", Kind: "benign",
		Description: fmt.Sprintf("the data engineers start using AWS Step Functions from day %d", g.days/2),
		Account:     accounts[acctProd].ID, ExpectedRules: []string{ruleNewServiceRegion, ruleRareMethodUser}})
	for _, id := range humans {
		if id.human.name == "dataeng" {
			id.novel, id.novelFrom, id.novelTag = novel, g.days/2, tag
		}
	}

	// 3. An incident: the first on-call engineer works through a night.
	if oc := g.find(func(id *identity) bool { return id.oncallRank == 0 }); oc != nil {
		tag := g.addScenario(Scenario{ID: "benign-oncall-incident", Kind: "benign",
			Description: fmt.Sprintf("%s is paged at night for a production incident: console sign-in, metrics, logs, restarts and scaling between 01:30 and 04:00 local time", oc.name),
			Account:     accounts[acctProd].ID, ExpectedRules: []string{ruleLearnedHours, ruleConsoleOffHours, ruleRareMethodUser}})
		table := newTable(parseWeights(`monitoring:GetMetricData 10 monitoring:DescribeAlarms 5 logs:StartQuery 4 logs:GetQueryResults 8 logs:FilterLogEvents 6
			ec2:DescribeInstances 6 ec2:DescribeInstanceStatus 4 ec2:RebootInstances 0.6 rds:DescribeDBInstances 4 rds:DescribeEvents 3 rds:RebootDBInstance 0.4
			ecs:DescribeServices 4 ecs:UpdateService 0.8 autoscaling:DescribeAutoScalingGroups 3 autoscaling:SetDesiredCapacity 0.8
			elasticloadbalancing:DescribeTargetHealth 4`))
		t0 := g.localAt(oc.tz, 2, 1, 30+r.IntN(20)).Unix()
		ip := oc.ips[len(oc.ips)-1]
		for k := 0; k < 9; k++ {
			oc.special = append(oc.special, special(t0+int64(k)*900+int64(r.IntN(300)), acctProd, oc.homeRegion(), toolConsole, ip, table, 12+r.IntN(20), 4, tag, k == 0, r.Uint64()))
		}
		oc.special[0].tool = toolConsole
		for k := 1; k < len(oc.special); k += 2 {
			oc.special[k].tool = toolCLI
		}
	}

	// 4. A region launched for a customer: Terraform builds it, CI deploys
	// there, administrators look around.
	launch := max(1, g.days-5)
	tag = g.addScenario(Scenario{ID: "benign-new-region", Kind: "benign",
		Description: fmt.Sprintf("%s is launched for a customer on day %d: Terraform builds it, CI deploys to it and administrators start using it", regions[regionLaunch], launch),
		Account:     accounts[acctProd].ID, ExpectedRules: []string{ruleNewServiceRegion}})
	for _, id := range g.ids {
		switch {
		case id.auto != nil && id.auto.kind == kindTerraform && id.auto.role == "terraform-apply":
			t0 := g.start.Add(time.Duration(launch)*24*time.Hour).Truncate(24*time.Hour).Unix() + 10*3600
			id.special = append(id.special, special(t0, acctProd, regionLaunch, toolSDK, id.fixedIP, id.table, 400, 0.4, tag, false, r.Uint64()))
			id.regionTag = tag
		case id.auto != nil && id.auto.kind == kindCI && id.accW[acctProd] > 0,
			id.human != nil && id.human.name == "admin":
			id.regionTag, id.regionFrom = tag, launch+1
		}
	}

	// 5. A developer tries Amazon Bedrock one afternoon.
	devs := g.findAll(func(id *identity) bool { return id.human != nil && id.human.name == "developer" && id.firstDay == 0 })
	if len(devs) > 1 {
		dev := devs[1]
		tag := g.addScenario(Scenario{ID: "benign-new-api", Kind: "benign",
			Description: fmt.Sprintf("%s tries Amazon Bedrock from the office one afternoon (ListFoundationModels, GetFoundationModel, InvokeModel)", dev.name),
			Account:     accounts[acctStaging].ID, ExpectedRules: []string{ruleRareMethodUser, ruleNewServiceRegion, ruleFirstHighRisk}})
		t := g.localAt(dev.tz, 1, 14, r.IntN(50))
		for !weekday(t) {
			t = t.AddDate(0, 0, -1)
		}
		table := newTable(parseWeights(`bedrock:ListFoundationModels 2 bedrock:GetFoundationModel 3 bedrock:InvokeModel 8`))
		dev.special = append(dev.special, special(t.Unix(), acctStaging, rUSEast1, toolCLI, dev.ips[0], table, 14, 25, tag, false, r.Uint64()))
	}

	// Habits a detector must learn rather than flag. Each draws from its
	// own stream, so the novelty above stays as it was.
	g.benignOncallNights()
	g.benignTeamChange(humans)
	g.benignTravel(humans)
	g.benignWeekendWorkers(humans)
}

// free says whether a person can carry one more benign story without
// mixing labels: not new, not on call, nothing special planned already.
func free(id *identity) bool {
	return id.firstDay == 0 && id.oncallRank < 0 && id.special == nil && id.novel == nil &&
		id.trip == nil && id.change == nil && id.weekendTag == 0
}

// 6. On-call engineers' night pages during their rota weeks, as planHuman
// plans them anyway; only the labels are new.
func (g *gen) benignOncallNights() {
	tag := g.addScenario(Scenario{ID: "benign-oncall-nights", Kind: "benign",
		Description: "on-call engineers paged at night during their rota week: short sessions between midnight and about 06:00 local time, with their usual address, client and actions",
		Account:     accounts[acctProd].ID, ExpectedRules: []string{ruleLearnedHours, ruleConsoleOffHours}})
	for _, id := range g.ids {
		if id.oncallRank >= 0 {
			id.oncallTag = tag
		}
	}
}

// 7. A developer moves to the data team a few days before the end.
func (g *gen) benignTeamChange(humans []*identity) {
	var id *identity
	var days []int
	for i := len(humans) - 1; i >= 0 && len(days) == 0; i-- {
		if id = humans[i]; id.human.name == "developer" && free(id) {
			days = g.changeDays(id)
		}
	}
	if len(days) == 0 {
		return
	}
	r := newRNG(g.cfg.Seed, 'b', 'c')
	from := days[r.IntN(len(days))]
	tag := g.addScenario(Scenario{ID: "benign-team-change", Kind: "benign",
		Description: fmt.Sprintf("%s moves from the developers to the data engineers on day %d; from then on they call what data engineers call", id.name, from),
		Account:     accounts[id.homeAcct].ID, ExpectedRules: []string{ruleRareMethodUser, ruleNewServiceRegion, ruleFirstHighRisk, ruleRareError}})
	id.change = &change{from: from, table: personalTable(r, parseWeights(humanRoles["dataeng"].actions), 0.6+0.35*r.Float64()), tag: tag}
	id.benignLead = true
}

// changeDays are the days a person can change roles on: working days
// among the last five but the last (so the new habits show), not on
// holiday (so they show at all).
func (g *gen) changeDays(id *identity) []int {
	var days []int
	for k := g.days - 5; k < g.days-1; k++ {
		d := g.localDate(id.tz, k)
		if weekday(d) && !g.isHoliday(id.loc, d.Year(), d.Month(), d.Day()) && (k < id.vacStart || k >= id.vacStart+id.vacLen) {
			days = append(days, k)
		}
	}
	return days
}

// localDate is the local midnight of day index k in tz.
func (g *gen) localDate(tz *time.Location, k int) time.Time {
	s := g.start.In(tz)
	d := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, tz)
	for g.dayIndex(d) < k {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// 8. Someone works three or four days from another office's country in
// the last week: that office's network or a hotel, their own laptop,
// their usual hours in the visited timezone.
func (g *gen) benignTravel(humans []*identity) {
	id := lastOf(humans, free)
	if id == nil {
		return
	}
	r := newRNG(g.cfg.Seed, 'b', 't')
	var away []*location
	for i := range locations {
		if locations[i].country != id.loc.country {
			away = append(away, &locations[i])
		}
	}
	loc := away[r.IntN(len(away))]
	tz, err := time.LoadLocation(loc.tz)
	if err != nil {
		return
	}
	dates := g.tripDates(id, 3+r.IntN(2), r)
	if len(dates) == 0 {
		return
	}
	tag := g.addScenario(Scenario{ID: "benign-travel", Kind: "benign",
		Description: fmt.Sprintf("%s works %d days from the %s office's country (%s), from that office or a hotel, with their own laptop, at their usual hours in %s", id.name, len(dates), loc.city, loc.country, loc.tz),
		Account:     accounts[id.homeAcct].ID, ExpectedRules: []string{ruleNewCountry, ruleRareMethodCountry, ruleRareMethodCity, ruleLearnedHours, ruleConsoleOffHours}})
	office := loc.office + fmt.Sprint(10+r.IntN(200))
	hotel := g.placed(loc.country, func() string {
		return fmt.Sprintf("%s%d.%d", loc.home[r.IntN(len(loc.home))], 1+r.IntN(254), 1+r.IntN(254))
	})
	id.trip = &trip{dates: dates}
	id.benignLead = true
	for _, d := range dates {
		day0 := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, tz)
		dateKey := uint64(d.Year()*10000 + int(d.Month())*100 + d.Day())
		dr := newRNG(g.cfg.Seed, 'h', uint64(id.idx), dateKey, 't')
		ip := hotel
		if dr.chance(0.6) {
			ip = office
		}
		spans := workSpans(nil, id, id.human.rate*dr.lognorm(0.35), dr)
		for i := range spans {
			spans[i].tag = tag
		}
		id.special = append(id.special, g.spanBursts(id, spans, day0.Unix(), g.dayIndex(day0), dateKey, ip, dr)...)
	}
}

// tripDates picks n (or, if the weekend is in the way, fewer but at least
// three) consecutive working days among the last seven whole days.
func (g *gen) tripDates(id *identity, n int, r *rngT) []time.Time {
	e := g.end.In(id.tz)
	var runs [][]time.Time
	for ; n >= 3 && len(runs) == 0; n-- {
		for last := 1; last+n-1 <= 7; last++ {
			var run []time.Time
			for k := last + n - 1; k >= last; k-- {
				d := time.Date(e.Year(), e.Month(), e.Day()-k, 0, 0, 0, 0, time.UTC)
				if !weekday(d) || g.dayIndex(time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, id.tz)) < 0 {
					break
				}
				run = append(run, d)
			}
			if len(run) == n {
				runs = append(runs, run)
			}
		}
	}
	if len(runs) == 0 {
		return nil
	}
	return runs[r.IntN(len(runs))]
}

// 9. Two or three people who work about one weekend in three, a couple of
// hours around midday from home, all period long; the sessions of the last
// week are labelled (earlier ones are the history that makes them usual).
func (g *gen) benignWeekendWorkers(humans []*identity) {
	want := 2
	if len(humans) >= 20 {
		want = 3
	}
	var workers []*identity
	for i := len(humans) - 1; i >= 0 && len(workers) < want; i-- {
		if free(humans[i]) {
			workers = append(workers, humans[i])
		}
	}
	if len(workers) == 0 {
		return
	}
	var names []string
	for _, id := range workers {
		names = append(names, id.name)
	}
	tag := g.addScenario(Scenario{ID: "benign-weekend-worker", Kind: "benign",
		Description: fmt.Sprintf("%s work about one weekend in three, a one to three hour session around midday from home, all period long; the last week's sessions are labelled", joinAnd(names)),
		Account:     accounts[workers[0].homeAcct].ID, ExpectedRules: []string{ruleLearnedHours, ruleConsoleOffHours}})
	for _, id := range workers {
		id.weekendTag = tag
	}
	// The first of them always works the last weekend day of the period,
	// so the scenario has events whatever the draws.
	id := workers[0]
	e := g.end.In(id.tz)
	for k := 1; k <= 7; k++ {
		d := time.Date(e.Year(), e.Month(), e.Day()-k, 0, 0, 0, 0, id.tz)
		if idx := g.dayIndex(d); !weekday(d) && idx > 0 {
			id.weekendDay = idx
			break
		}
	}
}

// joinAnd lists names as prose: "a, b and c".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func lastOf(ids []*identity, pred func(*identity) bool) *identity {
	for i := len(ids) - 1; i >= 0; i-- {
		if pred(ids[i]) {
			return ids[i]
		}
	}
	return nil
}

func (id *identity) homeRegion() int { return argmax(id.regW) }

// ---- expected rules ----

// highRisk mirrors the action list of rules/aws/aws-first-high-risk-action.yml
// (a test keeps them in step).
var highRisk = map[string]bool{}

func init() {
	for _, a := range highRiskActions {
		highRisk[a] = true
	}
}

var highRiskActions = []string{
	"StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutInsightSelectors", "DeleteFlowLogs",
	"DeleteResolverQueryLogConfig", "DisassociateResolverQueryLogConfig", "DeleteDetector", "UpdateDetector", "DeleteMembers",
	"DisassociateMembers", "DisassociateFromMasterAccount", "DisassociateFromAdministratorAccount", "StopMonitoringMembers",
	"CreateIPSet", "DeleteThreatIntelSet", "DeletePublishingDestination", "DeleteConfigRule", "DeleteConfigurationRecorder",
	"StopConfigurationRecorder", "DeleteDeliveryChannel", "DisableSecurityHub", "DeleteAnalyzer", "DisableMacie", "DeleteLogGroup",
	"DeleteLogStream", "PutRetentionPolicy", "DeleteAlarms", "DisableAlarmActions", "PutBucketLogging", "PutBucketLifecycle",
	"PutBucketLifecycleConfiguration", "DisableEbsEncryptionByDefault", "DeleteAccountPasswordPolicy", "LeaveOrganization", "DeleteGraph",
	"CreateAccessKey", "CreateUser", "CreateLoginProfile", "DeleteLoginProfile", "CreateRole", "UpdateAssumeRolePolicy",
	"CreateServiceSpecificCredential", "UploadSSHPublicKey", "UploadSigningCertificate", "CreateVirtualMFADevice", "DeactivateMFADevice",
	"CreateSAMLProvider", "UpdateSAMLProvider", "CreateOpenIDConnectProvider", "CreateTrustAnchor", "CreateProfile", "GetFederationToken",
	"AddPermission20150331", "AddPermission20150331v2", "UpdateFunctionCode20150331v2", "UpdateFunctionConfiguration20150331v2",
	"PublishLayerVersion20181031", "PutKeyPolicy", "UpdateLoginProfile", "AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy",
	"PutUserPolicy", "PutRolePolicy", "PutGroupPolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion", "AddUserToGroup",
	"DeleteUserPermissionsBoundary", "DeleteRolePermissionsBoundary", "ModifySnapshotAttribute", "ModifyImageAttribute",
	"ModifyDBSnapshotAttribute", "ModifyDBClusterSnapshotAttribute", "PutBucketPolicy", "PutBucketAcl", "PutObjectAcl",
	"PutBucketReplication", "DeleteBucketPublicAccessBlock", "DeleteAccountPublicAccessBlock", "PutResourcePolicy", "StartExportTask",
	"CreateExportTask", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "CreateNetworkAclEntry", "ReplaceNetworkAclEntry",
	"GetSecretValue", "BatchGetSecretValue", "GetParameter", "GetParameters", "GetParametersByPath", "GetPasswordData",
	"GetCredentialReport", "DescribeInstanceAttribute", "SendCommand", "StartSession", "RunInstances", "StartInstances", "StopInstances",
	"ModifyInstanceAttribute", "UpdateNotebookInstance", "UpdateNotebookInstanceLifecycleConfig", "CreateNotebookInstanceLifecycleConfig",
	"SendSSHPublicKey", "SendSerialConsoleSSHPublicKey", "EnableSerialConsoleAccess", "InvokeModel", "InvokeModelWithResponseStream",
	"Converse", "ConverseStream", "PutFoundationModelEntitlement", "PutUseCaseForModelAccess", "CreateFoundationModelAgreement",
	"DeregisterImage", "DeleteBucket", "DeleteDBInstance", "DeleteDBCluster", "DeleteDBSnapshot", "DeleteSnapshot",
	"ScheduleKeyDeletion", "DisableKey", "DeleteBackupVault", "DeleteRecoveryPoint",
}

// call is what expectRules needs to know about one planted record.
type call struct {
	t                 int64
	name, svc, region string
	errCode           string
	console, noMFA    bool
	fromVictim        bool
	geo               geoNovelty
}

// expectRules says which rules of the pack should catch a planted attack,
// from what the victim normally does.
func (g *gen) expectRules(victim *identity, calls []call) []string {
	set := map[string]bool{}
	usual := map[string]bool{}
	for _, a := range victim.table.acts {
		for reg, w := range victim.regW {
			if w > 0 {
				r := regions[reg]
				if a.svc.global {
					r = regions[rUSEast1]
				}
				usual[a.svc.source+"|"+r] = true
			}
		}
	}
	for _, c := range calls {
		if highRisk[c.name] && !(c.fromVictim && victim.table.has(c.name)) {
			set[ruleFirstHighRisk] = true
		}
		if c.errCode != "" {
			set[ruleRareError] = true
		} else {
			// A foreign address is a new country and city for the
			// command; a new network in a familiar country most likely a
			// new city only; the victim's own addresses neither.
			switch c.geo {
			case geoForeign:
				set[ruleRareMethodCountry], set[ruleRareMethodCity] = true, true
			case geoNewCity:
				set[ruleRareMethodCity] = true
			}
			if !c.fromVictim || !victim.table.has(c.name) {
				set[ruleRareMethodUser] = true
			}
		}
		if c.fromVictim && c.geo == geoForeign {
			set[ruleNewCountry] = true
		}
		if !c.fromVictim || !usual[c.svc+"|"+c.region] {
			set[ruleNewServiceRegion] = true
		}
		if c.fromVictim && g.offHours(victim, c.t) {
			set[ruleLearnedHours] = true
		}
		if c.console {
			u := time.Unix(c.t, 0).UTC()
			if !weekday(u) || u.Hour() < 9 || u.Hour() >= 17 {
				set[ruleConsoleOffHours] = true
			}
		}
	}
	var out []string
	for _, id := range []string{ruleRareMethodUser, ruleRareMethodCity, ruleRareMethodCountry, ruleRareError, ruleConsoleOffHours, ruleLearnedHours, ruleNewServiceRegion, ruleFirstHighRisk, ruleNewCountry} {
		if set[id] {
			out = append(out, id)
		}
	}
	return out
}

// offHours says whether t is outside the identity's habitual hours.
func (g *gen) offHours(id *identity, t int64) bool {
	if id.human != nil {
		l := time.Unix(t, 0).In(id.tz)
		h := float64(l.Hour()) + float64(l.Minute())/60
		return !weekday(l) || h < id.workStart-1 || h > id.workStart+id.workLen+1.5
	}
	u := time.Unix(t, 0).UTC()
	h := float64(u.Hour()) + float64(u.Minute())/60
	switch id.auto.kind {
	case kindScheduled:
		return h < id.auto.at-0.5 || h > id.auto.at+2
	case kindCI:
		return !weekday(u) || h < 12 || h > 23
	case kindTerraform:
		return !weekday(u) || h < 8 || h > 18
	}
	return false
}
