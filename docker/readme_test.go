package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/internal/testenv"
)

// dockerRun is the README's `docker run` example: its -e settings and
// its -v mounts (container path -> host path).
type dockerRun struct {
	env    map[string]string
	mounts map[string]string
}

// readmeDockerRun reads the first `docker run` command of README.md,
// joining its continuation lines.
func readmeDockerRun(t *testing.T) dockerRun {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^docker run (?:.*\\\n)*.*$`).Find(b)
	if m == nil {
		t.Fatal("README.md has no docker run command")
	}
	args := strings.Fields(strings.ReplaceAll(string(m), "\\\n", " "))
	run := dockerRun{env: map[string]string{}, mounts: map[string]string{}}
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-e":
			k, v, _ := strings.Cut(args[i+1], "=")
			run.env[k] = v
		case "-v":
			parts := strings.Split(args[i+1], ":")
			run.mounts[parts[1]] = parts[0]
		}
	}
	return run
}

// getenv serves the command line's environment with container paths
// replaced: secrets and mounts are files the test provides.
func (r dockerRun) getenv(files map[string]string, override map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := override[k]; ok {
			return v
		}
		v := r.env[k]
		if f, ok := files[v]; ok {
			return f
		}
		return v
	}
}

// The README's docker run line gives run (the image's default command,
// with the shipped offtrail.yml) the URL, user, password file and CA it
// names; before, run ignored OFFTRAIL_PASSWORD_FILE and connected without
// a password.
func TestReadmeDockerRunSettings(t *testing.T) {
	run := readmeDockerRun(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "es")
	if err := os.WriteFile(secret, []byte("pw-from-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := filepath.Abs("../internal/config/testdata/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/run/secrets/es": secret}
	for container := range run.mounts {
		files[container] = ca // the only mount is the CA
	}
	cfg, err := config.Load("offtrail.yml", run.getenv(files, nil))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Conn
	if len(c.URLs) != 1 || c.URLs[0] != run.env["OFFTRAIL_STORE_URL"] || c.Username != run.env["OFFTRAIL_USERNAME"] ||
		c.Password.Reveal() != "pw-from-secret" {
		t.Errorf("connection %+v from %v", c, run.env)
	}
	// Every mounted file is used: a CA mounted but never named would
	// leave TLS verified against the system's roots only.
	for container := range run.mounts {
		if c.CACert != ca {
			t.Errorf("%s is mounted but no setting names it (CA = %q)", container, c.CACert)
		}
	}
}

// The same command line against the secured OpenSearch (TLS from its own
// CA, basic auth): the connection run builds authenticates.
func TestReadmeDockerRunSecureOpenSearch(t *testing.T) {
	url, ca, pw := os.Getenv("OFFTRAIL_TEST_SECURE_OS_URL"), os.Getenv("OFFTRAIL_TEST_SECURE_OS_CA"), os.Getenv("OFFTRAIL_TEST_SECURE_OS_PASSWORD")
	if url == "" || ca == "" || pw == "" {
		msg := "OFFTRAIL_TEST_SECURE_OS_{URL,CA,PASSWORD} not set; run `scripts/secure-opensearch.sh start` and eval its env"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	run := readmeDockerRun(t)
	secret := filepath.Join(t.TempDir(), "es")
	if err := os.WriteFile(secret, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/run/secrets/es": secret}
	for container := range run.mounts {
		files[container] = ca
	}
	for _, tc := range []struct {
		name     string
		override map[string]string
		wantErr  string
	}{
		{"as in the README", nil, ""},
		{"without the password file", map[string]string{"OFFTRAIL_PASSWORD_FILE": ""}, "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			override := map[string]string{"OFFTRAIL_STORE_URL": url}
			for k, v := range tc.override {
				override[k] = v
			}
			cfg, err := config.Load("offtrail.yml", run.getenv(files, override))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, err := backends.Open(ctx, cfg.Conn.BackendOptions(), zerolog.Nop())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if st.Kind() != "opensearch" {
					t.Errorf("kind %s", st.Kind())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %s", err, tc.wantErr)
			}
		})
	}
}
