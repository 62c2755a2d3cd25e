package cloudtrail

import (
	"context"
	"sync"
)

// ReadParallel is Read with the files spread over workers goroutines
// (GOMAXPROCS-like callers pass runtime.GOMAXPROCS(0)): decoding is the
// costly part of loading and files are independent. One worker reads a
// file whole, so records of a file reach fn in order, but files are
// interleaved: fn and OnSkip are called concurrently and must be safe for
// that. The first error from fn or the context stops every worker.
func (r *Reader) ReadParallel(ctx context.Context, paths []string, workers int, fn func(Record) error) (Stats, error) {
	if workers <= 1 {
		return r.Read(ctx, paths, fn)
	}
	var files []string
	for _, p := range paths {
		fs, err := listFiles(p)
		if err != nil {
			return Stats{}, err
		}
		files = append(files, fs...)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var (
		mu    sync.Mutex // guards total
		total Stats
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st Stats
			defer func() {
				mu.Lock()
				total.Add(st)
				mu.Unlock()
			}()
			for f := range next {
				if err := r.readFile(ctx, f, fn, &st); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
feed:
	for _, f := range files {
		select {
		case next <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return total, context.Cause(ctx)
}
