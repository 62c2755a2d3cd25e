package backends

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/internal/testenv"
)

func TestOpenDetectsEngine(t *testing.T) {
	for name, u := range testenv.Engines(t) {
		t.Run(name, func(t *testing.T) {
			var logs strings.Builder
			b, err := Open(t.Context(), Options{URLs: []string{u}, Password: "never-logged"}, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Kind() != name {
				t.Errorf("Kind() = %q, want %q", b.Kind(), name)
			}
			if err := b.Refresh(t.Context(), "offtrail-no-such-index"); err != nil {
				t.Errorf("opened backend does not work: %v", err)
			}
			if !strings.Contains(logs.String(), `"engine":"`+name+`"`) || strings.Contains(logs.String(), "never-logged") {
				t.Errorf("log %s", logs.String())
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	cases := []struct {
		file    string
		status  int
		header  http.Header
		kind    string
		wantErr string
	}{
		{"opensearch-2.json", 200, nil, "opensearch", ""},
		{"elasticsearch-8.json", 200, nil, "elasticsearch", ""},
		{"elasticsearch-7.json", 200, nil, "", "unsupported Elasticsearch 7.17.22"},
		{"elasticsearch-405.json", 405, http.Header{"X-Elastic-Product": {"Elasticsearch"}}, "elasticsearch", ""},
		{"elasticsearch-405.json", 401, nil, "", "check the credentials"},
		{"other.json", 200, nil, "", "not Elasticsearch 8 or OpenSearch"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			id, err := identify(c.status, c.header, body)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || id.kind != c.kind {
				t.Fatalf("identify = %+v, %v; want %s", id, err, c.kind)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	if got := redact("https://elastic:s3cret@es.example:9200/"); strings.Contains(got, "s3cret") {
		t.Errorf("redact kept the password: %s", got)
	}
}

// TestTransportAsksForGzipOnlyWhenTold: Go's transport asks for gzip unless
// told not to, and the engines then compress every answer.
func TestTransportAsksForGzipOnlyWhenTold(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Accept-Encoding")
	}))
	defer srv.Close()
	for _, tc := range []struct {
		compression bool
		want        string
	}{{false, ""}, {true, "gzip"}} {
		tr, err := transport(Options{Compression: tc.compression})
		if err != nil {
			t.Fatal(err)
		}
		res, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got != tc.want {
			t.Errorf("Compression %v: Accept-Encoding %q, want %q", tc.compression, got, tc.want)
		}
	}
}
