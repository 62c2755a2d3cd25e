package sns

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/offtrail/offtrail/notify"
)

// throttled are SNS's rate-limit codes besides the SDK's common ones.
var throttled = map[string]bool{"Throttled": true, "KMSThrottling": true}

// Retryable classifies a Publish error like the HTTP integrations do: 429,
// 5xx, throttling and network trouble (including fetching credentials) are
// transient; other answers (a bad number, a missing topic, access denied)
// are not.
func Retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		_, common := retry.DefaultThrottleErrorCodes[api.ErrorCode()]
		if common || throttled[api.ErrorCode()] || api.ErrorFault() == smithy.FaultServer {
			return true
		}
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() != 0 {
		return notify.RetryStatus(resp.HTTPStatusCode())
	}
	return api == nil
}
