package synth

import (
	"fmt"
	"strconv"
	"strings"
)

// The organisation: three accounts and the regions they run in.

type account struct {
	ID, Name string
	team     string // default team name used in resource names
}

var accounts = []account{
	{ID: "402816733915", Name: "prod", team: "platform"},
	{ID: "718243901562", Name: "staging", team: "platform"},
	{ID: "563918204477", Name: "security", team: "secops"},
}

const (
	acctProd = iota
	acctStaging
	acctSecurity
)

// Regions by index. The first four carry nearly all traffic, the next two
// are used now and then, regionLaunch is opened for a customer late in the
// period (benign novelty) and the last two are used by nobody but
// attackers.
var regions = []string{
	"us-east-1", "eu-west-1", "us-west-2", "ap-south-1",
	"eu-central-1", "ap-southeast-1",
	"ap-southeast-2",
	"sa-east-1", "ap-northeast-3",
}

const (
	rUSEast1 = iota
	rEUWest1
	rUSWest2
	rAPSouth1
	rEUCentral1
	rAPSoutheast1
	regionLaunch
	regionMining
	regionStolenKey
)

// location is where a person works: timezone, country, IP ranges of the
// office and of home connections, and the regions they mostly touch.
type location struct {
	city, tz, country string
	office            string   // a /24 prefix shared by everyone in the office
	home              []string // /16 prefixes of residential ISPs
	regions           []float64
	holidays          []string // MM-DD, public holidays of the country
}

var locations = []location{
	{city: "New York", tz: "America/New_York", country: "US", office: "38.104.52.", home: []string{"68.173.", "100.37.", "173.68.", "71.190."},
		regions: []float64{rUSEast1: 6, rEUWest1: 1, rUSWest2: 2.5, rAPSouth1: 0.2, rEUCentral1: 0.1, rAPSoutheast1: 0.1}, holidays: []string{"01-01", "01-15", "05-27", "07-04", "09-02", "11-28", "12-25"}},
	{city: "Berlin", tz: "Europe/Berlin", country: "DE", office: "213.61.176.", home: []string{"91.64.", "84.191.", "79.246.", "87.123."},
		regions: []float64{rUSEast1: 3, rEUWest1: 6, rUSWest2: 0.5, rAPSouth1: 0.2, rEUCentral1: 0.6, rAPSoutheast1: 0.1}, holidays: []string{"01-01", "03-29", "04-01", "05-01", "05-09", "10-03", "12-25", "12-26"}},
	{city: "Bengaluru", tz: "Asia/Kolkata", country: "IN", office: "182.74.91.", home: []string{"49.204.", "106.51.", "122.172.", "117.198."},
		regions: []float64{rUSEast1: 4, rEUWest1: 1.5, rUSWest2: 0.5, rAPSouth1: 5, rEUCentral1: 0.1, rAPSoutheast1: 0.4}, holidays: []string{"01-26", "03-25", "04-11", "08-15", "10-02", "10-31", "11-01"}},
	{city: "London", tz: "Europe/London", country: "GB", office: "81.98.44.", home: []string{"86.150.", "90.211."},
		regions: []float64{rUSEast1: 3, rEUWest1: 6, rUSWest2: 0.5, rAPSouth1: 0.2, rEUCentral1: 0.4, rAPSoutheast1: 0.1}, holidays: []string{"01-01", "03-29", "04-01", "05-06", "05-27", "08-26", "12-25", "12-26"}},
	{city: "San Francisco", tz: "America/Los_Angeles", country: "US", office: "199.87.12.", home: []string{"98.207.", "73.162.", "24.6."},
		regions: []float64{rUSEast1: 5, rEUWest1: 1, rUSWest2: 4, rAPSouth1: 0.2, rEUCentral1: 0.1, rAPSoutheast1: 0.2}, holidays: []string{"01-01", "01-15", "05-27", "07-04", "09-02", "11-28", "12-25"}},
}

// humanLocations spreads people over the offices: most in New York,
// Berlin and Bengaluru, a few in London and San Francisco.
var humanLocations = []int{0, 1, 2, 0, 1, 2, 3, 0, 2, 4, 1, 2}

