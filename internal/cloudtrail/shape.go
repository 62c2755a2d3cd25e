package cloudtrail

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	"github.com/offtrail/offtrail/internal/geoip"
)

// Geo resolves an address to a place; *geoip.DB satisfies it.
type Geo interface {
	Lookup(ip netip.Addr) (geoip.Location, bool)
}

// Shaper turns records into index documents.
type Shaper struct {
	// Geo adds source.geo when set.
	Geo Geo
	// Now stamps event.ingested; nil means time.Now.
	Now func() time.Time
}

// ToECS shapes rec as Elastic's AWS CloudTrail integration would index it.
func ToECS(rec Record, geo Geo) map[string]any { return (&Shaper{Geo: geo}).ECS(rec) }

// ToRaw returns rec as raw CloudTrail plus event.outcome, event.ingested
// and, with a GeoIP database, source.geo.
func ToRaw(rec Record, geo Geo) map[string]any { return (&Shaper{Geo: geo}).Raw(rec) }

func (s *Shaper) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

const timeFormat = time.RFC3339Nano

// ECS builds the document of the ecs profile (logs-aws.cloudtrail-*). The
// field choices follow the integration's ingest pipeline; request and
// response bodies are kept as JSON strings, as its keyword fields hold them.
func (s *Shaper) ECS(rec Record) map[string]any {
	raw := rec.Raw
	ui, _ := raw["userIdentity"].(map[string]any)
	sc, _ := ui["sessionContext"].(map[string]any)
	issuer, _ := sc["sessionIssuer"].(map[string]any)
	attrs, _ := sc["attributes"].(map[string]any)
	action := str(raw["eventName"])

	doc := map[string]any{}
	put(doc, "@timestamp", rec.Time.Format(timeFormat))
	put(doc, "ecs.version", "8.11.0")

	put(doc, "event.kind", "event")
	put(doc, "event.module", "aws")
	put(doc, "event.dataset", "aws.cloudtrail")
	put(doc, "event.action", action)
	put(doc, "event.provider", str(raw["eventSource"]))
	put(doc, "event.id", rec.ID)
	put(doc, "event.outcome", outcome(raw))
	put(doc, "event.ingested", s.now().Format(timeFormat))
	cat, typ := categorize(action, str(raw["eventSource"]))
	if len(cat) > 0 {
		put(doc, "event.category", cat)
	}
	put(doc, "event.type", typ)

	userName := userName(ui, issuer)
	put(doc, "user.name", userName)
	put(doc, "user.id", str(ui["principalId"]))
	var related []any
	for _, u := range []string{str(ui["userName"]), userName} {
		if u != "" && !containsStr(related, u) {
			related = append(related, u)
		}
	}
	if len(related) > 0 {
		put(doc, "related.user", related)
	}

	put(doc, "aws.cloudtrail.user_identity.type", str(ui["type"]))
	put(doc, "aws.cloudtrail.user_identity.arn", str(ui["arn"]))
	put(doc, "aws.cloudtrail.user_identity.access_key_id", str(ui["accessKeyId"]))
	put(doc, "aws.cloudtrail.user_identity.invoked_by", str(ui["invokedBy"]))
	put(doc, "aws.cloudtrail.user_identity.session_context.mfa_authenticated", str(attrs["mfaAuthenticated"]))
	put(doc, "aws.cloudtrail.user_identity.session_context.creation_date", str(attrs["creationDate"]))
	put(doc, "aws.cloudtrail.user_identity.session_context.session_issuer.type", str(issuer["type"]))
	put(doc, "aws.cloudtrail.user_identity.session_context.session_issuer.principal_id", str(issuer["principalId"]))
	put(doc, "aws.cloudtrail.user_identity.session_context.session_issuer.arn", str(issuer["arn"]))
	put(doc, "aws.cloudtrail.user_identity.session_context.session_issuer.account_id", str(issuer["accountId"]))

	account := str(ui["accountId"])
	if account == "" {
		account = str(raw["recipientAccountId"])
	}
	put(doc, "cloud.provider", "aws")
	put(doc, "cloud.account.id", account)
	put(doc, "cloud.region", str(raw["awsRegion"]))

	s.putSource(doc, str(raw["sourceIPAddress"]))
	put(doc, "user_agent.original", str(raw["userAgent"]))

	put(doc, "aws.cloudtrail.event_version", str(raw["eventVersion"]))
	put(doc, "aws.cloudtrail.event_type", str(raw["eventType"]))
	put(doc, "aws.cloudtrail.event_category", str(raw["eventCategory"]))
	put(doc, "aws.cloudtrail.request_id", str(raw["requestID"]))
	put(doc, "aws.cloudtrail.api_version", str(raw["apiVersion"]))
	put(doc, "aws.cloudtrail.shared_event_id", str(raw["sharedEventID"]))
	put(doc, "aws.cloudtrail.vpc_endpoint_id", str(raw["vpcEndpointId"]))
	put(doc, "aws.cloudtrail.recipient_account_id", str(raw["recipientAccountId"]))
	put(doc, "aws.cloudtrail.error_code", str(raw["errorCode"]))
	put(doc, "aws.cloudtrail.error_message", str(raw["errorMessage"]))
	if b, ok := boolean(raw["readOnly"]); ok {
		put(doc, "aws.cloudtrail.read_only", b)
	}
	if b, ok := boolean(raw["managementEvent"]); ok {
		put(doc, "aws.cloudtrail.management_event", b)
	}
	put(doc, "aws.cloudtrail.request_parameters", jsonString(raw["requestParameters"]))
	put(doc, "aws.cloudtrail.response_elements", jsonString(raw["responseElements"]))
	put(doc, "aws.cloudtrail.additional_eventdata", jsonString(raw["additionalEventData"]))
	put(doc, "aws.cloudtrail.service_event_details", jsonString(raw["serviceEventDetails"]))
	if res := resources(raw["resources"]); len(res) > 0 {
		put(doc, "aws.cloudtrail.resources", res)
	}

	aed, _ := raw["additionalEventData"].(map[string]any)
	if b, ok := yesNo(aed["MFAUsed"]); ok {
		put(doc, "aws.cloudtrail.console_login.additional_eventdata.mfa_used", b)
	}
	if b, ok := yesNo(aed["MobileVersion"]); ok {
		put(doc, "aws.cloudtrail.console_login.additional_eventdata.mobile_version", b)
	}
	put(doc, "aws.cloudtrail.console_login.additional_eventdata.login_to", str(aed["LoginTo"]))
	return doc
}

