// Package storetest is the conformance suite every store.Backend must pass
// identically, and the deterministic CloudTrail-shaped fixture it runs on.
package storetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/offtrail/offtrail/detector/store"
)

// Doc is one fixture document: its id and its source as JSON decodes it
// (map[string]any, strings and booleans only), so sources compare with
// reflect.DeepEqual after a round trip through any backend.
type Doc struct {
	ID     string
	Source map[string]any
}

// StoreDoc encodes d for a BulkWriter or WriteSignals.
func (d Doc) StoreDoc() store.Doc {
	raw, err := json.Marshal(d.Source)
	if err != nil {
		panic(err) // fixture sources are plain JSON values
	}
	return store.Doc{ID: d.ID, Source: raw}
}

// FixtureBase is the start of the fixture's time range; documents spread
// over the 48 hours that follow.
var FixtureBase = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

// FixtureSize is the number of documents Fixture returns.
const FixtureSize = 200

// Fixture returns FixtureSize deterministic documents for a seed.
func Fixture(seed uint64) []Doc { return FixtureN(seed, FixtureSize) }

type identity struct {
	arn, typ, user, account string
}

var (
	fixtureIdentities = []identity{
		{"arn:aws:iam::111111111111:user/alice", "IAMUser", "alice", "111111111111"},
		{"arn:aws:iam::111111111111:user/bob", "IAMUser", "bob", "111111111111"},
		{"arn:aws:iam::111111111111:user/carol", "IAMUser", "carol", "111111111111"},
		{"arn:aws:sts::111111111111:assumed-role/deployer/ci-run", "AssumedRole", "deployer", "111111111111"},
		{"arn:aws:iam::222222222222:user/dave", "IAMUser", "dave", "222222222222"},
		{"arn:aws:iam::222222222222:user/erin", "IAMUser", "erin", "222222222222"},
		{"arn:aws:sts::222222222222:assumed-role/Admin/erin", "AssumedRole", "Admin", "222222222222"},
		{"arn:aws:sts::222222222222:assumed-role/lambda-exec/fn", "AssumedRole", "lambda-exec", "222222222222"},
		{"arn:aws:iam::333333333333:user/frank", "IAMUser", "frank", "333333333333"},
		{"arn:aws:iam::333333333333:root", "Root", "root", "333333333333"},
		{"arn:aws:sts::333333333333:assumed-role/backup/job", "AssumedRole", "backup", "333333333333"},
		{"arn:aws:iam::333333333333:user/grace", "IAMUser", "grace", "333333333333"},
	}
	fixtureActions = []struct{ provider, action string }{
		{"iam.amazonaws.com", "ListUsers"},
		{"iam.amazonaws.com", "CreateUser"},
		{"iam.amazonaws.com", "AttachUserPolicy"},
		{"iam.amazonaws.com", "CreateAccessKey"},
		{"s3.amazonaws.com", "GetObject"},
		{"s3.amazonaws.com", "PutObject"},
		{"s3.amazonaws.com", "ListBuckets"},
		{"s3.amazonaws.com", "DeleteBucket"},
		{"sts.amazonaws.com", "AssumeRole"},
		{"sts.amazonaws.com", "GetCallerIdentity"},
		{"signin.amazonaws.com", "ConsoleLogin"},
		{"ec2.amazonaws.com", "DescribeInstances"},
		{"ec2.amazonaws.com", "RunInstances"},
		{"cloudtrail.amazonaws.com", "StopLogging"},
		{"cloudtrail.amazonaws.com", "DeleteTrail"},
	}
	fixtureRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"}
)

// skewed picks an index in [0,n) with a heavy head, as real activity is.
func skewed(r *rand.Rand, n int) int {
	a, b := r.IntN(n), r.IntN(n)
	return min(a, b)
}

