package embedded

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offtrail/offtrail/detector/store"
)

// The embedded store refuses the index names the engines refuse, so a
// name tried on files first does not fail later on a cluster.
func TestIndexNamesTheEnginesReject(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"logs-aws.cloudtrail-default", true},
		{"cloudtrail-2024.03", true},
		{"a", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{"Logs-AWS", false},
		{"with space", false},
		{"comma,separated", false},
		{"hash#tag", false},
		{"pipe|d", false},
		{`quote"d`, false},
		{"less<", false},
		{"more>", false},
		{"star*", false},
		{"question?", false},
		{"back\\slash", false},
		{"sl/ash", false},
		{"colon:x", false},
		{"-dash-first", false},
		{"+plus-first", false},
		{"_underscore-first", false},
		{".", false},
		{"..", false},
		{"", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, werr := st.NewBulkWriter(ctx, tc.name, nil)
			_, serr := st.WriteSignals(ctx, tc.name, []store.Doc{{ID: "x", Source: []byte(`{"@timestamp":"2024-03-05T00:00:00Z"}`)}})
			_, _, gerr := st.GetState(ctx, tc.name, "x")
			if tc.ok {
				if werr != nil || serr != nil {
					t.Fatalf("%q refused: %v / %v", tc.name, werr, serr)
				}
				return
			}
			for what, err := range map[string]error{"bulk": werr, "signals": serr, "state": gerr} {
				if err == nil || !strings.Contains(err.Error(), "index") {
					t.Errorf("%s into %q: error %v, want a refusal naming the index", what, tc.name, err)
				}
			}
		})
	}
}

// A store opened for reading must exist: Open does not create it.
func TestOpenMustExist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := Open(dir, Options{MustExist: true}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open(missing, MustExist) = %v, want does not exist", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Open created %s", dir)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, Options{MustExist: true}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Open(file, MustExist) = %v", err)
	}
	if _, err := Open(t.TempDir(), Options{MustExist: true}); err != nil {
		t.Fatal(err)
	}
}