// vpnExits are the company VPN's egress addresses (cloud-hosted, so they
// geolocate to Ashburn and Dublin whatever the user's country).
var vpnExits = []string{"3.227.16.40", "3.227.16.41", "52.213.4.18"}

// Automation source addresses: GitHub-hosted runners come from Azure
// ranges and change with every job; Lambda and ECS egress from AWS.
var (
	azureRunnerPrefixes = []string{"20.55.", "40.76.", "20.57.", "13.105."}
	awsEgress           = map[int][]string{
		rUSEast1: {"52.90.", "54.160.", "3.227."}, rEUWest1: {"34.250.", "52.213."},
		rUSWest2: {"54.188.", "44.234."}, rAPSouth1: {"13.233.", "65.0."},
		rEUCentral1: {"3.120.", "18.196."}, rAPSoutheast1: {"13.250.", "54.254."},
		regionLaunch: {"13.236.", "54.206."},
	}
)

// attackerOrigins are places nobody in the organisation works from.
var attackerOrigins = []struct{ country, prefix string }{
	{"RU", "95.24."}, {"CN", "119.123."}, {"BR", "177.72."}, {"VN", "113.161."},
	{"NG", "105.112."}, {"RO", "89.38."}, {"NL", "188.166."}, {"TH", "110.78."},
}

// replayNetworks are /16s of residential, mobile and VPS networks in each
// office country that nobody in the organisation uses: where a stolen
// session is replayed from when the intruder is (or rents a server) in
// the victim's country. With Config.Locate set, draws are redone until
// they geolocate there.
var replayNetworks = map[string][]string{
	"US": {"172.56.", "174.205.", "107.77."},  // T-Mobile, Verizon Wireless, AT&T Mobility
	"DE": {"78.46.", "116.203.", "95.90."},    // Hetzner, Hetzner, Vodafone Kabel
	"IN": {"157.32.", "106.208.", "223.187."}, // Jio, Airtel, Airtel
	"GB": {"2.98.", "92.24.", "109.144."},     // Sky, TalkTalk, EE
}

var firstNames = strings.Fields(`james mary robert patricia john jennifer michael linda david elizabeth
william barbara richard susan joseph jessica thomas sarah lukas anna jonas lea felix laura leon
julia paul lena maximilian hannah arjun priya rahul ananya vikram kavya rohan sneha aditya pooja
karthik divya oliver amelia harry isla george ava noah mia ethan sofia lucas chloe mateo grace
sanjay meera nikhil ishita tobias marie finn clara emil nora`)

var lastNames = strings.Fields(`smith johnson williams brown jones garcia miller davis rodriguez martinez
hernandez lopez wilson anderson taylor thomas moore jackson martin lee muller schmidt schneider
fischer weber meyer wagner becker schulz hoffmann sharma patel singh kumar gupta reddy iyer nair
rao menon evans walker wright hughes green hall wood clarke nguyen kim chen wang park koch richter
klein wolf bauer joshi desai kapoor`)

// resources are the names a request parameter may mention, per account.
type resources struct {
	buckets, functions, tables, roles, users, loggroups, secrets, params,
	clusters, repos, dbs, instances, volumes, snapshots, sgs, amis, prefixes,
	objects []string
	team string
}

