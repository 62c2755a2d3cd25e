// Package email sends offtrail signals as plain-text mail over SMTP, with
// STARTTLS required by default, using github.com/wneessen/go-mail.
package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/rs/zerolog"
	mail "github.com/wneessen/go-mail"

	"github.com/offtrail/offtrail/notify"
)

// DefaultSubject and DefaultText are the templates used when the channel
// sets none. Both see a notify.Message.
const (
	DefaultSubject = `[offtrail] {{.Severity}}: {{.RuleName}} — {{.Identity}}`
	DefaultText    = `{{.RuleName}} ({{.Severity}}, risk score {{.RiskScore}})

Identity:    {{.Identity}}
What:        {{.What}}
Score:       {{.ScoreText}} (confidence {{.Confidence}})
Events:      {{.Events}} between {{rfc3339 .FirstEvent}} and {{rfc3339 .LastEvent}}

{{.Reason}}
{{with .Link}}
Open: {{.}}
{{end}}
Rule: {{.RuleID}}
Signal: {{.SignalID}}
{{- if .Suppressed}}
{{.Suppressed}} similar signal(s) were suppressed since the last message.
{{- end}}
`
)

// Config is an email channel's settings.
type Config struct {
	// Smarthost is the SMTP server, host:port (port 587 for submission).
	Smarthost string   `yaml:"smarthost" json:"smarthost"`
	From      string   `yaml:"from" json:"from"`
	To        []string `yaml:"to" json:"to"`
	// Subject and Text are text/template templates over the message.
	Subject string `yaml:"subject,omitempty" json:"subject,omitempty"`
	Text    string `yaml:"text,omitempty" json:"text,omitempty"`
	Hello   string `yaml:"hello,omitempty" json:"hello,omitempty"`
	// Username and Password authenticate (mechanism negotiated, PLAIN or
	// LOGIN only over TLS); no username, no AUTH.
	Username     string        `yaml:"auth_username,omitempty" json:"auth_username,omitempty"`
	Password     notify.Secret `yaml:"auth_password,omitempty" json:"auth_password,omitempty"`
	PasswordFile string        `yaml:"auth_password_file,omitempty" json:"auth_password_file,omitempty"`
	// RequireTLS (default true) refuses to send unless STARTTLS succeeds.
	// Set it to false only for a relay on localhost.
	RequireTLS *bool     `yaml:"require_tls,omitempty" json:"require_tls,omitempty"`
	TLS        TLSConfig `yaml:"tls_config,omitempty" json:"tls_config,omitempty"`
	// Timeout bounds the whole SMTP conversation (default 30s).
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// TLSConfig adjusts certificate checks.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// Notifier sends mail through one server.
type Notifier struct {
	cfg     Config
	client  *mail.Client
	subject *template.Template
	text    *template.Template
	log     zerolog.Logger
}

var funcs = template.FuncMap{"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) }}

// New checks cfg and returns a notifier.
func New(cfg Config, log zerolog.Logger) (*Notifier, error) {
	host, portStr, err := net.SplitHostPort(cfg.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("email: smarthost %q: want host:port", cfg.Smarthost)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("email: smarthost %q: bad port", cfg.Smarthost)
	}
	if cfg.From == "" || len(cfg.To) == 0 {
		return nil, errors.New("email: from and to are required")
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.Text == "" {
		cfg.Text = DefaultText
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	n := &Notifier{cfg: cfg, log: log}
	if n.subject, err = template.New("subject").Funcs(funcs).Parse(cfg.Subject); err != nil {
		return nil, fmt.Errorf("email: subject: %w", err)
	}
	if n.text, err = template.New("text").Funcs(funcs).Parse(cfg.Text); err != nil {
		return nil, fmt.Errorf("email: text: %w", err)
	}
	// Catch bad addresses now rather than at the first signal.
	if err := mail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("email: from: %w", err)
	}
	if err := mail.NewMsg().To(cfg.To...); err != nil {
		return nil, fmt.Errorf("email: to: %w", err)
	}

	tlsCfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify} //nolint:gosec // the user's explicit choice
	if cfg.TLS.ServerName != "" {
		tlsCfg.ServerName = cfg.TLS.ServerName
	}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("email: tls_config.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("email: tls_config.ca_file %s: no certificates", cfg.TLS.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	policy := mail.TLSMandatory
	if cfg.RequireTLS != nil && !*cfg.RequireTLS {
		policy = mail.TLSOpportunistic
	}
	opts := []mail.Option{
		mail.WithPort(port),
		mail.WithTLSPolicy(policy),
		mail.WithTLSConfig(tlsCfg),
		mail.WithTimeout(cfg.Timeout),
	}
	if cfg.Hello != "" {
		opts = append(opts, mail.WithHELO(cfg.Hello))
	}
	if cfg.Username != "" {
		pw, err := notify.LoadSecret(cfg.Password, cfg.PasswordFile, "auth_password")
		if err != nil {
			return nil, fmt.Errorf("email: %w", err)
		}
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(cfg.Username), mail.WithPassword(pw.Value()))
	}
	if n.client, err = mail.NewClient(host, opts...); err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	return n, nil
}

// Notify sends one mail per message over one connection.
func (n *Notifier) Notify(ctx context.Context, msgs ...*notify.Message) (bool, error) {
	out := make([]*mail.Msg, 0, len(msgs))
	for _, m := range msgs {
		mm, err := n.render(m)
		if err != nil {
			return false, err
		}
		out = append(out, mm)
	}
	if err := n.client.DialAndSendWithContext(ctx, out...); err != nil {
		return retryable(ctx, err), fmt.Errorf("email: %w", err)
	}
	return false, nil
}

func (n *Notifier) render(m *notify.Message) (*mail.Msg, error) {
	var subj, text bytes.Buffer
	if err := n.subject.Execute(&subj, m); err != nil {
		return nil, fmt.Errorf("email: subject: %w", err)
	}
	if err := n.text.Execute(&text, m); err != nil {
		return nil, fmt.Errorf("email: text: %w", err)
	}
	mm := mail.NewMsg()
	if err := mm.From(n.cfg.From); err != nil {
		return nil, fmt.Errorf("email: from: %w", err)
	}
	if err := mm.To(n.cfg.To...); err != nil {
		return nil, fmt.Errorf("email: to: %w", err)
	}
	// A subject is one line, whatever the template or the identity contains.
	mm.Subject(strings.Join(strings.Fields(subj.String()), " "))
	mm.SetGenHeader("X-Offtrail-Signal", m.SignalID)
	mm.SetGenHeader("X-Offtrail-Rule", m.RuleID)
	mm.SetBodyString(mail.TypeTextPlain, text.String())
	return mm, nil
}

// retryable classifies an SMTP failure: 4xx replies and network trouble are
// transient; 5xx replies, authentication and TLS failures are not.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var (
		sendErr *mail.SendError
		proto   *textproto.Error
		certErr *tls.CertificateVerificationError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &sendErr):
		return sendErr.IsTemp()
	case errors.As(err, &proto):
		return proto.Code >= 400 && proto.Code < 500
	case errors.As(err, &certErr):
		return false
	case errors.As(err, &netErr):
		return true
	}
	return false
}
