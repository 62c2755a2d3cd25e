// Package roles_test checks offtrail's least-privilege role definitions:
// that the files agree with each other and with the index names offtrail
// uses (here), and that they work on a real secured OpenSearch
// (secure_test.go).
package roles_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/mappings"
	"github.com/offtrail/offtrail/schedule"
)

// osRole is an OpenSearch security role, as in roles.yml and the REST API.
type osRole struct {
	Reserved           bool           `yaml:"reserved" json:"reserved,omitempty"`
	Description        string         `yaml:"description" json:"description"`
	ClusterPermissions []string       `yaml:"cluster_permissions" json:"cluster_permissions"`
	IndexPermissions   []osPermission `yaml:"index_permissions" json:"index_permissions"`
}

type osPermission struct {
	IndexPatterns  []string `yaml:"index_patterns" json:"index_patterns"`
	AllowedActions []string `yaml:"allowed_actions" json:"allowed_actions"`
}

// esRole is an Elasticsearch role body for PUT _security/role/NAME.
type esRole struct {
	Description string         `json:"description"`
	Cluster     []string       `json:"cluster"`
	Indices     []esPermission `json:"indices"`
	Metadata    map[string]any `json:"metadata"`
}

type esPermission struct {
	Names      []string `json:"names"`
	Privileges []string `json:"privileges"`
}

func readYAMLRoles(t *testing.T, path string) map[string]osRole {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]osRole{}
	for name, n := range raw {
		if name == "_meta" {
			continue
		}
		var r osRole
		if err := n.Decode(&r); err != nil {
			t.Fatalf("%s: role %s: %v", path, name, err)
		}
		out[name] = r
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var (
	cloudTrailPatterns = []string{"logs-aws.cloudtrail-*", "cloudtrail-*"}
	signalsPattern     = "logs-offtrail.alerts-*"
	statePattern       = "offtrail-state*"
)

// The roles.yml entries and the REST bodies are two spellings of one role.
func TestOpenSearchYAMLMatchesREST(t *testing.T) {
	yml := readYAMLRoles(t, "opensearch/roles.yml")
	if len(yml) != 2 {
		t.Fatalf("roles.yml has roles %v, want offtrail_runner and offtrail_installer", keys(yml))
	}
	for name, want := range yml {
		var got osRole
		readJSON(t, filepath.Join("opensearch", name+".json"), &got)
		want.Reserved = false
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: REST body\n%+v\nroles.yml\n%+v", name, got, want)
		}
	}
}

// The test role without CloudTrail read must be the runner minus exactly
// that permission, or the negative test proves nothing.
func TestNoReadIsRunnerMinusCloudTrail(t *testing.T) {
	runner := readYAMLRoles(t, "opensearch/roles.yml")["offtrail_runner"]
	noread := readYAMLRoles(t, "testdata/opensearch-noread.yml")["offtrail_runner_noread"]
	want := runner
	want.Description = noread.Description
	want.IndexPermissions = slices.DeleteFunc(slices.Clone(runner.IndexPermissions), func(p osPermission) bool {
		return slices.Equal(p.IndexPatterns, cloudTrailPatterns)
	})
	if len(want.IndexPermissions) != len(runner.IndexPermissions)-1 {
		t.Fatalf("runner has no permission on exactly %v", cloudTrailPatterns)
	}
	if !reflect.DeepEqual(noread, want) {
		t.Errorf("noread role\n%+v\nwant\n%+v", noread, want)
	}
}

// Every index offtrail reads or writes by default is covered, and nothing
// else: the role patterns are exactly the template patterns.
func TestRolesCoverOfftrailIndices(t *testing.T) {
	signals, err := mappings.TemplatePatterns("signals")
	if err != nil {
		t.Fatal(err)
	}
	state, err := mappings.TemplatePatterns("state")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(signals, []string{signalsPattern}) || !slices.Equal(state, []string{statePattern}) {
		t.Fatalf("templates use %v and %v; update the roles", signals, state)
	}
	for _, c := range []struct{ index, pattern string }{
		{schedule.DefaultSignalsIndex, signalsPattern},
		{schedule.DefaultStateIndex, statePattern},
	} {
		if !mappings.MatchesPattern(c.index, []string{c.pattern}) {
			t.Errorf("default index %s is not covered by %s", c.index, c.pattern)
		}
	}
	for _, profile := range []string{"ecs", "cloudtrail"} {
		ct, _ := mappings.CloudTrailIndexFor(profile)
		if !mappings.MatchesPattern(ct.DefaultIndex, cloudTrailPatterns) {
			t.Errorf("CloudTrail index %s (%s) is not readable under %v", ct.DefaultIndex, profile, cloudTrailPatterns)
		}
	}

	runner := readYAMLRoles(t, "opensearch/roles.yml")["offtrail_runner"]
	want := [][]string{cloudTrailPatterns, {signalsPattern}, {statePattern}}
	var got [][]string
	for _, p := range runner.IndexPermissions {
		got = append(got, p.IndexPatterns)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OpenSearch runner patterns %v, want %v", got, want)
	}

	var es esRole
	readJSON(t, "elasticsearch/offtrail_runner.json", &es)
	got = nil
	for _, p := range es.Indices {
		got = append(got, p.Names)
		for _, priv := range p.Privileges {
			// Least privilege: no delete, no manage, no "all" anywhere.
			if slices.Contains([]string{"all", "manage", "delete", "delete_index", "index"}, priv) {
				t.Errorf("Elasticsearch runner grants %q on %v", priv, p.Names)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Elasticsearch runner patterns %v, want %v", got, want)
	}
	if !slices.Equal(es.Cluster, []string{"monitor"}) {
		t.Errorf("Elasticsearch runner cluster privileges %v, want [monitor]", es.Cluster)
	}
	var inst esRole
	readJSON(t, "elasticsearch/offtrail_installer.json", &inst)
	if len(inst.Indices) != 0 || !slices.Contains(inst.Cluster, "manage_index_templates") {
		t.Errorf("Elasticsearch installer: %+v", inst)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
