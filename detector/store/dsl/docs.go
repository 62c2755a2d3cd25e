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
		if err := writeBulkItem(&b, "index", map[string]any{"_index": index, "_id": d.ID}, d.Source); err != nil {
			return s.Errorf("write documents", idx, fmt.Errorf("doc %s: %w", d.ID, err))
		}
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

// PutStates writes state documents in one _bulk request, each as PutState
// would: create-only without a version, otherwise on seq_no and
// primary_term. An item that lost its race answers 409, ErrConflict.
func (s *Store) PutStates(ctx context.Context, index string, puts []store.StatePut) ([]store.StatePutResult, error) {
	if len(puts) == 0 {
		return nil, nil
	}
	idx := []string{index}
	var b bytes.Buffer
	for _, p := range puts {
		meta := map[string]any{"_index": index, "_id": p.ID}
		action := "create"
		if p.IfVersion != nil {
			action, meta["if_seq_no"], meta["if_primary_term"] = "index", p.IfVersion.SeqNo, p.IfVersion.PrimaryTerm
		}
		if err := writeBulkItem(&b, action, meta, p.Doc); err != nil {
			return nil, s.Errorf("put states", idx, fmt.Errorf("state %s: %w", p.ID, err))
		}
	}
	resp, err := s.do(ctx, http.MethodPost, "/_bulk", nil, b.Bytes())
	if err != nil {
		return nil, s.Errorf("put states", idx, err)
	}
	items, err := bulkItems(resp)
	if err != nil {
		return nil, s.Errorf("put states", idx, err)
	}
	if len(items) != len(puts) {
		return nil, s.Errorf("put states", idx, fmt.Errorf("%d answers to %d writes", len(items), len(puts)))
	}
	out := make([]store.StatePutResult, len(items))
	for i, it := range items {
		switch {
		case it.Status == http.StatusConflict:
			out[i].Err = s.Errorf("put state", idx, fmt.Errorf("%w: %w", store.ErrConflict, it.err()))
		case it.Status >= 200 && it.Status <= 299:
			out[i].Version = store.Version{SeqNo: it.SeqNo, PrimaryTerm: it.PrimaryTerm}
		default:
			out[i].Err = s.Errorf("put state", idx, it.err())
		}
	}
	return out, nil
}

// writeBulkItem appends one _bulk action line and its source, compacted:
// a newline inside the source would end the action early.
func writeBulkItem(b *bytes.Buffer, action string, meta map[string]any, src json.RawMessage) error {
	line, err := json.Marshal(map[string]any{action: meta})
	if err != nil {
		return err
	}
	b.Write(line)
	b.WriteByte('\n')
	if err := json.Compact(b, src); err != nil {
		return err
	}
	b.WriteByte('\n')
	return nil
}

// bulkItem is one answer of a _bulk response.
type bulkItem struct {
	ID          string      `json:"_id"`
	Status      int         `json:"status"`
	Error       *errorCause `json:"error"`
	SeqNo       int64       `json:"_seq_no"`
	PrimaryTerm int64       `json:"_primary_term"`
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
