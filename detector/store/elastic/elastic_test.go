package elastic_test

import (
	"testing"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/elastic"
	"github.com/offtrail/offtrail/detector/store/storetest"
	"github.com/offtrail/offtrail/internal/testenv"
)

func open(t testing.TB) *elastic.Store {
	t.Helper()
	s, err := elastic.New(elasticsearch.Config{Addresses: []string{testenv.ElasticsearchURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t) })
}
