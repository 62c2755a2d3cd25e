package mappings

import (
	"encoding/json"
	"strings"
	"testing"
)

// mappingType finds the mapped type of a dotted field in a template.
func mappingType(t *testing.T, tmpl map[string]any, field string) (string, bool) {
	t.Helper()
	m, _ := tmpl["template"].(map[string]any)
	m, _ = m["mappings"].(map[string]any)
	parts := strings.Split(field, ".")
	for i, p := range parts {
		props, _ := m["properties"].(map[string]any)
		m, _ = props[p].(map[string]any)
		if m == nil {
			return "", false
		}
		if i == len(parts)-1 {
			typ, _ := m["type"].(string)
			if typ == "" {
				typ = "object"
			}
			return typ, true
		}
	}
	return "", false
}

func loadTemplate(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := Template(name)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tmpl
}

// TestCloudTrailTemplatesCoverProfiles checks that every field a profile
// names is mapped explicitly, so rules never depend on dynamic mapping.
func TestCloudTrailTemplatesCoverProfiles(t *testing.T) {
	for _, profile := range []string{"ecs", "cloudtrail"} {
		ct, ok := CloudTrailIndexFor(profile)
		if !ok {
			t.Fatalf("no CloudTrail index for %s", profile)
		}
		tmpl := loadTemplate(t, ct.Template)
		p, _ := LookupProfile(profile)
		fields := map[string]string{p.Time: "date", p.Ingested: "date", p.ID: "keyword"}
		for logical, phys := range p.Fields {
			switch logical {
			case "time":
				fields[phys] = "date"
			case "source.ip", "source.network": // the network is computed from the address
				if profile == "ecs" {
					fields[phys] = "ip"
				} else {
					fields[phys] = "keyword" // raw sourceIPAddress holds host names too
				}
			case "mfa_used":
				if profile == "ecs" {
					fields[phys] = "boolean"
				} else {
					fields[phys] = "keyword" // "Yes"/"No" as CloudTrail writes it
				}
			default:
				fields[phys] = "keyword"
			}
		}
		for field, want := range fields {
			if got, ok := mappingType(t, tmpl, field); !ok || got != want {
				t.Errorf("%s: %s mapped as %q, want %q", ct.Template, field, got, want)
			}
		}
		if got, _ := mappingType(t, tmpl, "source.geo.location"); got != "geo_point" {
			t.Errorf("%s: source.geo.location is %q", ct.Template, got)
		}
		pats, err := TemplatePatterns(ct.Template)
		if err != nil || !MatchesPattern(ct.DefaultIndex, pats) {
			t.Errorf("%s: default index %s does not match %v (%v)", ct.Template, ct.DefaultIndex, pats, err)
		}
		if _, ok := tmpl["data_stream"]; ok {
			t.Errorf("%s: data_stream is Elasticsearch-only", ct.Template)
		}
	}
}

func TestTemplateWith(t *testing.T) {
	b, err := TemplateWith("cloudtrail-ecs", TemplateOptions{
		IndexPatterns: []string{"my-trail"},
		Priority:      77,
		Settings:      map[string]any{"index.number_of_replicas": 2, "refresh_interval": "5s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		IndexPatterns []string `json:"index_patterns"`
		Priority      int      `json:"priority"`
		Template      struct {
			Settings struct {
				Index map[string]any `json:"index"`
			} `json:"settings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	idx := tmpl.Template.Settings.Index
	if tmpl.IndexPatterns[0] != "my-trail" || tmpl.Priority != 77 || idx["number_of_replicas"] != 2.0 ||
		idx["refresh_interval"] != "5s" || idx["number_of_shards"] != 1.0 {
		t.Errorf("got %s", b)
	}
	if _, err := Template("nope"); err == nil {
		t.Error("unknown template: no error")
	}
	names := strings.Join(TemplateNames(), ",")
	if !strings.Contains(names, "cloudtrail-ecs") || !strings.Contains(names, "cloudtrail-raw") {
		t.Errorf("names %s", names)
	}
}

func TestMatchesPattern(t *testing.T) {
	for _, tt := range []struct {
		index    string
		patterns []string
		want     bool
	}{
		{"logs-aws.cloudtrail-default", []string{"logs-aws.cloudtrail-*"}, true},
		{"logs-aws.cloudtrail", []string{"logs-aws.cloudtrail-*"}, false},
		{"cloudtrail-2024.01", []string{"x", "cloudtrail-*"}, true},
		{"a?b", []string{"a?b"}, true},
		{"axb", []string{"a?b"}, false},
	} {
		if got := MatchesPattern(tt.index, tt.patterns); got != tt.want {
			t.Errorf("MatchesPattern(%q, %v) = %v", tt.index, tt.patterns, got)
		}
	}
}
