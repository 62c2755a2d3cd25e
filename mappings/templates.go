package mappings

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Composable index templates, valid on Elasticsearch 8 and OpenSearch 2.
//
//go:embed templates/*.json
var templateFiles embed.FS

// Template returns the embedded index template name (e.g. "cloudtrail-ecs").
func Template(name string) ([]byte, error) {
	b, err := templateFiles.ReadFile("templates/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("index template %q: %w", name, fs.ErrNotExist)
	}
	return b, nil
}

// TemplateNames lists the embedded templates, sorted.
func TemplateNames() []string {
	entries, _ := templateFiles.ReadDir("templates")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(out)
	return out
}

// TemplateOptions adjusts an embedded template for one installation.
type TemplateOptions struct {
	// IndexPatterns replaces the template's patterns when set.
	IndexPatterns []string
	// Priority replaces the template's priority when non-zero.
	Priority int
	// Settings are merged into the index settings; keys may be given with
	// or without the "index." prefix ("number_of_replicas": 1).
	Settings map[string]any
}

// TemplateWith returns the embedded template name adjusted by opt.
func TemplateWith(name string, opt TemplateOptions) ([]byte, error) {
	b, err := Template(name)
	if err != nil {
		return nil, err
	}
	var t map[string]any
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("index template %q: %w", name, err)
	}
	if len(opt.IndexPatterns) > 0 {
		t["index_patterns"] = opt.IndexPatterns
	}
	if opt.Priority != 0 {
		t["priority"] = opt.Priority
	}
	if len(opt.Settings) > 0 {
		tmpl := subMap(t, "template")
		index := subMap(subMap(tmpl, "settings"), "index")
		for k, v := range opt.Settings {
			index[strings.TrimPrefix(k, "index.")] = v
		}
	}
	return json.Marshal(t)
}

func subMap(m map[string]any, key string) map[string]any {
	sub, ok := m[key].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[key] = sub
	}
	return sub
}

// TemplatePatterns returns the index patterns of an embedded template.
func TemplatePatterns(name string) ([]string, error) {
	b, err := Template(name)
	if err != nil {
		return nil, err
	}
	var t struct {
		IndexPatterns []string `json:"index_patterns"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("index template %q: %w", name, err)
	}
	return t.IndexPatterns, nil
}

// MatchesPattern reports whether an index name matches one of the
// wildcard patterns ("logs-aws.cloudtrail-*") as the engines match them.
func MatchesPattern(index string, patterns []string) bool {
	for _, p := range patterns {
		// Index names cannot hold '/', so path.Match's rules coincide with
		// the engines' simple wildcards once '?', '[' and '\' are escaped.
		p = strings.NewReplacer(`\`, `\\`, `?`, `\?`, `[`, `\[`).Replace(p)
		if ok, _ := path.Match(p, index); ok {
			return true
		}
	}
	return false
}

// CloudTrailIndex describes where `offtrail load` puts CloudTrail of one
// profile: the embedded template and the default index name.
type CloudTrailIndex struct {
	Template     string
	DefaultIndex string
}

// CloudTrailIndexFor returns the CloudTrail index description of a
// profile ("ecs" or "cloudtrail").
func CloudTrailIndexFor(profile string) (CloudTrailIndex, bool) {
	switch profile {
	case "ecs":
		return CloudTrailIndex{Template: "cloudtrail-ecs", DefaultIndex: "logs-aws.cloudtrail-default"}, true
	case "cloudtrail":
		return CloudTrailIndex{Template: "cloudtrail-raw", DefaultIndex: "cloudtrail-default"}, true
	}
	return CloudTrailIndex{}, false
}
