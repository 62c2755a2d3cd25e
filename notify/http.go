package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultTimeout bounds one HTTP request to a notification service.
const DefaultTimeout = 15 * time.Second

// NewHTTPClient returns the client integrations use: the default transport
// (proxy from the environment) and a timeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{Timeout: timeout}
}

// RetryStatus classifies an HTTP status: rate limiting (429) and server
// errors are transient; other client errors mean the request itself is
// wrong and sending it again will not help.
func RetryStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// Post sends body to url and classifies the outcome. A 2xx status is
// success; any other status is an error carrying the start of the response
// body. name labels errors ("slack"); it must not be the URL, which may be a
// secret.
func Post(ctx context.Context, client *http.Client, name, url, contentType string, body []byte, header http.Header) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		// The URL is a secret; do not echo the parser's message, which quotes it.
		return false, fmt.Errorf("%s: invalid request URL", name)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "offtrail")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("%s: %w", name, ctx.Err())
		}
		// Network trouble is transient. url.Error quotes the URL: strip it.
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) && uerr.Unwrap() != nil {
			err = uerr.Unwrap()
		}
		return true, fmt.Errorf("%s: %w", name, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body) // let the connection be reused
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return RetryStatus(resp.StatusCode), fmt.Errorf("%s: unexpected status %s: %s", name, resp.Status, strings.TrimSpace(string(snippet)))
}
