package sns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

const (
	keyID     = "AKIDOFFTRAILTEST"
	secretKey = "sns-very-secret-access-key"
	topic     = "arn:aws:sns:eu-west-1:123456789012:secops"
)

// isolate keeps the developer's AWS settings out of the tests.
func isolate(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_PROFILE": "", "AWS_REGION": "",
		"AWS_DEFAULT_REGION": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_SNS": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// fakeSNS answers Publish and keeps each request's form.
func fakeSNS(t *testing.T, status int, answer string) (*httptest.Server, *[]url.Values) {
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+keyID+"/") || !strings.Contains(auth, "/eu-west-1/sns/aws4_request") {
			t.Errorf("not SigV4-signed for sns in eu-west-1: %q", auth)
		}
		forms = append(forms, r.PostForm)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &forms
}

const published = `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId></PublishResult><ResponseMetadata><RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId></ResponseMetadata></PublishResponse>`

func snsError(code, msg string) string {
	return `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>` + code +
		`</Code><Message>` + msg + `</Message></Error><RequestId>9b1e0e2c-0000-0000-0000-000000000000</RequestId></ErrorResponse>`
}

// form is a request's parameters one per line, sorted, for a golden file.
func form(v url.Values) []byte {
	var lines []string
	for k, vs := range v {
		for _, x := range vs {
			lines = append(lines, k+"="+x)
		}
	}
	slices.Sort(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

func TestPublish(t *testing.T) {
	isolate(t)
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		golden string
	}{
		{"phone", Config{PhoneNumber: "+4915112345678", Region: "eu-west-1", SenderID: "offtrail"}, "sms.txt"},
		{"topic", Config{TopicARN: topic}, "topic.txt"}, // the region is the ARN's
		{"fifo", Config{TopicARN: topic + ".fifo"}, "fifo.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, forms := fakeSNS(t, http.StatusOK, published)
			tc.cfg.Endpoint, tc.cfg.AccessKeyID, tc.cfg.SecretAccessKeyFile = srv.URL, keyID, file
			n, err := New(tc.cfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			m := notifytest.Message()
			m.Suppressed = 1
			if _, err := n.Notify(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if len(*forms) != 1 {
				t.Fatalf("%d requests, want 1", len(*forms))
			}
			f := (*forms)[0]
			notifytest.Golden(t, tc.golden, form(f))
			if f.Get("Action") != "Publish" {
				t.Errorf("Action %q", f.Get("Action"))
			}
		})
	}
}

func TestTopicMessageIsJSON(t *testing.T) {
	isolate(t)
	n, err := New(Config{TopicARN: topic, AccessKeyID: keyID, SecretAccessKey: secretKey}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	in, err := n.NewPublish(notifytest.Message())
	if err != nil {
		t.Fatal(err)
	}
	var bodies map[string]string
	if err := json.Unmarshal([]byte(*in.Message), &bodies); err != nil {
		t.Fatal(err)
	}
	if bodies["default"] == "" || bodies["sms"] == "" || len(bodies) != 2 {
		t.Errorf("message: %v", bodies)
	}
}

func TestText(t *testing.T) {
	m := notifytest.Message()
	if got, want := Text(m, 160), "offtrail MEDIUM: Unusual AWS Command for a User - alice - StopLogging (score 92.41)"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	m.Identity = strings.Repeat("x", 300)
	for _, max := range []int{20, 160, 300} {
		if got := Text(m, max); len([]rune(got)) != max || !strings.HasSuffix(got, "...") {
			t.Errorf("Text(…, %d) = %d runes: %q", max, len([]rune(got)), got)
		}
	}
}

func TestSubject(t *testing.T) {
	m := notifytest.Message()
	m.Identity = "jörg\nsmith" + strings.Repeat("y", 100)
	got := Subject(m)
	if len(got) != maxSubject || !strings.HasPrefix(got, "[offtrail] medium: Unusual AWS Command for a User - j?rg?smith") {
		t.Errorf("Subject = %q", got)
	}
}

func TestRetryClassification(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		status int
		code   string
		retry  bool
	}{
		{400, "InvalidParameter", false},
		{403, "AuthorizationError", false},
		{404, "NotFound", false},
		{400, "Throttling", true},
		{429, "Throttled", true},
		{500, "InternalError", true},
		{503, "ServiceUnavailable", true},
	} {
		srv, _ := fakeSNS(t, tc.status, snsError(tc.code, "no"))
		n, err := New(Config{PhoneNumber: "+15555550100", Region: "eu-west-1", Endpoint: srv.URL, AccessKeyID: keyID, SecretAccessKey: secretKey}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		r, err := n.Notify(context.Background(), notifytest.Message())
		if err == nil || r != tc.retry {
			t.Errorf("%d %s: retry=%v err=%v, want retry=%v", tc.status, tc.code, r, err, tc.retry)
		}
	}
}

func TestNetworkErrorRetries(t *testing.T) {
	isolate(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	n, err := New(Config{PhoneNumber: "+15555550100", Region: "eu-west-1", Endpoint: srv.URL, AccessKeyID: keyID, SecretAccessKey: secretKey}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := n.Notify(context.Background(), notifytest.Message()); err == nil || !r {
		t.Errorf("retry=%v err=%v, want a retryable error", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := n.Notify(ctx, notifytest.Message()); err == nil || r {
		t.Errorf("cancelled: retry=%v err=%v, want a permanent error", r, err)
	}
}

// TestSecretNeverPrints fails requests every way and prints the config and
// the notifier every way, looking for the secret access key.
func TestSecretNeverPrints(t *testing.T) {
	isolate(t)
	srv, _ := fakeSNS(t, http.StatusForbidden, snsError("SignatureDoesNotMatch", "The request signature we calculated does not match"))
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	var logs bytes.Buffer
	var outs []string
	for _, ep := range []string{srv.URL, down.URL} {
		cfg := Config{TopicARN: topic, Endpoint: ep, AccessKeyID: keyID, SecretAccessKey: secretKey}
		n, err := New(cfg, zerolog.New(&logs))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Notify(context.Background(), notifytest.Message()); err == nil {
			t.Fatalf("%s: no error", ep)
		} else {
			outs = append(outs, err.Error())
		}
		for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
			outs = append(outs, fmt.Sprintf(f, cfg), fmt.Sprintf(f, n), fmt.Sprintf(f, *n))
		}
		j, _ := json.Marshal(cfg)
		outs = append(outs, string(j))
	}
	outs = append(outs, logs.String())
	for _, out := range outs {
		if strings.Contains(out, secretKey) {
			t.Errorf("secret access key printed: %s", out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	isolate(t)
	for _, cfg := range []Config{
		{},
		{TopicARN: topic, PhoneNumber: "+15555550100"},
		{PhoneNumber: "015555550100", Region: "eu-west-1"},
		{PhoneNumber: "+15555550100"}, // no region anywhere
		{TopicARN: "secops"},
		{TopicARN: "arn:aws:sqs:eu-west-1:123456789012:q"},
		{TopicARN: topic, Endpoint: "sns.local"},
		{TopicARN: topic, SMSType: "Urgent"},
		{TopicARN: topic, MaxLength: 2000},
		{TopicARN: topic, AccessKeyID: keyID},
		{TopicARN: topic, SecretAccessKey: notify.Secret(secretKey)},
		{TopicARN: topic, AccessKeyID: keyID, SecretAccessKeyFile: "/nonexistent"},
	} {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}