// Raw builds the document of the cloudtrail profile: the event as it came,
// plus what the profile reads from enrichment. eventTime is rewritten in
// RFC 3339 (a no-op for CloudTrail's own form) and filled in for events
// shipped with only @timestamp, so that the time field is always a date.
func (s *Shaper) Raw(rec Record) map[string]any {
	doc := make(map[string]any, len(rec.Raw)+2)
	for k, v := range rec.Raw {
		doc[k] = v
	}
	doc["eventTime"] = rec.Time.Format(timeFormat)
	ev := map[string]any{}
	if old, ok := doc["event"].(map[string]any); ok {
		for k, v := range old {
			ev[k] = v
		}
	}
	ev["outcome"] = outcome(rec.Raw)
	ev["ingested"] = s.now().Format(timeFormat)
	doc["event"] = ev
	if geo := s.geo(str(rec.Raw["sourceIPAddress"])); geo != nil {
		src := map[string]any{}
		if old, ok := doc["source"].(map[string]any); ok {
			for k, v := range old {
				src[k] = v
			}
		}
		src["geo"] = geo
		doc["source"] = src
	}
	return doc
}

// putSource writes source.address and, when it is an IP, source.ip and
// source.geo; AWS services appear by host name (source.domain) instead.
func (s *Shaper) putSource(doc map[string]any, addr string) {
	if addr == "" {
		return
	}
	put(doc, "source.address", addr)
	if ip, err := netip.ParseAddr(addr); err == nil {
		put(doc, "source.ip", ip.Unmap().String())
		if geo := s.geo(addr); geo != nil {
			put(doc, "source.geo", geo)
		}
		return
	}
	if strings.Contains(addr, ".") && !strings.ContainsAny(addr, " /:") {
		put(doc, "source.domain", addr)
	}
}

