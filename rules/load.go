package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/mappings"
)

// Loader loads rule files. The zero value is ready to use.
type Loader struct {
	// Profile, when set, replaces every rule's source.profile: "check
	// --profile cloudtrail" shows what the pack needs on raw CloudTrail.
	Profile string
}

// LoadFiles loads rule files and directories (every *.yml and *.yaml
// below them). The pack holds only the rules without errors; the
// diagnostics hold every problem of every file.
func LoadFiles(paths ...string) (*Pack, Diagnostics) { return Loader{}.LoadFiles(paths...) }

// LoadFS loads the rule file or directory root of fsys.
func LoadFS(fsys fs.FS, root string) (*Pack, Diagnostics) { return Loader{}.LoadFS(fsys, root) }

// maxFileSize bounds what one rule file may hold; rule files are small.
const maxFileSize = 4 << 20

// LoadFiles: see the package function.
func (l Loader) LoadFiles(paths ...string) (*Pack, Diagnostics) {
	if d, bad := l.checkProfile(); bad {
		return &Pack{}, d
	}
	var files []string
	var diags Diagnostics
	seen := map[string]bool{}
	addFile := func(p string) {
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			diags = append(diags, Diagnostic{File: p, Message: pathErr(err)})
			continue
		}
		if !st.IsDir() {
			addFile(p)
			continue
		}
		found, walkDiags := yamlFilesUnder(p)
		diags = append(diags, walkDiags...)
		if len(found) == 0 {
			// An error, not a warning: a service started on an empty
			// directory would run no rules and look healthy.
			diags = append(diags, Diagnostic{File: p, Message: "no *.yml or *.yaml files"})
		}
		for _, f := range found {
			addFile(f)
		}
	}
	ctx := diskLoadCtx()
	pack, d := l.load(ctx, files)
	diags = append(diags, d...)
	diags.sort()
	return pack, diags
}

// LoadFS: see the package function.
func (l Loader) LoadFS(fsys fs.FS, root string) (*Pack, Diagnostics) {
	return l.loadFS(fsys, root, "")
}

// loadFS shows file names with prefix (the builtin pack shows as
// rules/aws/... as in the repository).
func (l Loader) loadFS(fsys fs.FS, root, prefix string) (*Pack, Diagnostics) {
	if d, bad := l.checkProfile(); bad {
		return &Pack{}, d
	}
	var files []string
	var diags Diagnostics
	display := func(name string) string { return prefix + name }
	st, err := fs.Stat(fsys, root)
	switch {
	case err != nil:
		diags = append(diags, Diagnostic{File: display(root), Message: pathErr(err)})
	case !st.IsDir():
		files = append(files, root)
	default:
		err := fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				diags = append(diags, Diagnostic{File: display(name), Message: pathErr(err)})
				return nil
			}
			if !d.IsDir() && isRuleFile(name) {
				files = append(files, name)
			}
			return nil
		})
		if err != nil {
			diags = append(diags, Diagnostic{File: display(root), Message: pathErr(err)})
		}
		sort.Strings(files)
	}
	ctx := &loadCtx{
		read: func(name string) ([]byte, error) {
			f, err := fsys.Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return readLimited(f)
		},
		resolve: func(from, ref string) (string, error) {
			p := path.Join(path.Dir(from), ref)
			if path.IsAbs(ref) || !fs.ValidPath(p) {
				return "", fmt.Errorf("%q must be a relative path inside the rule directory", ref)
			}
			return p, nil
		},
		display: display,
	}
	pack, d := l.load(ctx, files)
	diags = append(diags, d...)
	diags.sort()
	return pack, diags
}

func (l Loader) checkProfile() (Diagnostics, bool) {
	if l.Profile == "" {
		return nil, false
	}
	if _, ok := mappings.LookupProfile(l.Profile); ok {
		return nil, false
	}
	return Diagnostics{{File: "profile", Message: fmt.Sprintf("unknown profile %q (known: %s)", l.Profile, strings.Join(mappings.ProfileNames(), ", "))}}, true
}

// isRuleFile: YAML files, except rule tests (x_test.yml), which live
// beside the rules they test and are read by `offtrail test`.
func isRuleFile(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return (ext == ".yml" || ext == ".yaml") && !IsTestFile(name)
}

// IsTestFile reports whether name is a rule test file (*_test.yml or
// *_test.yaml): never loaded as rules.
func IsTestFile(name string) bool {
	base := strings.ToLower(path.Base(filepath.ToSlash(name)))
	return strings.HasSuffix(base, "_test.yml") || strings.HasSuffix(base, "_test.yaml")
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("file larger than %d bytes", maxFileSize)
	}
	return b, nil
}

// pathErr drops the "open name:" prefix: the diagnostic names the file.
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// loadCtx is one load: how to read and resolve files, and what was read
// on the side (timezone mappings).
type loadCtx struct {
	read    func(name string) ([]byte, error)
	resolve func(from, ref string) (string, error)
	display func(name string) string

	tz      map[string]*tzFile
	tzDiags Diagnostics
}

type ruleEntry struct {
	rule   *Rule
	idNode *yaml.Node
	bad    bool
}

type fileResult struct {
	name  string
	d     *dec
	rules []ruleEntry
}

