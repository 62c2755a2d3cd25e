package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Conn.URLs; len(got) != 2 || got[1] != "https://es-2.example:9200" {
		t.Errorf("urls = %v", got)
	}
	if c.Conn.Password.Reveal() != "s3cr3t-from-file" {
		t.Errorf("password from file = %q", c.Conn.Password.Reveal())
	}
	if c.Conn.CACert != filepath.Join("testdata", "ca.pem") || c.Rules[0] != filepath.Join("testdata", "rules") {
		t.Errorf("paths not relative to the config: %q %v", c.Conn.CACert, c.Rules)
	}
	if c.MaxGap.Std() != 72*time.Hour || c.LeaseDuration.Std() != 30*time.Second || c.MaxCatchup != 12 || !c.SkipInvalidRules {
		t.Errorf("config = %+v", c)
	}
	n := c.Notifications
	if n.SuppressFor != 30*time.Minute || len(n.DefaultChannels) != 1 || len(n.Channels) != 2 {
		t.Fatalf("notifications = %+v", n)
	}
	if s := n.Channels["secops"].Slack; s == nil || s.WebhookURLFile != filepath.Join("testdata", "slack-url.txt") {
		t.Errorf("slack channel (file relative to the config) = %+v", s)
	}
	if w := n.Channels["soar"].Webhook; w == nil || w.SecretFile != "/etc/offtrail/hmac" || *n.Channels["soar"].SuppressFor != 0 {
		t.Errorf("webhook channel = %+v", n.Channels["soar"])
	}
}

func TestDefaultsAndEnv(t *testing.T) {
	c, err := Load("", env(map[string]string{
		EnvStoreURL: "http://127.0.0.1:19200", EnvUsername: "u", EnvPassword: "p", EnvAPIKey: "k", EnvSignalsIndex: "sig",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Conn.URLs[0] != "http://127.0.0.1:19200" || c.Conn.Username != "u" || c.Conn.Password.Reveal() != "p" ||
		c.Conn.APIKey.Reveal() != "k" || c.SignalsIndex != "sig" {
		t.Errorf("env overrides: %+v", c.Conn)
	}
	if c.StateIndex != "offtrail-state" || c.Listen != DefaultListen || c.MaxCatchup != 96 || c.MaxGap.Std() != 7*24*time.Hour ||
		c.LeaseDuration.Std() != 5*time.Minute {
		t.Errorf("defaults: %+v", c)
	}
	// The environment wins over the file.
	c, err = Load("testdata/full.yml", env(map[string]string{EnvStoreURL: "http://other:9200"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Conn.URLs; len(got) != 1 || got[0] != "http://other:9200" {
		t.Errorf("url after override = %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string
	}{
		{"testdata/unknown_key.yml", "line 3: field pasword not found in type config.Store (did you mean password?)"},
		{"testdata/unknown_top_key.yml", "field signal_index not found in type config.Config (did you mean signals_index?)"},
		{"testdata/bad_duration.yml", "line 2"},
		{"testdata/both_stores.yml", "store.url and embedded_dir are both set"},
		{"testdata/unknown_channel_key.yml", "line 8, column 7: field secrte not found in webhook channel"},
		{"testdata/unknown_notifications_key.yml", "line 4: field suppress not found"},
		{"testdata/missing.yml", "no such file"},
		{"", "no store"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load(tc.file, env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.file != "" && !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// Secrets never print, whichever way the configuration is rendered.
func TestSecretsNeverShow(t *testing.T) {
	c, err := Load("testdata/inline_secret.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Conn.Password.Reveal() != "hunter2" {
		t.Fatal("password not read")
	}
	j, _ := json.Marshal(c)
	y, _ := yaml.Marshal(c)
	for name, out := range map[string]string{
		"json": string(j), "yaml": string(y),
		//lint:ignore S1025 the test is about what fmt prints for a secret
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c.Store), "%s": fmt.Sprintf("%s", c.Store.Password),
	} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "c2VjcmV0") {
			t.Errorf("%s leaks a secret: %s", name, out)
		}
		if !strings.Contains(out, "<secret>") && !strings.Contains(out, `\u003csecret\u003e`) {
			t.Errorf("%s does not show <secret>: %s", name, out)
		}
	}
}

// TestChannelFilesRelativeToConfig: every channel type's *_file path is
// read relative to the configuration file, like every other path in it.
func TestChannelFilesRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := `embedded_dir: store
notifications:
  channels:
    chat: {type: teams, webhook_url_file: secrets/teams}
    pager: {type: opsgenie, api_key_file: secrets/opsgenie}
    tickets: {type: zendesk, url: https://acme.zendesk.example, email: bot@example.com, api_token_file: /abs/zendesk}
`
	p := filepath.Join(dir, "offtrail.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	ch := c.Notifications.Channels
	for name, want := range map[string]string{"chat": filepath.Join(dir, "secrets/teams"), "pager": filepath.Join(dir, "secrets/opsgenie"), "tickets": "/abs/zendesk"} {
		if got := *ch[name].Files()[0]; got != want {
			t.Errorf("%s: file %q, want %q", name, got, want)
		}
	}
}

func TestIncidentsSettings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "offtrail.yml")
	if err := os.WriteFile(p, []byte("embedded_dir: store\nincidents: {threshold: 80, gap: 30m, max_span: 12h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Incidents.Threshold != 80 || c.Incidents.Gap.String() != "30m" || c.Incidents.MaxSpan.String() != "12h" {
		t.Errorf("incidents = %+v", c.Incidents)
	}
	if err := os.WriteFile(p, []byte("embedded_dir: store\nincidents: {threshold: 750}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, env(nil)); err == nil || !strings.Contains(err.Error(), "incidents.threshold") {
		t.Errorf("threshold 750: %v, want an error naming incidents.threshold", err)
	}
}

func TestIncidentLinks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "offtrail.yml")
	for _, tc := range []struct{ yml, err string }{
		{`incidents: {links: {kibana: "https://kibana.example/app/discover#/?_g=(time:(from:'{{.From}}',to:'{{.To}}'))&_a=(query:(language:kuery,query:'user.name:\"{{.Actor}}\"'))"}}`, ""},
		{`incidents: {links: {dashboards: "https://dashboards.example/app/data-explorer/discover#?q={{.ARN | urlquery}}&id={{.IncidentID}}"}}`, ""},
		{`incidents: {links: {kibana: "https://kibana.example/?q={{.User}}"}}`, "incidents.links: link kibana"},
		{`incidents: {links: {kibana: "https://kibana.example/?q={{.Actor"}}`, "incidents.links: link kibana"},
	} {
		if err := os.WriteFile(p, []byte("embedded_dir: store\n"+tc.yml+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, env(nil))
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.yml, err, tc.err)
			continue
		}
		if err == nil {
			if l, err := c.Incidents.LinkTemplates(); err != nil || len(l) != 1 {
				t.Errorf("%s: %d templates, %v", tc.yml, len(l), err)
			}
		}
	}
}
