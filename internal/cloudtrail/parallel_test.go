package cloudtrail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestReadParallelSameRecords: any worker count sees exactly the records
// and stats of a sequential Read, and an error from fn stops the read.
func TestReadParallelSameRecords(t *testing.T) {
	events := benchRecords(t, 60)
	root := t.TempDir()
	for i := range 6 {
		dir := filepath.Join(root, "AWSLogs", "123456789012", "CloudTrail", "us-east-1", "2024", "01", fmt.Sprintf("%02d", i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("123456789012_CloudTrail_us-east-1_202401%02dT0000Z_x.json.gz", i+1)
		if err := os.WriteFile(filepath.Join(dir, name), gzipBytes(delivery(events[i*10:(i+1)*10])), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(read func(fn func(Record) error) (Stats, error)) ([]string, Stats) {
		var mu sync.Mutex
		var ids []string
		st, err := read(func(rec Record) error {
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, fmt.Sprintf("%s:%d", rec.File, rec.N))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids, st
	}
	want, wantSt := collect(func(fn func(Record) error) (Stats, error) { return Read(context.Background(), []string{root}, fn) })
	if wantSt.Records != 60 || wantSt.Files != 6 {
		t.Fatalf("sequential read: %+v", wantSt)
	}
	for _, workers := range []int{0, 1, 2, 4, 16} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			var r Reader
			got, st := collect(func(fn func(Record) error) (Stats, error) {
				return r.ReadParallel(context.Background(), []string{root}, workers, fn)
			})
			if st != wantSt || !slices.Equal(got, want) {
				t.Fatalf("stats %+v, %d records; want %+v, %d", st, len(got), wantSt, len(want))
			}
			stop := errors.New("stop")
			if _, err := r.ReadParallel(context.Background(), []string{root}, workers, func(Record) error { return stop }); !errors.Is(err, stop) {
				t.Fatalf("error from fn: got %v", err)
			}
		})
	}
}
