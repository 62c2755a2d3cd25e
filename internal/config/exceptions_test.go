package config

import (
	"path/filepath"
	"slices"
	"testing"
)

// Exception paths are relative to the config file, as rules are.
func TestExceptionsPaths(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "exc", "exceptions.yml"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join("testdata", "exc", "exceptions"), "/etc/offtrail/shared.yml"}
	if !slices.Equal(c.Exceptions, want) {
		t.Errorf("exceptions = %v, want %v", c.Exceptions, want)
	}
}
