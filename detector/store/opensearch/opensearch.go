// Package opensearch is the OpenSearch 2 backend of the store seam. The
// queries, decoding and document operations are shared with Elasticsearch
// in package dsl; this package adapts the official opensearch-go client
// and its opensearchutil bulk indexer.
package opensearch

import (
	"bytes"
	"context"
	"fmt"
	"net/url"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v4/opensearchutil"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/dsl"
)

// Kind is the engine name used in errors and by store.Backend.Kind.
const Kind = "opensearch"

// Store is a store.Backend on OpenSearch (self-managed or Amazon
// OpenSearch Service with a SigV4 signer in the config).
type Store struct {
	*dsl.Store
	client *opensearchapi.Client
}

var _ store.Backend = (*Store)(nil)

// New returns a Store for cfg. Unless cfg says otherwise, the client
// retries 429/502/503/504 with jittered exponential backoff.
func New(cfg opensearch.Config) (*Store, error) {
	if cfg.RetryOnStatus == nil {
		cfg.RetryOnStatus = dsl.RetryOnStatus
	}
	if cfg.RetryBackoff == nil {
		cfg.RetryBackoff = dsl.RetryBackoff
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = dsl.MaxRetries
	}
	c, err := opensearchapi.NewClient(opensearchapi.Config{Client: cfg})
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", Kind, err)
	}
	return &Store{Store: dsl.NewStore(Kind, transport{c.Client}), client: c}, nil
}

// Client returns the underlying client, for callers that need an API the
// store does not wrap.
func (s *Store) Client() *opensearchapi.Client { return s.client }

// Close stops the client's background work and idle connections.
func (s *Store) Close() error { return s.client.Client.Close() }

type transport struct{ c *opensearch.Client }

// Do uses Stream, the client's raw path (Perform is deprecated in v4):
// auth, signing, retries and node selection all apply.
func (t transport) Do(ctx context.Context, method, path string, query url.Values, body []byte) (int, []byte, error) {
	req, err := dsl.NewRequest(ctx, method, path, query, body)
	if err != nil {
		return 0, nil, err
	}
	return dsl.ReadResponse(t.c.Stream(req))
}

// NewBulkWriter indexes documents by id with opensearchutil's bulk indexer
// (5 MB requests, two workers; retries come from the client).
func (s *Store) NewBulkWriter(ctx context.Context, index string, onError func(id string, err error)) (store.BulkWriter, error) {
	bi, err := opensearchutil.NewBulkIndexer(opensearchutil.BulkIndexerConfig{
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
	bi      opensearchutil.BulkIndexer
	index   string
	onError func(id string, err error)
}

func (w *bulkWriter) Add(ctx context.Context, doc store.Doc) error {
	item := opensearchutil.BulkIndexerItem{
		Action:     "index",
		DocumentID: doc.ID,
		Body:       bytes.NewReader(doc.Source),
		OnFailure: func(_ context.Context, item opensearchutil.BulkIndexerItem, res opensearchapi.BulkRespItem, err error) {
			if w.onError == nil {
				return
			}
			if err == nil {
				re := &dsl.ResponseError{Status: res.Status}
				if res.Error != nil {
					re.Type, re.Reason = res.Error.Type, res.Error.Reason
				}
				err = re
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
