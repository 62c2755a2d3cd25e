package rules

import (
	"bytes"
	"errors"
	"io"
	"strconv"

	"gopkg.in/yaml.v3"
)

// NodeDecoder lends the rule loader's yaml.Node helpers to other files
// offtrail reads beside the rules (rule tests), so that their errors are
// positioned (file:line:column) and worded as a rule's are.
type NodeDecoder struct{ d dec }

// NewNodeDecoder decodes a file shown as file in diagnostics.
func NewNodeDecoder(file string) *NodeDecoder { return &NodeDecoder{d: dec{file: file, raw: file}} }

// Diagnostics returns every problem reported so far, in file order.
func (n *NodeDecoder) Diagnostics() Diagnostics {
	out := append(Diagnostics(nil), n.d.diags...)
	out.sort()
	return out
}

// HasErrors reports whether any error (not a warning) was reported.
func (n *NodeDecoder) HasErrors() bool { return n.d.diags.HasErrors() }

// ErrorCount is the number of errors reported so far.
func (n *NodeDecoder) ErrorCount() int { return len(n.d.diags.Errors()) }

// Errorf reports an error at node (nil: the file as a whole); path, when
// set, prefixes the message ("cases[0].expect: ...").
func (n *NodeDecoder) Errorf(node *yaml.Node, path, format string, a ...any) {
	n.d.errf(node, path, format, a...)
}

// Documents parses data into its YAML documents' root nodes (aliases
// followed, empty documents left out); a syntax error is reported with its
// line and stops the parse.
func (n *NodeDecoder) Documents(data []byte) []*yaml.Node {
	var out []*yaml.Node
	yd := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := yd.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			diag := Diagnostic{File: n.d.file, Message: err.Error()}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				diag.Line, _ = strconv.Atoi(m[1])
				diag.Message = "yaml: " + m[2]
			}
			n.d.diags = append(n.d.diags, diag)
			n.d.bad = true
			return out
		}
		if len(doc.Content) == 0 {
			continue
		}
		if root := deref(doc.Content[0]); root != nil && !(root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
			out = append(out, root)
		}
	}
}

// Mapping checks node is a mapping and returns its values by key and its
// keys in file order. With allowed non-nil, other keys are errors with a
// "did you mean".
func (n *NodeDecoder) Mapping(node *yaml.Node, path string, allowed []string) (map[string]*yaml.Node, []string, bool) {
	m, ok := n.d.mapping(node, path, allowed)
	if !ok {
		return nil, nil, false
	}
	return m.vals, m.order, true
}

// Required reports each of keys missing from vals at node.
func (n *NodeDecoder) Required(node *yaml.Node, vals map[string]*yaml.Node, path string, keys ...string) {
	n.d.required(&mapping{node: deref(node), vals: vals}, path, keys...)
}

// Str, NonEmpty, Value, StrList, Int, Float, Bool and Duration decode a
// scalar as the rule loader does, reporting at the node.
func (n *NodeDecoder) Str(node *yaml.Node, path string) (string, bool) { return n.d.str(node, path) }

// NonEmpty: see Str.
func (n *NodeDecoder) NonEmpty(node *yaml.Node, path string) (string, bool) {
	return n.d.nonEmpty(node, path)
}

// Value: see Str (booleans canonical, numbers as written).
func (n *NodeDecoder) Value(node *yaml.Node, path string) (string, bool) {
	return n.d.value(node, path)
}

// StrList: see Str (one string or a non-empty list of them).
func (n *NodeDecoder) StrList(node *yaml.Node, path string) ([]string, bool) {
	return n.d.strList(node, path)
}

// Int: see Str.
func (n *NodeDecoder) Int(node *yaml.Node, path string) (int, bool) { return n.d.intv(node, path) }

// Float: see Str.
func (n *NodeDecoder) Float(node *yaml.Node, path string) (float64, bool) {
	return n.d.floatv(node, path)
}

// Bool: see Str.
func (n *NodeDecoder) Bool(node *yaml.Node, path string) (bool, bool) { return n.d.boolv(node, path) }

// Duration: see Str (15m, 2h, 30d).
func (n *NodeDecoder) Duration(node *yaml.Node, path string) (Duration, bool) {
	return n.d.duration(node, path)
}

// Deref follows aliases to the node they name.
func Deref(node *yaml.Node) *yaml.Node { return deref(node) }

// Describe names a node's kind for "expected X, got Y" messages.
func Describe(node *yaml.Node) string { return describe(node) }
