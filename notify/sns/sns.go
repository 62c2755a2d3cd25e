// Package sns sends offtrail signals as text messages through Amazon SNS:
// to one phone number (SMS), or to a topic whose SMS subscribers get the
// short text and every other subscriber (email, HTTPS, SQS…) the long one.
//
// Requests are signed with SigV4 by the AWS SDK; credentials come from the
// channel's access key or, without one, the SDK's default chain (the
// environment, a profile, web identity, the instance or task role).
package sns

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
)

// DefaultMaxLength is one SMS of GSM characters: longer texts are split and
// billed as several, and arrive in pieces on some phones.
const DefaultMaxLength = 160

// SMS types: Transactional is delivered with priority (and may cost more);
// alerts are transactional.
const (
	Transactional = "Transactional"
	Promotional   = "Promotional"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// Config is an SNS channel's settings. Exactly one of TopicARN and
// PhoneNumber is the target.
type Config struct {
	TopicARN string `yaml:"topic_arn,omitempty" json:"topic_arn,omitempty"`
	// PhoneNumber is in E.164 form, +<country><number>.
	PhoneNumber string `yaml:"phone_number,omitempty" json:"phone_number,omitempty"`
	// Region defaults to the topic ARN's, then to the SDK's (AWS_REGION,
	// the profile).
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Endpoint overrides the regional endpoint (a VPC endpoint, tests).
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Profile is a shared-config profile for the default chain.
	Profile string `yaml:"profile,omitempty" json:"profile,omitempty"`
	// AccessKeyID and SecretAccessKey are static credentials; without them
	// the default chain is used.
	AccessKeyID         string        `yaml:"access_key_id,omitempty" json:"access_key_id,omitempty"`
	SecretAccessKey     notify.Secret `yaml:"secret_access_key,omitempty" json:"secret_access_key,omitempty"`
	SecretAccessKeyFile string        `yaml:"secret_access_key_file,omitempty" json:"secret_access_key_file,omitempty"`
	// SenderID is the alphanumeric sender shown where countries allow one.
	SenderID string `yaml:"sender_id,omitempty" json:"sender_id,omitempty"`
	// SMSType is Transactional (default) or Promotional.
	SMSType string `yaml:"sms_type,omitempty" json:"sms_type,omitempty"`
	// MaxLength caps the text message, in characters (default 160).
	MaxLength int           `yaml:"max_length,omitempty" json:"max_length,omitempty"`
	Timeout   time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Notifier publishes to one target.
type Notifier struct {
	cfg    Config
	client *awssns.Client
	log    zerolog.Logger
}

// String names the notifier's target; the client (and its credentials)
// stays out of fmt's reach.
func (n Notifier) String() string { return "sns(" + n.target() + ")" }

// GoString is String, for %#v.
func (n Notifier) GoString() string { return n.String() }

func (n Notifier) target() string {
	if n.cfg.TopicARN != "" {
		return n.cfg.TopicARN
	}
	return n.cfg.PhoneNumber
}

// New checks cfg and returns a notifier. Nothing is sent; credentials are
// fetched on the first message.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	if err := check(&cfg); err != nil {
		return nil, fmt.Errorf("sns: %w", err)
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("sns: %w", err)
	}
	return &Notifier{cfg: cfg, client: client, log: log}, nil
}

// check validates cfg and fills in its defaults.
func check(cfg *Config) error {
	switch {
	case (cfg.TopicARN == "") == (cfg.PhoneNumber == ""):
		return errors.New("exactly one of topic_arn and phone_number is required")
	case cfg.PhoneNumber != "" && !e164.MatchString(cfg.PhoneNumber):
		return fmt.Errorf("phone_number %q: want E.164, e.g. +4915112345678", cfg.PhoneNumber)
	case cfg.Endpoint != "" && !strings.HasPrefix(cfg.Endpoint, "https://") && !strings.HasPrefix(cfg.Endpoint, "http://"):
		return fmt.Errorf("endpoint %q: want an http(s) URL", cfg.Endpoint)
	case cfg.MaxLength < 0 || cfg.MaxLength > 1600: // the SMS Publish limit
		return fmt.Errorf("max_length %d: want 1 to 1600", cfg.MaxLength)
	}
	if cfg.TopicARN != "" {
		a, err := arn.Parse(cfg.TopicARN)
		if err != nil || a.Service != "sns" {
			return fmt.Errorf("topic_arn %q: want arn:aws:sns:<region>:<account>:<topic>", cfg.TopicARN)
		}
		if cfg.Region == "" {
			cfg.Region = a.Region
		}
	}
	switch cfg.SMSType {
	case "":
		cfg.SMSType = Transactional
	case Transactional, Promotional:
	default:
		return fmt.Errorf("sms_type %q: want %s or %s", cfg.SMSType, Transactional, Promotional)
	}
	if cfg.MaxLength == 0 {
		cfg.MaxLength = DefaultMaxLength
	}
	return nil
}

// newClient builds the SNS client. The SDK's own retries are off: the
// dispatcher retries, with its backoff, and counts attempts once.
func newClient(cfg Config) (*awssns.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	secret, err := notify.LoadSecret(cfg.SecretAccessKey, cfg.SecretAccessKeyFile, "secret_access_key")
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.AccessKeyID != "" && secret != "":
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, secret.Value(), "")))
	case cfg.AccessKeyID != "" || secret != "":
		return nil, errors.New("access_key_id and secret_access_key (or secret_access_key_file) go together")
	}
	// Loading reads the environment and shared files only; no request.
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("region is required (or AWS_REGION, or a topic_arn)")
	}
	return awssns.NewFromConfig(awsCfg, func(o *awssns.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = notify.NewHTTPClient(cfg.Timeout)
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}), nil
}

// Notify publishes one message per signal; it stops at the first failure.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	for _, m := range msgs {
		in, err := n.NewPublish(m)
		if err != nil {
			return false, fmt.Errorf("sns: %w", err)
		}
		if _, err := n.client.Publish(ctx, in); err != nil {
			return Retryable(ctx, err), fmt.Errorf("sns: %w", err)
		}
	}
	return false, nil
}
