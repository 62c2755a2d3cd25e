package dsl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/offtrail/offtrail/detector/store"
)

// PutDocs indexes docs by id in one _bulk request, replacing earlier
// versions (the index action): incidents are updated in place as their
// session grows. Every item must succeed.
func (s *Store) PutDocs(ctx context.Context, index string, docs []store.Doc) error {
	if len(docs) == 0 {
		return nil
	}
	idx := []string{index}
	var b bytes.Buffer
	for _, d := range docs {
		meta, err := json.Marshal(map[string]any{"index": map[string]string{"_index": index, "_id": d.ID}})
		if err != nil {
			return s.Errorf("write documents", idx, err)
		}
		b.Write(meta)
		b.WriteByte('\n')
		if err := json.Compact(&b, d.Source); err != nil {
			return s.Errorf("write documents", idx, fmt.Errorf("doc %s: %w", d.ID, err))
		}
		b.WriteByte('\n')
	}
	resp, err := s.do(ctx, http.MethodPost, "/_bulk", url.Values{"refresh": {"false"}}, b.Bytes())
	if err != nil {
		return s.Errorf("write documents", idx, err)
	}
	items, err := bulkItems(resp)
	if err != nil {
		return s.Errorf("write documents", idx, err)
	}
	var errs []error
	for _, it := range items {
		if it.Status < 200 || it.Status > 299 {
			errs = append(errs, it.err())
		}
	}
	if len(errs) > 0 {
		return s.Errorf("write documents", idx, errors.Join(errs...))
	}
	return nil
}

// bulkItem is one answer of a _bulk response.
type bulkItem struct {
	ID     string      `json:"_id"`
	Status int         `json:"status"`
	Error  *errorCause `json:"error"`
}

func (it bulkItem) err() error {
	reason := ""
	if it.Error != nil {
		reason = it.Error.Type + ": " + it.Error.Reason
	}
	return fmt.Errorf("id %s: status %d: %s", it.ID, it.Status, reason)
}

// bulkItems decodes a _bulk response's items, in request order.
func bulkItems(resp []byte) ([]bulkItem, error) {
	var br struct {
		Items []map[string]bulkItem `json:"items"`
	}
	if err := json.Unmarshal(resp, &br); err != nil {
		return nil, fmt.Errorf("decode bulk response: %w", err)
	}
	out := make([]bulkItem, 0, len(br.Items))
	for _, item := range br.Items {
		for _, it := range item {
			out = append(out, it)
		}
	}
	return out, nil
}
