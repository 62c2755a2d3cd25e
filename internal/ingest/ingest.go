// Package ingest is offtrail's one CloudTrail pipeline, used by `offtrail
// load`, the bench and the demo: records are shaped into the documents of
// a profile (ecs as Elastic's AWS integration, or raw cloudtrail), with
// source.geo from a GeoIP database, and handed to a bulk writer; and it
// decides which index template an index gets.
package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/mappings"
)

// Shape says how records become documents.
type Shape struct {
	// Profile is "ecs" or "cloudtrail".
	Profile string
	// Geo adds source.geo when set.
	Geo cloudtrail.Geo
	// Ingested stamps event.ingested; nil means now. Generated history
	// uses the event's time plus a delivery delay.
	Ingested func(cloudtrail.Record) time.Time
}

// Delivered stamps event.ingested a fixed delay after the event, as
// CloudTrail's delivery would: for generated or replayed history, whose
// ingest time must not be today.
func Delivered(after time.Duration) func(cloudtrail.Record) time.Time {
	return func(rec cloudtrail.Record) time.Time { return rec.Time.Add(after) }
}

// Doc shapes rec and reports whether it got a location.
func (s Shape) Doc(rec cloudtrail.Record) (doc store.Doc, located bool, err error) {
	sh := cloudtrail.Shaper{Geo: s.Geo}
	if s.Ingested != nil {
		sh.Now = func() time.Time { return s.Ingested(rec) }
	}
	var m map[string]any
	if s.Profile == "cloudtrail" {
		m = sh.Raw(rec)
	} else {
		m = sh.ECS(rec)
	}
	src, err := json.Marshal(m)
	if err != nil {
		return store.Doc{}, false, fmt.Errorf("%s: encode: %w", pos(rec), err)
	}
	return store.Doc{ID: rec.ID, Source: src}, hasGeo(m), nil
}

func pos(rec cloudtrail.Record) cloudtrail.Pos {
	return cloudtrail.Pos{File: rec.File, Record: rec.N, Line: rec.Line}
}

// hasGeo reports whether a shaped document has source.geo (both profiles
// nest it under source).
func hasGeo(doc map[string]any) bool {
	src, _ := doc["source"].(map[string]any)
	_, ok := src["geo"]
	return ok
}

// Template returns the name and body of the index template that index
// gets from the shipped template tmpl ("cloudtrail-ecs", "signals", …): the
// shipped one when index matches its patterns, otherwise (or with extra
// settings, which must not reach other indices) one narrowed to exactly
// index, so a custom name is mapped the same way.
func Template(tmpl, index string, settings map[string]any) (string, json.RawMessage, error) {
	patterns, err := mappings.TemplatePatterns(tmpl)
	if err != nil {
		return "", nil, err
	}
	if len(settings) == 0 && mappings.MatchesPattern(index, patterns) {
		body, err := mappings.Template(tmpl)
		return "offtrail-" + tmpl, body, err
	}
	opt := mappings.TemplateOptions{Settings: settings, IndexPatterns: []string{index}}
	body, err := mappings.TemplateWith(tmpl, opt)
	return "offtrail-" + tmpl + "-" + index, body, err
}

// EnsureTemplate installs index's template (see Template).
func EnsureTemplate(ctx context.Context, st store.Backend, tmpl, index string, settings map[string]any) error {
	name, body, err := Template(tmpl, index, settings)
	if err != nil {
		return err
	}
	if err := st.EnsureTemplate(ctx, name, body); err != nil {
		return fmt.Errorf("install template %s: %w", name, err)
	}
	return nil
}

// Counts is what a Feed read and shaped.
type Counts struct {
	cloudtrail.Stats
	// Located counts the documents that got source.geo.
	Located int64
}

// Feed reads files (in the order given) with r on workers goroutines,
// shapes every record and hands the documents to add, which is called
// from one goroutine at a time (bulk writers need not be safe for
// concurrent use). OnSkip of r is called concurrently. An error from add
// or ctx stops the feed.
func Feed(ctx context.Context, r *cloudtrail.Reader, files []string, workers int, shape Shape, add func(store.Doc) error) (Counts, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	docs := make(chan store.Doc, 1024)
	added := make(chan error, 1)
	go func() {
		var err error
		for doc := range docs {
			if err == nil {
				if err = add(doc); err != nil {
					cancel(err)
				}
			}
		}
		added <- err
	}()
	var located atomic.Int64
	st, readErr := r.ReadParallel(ctx, files, workers, func(rec cloudtrail.Record) error {
		doc, geo, err := shape.Doc(rec)
		if err != nil {
			return err
		}
		if geo {
			located.Add(1)
		}
		select {
		case docs <- doc:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(docs)
	if err := <-added; err != nil {
		return Counts{Stats: st, Located: located.Load()}, err
	}
	return Counts{Stats: st, Located: located.Load()}, readErr
}
