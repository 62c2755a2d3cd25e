package ruletest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/geoip"
	"github.com/offtrail/offtrail/internal/ingest"
	"github.com/offtrail/offtrail/internal/synth"
)

// The compact events become CloudTrail records as AWS delivers them
// (userIdentity, eventSource, additionalEventData, ...), then documents
// through the one pipeline `offtrail load` uses (internal/ingest), so a
// test reads the fields exactly as a rule does in production.

// record renders e as a raw CloudTrail record.
func record(e Event, id string) (map[string]any, error) {
	src, region, err := serviceOf(e)
	if err != nil {
		return nil, err
	}
	ui, err := userIdentity(e)
	if err != nil {
		return nil, err
	}
	rec := map[string]any{
		"eventVersion":       "1.09",
		"userIdentity":       ui,
		"eventTime":          e.At.UTC().Format("2006-01-02T15:04:05Z"),
		"eventSource":        src,
		"eventName":          e.Action,
		"awsRegion":          region,
		"sourceIPAddress":    e.IP,
		"userAgent":          e.UserAgent,
		"requestParameters":  nil,
		"responseElements":   nil,
		"requestID":          uuidOf("request", id),
		"eventID":            id,
		"readOnly":           readOnly(e.Action),
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": e.Account,
		"eventCategory":      "Management",
	}
	if e.Action == "ConsoleLogin" {
		result := "Success"
		if e.Error != "" {
			result = "Failure"
			rec["errorMessage"] = e.Error
		}
		mfa := "No"
		if e.MFA == "true" {
			mfa = "Yes"
		}
		rec["eventType"] = "AwsConsoleSignIn"
		rec["readOnly"] = false
		rec["responseElements"] = map[string]any{"ConsoleLogin": result}
		rec["additionalEventData"] = map[string]any{"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": mfa}
		return rec, nil
	}
	if e.Error != "" {
		rec["errorCode"] = e.Error
		rec["errorMessage"] = "User: " + arnOf(ui) + " is not authorized to perform this action (" + e.Error + ")"
	}
	return rec, nil
}

// serviceOf defaults the service from the action (the synthetic
// organisation's catalog and the Stratus Red Team recordings know it) and
// the region of global services to us-east-1, where CloudTrail logs them.
func serviceOf(e Event) (src, region string, err error) {
	src, region = e.Service, e.Region
	global := false
	if !e.serviceSet {
		var ok bool
		src, global, ok = synth.EventSource(e.Action)
		if !ok {
			return "", "", fmt.Errorf("no known service for action %q: set service (e.g. service: guardduty)", e.Action)
		}
	}
	if !strings.Contains(src, ".") {
		src += ".amazonaws.com"
	}
	if global && !e.regionSet {
		region = "us-east-1"
	}
	return src, region, nil
}

// userIdentity: "alice" is an IAM user, "role/Deploy" or
// "role/Deploy/session" an assumed role, "root" the account's root, and
// an ARN is taken as written.
func userIdentity(e Event) (map[string]any, error) {
	acct, who := e.Account, e.Identity
	if strings.HasPrefix(who, "arn:") {
		return identityOfARN(e, who)
	}
	switch {
	case who == "root":
		return map[string]any{"type": "Root", "principalId": acct, "arn": "arn:aws:iam::" + acct + ":root",
			"accountId": acct, "accessKeyId": keyOf(e, "AKIA")}, nil
	case strings.HasPrefix(who, "role/"):
		parts := strings.SplitN(strings.TrimPrefix(who, "role/"), "/", 2)
		if parts[0] == "" {
			return nil, fmt.Errorf("identity %q: want role/NAME or role/NAME/SESSION", who)
		}
		sess := parts[0]
		if len(parts) == 2 && parts[1] != "" {
			sess = parts[1]
		}
		return assumedRole(e, parts[0], sess), nil
	case strings.ContainsAny(who, "/: "):
		return nil, fmt.Errorf("identity %q: want a user name, role/NAME[/SESSION], root or an ARN", who)
	}
	return map[string]any{"type": "IAMUser", "principalId": principalID("AIDA", acct, who),
		"arn": "arn:aws:iam::" + acct + ":user/" + who, "accountId": acct, "accessKeyId": keyOf(e, "AKIA"), "userName": who}, nil
}

