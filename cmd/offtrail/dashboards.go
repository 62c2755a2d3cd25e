package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/mappings/dashboards"
	"github.com/offtrail/offtrail/mappings/kibana"
)

func init() {
	register(command{
		name:    "dashboards",
		summary: "install the Kibana or OpenSearch Dashboards saved objects",
		run:     runDashboards,
	})
}

const dashboardsSynopsis = "install --kibana URL | --dashboards URL [--space ID] [--tenant NAME] [--file NDJSON] [--wait DURATION]"

// ui is what differs between Kibana and OpenSearch Dashboards when
// importing saved objects: the anti-CSRF header and the objects shipped.
type ui struct {
	name      string
	xsrf      string
	objects   []byte
	objectsAs string
}

var (
	kibanaUI     = ui{name: "Kibana", xsrf: "kbn-xsrf", objects: kibana.SavedObjects, objectsAs: kibana.FileName}
	dashboardsUI = ui{name: "OpenSearch Dashboards", xsrf: "osd-xsrf", objects: dashboards.SavedObjects, objectsAs: dashboards.FileName}
)

func runDashboards(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "install" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(env.stderr, "usage: offtrail dashboards %s\n", dashboardsSynopsis)
			return nil
		}
		return &exitError{code: 2, err: fmt.Errorf("usage: offtrail dashboards %s", dashboardsSynopsis)}
	}
	fs := newFlagSet(env, "dashboards", dashboardsSynopsis)
	kibanaURL := fs.String("kibana", "", "Kibana 8 base URL, e.g. http://localhost:5601")
	dashURL := fs.String("dashboards", "", "OpenSearch Dashboards 2 base URL, e.g. http://localhost:5601")
	space := fs.String("space", "", "Kibana space to import into (default: the default space)")
	tenant := fs.String("tenant", "", "OpenSearch Dashboards security tenant, e.g. global (sent as the securitytenant header)")
	file := fs.String("file", "", "import this NDJSON instead of the built-in objects")
	wait := fs.Duration("wait", 0, "keep retrying this long while the UI is starting or unreachable (e.g. 5m in a compose job)")
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: offtrail dashboards %s\n\n%s\n\nflags:\n", dashboardsSynopsis,
			"credentials: OFFTRAIL_USERNAME, OFFTRAIL_PASSWORD (or _FILE), OFFTRAIL_API_KEY (or _FILE, Kibana only); OFFTRAIL_CA_CERT, OFFTRAIL_TLS_INSECURE=true")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var target ui
	var base string
	switch {
	case (*kibanaURL == "") == (*dashURL == ""):
		return &exitError{code: 2, err: errors.New("give exactly one of --kibana URL or --dashboards URL")}
	case *kibanaURL != "":
		target, base = kibanaUI, *kibanaURL
	default:
		target, base = dashboardsUI, *dashURL
		if *space != "" {
			return &exitError{code: 2, err: errors.New("--space is a Kibana option; OpenSearch Dashboards uses --tenant")}
		}
	}
	if *tenant != "" && target.name == kibanaUI.name {
		return &exitError{code: 2, err: errors.New("--tenant is an OpenSearch Dashboards option; Kibana uses --space")}
	}
	if _, err := url.ParseRequestURI(base); err != nil || !strings.HasPrefix(base, "http") {
		return &exitError{code: 2, err: fmt.Errorf("%s URL %q: want http(s)://host:port", target.name, base)}
	}
	objects, name := target.objects, target.objectsAs
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		objects, name = b, filepath.Base(*file)
	}

	client, auth, err := uiClient(env)
	if err != nil {
		return err
	}
	endpoint := strings.TrimSuffix(base, "/")
	if *space != "" {
		endpoint += "/s/" + url.PathEscape(*space)
	}
	endpoint += "/api/saved_objects/_import?overwrite=true"
	imp := importer{client: client, endpoint: endpoint, ui: target, auth: auth, tenant: *tenant}
	res, err := imp.run(ctx, env, objects, name, *wait)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%s: imported %d saved object(s) into %s\n", target.name, res.SuccessCount, uiRedact(base))
	for _, e := range res.Errors {
		fmt.Fprintf(env.stdout, "  failed %s %s (%s): %s\n", e.Type, e.ID, e.Title, e.Error.describe())
	}
	if !res.Success || len(res.Errors) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d saved object(s) failed to import", len(res.Errors))}
	}
	return nil
}

