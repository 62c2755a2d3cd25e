package channels

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/notify"
)

func load(t *testing.T) *Config {
	t.Helper()
	b, err := os.ReadFile("testdata/notifications.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseExample(t *testing.T) {
	c := load(t)
	if c.SuppressFor != time.Hour || c.Retry.Attempts != 4 || c.Retry.Max != 30*time.Second {
		t.Errorf("top level: %+v", c)
	}
	if got := c.Channels["secops-slack"].Slack; got == nil || got.WebhookURL.Value() != "https://hooks.slack.example/services/T000/B000/slack-secret-1" {
		t.Errorf("slack: %+v", got)
	}
	pd := c.Channels["oncall"]
	if pd.PagerDuty == nil || pd.PagerDuty.RoutingKey.Value() != "pagerduty-secret-2" || pd.MinSeverity != "high" || *pd.SuppressFor != 4*time.Hour {
		t.Errorf("pagerduty: %+v", pd)
	}
	if wh := c.Channels["soar"].Webhook; wh == nil || wh.Headers["Authorization"].Value() != "Bearer header-secret-5" || wh.Timeout != 10*time.Second {
		t.Errorf("webhook: %+v", wh)
	}
	if em := c.Channels["mail"].Email; em == nil || em.Smarthost != "smtp.example.com:587" || em.TLS.ServerName != "smtp.example.com" {
		t.Errorf("email: %+v", em)
	}
	reg := prometheus.NewRegistry()
	d, err := Build(c, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Channels(), ","); got != "mail,oncall,secops-slack,soar" {
		t.Errorf("channels %s", got)
	}
	if err := d.Check([]string{"oncall", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Check: %v", err)
	}
}

func TestStrict(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"channels:\n  a:\n    type: slack\n    webhook_url: https://x\n    webhookurl: y\n", "line 5, column 5: field webhookurl not found in slack channel"},
		{"channels:\n  a:\n    type: pagerduty\n    routing_key: k\n    url: https://x\n    severity: high\n", "line 6, column 5: field severity not found in pagerduty channel"},
		{"channels:\n  a:\n    type: email\n    smarthost: h:25\n    tls_config:\n      ca: x\n", "line 6, column 7: field ca not found in email channel"},
		{"channels:\n  a:\n    type: webhook\n    routing_key: k\n", "line 4, column 5: field routing_key not found in webhook channel"},
		{"channels:\n  a:\n    type: teams\n", `unknown channel type "teams"`},
		{"channels:\n  a:\n    webhook_url: x\n", "line 3, column 5: channel has no type"},
		{"channels:\n  a:\n    type: slack\n    min_severity: urgent\n", `min_severity: line 4, column 19: "urgent"`},
		{"suppress_for: 1h\nsupress_for: 2h\n", "field supress_for not found"},
		{"retry: {attempts: 3, backoff: 1s}\n", "field backoff not found"},
		{"channels:\n  a:\n    type: slack\n    suppress_for: soon\n", "suppress_for"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q):\n got %v\nwant …%s…", tc.yaml, err, tc.want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for _, y := range []string{
		"link_template: '{{ .Nope'\n",
		"default_channels: [missing]\n",
		"channels:\n  a:\n    type: slack\n",                                         // no webhook
		"channels:\n  a:\n    type: pagerduty\n    routing_key_file: /nonexistent\n", // unreadable secret file
	} {
		c, err := Parse([]byte(y))
		if err != nil {
			t.Fatalf("Parse(%q): %v", y, err)
		}
		if _, err := Build(c, zerolog.Nop(), nil); err == nil {
			t.Errorf("Build(%q): no error", y)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hook")
	if err := os.WriteFile(file, []byte("https://hooks.slack.example/services/file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(fmt.Appendf(nil, "channels:\n  a:\n    type: slack\n    webhook_url_file: %s\n", file))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(c, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	c, _ = Parse(fmt.Appendf(nil, "channels:\n  a:\n    type: slack\n    webhook_url: https://x\n    webhook_url_file: %s\n", file))
	if _, err := Build(c, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Errorf("both inline and file: %v", err)
	}
}

// TestSecretsNeverPrint prints the configuration every way a person or a
// logger might and looks for any of the secrets in testdata.
func TestSecretsNeverPrint(t *testing.T) {
	c := load(t)
	secrets := []string{"slack-secret-1", "pagerduty-secret-2", "webhook-secret-3", "hmac-secret-4", "header-secret-5", "smtp-secret-6"}
	var outs []string
	for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
		outs = append(outs, fmt.Sprintf(f, c), fmt.Sprintf(f, *c))
		for name, ch := range c.Channels {
			outs = append(outs, name+fmt.Sprintf(f, ch), fmt.Sprintf(f, ch.settings()))
			switch s := ch.settings().(type) {
			case interface{ String() string }:
				outs = append(outs, s.String())
			}
		}
		outs = append(outs, fmt.Sprintf(f, c.Channels["secops-slack"].Slack), fmt.Sprintf(f, *c.Channels["soar"].Webhook),
			fmt.Sprintf(f, *c.Channels["oncall"].PagerDuty), fmt.Sprintf(f, *c.Channels["mail"].Email))
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j), string(y))
	for _, out := range outs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %s printed:\n%s", s, out)
			}
		}
	}
	// Printing is useful, not just empty: the structure and the marker show.
	for _, want := range []string{"type: pagerduty", "routing_key: <secret>", "Authorization: <secret>", "auth_password: <secret>", "smarthost: smtp.example.com:587"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("YAML lacks %q:\n%s", want, y)
		}
	}
	if !strings.Contains(string(j), `"webhook_url":"\u003csecret\u003e"`) {
		t.Errorf("JSON: %s", j)
	}
	// The printed YAML reads back as the same shape.
	if _, err := Parse(y); err != nil {
		t.Errorf("printed YAML does not parse: %v\n%s", err, y)
	}
	if notify.Secret("x").String() != "<secret>" {
		t.Error("Secret.String")
	}
}
