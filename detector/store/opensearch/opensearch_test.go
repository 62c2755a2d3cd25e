package opensearch_test

import (
	"testing"

	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/offtrail/offtrail/detector/store"
	offtrailos "github.com/offtrail/offtrail/detector/store/opensearch"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/internal/testenv"
)

func open(t testing.TB) *offtrailos.Store {
	t.Helper()
	s, err := offtrailos.New(opensearch.Config{Addresses: []string{testenv.OpenSearchURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t) })
}
