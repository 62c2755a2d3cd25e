// Package mappings holds what offtrail knows about index shapes: the field
// profiles that map logical rule fields to physical ones, the index
// templates for signals, state and CloudTrail test indices, and the saved
// objects for Kibana and OpenSearch Dashboards.
package mappings

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed profiles/*.yml
var profileFiles embed.FS

// Profile maps the logical field names rules use to the physical names of
// one index shape.
type Profile struct {
	Name string `yaml:"name"`
	// Time is the event time field; Ingested the ingest time field.
	Time     string `yaml:"time"`
	Ingested string `yaml:"ingested"`
	// ID is the field holding the CloudTrail eventID.
	ID     string            `yaml:"id"`
	Fields map[string]string `yaml:"fields"`
	// Enriched lists logical fields that exist only after an enrichment
	// step (GeoIP); a rule using them gets a warning, not an error.
	Enriched []string `yaml:"enriched"`
}

// Physical resolves a field name: a logical name maps through the profile;
// anything else is taken as a physical name already.
func (p *Profile) Physical(field string) string {
	if phys, ok := p.Fields[field]; ok {
		return phys
	}
	return field
}

// IsLogical reports whether name is one of the profile's logical fields.
func (p *Profile) IsLogical(name string) bool {
	_, ok := p.Fields[name]
	return ok
}

// NeedsEnrichment reports whether a logical field is filled only by an
// enrichment step in this profile.
func (p *Profile) NeedsEnrichment(name string) bool {
	for _, e := range p.Enriched {
		if e == name {
			return true
		}
	}
	return false
}

// Logical returns the logical name of a physical field, or the field itself.
func (p *Profile) Logical(physical string) string {
	for l, ph := range p.Fields {
		if ph == physical && l != "time" {
			return l
		}
	}
	return physical
}

var profiles = mustLoadProfiles()

func mustLoadProfiles() map[string]*Profile {
	out := map[string]*Profile{}
	err := fs.WalkDir(profileFiles, "profiles", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := profileFiles.ReadFile(path)
		if err != nil {
			return err
		}
		var p Profile
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out[p.Name] = &p
		return nil
	})
	if err != nil {
		panic(err) // embedded data: a broken file is a build defect
	}
	return out
}

// LookupProfile returns the named profile.
func LookupProfile(name string) (*Profile, bool) {
	p, ok := profiles[name]
	return p, ok
}

// ProfileNames lists the known profiles, sorted.
func ProfileNames() []string {
	out := make([]string, 0, len(profiles))
	for n := range profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LogicalFields lists the logical field names (the same in every profile).
func LogicalFields() []string {
	p := profiles["ecs"]
	out := make([]string, 0, len(p.Fields))
	for n := range p.Fields {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
