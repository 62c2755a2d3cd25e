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
	if sn := c.Channels["itsm"]; sn.ServiceNow == nil || sn.ServiceNow.Password.Value() != "servicenow-secret-7" || sn.ServiceNow.AssignmentGroup != "SecOps" || sn.MinSeverity != "medium" {
		t.Errorf("servicenow: %+v", sn)
	}
	if zd := c.Channels["helpdesk"].Zendesk; zd == nil || zd.APIToken.Value() != "zendesk-secret-8" || zd.Email != "offtrail@example.com" || len(zd.Tags) != 1 {
		t.Errorf("zendesk: %+v", zd)
	}
	if s := c.Channels["sms"].SNS; s == nil || s.SecretAccessKey.Value() != "sns-secret-9" || s.PhoneNumber != "+4915112345678" {
		t.Errorf("sns: %+v", s)
	}
	if tm := c.Channels["secops-teams"].Teams; tm == nil || !strings.HasSuffix(tm.WebhookURL.Value(), "sig=teams-secret-10") {
		t.Errorf("teams: %+v", tm)
	}
	if og := c.Channels["genie"].Opsgenie; og == nil || og.APIKey.Value() != "opsgenie-secret-11" || og.Responders[0].Name != "secops" {
		t.Errorf("opsgenie: %+v", og)
	}
	reg := prometheus.NewRegistry()
	d, err := Build(c, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Channels(), ","); got != "genie,helpdesk,itsm,mail,oncall,secops-slack,secops-teams,sms,soar" {
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
		{"channels:\n  a:\n    type: jira\n", `unknown channel type "jira"`},
		{"channels:\n  a:\n    type: servicenow\n    url: https://x\n    token: t\n    urgency: 1\n", "line 6, column 5: field urgency not found in servicenow channel"},
		{"channels:\n  a:\n    type: zendesk\n    url: https://x\n    priority: high\n", "line 5, column 5: field priority not found in zendesk channel"},
		{"channels:\n  a:\n    type: sns\n    topic_arn: arn:aws:sns:eu-west-1:1:t\n    topic: x\n", "line 5, column 5: field topic not found in sns channel"},
		{"channels:\n  a:\n    type: teams\n    webhook: https://x\n", "line 4, column 5: field webhook not found in teams channel"},
		{"channels:\n  a:\n    type: opsgenie\n    api_key: k\n    responders: [{type: team, team: x}]\n", "line 5, column 31: field team not found in opsgenie channel"},
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
		"channels:\n  a:\n    type: servicenow\n    url: https://x\n",                // no credentials
		"channels:\n  a:\n    type: zendesk\n    url: https://x\n    api_token: t\n", // no email
		"channels:\n  a:\n    type: sns\n    phone_number: '0151'\n    region: x\n",  // not E.164
		"channels:\n  a:\n    type: teams\n    webhook_url_file: /nonexistent\n",
		"channels:\n  a:\n    type: opsgenie\n",
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
	secrets := []string{"slack-secret-1", "pagerduty-secret-2", "webhook-secret-3", "hmac-secret-4", "header-secret-5", "smtp-secret-6",
		"servicenow-secret-7", "zendesk-secret-8", "sns-secret-9", "teams-secret-10", "opsgenie-secret-11"}
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
	for _, want := range []string{"type: pagerduty", "routing_key: <secret>", "Authorization: <secret>", "auth_password: <secret>", "smarthost: smtp.example.com:587",
		"type: servicenow", "password: <secret>", "api_token: <secret>", "secret_access_key: <secret>", "type: teams", "api_key: <secret>"} {
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

// TestSecretsNeverLog builds every channel of the example and logs the
// configuration and the dispatcher the way run does, looking for secrets.
func TestSecretsNeverLog(t *testing.T) {
	c := load(t)
	var logs strings.Builder
	log := zerolog.New(&logs)
	d, err := Build(c, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Stringer("notifications", c).Interface("config", c).Strs("channels", d.Channels()).Msg("loaded")
	for name, ch := range c.Channels {
		n, err := newNotifier(ch, log)
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Str("channel", name).Interface("notifier", n).Str("v", fmt.Sprintf("%+v %#v", n, n)).Msg("built")
	}
	for _, s := range []string{"secret-7", "secret-8", "secret-9", "secret-10", "secret-11"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("%s logged:\n%s", s, logs.String())
		}
	}
}

// TestFiles makes every *_file setting reachable through Files, so that the
// configuration loader can resolve them relative to the config file.
func TestFiles(t *testing.T) {
	for _, y := range []string{
		"type: slack\nwebhook_url_file: f\n",
		"type: pagerduty\nrouting_key_file: f\n",
		"type: webhook\nurl_file: f\nsecret_file: f\n",
		"type: email\nsmarthost: h:25\nauth_password_file: f\ntls_config: {ca_file: f}\n",
		"type: servicenow\nurl: https://x\npassword_file: f\ntoken_file: f\n",
		"type: zendesk\napi_token_file: f\n",
		"type: sns\nsecret_access_key_file: f\n",
		"type: teams\nwebhook_url_file: f\n",
		"type: opsgenie\napi_key_file: f\n",
	} {
		var ch ChannelConfig
		if err := yaml.Unmarshal([]byte(y), &ch); err != nil {
			t.Fatalf("%q: %v", y, err)
		}
		files := ch.Files()
		want := strings.Count(y, "_file:")
		if len(files) != want {
			t.Errorf("%q: %d files, want %d", y, len(files), want)
		}
		for _, f := range files {
			if *f != "f" {
				t.Errorf("%q: file %q", y, *f)
			}
			*f = "/etc/offtrail/f"
		}
		if b, _ := yaml.Marshal(ch); strings.Count(string(b), "/etc/offtrail/f") != want {
			t.Errorf("%q: Files are not the settings' own:\n%s", y, b)
		}
	}
}
