package rules

import (
	"embed"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"sync"

	"gopkg.in/yaml.v3"
)

// The shipped AWS pack. high_risk_actions.yml lives beside the rules and
// is recognised as data by its top-level key.
//
//go:embed aws/*.yml
var awsFS embed.FS

// Builtin loads the embedded AWS rule pack.
func Builtin() (*Pack, Diagnostics) { return Loader{}.Builtin() }

// Builtin loads the embedded AWS rule pack with the loader's options.
func (l Loader) Builtin() (*Pack, Diagnostics) { return l.loadFS(awsFS, "aws", "rules/") }

// BuiltinFS returns the embedded pack's files (aws/*.yml), e.g. for
// exporting them as a starting point.
func BuiltinFS() embed.FS { return awsFS }

var (
	categoryRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	actionRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
)

// decodeHighRisk reads {high_risk_actions: {category: [Action, ...]}}.
// An action belongs to one category.
func decodeHighRisk(d *dec, root *yaml.Node) map[string]string {
	out := map[string]string{}
	m, ok := d.mapping(root, "", []string{"high_risk_actions", "high_impact"})
	if !ok {
		return out
	}
	cats, ok := d.mapping(m.vals["high_risk_actions"], "high_risk_actions", nil)
	if !ok {
		return out
	}
	where := map[string]int{}
	for _, cat := range cats.order {
		path := "high_risk_actions." + cat
		if !categoryRE.MatchString(cat) {
			d.errf(cats.keys[cat], "high_risk_actions", "category %q: use lowercase letters, digits and '_'", cat)
		}
		list := deref(cats.vals[cat])
		if list.Kind != yaml.SequenceNode {
			d.errf(list, path, "expected a list of action names, got %s", describe(list))
			continue
		}
		for _, c := range list.Content {
			a, ok := d.nonEmpty(c, path)
			if !ok {
				continue
			}
			if !actionRE.MatchString(a) {
				d.errf(deref(c), path, "%q is not a CloudTrail event name", a)
				continue
			}
			if prev, dup := out[a]; dup {
				d.errf(deref(c), path, "%s is already in %s (line %d)", a, prev, where[a])
				continue
			}
			out[a], where[a] = cat, deref(c).Line
		}
	}
	return out
}

// decodeHighImpact reads {high_impact: {severity: [Action or category, ...]}}
// against the high-risk categories, into action -> severity.
func decodeHighImpact(d *dec, root *yaml.Node, highRisk map[string]string) map[string]string {
	out := map[string]string{}
	var node *yaml.Node // decodeHighRisk already reported the root's faults
	for i := 0; root.Kind == yaml.MappingNode && i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "high_impact" {
			node = root.Content[i+1]
		}
	}
	if node == nil {
		return out
	}
	sevs, ok := d.mapping(node, "high_impact", []string{"critical", "high", "medium"})
	if !ok {
		return out
	}
	byCategory := map[string][]string{}
	for a, c := range highRisk {
		byCategory[c] = append(byCategory[c], a)
	}
	// Critical first: an action named under critical stays critical even
	// when its category is listed under high.
	for _, sev := range []string{"critical", "high", "medium"} {
		list := deref(sevs.vals[sev])
		if list == nil {
			continue
		}
		path := "high_impact." + sev
		if list.Kind != yaml.SequenceNode {
			d.errf(list, path, "expected a list of actions or categories, got %s", describe(list))
			continue
		}
		for _, c := range list.Content {
			name, ok := d.nonEmpty(c, path)
			if !ok {
				continue
			}
			actions, isCat := byCategory[name]
			if !isCat {
				if _, known := highRisk[name]; !known {
					d.errf(deref(c), path, "%q is neither a high_risk_actions category nor one of its actions", name)
					continue
				}
				actions = []string{name}
			}
			for _, a := range actions {
				if _, set := out[a]; !set {
					out[a] = sev
				}
			}
		}
	}
	return out
}

type highRiskData struct{ risk, impact map[string]string }

var highRiskFile = sync.OnceValue(func() highRiskData {
	const name = "aws/high_risk_actions.yml"
	data, err := awsFS.ReadFile(name)
	if err != nil {
		panic(err) // embedded: a missing file is a build defect
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		panic(fmt.Sprintf("rules/%s: %v", name, err))
	}
	d := &dec{file: "rules/" + name}
	risk := decodeHighRisk(d, doc.Content[0])
	impact := decodeHighImpact(d, doc.Content[0], risk)
	if d.diags.HasErrors() {
		panic(d.diags.Error())
	}
	return highRiskData{risk, impact}
})

func highRisk() map[string]string { return highRiskFile().risk }

// HighImpactActions returns the actions that alert whatever the history
// (logging stopped, detectors deleted, the organisation left, credentials
// created, privileges escalated, data shared out), each with the severity
// its alert gets.
func HighImpactActions() map[string]string { return maps.Clone(highRiskFile().impact) }

// HighRiskActions returns the CloudTrail event names offtrail treats as
// high risk (defence evasion, IAM persistence, privilege escalation,
// sharing data out, reading secrets, ...), each with its category. The
// detector may raise the severity of any signal about one of them.
func HighRiskActions() map[string]string { return maps.Clone(highRisk()) }

// HighRiskCategories lists the categories of HighRiskActions, sorted.
func HighRiskCategories() []string {
	seen := map[string]bool{}
	for _, c := range highRisk() {
		seen[c] = true
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