// FixtureN returns n deterministic ECS-shaped CloudTrail documents. Their
// quirks are deliberate: timestamp ties, documents exactly on the hour,
// millisecond and +02:00 timestamps, missing fields, a boolean field, flat
// dotted keys ("user.name") and a dotted key inside a nested object
// ({"cloud":{"account.id":..}}).
func FixtureN(seed uint64, n int) []Doc {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	docs := make([]Doc, 0, n)
	span := 48 * 60 * 60
	var prev time.Time
	for i := range n {
		id := fixtureIdentities[skewed(r, len(fixtureIdentities))]
		act := fixtureActions[skewed(r, len(fixtureActions))]
		region := fixtureRegions[skewed(r, len(fixtureRegions))]

		ts := FixtureBase.Add(time.Duration(r.IntN(span)) * time.Second)
		switch {
		case i > 0 && (i%10 == 9 || i%20 == 8):
			ts = prev // a tie with the previous document (groups of 2 and 3)
		case i%17 == 0:
			ts = ts.Truncate(time.Hour) // exactly on an hour boundary
		case i%5 == 1:
			ts = ts.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		}
		prev = ts
		var tsText string
		switch {
		case i%23 == 22:
			tsText = ts.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000-07:00")
		case i%3 == 0:
			tsText = ts.Format("2006-01-02T15:04:05Z")
		default:
			tsText = ts.Format("2006-01-02T15:04:05.000Z")
		}

		event := map[string]any{
			"provider": act.provider,
			"kind":     "event",
		}
		if i%31 != 30 {
			event["action"] = act.action
		}
		if i%11 != 10 {
			if r.IntN(5) == 0 {
				event["outcome"] = "failure"
			} else {
				event["outcome"] = "success"
			}
		}
		if i%6 != 5 {
			event["ingested"] = ts.Add(time.Duration(r.IntN(900)) * time.Second).Format("2006-01-02T15:04:05.000Z")
		}

		ct := map[string]any{
			"event_version": "1.08",
		}
		ui := map[string]any{"type": id.typ}
		if i%19 != 18 {
			ui["arn"] = id.arn
		}
		ct["user_identity"] = ui
		if act.action == "ConsoleLogin" {
			ct["console_login"] = map[string]any{
				"additional_eventdata": map[string]any{"mfa_used": r.IntN(3) != 0},
			}
		}

		var cloud map[string]any
		if i%4 == 0 {
			cloud = map[string]any{"account.id": id.account}
		} else {
			cloud = map[string]any{"account": map[string]any{"id": id.account}}
		}
		if i%13 != 12 {
			cloud["region"] = region
		}

		src := map[string]any{
			"@timestamp": tsText,
			"event":      event,
			"cloud":      cloud,
			"aws":        map[string]any{"cloudtrail": ct},
		}
		addNetwork(src, i)
		if i%7 == 0 {
			src["user.name"] = id.user
		} else {
			src["user"] = map[string]any{"name": id.user}
		}
		docs = append(docs, Doc{ID: fmt.Sprintf("evt-%04x-%06d", r.IntN(0x10000), i), Source: src})
	}
	return docs
}

// fixtureIPs are the client addresses of the fixture: IPv4 either side of
// prefix boundaries (10.1.16.0/20, 10.1.2.0/26), IPv6 inside and outside
// 2001:db8::/32. Raw CloudTrail also writes service names there.
var fixtureIPs = []string{
	"10.1.2.3", "10.1.2.70", "10.1.17.40", "10.1.31.255", "10.1.32.1",
	"192.168.7.9", "81.2.69.160", "2001:db8::1", "2001:db8:0:1::5", "2a02:1810:abcd::7",
}

var fixtureAgents = []string{
	"aws-cli/2.15.0 Python/3.11.6 Linux/6.1", "aws-cli/1.29.0 Python/3.9", "Boto3/1.34.0 Python/3.12",
	"aws-sdk-go-v2/1.30.0 os/linux", "Mozilla/5.0 (Macintosh)", "console.amazonaws.com",
}

// addNetwork sets the client of document i, derived from i alone so the
// random sequence of the other fields stays as it was: source.ip (mapped
// as ip), sourceIPAddress (a keyword, as raw CloudTrail has it) and the
// user agent; each is missing from some documents.
func addNetwork(src map[string]any, i int) {
	ip := fixtureIPs[(i*7)%len(fixtureIPs)]
	switch {
	case i%9 == 4:
		src[FieldRawIP] = "ec2.amazonaws.com"
	case i%9 == 7:
		// no address at all
	default:
		src["source"] = map[string]any{"ip": ip}
		src[FieldRawIP] = ip
	}
	if i%8 != 3 {
		src["user_agent"] = map[string]any{"original": fixtureAgents[(i*5)%len(fixtureAgents)]}
	}
}
