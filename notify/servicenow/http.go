package servicenow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/offtrail/offtrail/notify"
)

// maxAnswer bounds what is read of an answer; a lookup returns one sys_id.
const maxAnswer = 1 << 20

// do sends one Table API request and returns the answer's body. It is
// notify.Post with methods other than POST and the body kept, which the
// lookup needs; the classification is the same (429 and 5xx retryable).
func (n *Notifier) do(ctx context.Context, method, u string, in any) (body []byte, retry bool, err error) {
	req, err := n.request(ctx, method, u, in)
	if err != nil {
		return nil, false, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("servicenow: %w", ctx.Err())
		}
		// Network trouble is transient. url.Error quotes the URL: strip it,
		// as notify.Post does, so errors read the same across channels.
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) && uerr.Unwrap() != nil {
			err = uerr.Unwrap()
		}
		return nil, true, fmt.Errorf("servicenow: %w", err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, resp.Body) // let the connection be reused
	if resp.StatusCode/100 != 2 {
		snippet := strings.TrimSpace(string(body[:min(len(body), 512)]))
		return nil, notify.RetryStatus(resp.StatusCode), fmt.Errorf("servicenow: unexpected status %s: %s", resp.Status, snippet)
	}
	if rerr != nil {
		return nil, true, fmt.Errorf("servicenow: read answer: %w", rerr)
	}
	return body, false, nil
}

func (n *Notifier) request(ctx context.Context, method, u string, in any) (*http.Request, error) {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("servicenow: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, errors.New("servicenow: invalid request URL")
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", n.auth.Value())
	req.Header.Set("User-Agent", "offtrail")
	return req, nil
}
