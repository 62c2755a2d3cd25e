package elastic_test

import (
	"os"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/elastic"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

func engineURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("OFFTRAIL_TEST_ES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("OFFTRAIL_TEST_ES_URL is not set (scripts/engines.sh start es)")
		}
		t.Skip("OFFTRAIL_TEST_ES_URL is not set (scripts/engines.sh start es)")
	}
	return u
}

func open(t testing.TB) *elastic.Store {
	t.Helper()
	s, err := elastic.New(elasticsearch.Config{Addresses: []string{engineURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t) })
}
