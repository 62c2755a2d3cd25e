package email

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

// server is a real SMTP server (emersion/go-smtp) on loopback that offers
// STARTTLS with a certificate made for the test and PLAIN auth once the
// connection is encrypted.
type server struct {
	addr   string
	caFile string

	mu    sync.Mutex
	mails []received
	// rcptErr, if set, is the reply to RCPT TO.
	rcptErr error
}

type received struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

func startServer(t *testing.T, withTLS bool) *server {
	t.Helper()
	s := &server{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if withTLS {
		cert, caFile := selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.caFile = caFile
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

type session struct {
	srv  *server
	conn *smtp.Conn
	cur  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "offtrail" || pass != "hunter2" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.cur.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.cur.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.rcptErr != nil {
		return s.srv.rcptErr
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.data = b
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, s.cur)
	s.srv.mu.Unlock()
	s.cur = received{user: s.cur.user}
	return nil
}

func (s *session) Reset()        { s.cur = received{user: s.cur.user} }
func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for localhost and 127.0.0.1 and writes it
// as the CA file the client trusts.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "offtrail test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, caFile
}

func config(s *server) Config {
	return Config{
		Smarthost: s.addr,
		From:      "offtrail@example.com",
		To:        []string{"secops@example.com", "oncall@example.com"},
		Username:  "offtrail",
		Password:  "hunter2",
		TLS:       TLSConfig{CAFile: s.caFile},
		Timeout:   10 * time.Second,
	}
}

func TestSendOverSTARTTLS(t *testing.T) {
	s := startServer(t, true)
	n, err := New(config(s), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.Suppressed = 4
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(s.mails) != 1 {
		t.Fatalf("%d mails, want 1", len(s.mails))
	}
	got := s.mails[0]
	if !got.tls || got.user != "offtrail" {
		t.Errorf("tls=%v user=%q: want an authenticated STARTTLS session", got.tls, got.user)
	}
	if got.from != "offtrail@example.com" || strings.Join(got.to, ",") != "secops@example.com,oncall@example.com" {
		t.Errorf("envelope from %q to %v", got.from, got.to)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[offtrail] medium: Unusual AWS Command for a User — alice"; subj != want {
		t.Errorf("Subject %q, want %q", subj, want)
	}
	if h := msg.Header.Get("X-Offtrail-Signal"); h != m.SignalID {
		t.Errorf("X-Offtrail-Signal %q", h)
	}
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	body := io.Reader(msg.Body)
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	notifytest.Golden(t, "body.txt", bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n")))
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tls   bool
		edit  func(*Config, *server)
		retry bool
	}{
		{name: "server without STARTTLS", tls: false, retry: false},
		{name: "untrusted certificate", tls: true, edit: func(c *Config, _ *server) { c.TLS.CAFile = "" }, retry: false},
		{name: "wrong password", tls: true, edit: func(c *Config, _ *server) { c.Password = "wrong" }, retry: false},
		{name: "mailbox busy (450)", tls: true, retry: true, edit: func(_ *Config, s *server) {
			s.rcptErr = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		}},
		{name: "no such user (550)", tls: true, retry: false, edit: func(_ *Config, s *server) {
			s.rcptErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}},
		{name: "connection refused", tls: true, retry: true, edit: func(c *Config, _ *server) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				panic(err)
			}
			c.Smarthost = l.Addr().String()
			_ = l.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.tls)
			cfg := config(s)
			if tc.edit != nil {
				tc.edit(&cfg, s)
			}
			n, err := New(cfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Notify(context.Background(), notifytest.Message())
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("retry=%v err=%v", retry, err)
			if retry != tc.retry {
				t.Errorf("retry = %v, want %v (%v)", retry, tc.retry, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
			if len(s.mails) != 0 {
				t.Errorf("%d mails delivered", len(s.mails))
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	good := Config{Smarthost: "smtp.example.com:587", From: "a@example.com", To: []string{"b@example.com"}}
	if _, err := New(good, zerolog.Nop()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"no port":      func(c *Config) { c.Smarthost = "smtp.example.com" },
		"no to":        func(c *Config) { c.To = nil },
		"bad from":     func(c *Config) { c.From = "not an address" },
		"bad template": func(c *Config) { c.Subject = "{{.Nope" },
		"both secrets": func(c *Config) { c.Username, c.Password, c.PasswordFile = "u", "p", "/x" },
		"missing ca":   func(c *Config) { c.TLS.CAFile = "/nonexistent/ca.pem" },
	} {
		cfg := good
		edit(&cfg)
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

var _ notify.Notifier = (*Notifier)(nil)
