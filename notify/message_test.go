package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestFromSignal(t *testing.T) {
	tmpl, err := ParseLinkTemplate(`https://kibana.example.com/app/discover#/?_g=(time:(from:'{{ .FirstEvent | shift "-15m" | rfc3339 }}',to:'{{ .LastEvent | shift "15m" | rfc3339 }}'))&_a=(query:(language:kuery,query:'_id:"{{ .SignalID }}"'))`)
	if err != nil {
		t.Fatal(err)
	}
	s := signal("aws-rare-method-for-user", "alice", "StopLogging", 1)
	m, err := FromSignal(s, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		SignalID: s.ID, RuleID: s.RuleID, RuleName: s.RuleName, Identity: "alice",
		Entity: []Field{{"identity", "arn:aws:iam::123456789012:user/alice"}},
		Values: []Field{{"action", "StopLogging"}},
		Score:  88.5, Confidence: "medium", Severity: "high", RiskScore: 73,
		Reason: s.Reason, Events: 3,
		FirstEvent: s.Events[0].Time, LastEvent: s.Events[1].Time,
		Link: `https://kibana.example.com/app/discover#/?_g=(time:(from:'2024-03-05T00:30:00Z',to:'2024-03-05T02:20:00Z'))&_a=(query:(language:kuery,query:'_id:"aws-rare-method-for-user-alice-StopLogging-1"'))`,
	}
	if g, w := fmt.Sprintf("%+v", *m), fmt.Sprintf("%+v", *want); g != w {
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
	if m.What() != "StopLogging" || m.Title() != "[high] Rule aws-rare-method-for-user: alice — StopLogging (score 88.5)" {
		t.Errorf("What %q Title %q", m.What(), m.Title())
	}
	m.Values = append(m.Values, Field{"region", "ap-east-1"})
	if m.What() != "action=StopLogging, region=ap-east-1" {
		t.Errorf("tuple What %q", m.What())
	}

	// Without events (should not happen) the window bounds the times.
	s.Events = nil
	if m, _ := FromSignal(s, nil); !m.FirstEvent.Equal(s.Window.From) || m.Link != "" {
		t.Errorf("no events: %+v", m)
	}
	bad, _ := ParseLinkTemplate(`{{ .NoSuchField }}`)
	if _, err := FromSignal(s, bad); err == nil {
		t.Error("bad link template: no error")
	}
	if _, err := ParseLinkTemplate(`{{ .SignalID `); err == nil {
		t.Error("unparsable link template: no error")
	}
}

func TestSecret(t *testing.T) {
	type cfg struct {
		URL Secret            `json:"url" yaml:"url"`
		H   map[string]Secret `json:"h" yaml:"h"`
	}
	c := cfg{URL: "https://hooks.example/T/B/topsecret", H: map[string]Secret{"Authorization": "Bearer topsecret"}}
	j, _ := json.Marshal(c)
	y, _ := yaml.Marshal(c)
	//lint:ignore S1025 the test is about what fmt prints for a secret
	for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c.URL), fmt.Sprintf("%q", c.URL), string(j), string(y)} {
		if strings.Contains(out, "topsecret") {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "<secret>") && !strings.Contains(out, `\u003csecret\u003e`) {
			t.Errorf("no <secret> marker: %s", out)
		}
	}
	if c.URL.Value() != "https://hooks.example/T/B/topsecret" {
		t.Error("Value lost the secret")
	}
	// Reading YAML still gets the real value.
	var back cfg
	if err := yaml.Unmarshal([]byte("url: abc\n"), &back); err != nil || back.URL.Value() != "abc" {
		t.Errorf("unmarshal: %v %q", err, back.URL.Value())
	}
}
