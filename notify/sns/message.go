package sns

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/offtrail/offtrail/notify"
)

// maxSubject is below the API's limit of 100 characters for Subject.
const maxSubject = 99

// NewPublish builds the Publish request for m.
func (n *Notifier) NewPublish(m *notify.Message) (*awssns.PublishInput, error) {
	in := &awssns.PublishInput{MessageAttributes: n.attributes()}
	if n.cfg.PhoneNumber != "" {
		in.PhoneNumber = aws.String(n.cfg.PhoneNumber)
		in.Message = aws.String(Text(m, n.cfg.MaxLength))
		return in, nil
	}
	// A topic: SMS subscribers get the short text, the others the long one.
	body, err := json.Marshal(map[string]string{"default": Long(m), "sms": Text(m, n.cfg.MaxLength)})
	if err != nil {
		return nil, err
	}
	in.TopicArn = aws.String(n.cfg.TopicARN)
	in.Message = aws.String(string(body))
	in.MessageStructure = aws.String("json")
	in.Subject = aws.String(Subject(m))
	if strings.HasSuffix(n.cfg.TopicARN, ".fifo") {
		// FIFO topics require a group and drop a repeated deduplication id
		// for five minutes: a retry that did go through is not sent twice.
		in.MessageGroupId = aws.String(truncateASCII(m.RuleID, 128))
		in.MessageDeduplicationId = aws.String(truncateASCII(m.SignalID, 128))
	}
	return in, nil
}

func (n *Notifier) attributes() map[string]types.MessageAttributeValue {
	attrs := map[string]types.MessageAttributeValue{
		"AWS.SNS.SMS.SMSType": {DataType: aws.String("String"), StringValue: aws.String(n.cfg.SMSType)},
	}
	if n.cfg.SenderID != "" {
		attrs["AWS.SNS.SMS.SenderID"] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(n.cfg.SenderID)}
	}
	return attrs
}

// Text is the short message: severity, rule, identity, what and score, cut
// to max characters. It avoids characters outside the GSM alphabet (no "—"
// or "…"), which would halve the length one SMS can carry.
func Text(m *notify.Message, max int) string {
	s := fmt.Sprintf("offtrail %s: %s - %s - %s (score %s)",
		strings.ToUpper(m.Severity), m.RuleName, m.Identity, m.What(), m.ScoreText())
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-3]) + "..."
}

// Long is the message for a topic's non-SMS subscribers.
func Long(m *notify.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nIdentity: %s\nWhat: %s\nScore: %s (confidence %s)\nEvents: %d between %s and %s\n\n%s\n",
		m.Title(), m.Identity, m.What(), m.ScoreText(), m.Confidence, m.Events,
		m.FirstEvent.UTC().Format("2006-01-02T15:04:05Z"), m.LastEvent.UTC().Format("2006-01-02T15:04:05Z"), m.Reason)
	if m.Link != "" {
		fmt.Fprintf(&b, "\nOpen: %s\n", m.Link)
	}
	fmt.Fprintf(&b, "\nRule: %s\nSignal: %s\n", m.RuleID, m.SignalID)
	if m.Suppressed > 0 {
		fmt.Fprintf(&b, "%d similar signal(s) were suppressed since the last message.\n", m.Suppressed)
	}
	return b.String()
}

// Subject is the email subject of a topic's messages. SNS refuses anything
// but printable ASCII there, so other characters become "?".
func Subject(m *notify.Message) string {
	return truncateASCII(fmt.Sprintf("[offtrail] %s: %s - %s", m.Severity, m.RuleName, m.Identity), maxSubject)
}

// truncateASCII replaces what is not printable ASCII with "?" and cuts to n.
func truncateASCII(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for _, r := range s {
		if len(b) == n {
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return string(b)
}
