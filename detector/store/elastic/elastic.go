// Package elastic is the Elasticsearch 8 backend of the store seam. The
// queries, decoding and document operations are shared with OpenSearch in
// package dsl; this package adapts the official go-elasticsearch client and
// its esutil bulk indexer.
package elastic

import (
	"bytes"
	"context"
	"fmt"
	"net/url"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
)

// Kind is the engine name used in errors and by store.Backend.Kind.
const Kind = "elasticsearch"

// Store is a store.Backend on Elasticsearch.
type Store struct {
	*dsl.Store
	client *elasticsearch.Client
}

var _ store.Backend = (*Store)(nil)

// New returns a Store for cfg. Unless cfg says otherwise, the client
// retries 429/502/503/504 with jittered exponential backoff.
func New(cfg elasticsearch.Config) (*Store, error) {
	if cfg.RetryOnStatus == nil {
		cfg.RetryOnStatus = dsl.RetryOnStatus
	}
	if cfg.RetryBackoff == nil {
		cfg.RetryBackoff = dsl.RetryBackoff
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = dsl.MaxRetries
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", Kind, err)
	}
	return &Store{Store: dsl.NewStore(Kind, transport{c}), client: c}, nil
}

// Client returns the underlying client, for callers that need an API the
// store does not wrap.
func (s *Store) Client() *elasticsearch.Client { return s.client }

// Close releases the client's idle connections.
func (s *Store) Close() error { return s.client.Close(context.Background()) }

type transport struct{ c *elasticsearch.Client }

func (t transport) Do(ctx context.Context, method, path string, query url.Values, body []byte) (int, []byte, error) {
	req, err := dsl.NewRequest(ctx, method, path, query, body)
	if err != nil {
		return 0, nil, err
	}
	return dsl.ReadResponse(t.c.Perform(req))
}

// NewBulkWriter indexes documents by id with esutil's bulk indexer
// (5 MB requests, two workers; retries come from the client).
func (s *Store) NewBulkWriter(ctx context.Context, index string, onError func(id string, err error)) (store.BulkWriter, error) {
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:     s.client,
		Index:      index,
		NumWorkers: 2,
		// No OnError: a failed flush is reported per item via OnFailure.
	})
	if err != nil {
		return nil, s.Errorf("bulk", []string{index}, err)
	}
	return &bulkWriter{s: s, bi: bi, index: index, onError: onError}, nil
}

type bulkWriter struct {
	s       *Store
	bi      esutil.BulkIndexer
	index   string
	onError func(id string, err error)
}

func (w *bulkWriter) Add(ctx context.Context, doc store.Doc) error {
	item := esutil.BulkIndexerItem{
		Action:     "index",
		DocumentID: doc.ID,
		Body:       bytes.NewReader(doc.Source),
		OnFailure: func(_ context.Context, item esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
			if w.onError == nil {
				return
			}
			if err == nil {
				err = &dsl.ResponseError{Status: res.Status, Type: res.Error.Type, Reason: res.Error.Reason}
			}
			w.onError(item.DocumentID, err)
		},
	}
	if err := w.bi.Add(ctx, item); err != nil {
		return w.s.Errorf("bulk", []string{w.index}, err)
	}
	return nil
}

func (w *bulkWriter) Close(ctx context.Context) (indexed, failed int64, err error) {
	err = w.bi.Close(ctx)
	st := w.bi.Stats()
	if err != nil {
		err = w.s.Errorf("bulk", []string{w.index}, err)
	}
	return int64(st.NumIndexed), int64(st.NumFailed), err
}
