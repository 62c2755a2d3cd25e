// Package backends opens the store.Backend a cluster URL points at: it asks
// the cluster what it is (GET /) and builds the Elasticsearch or OpenSearch
// backend with the same TLS, credentials and signing.
package backends

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/signer"
	"github.com/opensearch-project/opensearch-go/v4/signer/awsv2"
	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/elastic"
	offtrailos "github.com/offtrail/offtrail/detector/store/opensearch"
)

// Options says how to reach a cluster. Secrets are never logged.
type Options struct {
	// URLs of cluster nodes; the first is asked what the cluster is.
	URLs               []string
	Username, Password string
	// APIKey is an Elasticsearch API key (base64 "id:key"), sent as
	// "Authorization: ApiKey …" to either engine.
	APIKey string
	// CACertFile is a PEM file of CAs to trust instead of the system's.
	CACertFile         string
	InsecureSkipVerify bool
	// Compression asks the cluster to gzip its answers (Accept-Encoding:
	// gzip, which Go's transport sends unless told not to). Off by default:
	// a tick's answers are a few hundred KB at most, and on a local network
	// gzip costs the engine and offtrail more CPU than the bytes it saves
	// (BENCHMARKS.md). On for a cluster across a slow or metered link.
	Compression bool
	// AWS, when set, signs every request with SigV4 using the standard AWS
	// credential chain (env, shared config, SSO, IMDS, …).
	AWS *AWSOptions
}

// AWSOptions configure SigV4 for Amazon OpenSearch Service.
type AWSOptions struct {
	Region string
	// Service is "es" (managed domains, the default) or "aoss" (Serverless).
	Service string
}

// Open detects the engine at opts.URLs[0] and returns its backend.
func Open(ctx context.Context, opts Options, log zerolog.Logger) (store.Backend, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("open cluster: no URL")
	}
	tr, err := transport(opts)
	if err != nil {
		return nil, err
	}
	var sign signer.Signer
	if opts.AWS != nil {
		if sign, err = awsSigner(ctx, *opts.AWS); err != nil {
			return nil, err
		}
	}

	var id identity
	if opts.AWS != nil && opts.AWS.Service == "aoss" {
		// Serverless collections have no GET /; they are OpenSearch.
		id = identity{kind: offtrailos.Kind, version: "serverless"}
	} else if id, err = detect(ctx, opts, tr, sign); err != nil {
		return nil, err
	}
	log.Info().Str("engine", id.kind).Str("version", id.version).Str("url", redact(opts.URLs[0])).Msg("cluster detected")

	switch id.kind {
	case elastic.Kind:
		if sign != nil {
			return nil, errors.New("open cluster: AWS SigV4 signing is for Amazon OpenSearch Service, but the cluster is Elasticsearch")
		}
		return elastic.New(elasticsearch.Config{
			Addresses: opts.URLs,
			Username:  opts.Username,
			Password:  opts.Password,
			APIKey:    opts.APIKey,
			Transport: tr,
		})
	default:
		cfg := opensearch.Config{
			Addresses: opts.URLs,
			Username:  opts.Username,
			Password:  opts.Password,
			Transport: tr,
			Signer:    sign,
		}
		if opts.APIKey != "" {
			cfg.Header = http.Header{"Authorization": {"ApiKey " + opts.APIKey}}
		}
		return offtrailos.New(cfg)
	}
}

// transport is the HTTP transport both the probe and the client use, so
// detection succeeds exactly when the client would connect.
func transport(opts Options) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipVerify} //nolint:gosec // only when asked
	if opts.CACertFile != "" {
		pem, err := os.ReadFile(opts.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("open cluster: CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("open cluster: CA certificate %s: no PEM certificate found", opts.CACertFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	tr.DisableCompression = !opts.Compression
	return tr, nil
}

func awsSigner(ctx context.Context, o AWSOptions) (signer.Signer, error) {
	service := o.Service
	if service == "" {
		service = "es"
	}
	if service != "es" && service != "aoss" {
		return nil, fmt.Errorf("open cluster: AWS service %q: want es or aoss", service)
	}
	var loadOpts []func(*config.LoadOptions) error
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("open cluster: AWS config: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("open cluster: AWS SigV4 needs a region")
	}
	s, err := awsv2.NewSignerWithService(cfg, service)
	if err != nil {
		return nil, fmt.Errorf("open cluster: AWS signer: %w", err)
	}
	return s, nil
}

type identity struct{ kind, version string }

// detect asks GET / what the cluster is.
func detect(ctx context.Context, opts Options, tr http.RoundTripper, sign signer.Signer) (identity, error) {
	base := strings.TrimSuffix(opts.URLs[0], "/")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		return identity{}, fmt.Errorf("open cluster %s: %w", redact(base), err)
	}
	switch {
	case opts.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+opts.APIKey)
	case opts.Username != "":
		req.SetBasicAuth(opts.Username, opts.Password)
	default:
		// Credentials in the URL (https://user:pass@host) as the clients take them.
		if u := req.URL.User; u != nil {
			p, _ := u.Password()
			req.SetBasicAuth(u.Username(), p)
		}
	}
	req.URL.User = nil
	if sign != nil {
		if err := sign.SignRequest(req); err != nil {
			return identity{}, fmt.Errorf("open cluster %s: sign: %w", redact(base), err)
		}
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return identity{}, fmt.Errorf("open cluster %s: %w", redact(base), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return identity{}, fmt.Errorf("open cluster %s: %w", redact(base), err)
	}
	id, err := identify(res.StatusCode, res.Header, body)
	if err != nil {
		return identity{}, fmt.Errorf("open cluster %s: %w", redact(base), err)
	}
	return id, nil
}

// identify decides the engine from the answer to GET /.
func identify(status int, h http.Header, body []byte) (identity, error) {
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return identity{}, fmt.Errorf("GET / answered %d: check the credentials (OFFTRAIL_USERNAME/OFFTRAIL_PASSWORD or OFFTRAIL_API_KEY)", status)
	}
	var root struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
		Tagline string `json:"tagline"`
	}
	parsed := status == http.StatusOK && json.Unmarshal(body, &root) == nil && root.Version.Number != ""
	v := root.Version
	switch {
	case parsed && (v.Distribution == "opensearch" || strings.Contains(root.Tagline, "OpenSearch")):
		return identity{kind: offtrailos.Kind, version: v.Number}, nil
	case parsed && strings.HasPrefix(v.Number, "8."):
		return identity{kind: elastic.Kind, version: v.Number}, nil
	case parsed && root.Tagline == "You Know, for Search":
		return identity{}, fmt.Errorf("unsupported Elasticsearch %s: offtrail needs Elasticsearch 8.x or OpenSearch", v.Number)
	case h.Get("X-Elastic-Product") == "Elasticsearch":
		// Every Elasticsearch 8 response carries this header, also when
		// the root endpoint is not available to the user (or, in minimal
		// builds, not installed).
		return identity{kind: elastic.Kind, version: "8.x"}, nil
	case status != http.StatusOK:
		return identity{}, fmt.Errorf("GET / answered %d: %s", status, strings.TrimSpace(string(truncate(body, 200))))
	}
	return identity{}, fmt.Errorf("not Elasticsearch 8 or OpenSearch: GET / says %s", strings.TrimSpace(string(truncate(body, 200))))
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// redact drops credentials from a URL before it is logged or quoted.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}
