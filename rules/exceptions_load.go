package rules

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadExceptions loads exception list files and directories (every *.yml
// and *.yaml below them; value lists beside them are read through the
// entries that name them). The result holds only the lists without
// errors; the diagnostics hold every problem of every file, positioned
// like the rules'. An empty directory is a warning: no exceptions is a
// valid state.
func LoadExceptions(paths ...string) (*Exceptions, Diagnostics) {
	var files []string
	var diags Diagnostics
	seen := map[string]bool{}
	for _, p := range paths {
		found, d := exceptionFiles(p)
		diags = append(diags, d...)
		for _, f := range found {
			if f = filepath.Clean(f); !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	ctx := diskLoadCtx()
	x := &Exceptions{}
	first := map[string]string{}
	for _, f := range files {
		lists, d := decodeExceptionFile(ctx, f)
		diags = append(diags, d.diags...)
		for _, l := range lists {
			if where, dup := first[l.ID]; dup {
				diags = append(diags, Diagnostic{File: l.File, Line: l.Line, Message: fmt.Sprintf("duplicate exception list id %q (first defined at %s)", l.ID, where)})
				continue
			}
			first[l.ID] = fmt.Sprintf("%s:%d", l.File, l.Line)
			x.Lists = append(x.Lists, l)
		}
	}
	sort.SliceStable(x.Lists, func(i, j int) bool { return x.Lists[i].ID < x.Lists[j].ID })
	diags.sort()
	return x, diags
}

func exceptionFiles(p string) ([]string, Diagnostics) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, Diagnostics{{File: p, Message: pathErr(err)}}
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	found, diags := yamlFilesUnder(p)
	if len(found) == 0 {
		diags = append(diags, Diagnostic{File: p, Message: "no *.yml or *.yaml exception lists", Warning: true})
	}
	return found, diags
}

// decodeExceptionFile decodes one file: one list per YAML document. Lists
// with an error are left out.
func decodeExceptionFile(ctx *loadCtx, name string) (lists []*ExceptionList, d *dec) {
	d = &dec{file: ctx.display(name), raw: name}
	defer func() {
		if p := recover(); p != nil {
			d.errf(nil, "", "cannot parse: %v", p)
		}
	}()
	data, err := ctx.read(name)
	if err != nil {
		d.errf(nil, "", "%s", pathErr(err))
		return nil, d
	}
	yd := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var doc yaml.Node
		if err := yd.Decode(&doc); err != nil {
			if !errors.Is(err, io.EOF) {
				diag := Diagnostic{File: d.file, Message: err.Error()}
				if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
					fmt.Sscan(m[1], &diag.Line)
					diag.Message = "yaml: " + m[2]
				}
				d.diags = append(d.diags, diag)
			}
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := deref(doc.Content[0])
		if root == nil || (root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
			continue
		}
		d.bad = false
		xd := &exceptionDecoder{dec: d, ctx: ctx, lists: map[string][]string{}}
		if l := xd.list(root); l != nil && !d.bad {
			lists = append(lists, l)
		}
	}
	return lists, d
}