func identityOfARN(e Event, arn string) (map[string]any, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return nil, fmt.Errorf("identity %q is not an ARN", arn)
	}
	e.Account = parts[4]
	res := parts[5]
	switch {
	case strings.HasPrefix(res, "assumed-role/"):
		p := strings.SplitN(strings.TrimPrefix(res, "assumed-role/"), "/", 2)
		if len(p) < 2 {
			return nil, fmt.Errorf("identity %q: assumed-role ARN without a session", arn)
		}
		return assumedRole(e, p[0], p[1]), nil
	case strings.HasPrefix(res, "user/"):
		e.Identity = res[strings.LastIndex(res, "/")+1:]
		ui, err := userIdentity(e)
		if err == nil {
			ui["arn"] = arn
		}
		return ui, err
	case res == "root":
		e.Identity = "root"
		return userIdentity(e)
	}
	return nil, fmt.Errorf("identity %q: only user, assumed-role and root ARNs are known", arn)
}

func assumedRole(e Event, role, session string) map[string]any {
	acct := e.Account
	roleID := principalID("AROA", acct, role)
	return map[string]any{
		"type": "AssumedRole", "principalId": roleID + ":" + session,
		"arn":       "arn:aws:sts::" + acct + ":assumed-role/" + role + "/" + session,
		"accountId": acct, "accessKeyId": keyOf(e, "ASIA"),
		"sessionContext": map[string]any{
			"sessionIssuer": map[string]any{"type": "Role", "principalId": roleID,
				"arn": "arn:aws:iam::" + acct + ":role/" + role, "accountId": acct, "userName": role},
			"attributes": map[string]any{"creationDate": e.At.UTC().Add(-time.Hour).Format("2006-01-02T15:04:05Z"), "mfaAuthenticated": "false"},
		},
	}
}

func arnOf(ui map[string]any) string { s, _ := ui["arn"].(string); return s }

// keyOf is the event's access key: as given, else one fixed key per
// identity (so that the key is familiar unless a test changes it).
func keyOf(e Event, prefix string) string {
	if e.Key != "" {
		return e.Key
	}
	return prefix + strings.ToUpper(hash("key", e.Account, e.Identity)[:16])
}

func principalID(prefix, acct, name string) string {
	return prefix + strings.ToUpper(hash("principal", acct, name)[:17])
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func uuidOf(parts ...string) string {
	x := hash(parts...)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// readOnly follows AWS's naming: reads are Get, List, Describe, Head and
// Lookup calls.
func readOnly(action string) bool {
	for _, p := range []string{"Get", "List", "Describe", "Head", "Lookup", "BatchGet"} {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	return false
}

// place is a GeoIP answer for one event: the test says where the address
// is, as a city database would.
type place geoip.Location

func (p place) Lookup(netip.Addr) (geoip.Location, bool) {
	return geoip.Location(p), p.CountryISOCode != "" || p.CityName != ""
}

// document shapes e for profile through the ingest pipeline.
func document(e Event, id, profile string) (store.Doc, error) {
	raw, err := record(e, id)
	if err != nil {
		return store.Doc{}, err
	}
	rec, err := cloudtrail.NewRecord(raw)
	if err != nil {
		return store.Doc{}, err
	}
	shape := ingest.Shape{Profile: profile, Ingested: ingest.Delivered(5 * time.Minute)}
	if e.Country != "" || e.City != "" {
		shape.Geo = place{CountryISOCode: e.Country, CityName: e.City}
	}
	doc, _, err := shape.Doc(rec)
	return doc, err
}