// importResult is the saved objects import API's answer (the same in
// Kibana 8 and OpenSearch Dashboards 2).
type importResult struct {
	Success      bool `json:"success"`
	SuccessCount int  `json:"successCount"`
	Errors       []struct {
		ID    string      `json:"id"`
		Type  string      `json:"type"`
		Title string      `json:"title"`
		Error importError `json:"error"`
	} `json:"errors"`
}

type importError struct {
	Type       string `json:"type"`
	Message    string `json:"message"`
	References []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"references"`
}

func (e importError) describe() string {
	s := e.Type
	if e.Message != "" {
		s += ": " + e.Message
	}
	for _, r := range e.References {
		s += fmt.Sprintf(" [missing %s %s]", r.Type, r.ID)
	}
	return s
}

type importer struct {
	client   *http.Client
	endpoint string
	ui       ui
	auth     func(*http.Request)
	tenant   string
}

// run posts the objects, retrying while the UI is not up yet (connection
// refused, or 503 "server is not ready yet") until wait has passed.
func (imp importer) run(ctx context.Context, env *cliEnv, objects []byte, name string, wait time.Duration) (*importResult, error) {
	deadline := time.Now().Add(wait)
	for attempt := 1; ; attempt++ {
		res, retry, err := imp.post(ctx, objects, name)
		if err == nil {
			return res, nil
		}
		if !retry || time.Now().After(deadline) {
			return nil, err
		}
		env.log.Info().Err(err).Int("attempt", attempt).Msgf("%s not ready; retrying", imp.ui.name)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Duration(attempt)*time.Second, 5*time.Second, time.Until(deadline)+time.Millisecond)):
		}
	}
}

func (imp importer) post(ctx context.Context, objects []byte, name string) (*importResult, bool, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		return nil, false, err
	}
	if _, err := part.Write(objects); err != nil {
		return nil, false, err
	}
	if err := mw.Close(); err != nil {
		return nil, false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, imp.endpoint, &body)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set(imp.ui.xsrf, "true")
	if imp.tenant != "" {
		req.Header.Set("securitytenant", imp.tenant)
	}
	imp.auth(req)
	what := fmt.Sprintf("import saved objects into %s %s", imp.ui.name, uiRedact(imp.endpoint))
	resp, err := imp.client.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, true, fmt.Errorf("%s: read response: %w", what, err)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout:
		return nil, true, fmt.Errorf("%s: status %d: %s", what, resp.StatusCode, uiSnippet(raw))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, false, fmt.Errorf("%s: status %d (check OFFTRAIL_USERNAME/OFFTRAIL_PASSWORD or OFFTRAIL_API_KEY, and that the user may manage saved objects): %s",
			what, resp.StatusCode, uiSnippet(raw))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, false, fmt.Errorf("%s: status %d: %s", what, resp.StatusCode, uiSnippet(raw))
	}
	var res importResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, false, fmt.Errorf("%s: decode response: %w: %s", what, err, uiSnippet(raw))
	}
	return &res, false, nil
}

func uiSnippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// uiClient builds the HTTP client and credentials from the same
// environment openStore reads, so one set of variables serves the cluster
// and its UI.
func uiClient(env *cliEnv) (*http.Client, func(*http.Request), error) {
	// The same credentials and TLS settings as the store's, built the same way.
	conn, err := config.Connect(config.Sources{NoStore: true, Getenv: os.Getenv})
	if err != nil {
		return nil, nil, err
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if conn.CACert != "" {
		pem, err := os.ReadFile(conn.CACert)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", config.EnvCACert, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%s %s: no PEM certificate found", config.EnvCACert, conn.CACert)
		}
		tlsCfg.RootCAs = pool
	}
	if conn.InsecureSkipVerify {
		env.log.Warn().Str("set_by", conn.InsecureFrom).Msg("TLS certificate verification is disabled")
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // only when asked
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	user, password, apiKey := conn.Username, conn.Password.Reveal(), conn.APIKey.Reveal()
	auth := func(req *http.Request) {
		switch {
		case apiKey != "":
			req.Header.Set("Authorization", "ApiKey "+apiKey)
		case user != "":
			req.SetBasicAuth(user, password)
		}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, auth, nil
}

// uiRedact drops credentials from a URL before it is printed.
func uiRedact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}
