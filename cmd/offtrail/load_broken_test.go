package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

const brokenDir = "../../internal/cloudtrail/testdata/broken"

// A file that breaks part-way is counted (unreadable) and fails the load
// unless --keep-going, which the summary mentions.
func TestLoadBrokenFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		flags   []string
		code    int
		summary string
		stderr  string
	}{
		{"invalid JSON at record 11 of 21", "bad-record-11-of-21.json", nil, 1,
			"loaded 10, skipped 0, unreadable 11 (1 of 1 files broken);", "bad-record-11-of-21.json: record 11: invalid JSON"},
		{"the same with --keep-going", "bad-record-11-of-21.json", []string{"--keep-going"}, 0,
			"loaded 10, skipped 0, unreadable 11 (1 of 1 files broken; --keep-going: not an error);", ""},
		{"truncated json.gz of 20", "truncated-records-20.json.gz", nil, 1,
			"loaded 9, skipped 0, unreadable 1 (1 of 1 files broken);", "unexpected EOF"},
		{"truncated ndjson.gz of 20", "truncated-lines-20.ndjson.gz", nil, 1,
			"loaded 9, skipped 0, unreadable 1 (1 of 1 files broken);", "truncated-lines-20.ndjson.gz:10 (record 10)"},
		{"a bad line is skipped, by its line", "bad-line-7.ndjson", nil, 0,
			"loaded 4, skipped 1, unreadable 0;", "bad-line-7.ndjson:7 (record 4): invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"load", "--store", "file:" + t.TempDir(), "--geoip", "", "--progress", "0"}, tc.flags...)
			args = append(args, filepath.Join(brokenDir, tc.file))
			var stdout, stderr bytes.Buffer
			if code := runMain(args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tc.summary) {
				t.Errorf("summary %q, want it to start %q", stdout.String(), tc.summary)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
}

// writeGeoDB builds a city database that places 81.2.69.0/24 in London.
func writeGeoDB(t *testing.T) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	_, network, _ := net.ParseCIDR("81.2.69.0/24")
	rec := mmdbtype.Map{
		"country": mmdbtype.Map{"iso_code": mmdbtype.String("GB")},
		"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("London")}},
	}
	if err := tree.Insert(network, rec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// load uses the same GeoIP default as demo and generate (the environment,
// else the installed database), says how many events got a location, and
// says so when there is no database.
func TestLoadGeoIP(t *testing.T) {
	db := writeGeoDB(t)
	input := filepath.Join("testdata", "load", "located.ndjson")
	for _, tc := range []struct {
		name    string
		env     string // OFFTRAIL_GEOIP_DB
		flags   []string
		located string
		stderr  string
	}{
		{"database from the environment", db, nil, "; 1 with a location;", ""},
		{"flag over the environment", "/nonexistent.mmdb", []string{"--geoip", db}, "; 1 with a location;", ""},
		{"none", "", []string{"--geoip", ""}, "; 0 with a location;", "no GeoIP database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OFFTRAIL_GEOIP_DB", tc.env)
			args := append([]string{"load", "--store", "file:" + t.TempDir(), "--progress", "0"}, tc.flags...)
			var stdout, stderr bytes.Buffer
			if code := runMain(append(args, input), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.located) {
				t.Errorf("summary %q lacks %q", stdout.String(), tc.located)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q: %s", tc.stderr, stderr.String())
			}
		})
	}
}

// Only http(s):// and file:DIR are stores: anything else is an error that
// lists the accepted forms, and creates nothing.
func TestStoreSpecs(t *testing.T) {
	input, err := filepath.Abs(filepath.Join("testdata", "load", "located.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"127.0.0.1:19200", "ftp://x", "store-dir", "file:", "http://"} {
		for _, cmd := range [][]string{
			{"load", "--geoip", "", input},
			{"once"},
			{"backtest", "--from", "2024-03-05", "--to", "2024-03-06"},
		} {
			t.Run(cmd[0]+" "+spec, func(t *testing.T) {
				t.Chdir(t.TempDir())
				args := append([]string{cmd[0], "--store", spec}, cmd[1:]...)
				var stdout, stderr bytes.Buffer
				if code := runMain(args, &stdout, &stderr); code == 0 {
					t.Fatalf("exit 0 for --store %s: %s", spec, stdout.String())
				}
				if !strings.Contains(stderr.String(), "file:DIR") {
					t.Errorf("error does not list the accepted forms: %s", stderr.String())
				}
				if entries, _ := os.ReadDir("."); len(entries) > 0 {
					t.Errorf("created %s", entries[0].Name())
				}
			})
		}
	}
}