func (s *Shaper) geo(addr string) map[string]any {
	if s.Geo == nil || addr == "" {
		return nil
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil
	}
	loc, ok := s.Geo.Lookup(ip.Unmap())
	if !ok || loc.IsZero() {
		return nil
	}
	g := map[string]any{}
	put(g, "country_iso_code", loc.CountryISOCode)
	put(g, "city_name", loc.CityName)
	put(g, "region_name", loc.RegionName)
	if loc.HasLocation {
		g["location"] = map[string]any{"lat": loc.Lat, "lon": loc.Lon}
	}
	return g
}

// outcome is ECS event.outcome: failure with an error, the lowercased
// result for console sign-ins, success otherwise.
func outcome(raw map[string]any) string {
	if str(raw["eventName"]) == "ConsoleLogin" {
		if re, ok := raw["responseElements"].(map[string]any); ok {
			if r := str(re["ConsoleLogin"]); r != "" {
				return strings.ToLower(r)
			}
		}
	}
	if str(raw["errorCode"]) != "" || str(raw["errorMessage"]) != "" {
		return "failure"
	}
	return "success"
}

// userName is ECS user.name: for roles and federated users the name of the
// issuing role or user, "root" for the root user, else the IAM user name,
// else the last element of the ARN (the role of an assumed-role ARN).
func userName(ui, issuer map[string]any) string {
	if n := str(issuer["userName"]); n != "" {
		return n
	}
	if n := str(ui["userName"]); n != "" {
		return n
	}
	if str(ui["type"]) == "Root" {
		return "root"
	}
	arn := str(ui["arn"])
	if arn == "" {
		return ""
	}
	// arn:partition:service:region:account:resource
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	res := parts[5]
	if res == "root" {
		return "root"
	}
	if rest, ok := strings.CutPrefix(res, "assumed-role/"); ok {
		role, _, _ := strings.Cut(rest, "/")
		return role
	}
	return res[strings.LastIndexByte(res, '/')+1:]
}

func resources(v any) []any {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	var out []any
	seen := map[string]bool{}
	for _, item := range list {
		r, ok := item.(map[string]any)
		if !ok {
			continue
		}
		m := map[string]any{}
		put(m, "arn", str(r["ARN"]))
		put(m, "account_id", str(r["accountId"]))
		put(m, "type", str(r["type"]))
		key := str(m["arn"]) + "\x1f" + str(m["account_id"]) + "\x1f" + str(m["type"])
		if len(m) == 0 || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, m)
	}
	return out
}

// put sets a dotted path in nested maps, leaving out empty values as the
// integration's pipeline drops them.
func put(doc map[string]any, path string, v any) {
	switch x := v.(type) {
	case nil:
		return
	case string:
		if x == "" {
			return
		}
	}
	m := doc
	for {
		head, rest, nested := strings.Cut(path, ".")
		if !nested {
			m[path] = v
			return
		}
		sub, ok := m[head].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[head] = sub
		}
		m, path = sub, rest
	}
}

// str renders scalars as strings (ids sometimes arrive as numbers);
// objects and arrays are not strings and yield "".
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

func boolean(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// yesNo reads CloudTrail's "Yes"/"No" flags.
func yesNo(v any) (bool, bool) {
	if s, ok := v.(string); ok {
		switch strings.ToLower(s) {
		case "yes", "true":
			return true, true
		case "no", "false":
			return false, true
		}
		return false, false
	}
	return boolean(v)
}

// jsonString renders an object as compact JSON; strings stay as they are.
func jsonString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case map[string]any:
		if len(x) == 0 {
			return ""
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func containsStr(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