func (l Loader) load(ctx *loadCtx, files []string) (*Pack, Diagnostics) {
	ctx.tz = map[string]*tzFile{}
	results := make([]*fileResult, 0, len(files))
	for _, f := range files {
		results = append(results, l.decodeFile(ctx, f))
	}
	var diags Diagnostics
	type firstSeen struct {
		file string
		line int
	}
	ids := map[string]firstSeen{}
	pack := &Pack{}
	for _, res := range results {
		// A timezone mapping found by walking the directory is data, read
		// (and reported) through the rule that names it.
		if _, isTZ := ctx.tz[res.name]; isTZ {
			continue
		}
		diags = append(diags, res.d.diags...)
		for _, e := range res.rules {
			if e.rule.ID != "" {
				if first, dup := ids[e.rule.ID]; dup {
					d := Diagnostic{File: res.d.file, Line: e.rule.Line,
						Message: fmt.Sprintf("duplicate rule id %q (first defined at %s:%d)", e.rule.ID, first.file, first.line)}
					if n := deref(e.idNode); n != nil {
						d.Line, d.Column = n.Line, n.Column
					}
					diags = append(diags, d)
					continue
				}
				ids[e.rule.ID] = firstSeen{res.d.file, e.rule.Line}
			}
			if !e.bad {
				pack.Rules = append(pack.Rules, e.rule)
			}
		}
	}
	diags = append(diags, ctx.tzDiags...)
	sort.SliceStable(pack.Rules, func(i, j int) bool { return pack.Rules[i].ID < pack.Rules[j].ID })
	return pack, diags
}

var yamlLineRE = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

func (l Loader) decodeFile(ctx *loadCtx, name string) *fileResult {
	res := &fileResult{name: name, d: &dec{file: ctx.display(name), raw: name}}
	data, err := ctx.read(name)
	if err != nil {
		res.d.errf(nil, "", "%s", pathErr(err))
		return res
	}
	l.decodeBytes(ctx, res, data)
	return res
}

func (l Loader) decodeBytes(ctx *loadCtx, res *fileResult, data []byte) {
	d := res.d
	defer func() {
		// A bad rule file must never take the service down, whatever the
		// YAML library does with it.
		if p := recover(); p != nil {
			d.errf(nil, "", "cannot parse: %v", p)
		}
	}()
	yd := yaml.NewDecoder(bytes.NewReader(data))
	docs, data0 := 0, false
	for {
		var doc yaml.Node
		err := yd.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			diag := Diagnostic{File: d.file, Message: err.Error()}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				diag.Line, _ = strconv.Atoi(m[1])
				diag.Message = "yaml: " + m[2]
			}
			d.diags = append(d.diags, diag)
			d.bad = true
			return
		}
		docs++
		if len(doc.Content) == 0 {
			continue
		}
		root := deref(doc.Content[0])
		if root == nil {
			continue
		}
		switch {
		case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
			continue
		case root.Kind == yaml.MappingNode && hasKey(root, "rules"):
			m, ok := d.mapping(root, "", []string{"rules"})
			if !ok {
				continue
			}
			list := deref(m.vals["rules"])
			if list == nil || list.Kind != yaml.SequenceNode {
				d.errf(list, "rules", "expected a list of rules, got %s", describe(list))
				continue
			}
			for _, c := range list.Content {
				l.addRule(ctx, res, c)
			}
		case root.Kind == yaml.MappingNode && hasKey(root, "high_risk_actions"):
			data0 = true
			decodeHighImpact(d, root, decodeHighRisk(d, root))
		case root.Kind == yaml.MappingNode && hasKey(root, "timezones") && !hasKey(root, "id"):
			data0 = true
			decodeTimezonesYAML(d, root)
		case root.Kind == yaml.MappingNode:
			l.addRule(ctx, res, root)
		default:
			d.errf(root, "", "expected a rule (a mapping) or a list under \"rules:\", got %s", describe(root))
		}
	}
	if len(res.rules) == 0 && !data0 && !d.bad {
		d.warnf(nil, "", "no rules in file")
	}
}

func (l Loader) addRule(ctx *loadCtx, res *fileResult, n *yaml.Node) {
	d := res.d
	before := d.bad
	d.bad = false
	r, idNode := l.decodeRule(d, ctx, n)
	if r != nil {
		res.rules = append(res.rules, ruleEntry{rule: r, idNode: idNode, bad: d.bad})
	}
	d.bad = d.bad || before
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := deref(m.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == key {
			return true
		}
	}
	return false
}

// yamlFilesUnder lists the *.yml and *.yaml files under dir, sorted,
// skipping hidden directories; unreadable entries are diagnostics.
func yamlFilesUnder(dir string) ([]string, Diagnostics) {
	var found []string
	var diags Diagnostics
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			diags = append(diags, Diagnostic{File: name, Message: pathErr(err)})
			return nil
		}
		if d.IsDir() {
			if name != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if isRuleFile(name) {
			found = append(found, name)
		}
		return nil
	})
	if err != nil {
		diags = append(diags, Diagnostic{File: dir, Message: pathErr(err)})
	}
	sort.Strings(found)
	return found, diags
}

// diskLoadCtx reads files from disk, size-limited, resolving references
// (value lists, timezones files) beside the file that names them.
func diskLoadCtx() *loadCtx {
	return &loadCtx{
		read: func(name string) ([]byte, error) {
			f, err := os.Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return readLimited(f)
		},
		resolve: func(from, ref string) (string, error) {
			if filepath.IsAbs(ref) {
				return filepath.Clean(ref), nil
			}
			return filepath.Join(filepath.Dir(from), ref), nil
		},
		display: func(name string) string { return name },
	}
}
