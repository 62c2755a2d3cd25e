package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/testenv"
)

const loadEvents = `{"eventTime":"2024-01-01T00:00:00Z","eventName":"ListBuckets","eventID":"e1","eventSource":"s3.amazonaws.com","userIdentity":{"type":"IAMUser","userName":"alice","arn":"arn:aws:iam::1:user/alice"},"sourceIPAddress":"203.0.113.9"}
{"eventTime":"2024-01-01T00:01:00Z","eventName":"GetObject","eventID":"e2","errorCode":"AccessDenied"}
not json
{"eventName":"NoTime"}
`

// writeLoadInput lays out one S3 delivery file and one NDJSON file.
func writeLoadInput(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "AWSLogs", "1", "CloudTrail", "us-east-1", "2024", "01", "01")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"Records":[{"eventTime":"2024-01-01T00:02:00Z","eventName":"ConsoleLogin","eventID":"e3","responseElements":{"ConsoleLogin":"Failure"}}]}`))
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, "1_CloudTrail_us-east-1_x.json.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "events.jsonl"), []byte(loadEvents), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

var summaryLine = regexp.MustCompile(`^loaded (\d+), skipped (\d+), unreadable 0; \d+ with a location; in \d+\.\d seconds, \d+ events/s\n$`)

func TestLoadEmbedded(t *testing.T) {
	input := writeLoadInput(t)
	storeDir := t.TempDir()
	for _, tt := range []struct {
		profile, index, timeField, outcomeField string
	}{
		{"ecs", "logs-aws.cloudtrail-default", "@timestamp", "event.outcome"},
		{"cloudtrail", "my-trail", "eventTime", "event.outcome"},
	} {
		t.Run(tt.profile, func(t *testing.T) {
			args := []string{"load", "--store", "file:" + storeDir, "--profile", tt.profile}
			if tt.index != "logs-aws.cloudtrail-default" {
				args = append(args, "--index", tt.index)
			}
			args = append(args, input)
			// Twice: ids are eventIDs, so the second load overwrites.
			for range 2 {
				var stdout, stderr bytes.Buffer
				if code := runMain(args, &stdout, &stderr); code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				m := summaryLine.FindStringSubmatch(stdout.String())
				if m == nil || m[1] != "3" || m[2] != "2" {
					t.Errorf("summary %q", stdout.String())
				}
				for _, want := range []string{"events.jsonl:3 (record 3): invalid JSON", "events.jsonl:4 (record 4): no eventTime"} {
					if !strings.Contains(stderr.String(), want) {
						t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
					}
				}
			}

			st, err := openStore(context.Background(), &cliEnv{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}, "file:"+storeDir, forReading)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			evs, err := st.Events(context.Background(), store.Query{
				Index:     []string{tt.index},
				TimeField: tt.timeField,
				Window:    store.Window{From: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
			}, 100)
			if err != nil {
				t.Fatal(err)
			}
			var outcomes []string
			for _, ev := range evs {
				v, _ := store.Lookup(ev.Source, tt.outcomeField)
				s, _ := store.Stringify(v)
				outcomes = append(outcomes, ev.ID+"="+s)
			}
			if got := strings.Join(outcomes, " "); got != "e1=success e2=failure e3=failure" {
				t.Errorf("events: %s", got)
			}
		})
	}
}

func TestLoadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"load", "--store", "file:" + t.TempDir()},
		{"load", "--profile", "ecs", "x"},
		{"load", "--store", "file:" + t.TempDir(), "--profile", "cef", t.TempDir()},
		{"load", "--store", "file:" + t.TempDir(), filepath.Join(t.TempDir(), "missing")},
	} {
		var stdout, stderr bytes.Buffer
		if code := runMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// TestLoadEngines loads the shared attack data twice into real
// Elasticsearch and OpenSearch, in both shapes: nothing is rejected and the
// second load overwrites instead of duplicating.
func TestLoadEngines(t *testing.T) {
	data := "../../../shared/data/cloudtrail"
	if _, err := os.Stat(data); err != nil {
		data = "/work/shared/data/cloudtrail"
	}
	files := []string{
		filepath.Join(data, "stratus_detonation_logs.jsonl"),
		filepath.Join(data, "otrf_ec2_proxy_s3_exfiltration.jsonl"),
	}
	for name, url := range testenv.Engines(t) {
		for _, profile := range []string{"ecs", "cloudtrail"} {
			t.Run(name+"/"+profile, func(t *testing.T) {
				index := fmt.Sprintf("offtrail-loadtest-%s-%d", profile, time.Now().UnixNano())
				env := &cliEnv{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, log: zerolog.Nop()}
				st, err := openStore(context.Background(), env, url, forWriting)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				t.Cleanup(func() { deleteIndex(t, url, index) })
				for range 2 {
					var stdout, stderr bytes.Buffer
					args := append([]string{"load", "--store", url, "--profile", profile, "--index", index}, files...)
					if code := runMain(args, &stdout, &stderr); code != 0 {
						t.Fatalf("exit %d: %s", code, stderr.String())
					}
					if m := summaryLine.FindStringSubmatch(stdout.String()); m == nil || m[1] != "413" || m[2] != "0" {
						t.Errorf("summary %q, stderr %s", stdout.String(), stderr.String())
					}
				}
				timeField := "@timestamp"
				if profile == "cloudtrail" {
					timeField = "eventTime"
				}
				var total int64
				err = st.CountGroups(context.Background(), store.CountRequest{
					Query: store.Query{
						Index:     []string{index},
						TimeField: timeField,
						Window:    store.Window{From: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Now()},
					},
					GroupBy: []string{"event.outcome"},
				}, func(g store.Group) error { total += g.Count; return nil })
				if err != nil {
					t.Fatal(err)
				}
				if total != 413 {
					t.Errorf("%d documents with an outcome, want 413", total)
				}
			})
		}
	}
}

// deleteIndex removes a test index and the template load made for it.
func deleteIndex(t *testing.T, base, index string) {
	for _, path := range []string{"/" + index, "/_index_template/offtrail-cloudtrail-ecs-" + index, "/_index_template/offtrail-cloudtrail-raw-" + index} {
		req, _ := http.NewRequest(http.MethodDelete, base+path, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}
