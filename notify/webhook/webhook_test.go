package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/notify"
	"github.com/offtrail/offtrail/notify/internal/notifytest"
)

const secret = "s3cr3t-shared-with-the-receiver"

func TestSignedBody(t *testing.T) {
	var (
		got []byte
		hdr http.Header
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		hdr = r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	n, err := New(Config{
		URL:     notify.Secret(srv.URL + "/hook"),
		Secret:  secret,
		Headers: map[string]notify.Secret{"Authorization": "Bearer tok", "X-Team": "secops"},
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	n.now = func() time.Time { return time.Date(2024, 3, 5, 2, 20, 0, 0, time.UTC) }
	m1, m2 := notifytest.Message(), notifytest.Message()
	m2.SignalID, m2.Identity, m2.Suppressed = "0123456789abcdef0123456789abcdef", "role Deploy (session ci)", 3
	if _, err := n.Notify(context.Background(), m1, m2); err != nil {
		t.Fatal(err)
	}
	notifytest.GoldenJSON(t, "body.json", got)

	if !Verify([]byte(secret), got, hdr.Get(SignatureHeader)) {
		t.Errorf("signature %q does not verify", hdr.Get(SignatureHeader))
	}
	if Verify([]byte("wrong"), got, hdr.Get(SignatureHeader)) {
		t.Error("signature verifies under the wrong secret")
	}
	tampered := append([]byte(nil), got...)
	tampered[len(tampered)-3] ^= 1
	if Verify([]byte(secret), tampered, hdr.Get(SignatureHeader)) {
		t.Error("signature verifies a tampered body")
	}
	for k, want := range map[string]string{
		TimestampHeader: "1709605200",
		"Authorization": "Bearer tok",
		"X-Team":        "secops",
		"Content-Type":  "application/json",
	} {
		if hdr.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, hdr.Get(k), want)
		}
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	body := []byte(`{}`)
	good := Sign([]byte(secret), body)
	for _, h := range []string{"", good[len("sha256="):], "sha1=" + good[len("sha256="):], "sha256=zz", "sha256="} {
		if Verify([]byte(secret), body, h) {
			t.Errorf("Verify(%q) = true", h)
		}
	}
	if !Verify([]byte(secret), body, good) {
		t.Error("good signature rejected")
	}
}

func TestUnsignedWithoutSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(SignatureHeader) != "" {
			t.Error("signed without a secret")
		}
	}))
	defer srv.Close()
	n, err := New(Config{URL: notify.Secret(srv.URL)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(context.Background(), notifytest.Message()); err != nil {
		t.Fatal(err)
	}
}

func TestRetryClassification(t *testing.T) {
	for status, retry := range map[int]bool{400: false, 401: false, 404: false, 413: false, 429: true, 500: true, 503: true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
		n, err := New(Config{URL: notify.Secret(srv.URL)}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		r, err := n.Notify(context.Background(), notifytest.Message())
		srv.Close()
		if err == nil || r != retry {
			t.Errorf("status %d: retry=%v err=%v, want retry=%v", status, r, err, retry)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{URL: "ftp://x"},
		{URL: "https://x", Headers: map[string]notify.Secret{"x-offtrail-signature": "forged"}},
		{URL: "https://x", Secret: "a", SecretFile: "/nonexistent"},
	} {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}
