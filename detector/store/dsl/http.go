package dsl

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RetryOnStatus is what both clients retry: 429 (the engine sheds load
// with es_rejected_execution_exception) and the gateway errors of a node
// restarting behind a load balancer.
var RetryOnStatus = []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// MaxRetries bounds the client's retries of one request.
const MaxRetries = 5

// RetryBackoff is exponential (200ms, 400ms, … capped at 10s) with full
// jitter, so many writers backing off from one busy cluster spread out.
func RetryBackoff(attempt int) time.Duration {
	d := 200 * time.Millisecond << min(attempt, 6)
	d = min(d, 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

// NewRequest builds the *http.Request the clients' Perform methods take:
// a relative URL that the client completes with a node's address.
func NewRequest(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Request, error) {
	u, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("request path %q: %w", path, err)
	}
	u.RawQuery = query.Encode()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "/", r)
	if err != nil {
		return nil, err
	}
	req.URL = u
	if body != nil {
		ct := "application/json"
		if strings.HasSuffix(u.Path, "/_bulk") {
			ct = "application/x-ndjson"
		}
		req.Header.Set("Content-Type", ct)
	}
	return req, nil
}

// ReadResponse reads and closes a response from a client's Perform.
func ReadResponse(res *http.Response, err error) (int, []byte, error) {
	if err != nil {
		if res != nil && res.Body != nil {
			res.Body.Close()
		}
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("read response: %w", err)
	}
	return res.StatusCode, body, nil
}