func newResources(a int, rng *rngT) *resources {
	env := accounts[a].Name
	r := &resources{team: accounts[a].team}
	if a == acctSecurity {
		r.buckets = []string{"acme-org-cloudtrail", "acme-security-findings", "acme-config-history", "acme-athena-results-sec"}
		r.functions = []string{"guardduty-forwarder", "findings-enricher", "log-shipper"}
		r.tables = []string{"findings", "cloudtrail_logs", "vpc_flow_logs"}
		r.roles = []string{"security-audit", "log-shipper-lambda", "OrganizationAccountAccessRole", "incident-response"}
		r.clusters = []string{"siem"}
	} else {
		r.buckets = []string{"acme-" + env + "-assets", "acme-" + env + "-uploads", "acme-" + env + "-logs", "acme-data-lake-" + env, "acme-" + env + "-backups", "acme-" + env + "-tfstate"}
		r.functions = []string{"orders-api", "payments-webhook", "thumbnailer", "notifications", "search-indexer", "invoice-renderer", "auth-callback"}
		r.tables = []string{"orders", "customers", "sessions", "inventory", "events_raw", "payments"}
		r.roles = []string{"orders-api-lambda", "ecs-task-execution", "github-actions-deploy", "terraform-apply", "nightly-backup", "data-pipeline"}
		r.clusters = []string{env + "-web", env + "-workers"}
	}
	r.users = []string{"ci-legacy", "backup-agent", "grafana-reader", "partner-sftp"}
	r.loggroups = make([]string, 0, len(r.functions))
	for _, f := range r.functions {
		r.loggroups = append(r.loggroups, "/aws/lambda/"+f)
	}
	r.loggroups = append(r.loggroups, "/ecs/"+r.clusters[0], "/aws/rds/instance/"+env+"-db/postgresql")
	r.secrets = []string{env + "/db/master", env + "/stripe/api-key", env + "/github/app-key", env + "/datadog/api-key"}
	r.params = []string{"db-host", "feature-flags", "smtp-password", "api-base-url", "sentry-dsn"}
	r.repos = []string{"web", "api", "worker", "migrations"}
	r.dbs = []string{env + "-db", env + "-db-replica", env + "-analytics"}
	for i := 0; i < 24; i++ {
		r.instances = append(r.instances, "i-0"+rng.hex(16))
		r.volumes = append(r.volumes, "vol-0"+rng.hex(16))
	}
	for i := 0; i < 8; i++ {
		r.snapshots = append(r.snapshots, "snap-0"+rng.hex(16))
		r.sgs = append(r.sgs, "sg-0"+rng.hex(16))
		r.amis = append(r.amis, "ami-0"+rng.hex(16))
	}
	r.prefixes = []string{"raw/2024", "exports", "images/originals", "reports/daily", "tmp", "backups/pg"}
	r.objects = []string{"part-00000.parquet", "part-00001.parquet", "manifest.json", "invoice.pdf", "thumb.jpg", "dump.sql.gz", "data.csv"}
	return r
}

// value resolves a template variable for one event; pick makes the choice
// a property of the event, so the same event renders the same way
// whichever order events are rendered in.
func (r *resources) value(name string, pick uint64, ctx *renderCtx) string {
	p := int(pick >> 8)
	switch name {
	case "bucket":
		return r.buckets[p%len(r.buckets)]
	case "function", "session":
		return r.functions[p%len(r.functions)]
	case "table":
		return r.tables[p%len(r.tables)]
	case "role":
		return r.roles[p%len(r.roles)]
	case "user":
		return r.users[p%len(r.users)]
	case "loggroup":
		return r.loggroups[p%len(r.loggroups)]
	case "secret":
		return r.secrets[p%len(r.secrets)]
	case "param":
		return r.params[p%len(r.params)]
	case "cluster":
		return r.clusters[p%len(r.clusters)]
	case "repo":
		return r.repos[p%len(r.repos)]
	case "db":
		return r.dbs[p%len(r.dbs)]
	case "instance":
		return r.instances[p%len(r.instances)]
	case "volume":
		return r.volumes[p%len(r.volumes)]
	case "snapshot":
		return r.snapshots[p%len(r.snapshots)]
	case "sg":
		return r.sgs[p%len(r.sgs)]
	case "ami":
		return r.amis[p%len(r.amis)]
	case "prefix":
		return r.prefixes[p%len(r.prefixes)]
	case "object":
		return r.objects[(p/7)%len(r.objects)]
	case "team":
		return r.team
	case "itype":
		return instanceTypes[p%len(instanceTypes)]
	case "acct":
		return ctx.acct
	case "region":
		return ctx.region
	case "arn":
		return ctx.arn
	case "now":
		return ctx.now
	case "ago":
		return ctx.ago
	case "uuid":
		return uuidString(pick, pick*0x9E3779B97F4A7C15)
	case "hex4", "hex7", "hex16", "hex17", "hex32", "hex64":
		n, _ := strconv.Atoi(name[3:])
		return hexOf(pick, n)
	case "key16":
		return upperOf(pick, 16)
	}
	panic(fmt.Sprintf("synth: template variable $%s", name))
}

var instanceTypes = []string{"t3.medium", "t3.large", "m6i.large", "m6i.xlarge", "c6g.large", "r6g.large", "t3.small"}
