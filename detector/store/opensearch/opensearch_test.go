package opensearch_test

import (
	"os"
	"testing"

	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/offtrail/offtrail/detector/store"
	offtrailos "github.com/offtrail/offtrail/detector/store/opensearch"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

func engineURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("OFFTRAIL_TEST_OS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("OFFTRAIL_TEST_OS_URL is not set (scripts/engines.sh start os)")
		}
		t.Skip("OFFTRAIL_TEST_OS_URL is not set (scripts/engines.sh start os)")
	}
	return u
}

func open(t testing.TB) *offtrailos.Store {
	t.Helper()
	s, err := offtrailos.New(opensearch.Config{Addresses: []string{engineURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t) })
}
