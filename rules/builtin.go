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
	m, ok := d.mapping(root, "", []string{"high_risk_actions"})
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

var highRisk = sync.OnceValue(func() map[string]string {
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
	out := decodeHighRisk(d, doc.Content[0])
	if d.diags.HasErrors() {
		panic(d.diags.Error())
	}
	return out
})

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
