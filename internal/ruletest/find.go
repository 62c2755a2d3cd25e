package ruletest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offtrail/offtrail/rules"
)

// Find lists the test files (*_test.yml, *_test.yaml) of paths: a
// directory is searched recursively (hidden directories skipped), a file
// must be a test file. Finding none is an error: a test run that tested
// nothing must not pass.
func Find(paths []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
		if !st.IsDir() {
			if !rules.IsTestFile(p) {
				return nil, fmt.Errorf("%s: not a rule test file (want a name ending in _test.yml)", p)
			}
			if !seen[filepath.Clean(p)] {
				seen[filepath.Clean(p)] = true
				out = append(out, filepath.Clean(p))
			}
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && name != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && rules.IsTestFile(name) && !seen[name] {
				seen[name] = true
				found = append(found, name)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no rule test files (*_test.yml) in %s", strings.Join(paths, ", "))
	}
	return out, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// RunFiles runs test files found by Find, each against the rule pack of
// its directory (every rule file below it, as `offtrail check DIR` loads
// them), calling report after each file.
func (rn *Runner) RunFiles(ctx context.Context, files []string, report func(*FileResult)) error {
	type loaded struct {
		pack  *rules.Pack
		diags rules.Diagnostics
	}
	packs := map[string]loaded{}
	for _, name := range files {
		dir := filepath.Dir(name)
		p, ok := packs[dir]
		if !ok {
			p.pack, p.diags = rules.LoadFiles(dir)
			packs[dir] = p
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, unwrapPath(err))
		}
		report(rn.RunFile(ctx, name, data, p.pack, p.diags))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// RunBuiltin runs the tests embedded with the shipped pack (rules/aws),
// against it: `offtrail test` with no paths works from any directory.
func (rn *Runner) RunBuiltin(ctx context.Context, report func(*FileResult)) error {
	fsys := rules.BuiltinFS()
	names, err := fs.Glob(fsys, "aws/*")
	if err != nil {
		return err
	}
	pack, diags := rules.Builtin()
	n := 0
	for _, name := range names {
		if !rules.IsTestFile(name) {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("rules/%s: %w", name, err)
		}
		n++
		report(rn.RunFile(ctx, "rules/"+path.Clean(name), data, pack, diags))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if n == 0 {
		return errors.New("no rule test files (*_test.yml) in the builtin pack")
	}
	return nil
}
