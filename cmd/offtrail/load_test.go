package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/offtrail/offtrail/detector/store"
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

var summaryLine = regexp.MustCompile(`^loaded (\d+), skipped (\d+), in \d+\.\d seconds, \d+ events/s\n$`)

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
				for _, want := range []string{"events.jsonl:3: invalid JSON", "events.jsonl:4: no eventTime"} {
					if !strings.Contains(stderr.String(), want) {
						t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
					}
				}
			}

			st, err := openStore(context.Background(), &cliEnv{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}, "file:"+storeDir)
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
