package cloudtrail

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offtrail/offtrail/internal/geoip"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

// fakeGeo knows a few addresses, as a city database would.
type fakeGeo map[string]geoip.Location

func (g fakeGeo) Lookup(ip netip.Addr) (geoip.Location, bool) {
	loc, ok := g[ip.String()]
	return loc, ok
}

var testGeo = fakeGeo{
	"203.0.113.50":           {CountryISOCode: "US", CityName: "Ashburn", RegionName: "Virginia", Lat: 39.04, Lon: -77.49, HasLocation: true},
	"111.111.111.111":        {CountryISOCode: "JP", CityName: "Tokyo", RegionName: "Tokyo", Lat: 35.69, Lon: 139.69, HasLocation: true},
	"2a02:8109:b6c0:3a00::1": {CountryISOCode: "DE", CityName: "Berlin", RegionName: "Land Berlin", Lat: 52.52, Lon: 13.4, HasLocation: true},
	"1.2.3.4":                {CountryISOCode: "AU"},
}

var fixedNow = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }

// TestGolden shapes every record in testdata/records both ways and compares
// with testdata/golden. Run with -update after an intended change.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/records/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no records: %v", err)
	}
	shaper := &Shaper{Geo: testGeo, Now: fixedNow}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			var recs []Record
			r := Reader{OnSkip: func(pos Pos, err error) { t.Errorf("%s: %v", pos, err) }}
			if _, err := r.Read(context.Background(), []string{file}, func(rec Record) error {
				recs = append(recs, rec)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 {
				t.Fatalf("read %d records, want 1", len(recs))
			}
			compareGolden(t, filepath.Join("testdata", "golden", name+".ecs.json"), shaper.ECS(recs[0]))
			compareGolden(t, filepath.Join("testdata", "golden", name+".raw.json"), shaper.Raw(recs[0]))
		})
	}
}

func compareGolden(t *testing.T, path string, doc map[string]any) {
	t.Helper()
	got, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if intended):\n%s", path, got)
	}
}

func TestECSFields(t *testing.T) {
	rec := func(js string) Record {
		t.Helper()
		var raw map[string]any
		if err := unmarshal([]byte(js), &raw); err != nil {
			t.Fatal(err)
		}
		r, err := NewRecord(raw)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	const base = `"eventTime":"2024-01-01T00:00:00Z","eventID":"x",`
	tests := []struct {
		name string
		js   string
		want map[string]any // dotted field → value; nil value means absent
	}{
		{"iam user", `{` + base + `"eventName":"ListBuckets","userIdentity":{"type":"IAMUser","userName":"bob","arn":"arn:aws:iam::1:user/dev/bob","accountId":"1"}}`,
			map[string]any{"user.name": "bob", "cloud.account.id": "1", "event.outcome": "success"}},
		{"iam user without userName", `{` + base + `"eventName":"ListBuckets","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/dev/bob"}}`,
			map[string]any{"user.name": "bob"}},
		{"assumed role from issuer", `{` + base + `"eventName":"ListBuckets","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Admin/alice","sessionContext":{"sessionIssuer":{"type":"Role","userName":"Admin"}}}}`,
			map[string]any{"user.name": "Admin"}},
		{"assumed role from arn", `{` + base + `"eventName":"ListBuckets","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Deployer/i-0abc"}}`,
			map[string]any{"user.name": "Deployer"}},
		{"root", `{` + base + `"eventName":"ConsoleLogin","userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"},"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes"}}`,
			map[string]any{"user.name": "root", "event.outcome": "success", "aws.cloudtrail.console_login.additional_eventdata.mfa_used": true}},
		{"console login failure", `{` + base + `"eventName":"ConsoleLogin","errorMessage":"Failed authentication","responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"}}`,
			map[string]any{"event.outcome": "failure", "aws.cloudtrail.console_login.additional_eventdata.mfa_used": false}},
		{"error code", `{` + base + `"eventName":"GetObject","errorCode":"AccessDenied","recipientAccountId":"2"}`,
			map[string]any{"event.outcome": "failure", "aws.cloudtrail.error_code": "AccessDenied", "cloud.account.id": "2"}},
		{"source host", `{` + base + `"eventName":"Decrypt","sourceIPAddress":"kms.amazonaws.com"}`,
			map[string]any{"source.domain": "kms.amazonaws.com", "source.address": "kms.amazonaws.com", "source.ip": nil}},
		{"source not an ip", `{` + base + `"eventName":"Decrypt","sourceIPAddress":"AWS Internal"}`,
			map[string]any{"source.address": "AWS Internal", "source.ip": nil, "source.domain": nil}},
		{"mapped ipv4", `{` + base + `"eventName":"Decrypt","sourceIPAddress":"::ffff:1.2.3.4"}`,
			map[string]any{"source.ip": "1.2.3.4", "source.geo.country_iso_code": "AU"}},
		{"request parameters as string", `{` + base + `"eventName":"PutObject","requestParameters":{"key":"a<b>","n":12345678901234567890}}`,
			map[string]any{"aws.cloudtrail.request_parameters": `{"key":"a<b>","n":12345678901234567890}`}},
		{"read only string", `{` + base + `"eventName":"ListUsers","eventSource":"iam.amazonaws.com","readOnly":"true"}`,
			map[string]any{"aws.cloudtrail.read_only": true, "event.category": []any{"iam"}, "event.type": []any{"user", "info"}}},
		{"numeric account id", `{` + base + `"eventName":"X","recipientAccountId":123456789012}`,
			map[string]any{"cloud.account.id": "123456789012"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := ToECS(rec(tt.js), testGeo)
			for field, want := range tt.want {
				got, ok := lookup(doc, field)
				if want == nil {
					if ok {
						t.Errorf("%s = %#v, want absent", field, got)
					}
					continue
				}
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				if !ok || !bytes.Equal(gj, wj) {
					t.Errorf("%s = %s, want %s", field, gj, wj)
				}
			}
		})
	}
}

func lookup(doc map[string]any, path string) (any, bool) {
	head, rest, nested := strings.Cut(path, ".")
	v, ok := doc[head]
	if !ok || !nested {
		return v, ok
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return lookup(sub, rest)
}

func TestRawKeepsRecord(t *testing.T) {
	raw := map[string]any{"eventName": "X", "@timestamp": "2020-09-14T00:44:23.000Z", "eventID": "e1", "sourceIPAddress": "203.0.113.50"}
	rec, err := NewRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	doc := (&Shaper{Geo: testGeo, Now: fixedNow}).Raw(rec)
	if doc["eventTime"] != "2020-09-14T00:44:23Z" {
		t.Errorf("eventTime = %v", doc["eventTime"])
	}
	if _, ok := raw["event"]; ok {
		t.Error("Raw mutated the record")
	}
	if got, _ := lookup(doc, "source.geo.city_name"); got != "Ashburn" {
		t.Errorf("source.geo.city_name = %v", got)
	}
	if got, _ := lookup(doc, "event.outcome"); got != "success" {
		t.Errorf("event.outcome = %v", got)
	}
	if doc := ToRaw(rec, nil); doc["source"] != nil {
		t.Errorf("no geo: source = %v", doc["source"])
	}
}
