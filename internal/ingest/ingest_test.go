package ingest

import (
	"context"
	"encoding/json"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/geoip"
)

// oneCountry places 198.51.100.0/24 only.
type oneCountry struct{}

func (oneCountry) Lookup(ip netip.Addr) (geoip.Location, bool) {
	if netip.MustParsePrefix("198.51.100.0/24").Contains(ip) {
		return geoip.Location{CountryISOCode: "DE"}, true
	}
	return geoip.Location{}, false
}

func TestFeed(t *testing.T) {
	for _, tc := range []struct {
		profile string
		geo     cloudtrail.Geo
		located int64
		geoPath string // where the country lands
	}{
		{"ecs", oneCountry{}, 1, "source.geo.country_iso_code"},
		{"cloudtrail", oneCountry{}, 1, "source.geo.country_iso_code"},
		{"ecs", nil, 0, ""},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			var ids []string
			docs := map[string]map[string]any{}
			var skipped []string
			r := cloudtrail.Reader{OnSkip: func(p cloudtrail.Pos, err error) { skipped = append(skipped, p.String()) }}
			counts, err := Feed(context.Background(), &r, []string{"testdata/mixed.ndjson"}, 2, Shape{Profile: tc.profile, Geo: tc.geo},
				func(d store.Doc) error {
					ids = append(ids, d.ID)
					var m map[string]any
					if err := json.Unmarshal(d.Source, &m); err != nil {
						return err
					}
					docs[d.ID] = m
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(ids)
			if strings.Join(ids, ",") != "a1,a2,a3" || counts.Records != 3 || counts.Skipped != 1 || counts.Located != tc.located {
				t.Errorf("ids %v, counts %+v", ids, counts)
			}
			if len(skipped) != 1 || skipped[0] != "testdata/mixed.ndjson:4 (record 4)" {
				t.Errorf("skipped %v", skipped)
			}
			if tc.geoPath != "" {
				if v, _ := store.Lookup(docs["a1"], tc.geoPath); v != "DE" {
					t.Errorf("a1 %s = %v", tc.geoPath, v)
				}
			}
		})
	}
}

// An error from add stops the feed and is returned.
func TestFeedStopsOnAddError(t *testing.T) {
	var r cloudtrail.Reader
	_, err := Feed(context.Background(), &r, []string{"testdata/mixed.ndjson"}, 1, Shape{Profile: "ecs"}, func(store.Doc) error {
		return errFull
	})
	if err != errFull {
		t.Fatalf("err = %v", err)
	}
}

var errFull = errorString("full")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestTemplate(t *testing.T) {
	for _, tc := range []struct {
		tmpl, index string
		settings    map[string]any
		name        string
		narrowed    bool
	}{
		{"cloudtrail-ecs", "logs-aws.cloudtrail-default", nil, "offtrail-cloudtrail-ecs", false},
		{"cloudtrail-ecs", "my-trail", nil, "offtrail-cloudtrail-ecs-my-trail", true},
		{"cloudtrail-ecs", "logs-aws.cloudtrail-bench", map[string]any{"refresh_interval": "-1"}, "offtrail-cloudtrail-ecs-logs-aws.cloudtrail-bench", true},
		{"signals", "logs-offtrail.alerts-default", nil, "offtrail-signals", false},
		{"state", "my-state", nil, "offtrail-state-my-state", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, body, err := Template(tc.tmpl, tc.index, tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			var tb struct {
				IndexPatterns []string `json:"index_patterns"`
			}
			if err := json.Unmarshal(body, &tb); err != nil {
				t.Fatal(err)
			}
			if name != tc.name || (len(tb.IndexPatterns) == 1 && tb.IndexPatterns[0] == tc.index) != tc.narrowed {
				t.Errorf("Template(%s, %s) = %s %v", tc.tmpl, tc.index, name, tb.IndexPatterns)
			}
		})
	}
}
