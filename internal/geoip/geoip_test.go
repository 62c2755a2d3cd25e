package geoip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/offtrail/offtrail/internal/testenv"
)

// writeDB builds a tiny IPv6 (IPv4-aliased) database holding one record
// for 81.2.69.0/24 and returns its path.
func writeDB(t *testing.T, dbType string, rec mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	_, network, _ := net.ParseCIDR("81.2.69.0/24")
	if err := tree.Insert(network, rec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLookupLayouts(t *testing.T) {
	tests := []struct {
		name   string
		dbType string
		rec    mmdbtype.Map
		want   Location
	}{
		{
			name:   "maxmind city",
			dbType: "GeoIP2-City",
			rec: mmdbtype.Map{
				"city": mmdbtype.Map{
					"geoname_id": mmdbtype.Uint32(2643743),
					"names":      mmdbtype.Map{"de": mmdbtype.String("London"), "en": mmdbtype.String("London")},
				},
				"country": mmdbtype.Map{
					"iso_code": mmdbtype.String("GB"),
					"names":    mmdbtype.Map{"en": mmdbtype.String("United Kingdom")},
				},
				"subdivisions": mmdbtype.Slice{
					mmdbtype.Map{"iso_code": mmdbtype.String("ENG"), "names": mmdbtype.Map{"en": mmdbtype.String("England")}},
				},
				"location": mmdbtype.Map{
					"latitude":  mmdbtype.Float64(51.5142),
					"longitude": mmdbtype.Float64(-0.0931),
					"time_zone": mmdbtype.String("Europe/London"),
				},
			},
			want: Location{CountryISOCode: "GB", CityName: "London", RegionName: "England", Lat: 51.5142, Lon: -0.0931, HasLocation: true},
		},
		{
			name:   "maxmind country only",
			dbType: "GeoLite2-City",
			rec: mmdbtype.Map{
				"country": mmdbtype.Map{"iso_code": mmdbtype.String("GB")},
			},
			want: Location{CountryISOCode: "GB"},
		},
		{
			name:   "dbip flat",
			dbType: "dbip-city",
			rec: mmdbtype.Map{
				"city":         mmdbtype.String("Manchester"),
				"country_code": mmdbtype.String("GB"),
				"state1":       mmdbtype.String("England"),
				"state2":       mmdbtype.String("Greater Manchester"),
				"latitude":     mmdbtype.Float32(53.4809),
				"longitude":    mmdbtype.Float32(-2.2374),
			},
			want: Location{CountryISOCode: "GB", CityName: "Manchester", RegionName: "England", Lat: float64(float32(53.4809)), Lon: float64(float32(-2.2374)), HasLocation: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(writeDB(t, tt.dbType, tt.rec))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got, ok := db.Lookup(netip.MustParseAddr("81.2.69.160"))
			if !ok || got != tt.want {
				t.Errorf("Lookup = %+v, %v; want %+v", got, ok, tt.want)
			}
			if _, ok := db.Lookup(netip.MustParseAddr("10.1.2.3")); ok {
				t.Error("private address found")
			}
			if _, ok := db.Lookup(netip.MustParseAddr("2001:db8::1")); ok {
				t.Error("documentation IPv6 address found")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("empty directory: no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad); err == nil {
		t.Error("garbage file: no error")
	}
}

// realDB finds the DB-IP Lite database that scripts/geoip.sh installs.
// Absent, the test is skipped, except under CI where it must be there.
func realDB(t testing.TB) string {
	t.Helper()
	if p := DefaultPath(); p != "" {
		return p
	}
	if testenv.InCI() {
		t.Fatalf("no GeoIP database: run scripts/geoip.sh or set OFFTRAIL_GEOIP_DB")
	}
	t.Skip("no GeoIP database (run scripts/geoip.sh or set OFFTRAIL_GEOIP_DB)")
	return ""
}

func TestRealDB(t *testing.T) {
	path := realDB(t)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Logf("%s: %s", path, db.Description())
	// Stable allocations: Google public DNS and Deutsche Telekom.
	for ip, country := range map[string]string{"8.8.8.8": "US", "80.156.0.1": "DE"} {
		loc, ok := db.Lookup(netip.MustParseAddr(ip))
		if !ok || loc.CountryISOCode != country || !loc.HasLocation || loc.CityName == "" {
			t.Errorf("Lookup(%s) = %+v, %v; want country %s with city and location", ip, loc, ok, country)
		}
	}
	if loc, ok := db.Lookup(netip.MustParseAddr("192.168.1.1")); ok {
		t.Errorf("private address resolved to %+v", loc)
	}

	// The directory holds the IPv6 file too.
	dir, err := Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// Google's IPv6 DNS; DB-IP places it in North America, not always in the US.
	if loc, ok := dir.Lookup(netip.MustParseAddr("2001:4860:4860::8888")); !ok || loc.CountryISOCode == "" {
		t.Errorf("IPv6 lookup = %+v, %v", loc, ok)
	}
	if loc, ok := dir.Lookup(netip.MustParseAddr("8.8.8.8")); !ok || loc.CountryISOCode != "US" {
		t.Errorf("IPv4 lookup through directory = %+v, %v", loc, ok)
	}
}

func BenchmarkLookupRealDB(b *testing.B) {
	db, err := Open(realDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ip := netip.MustParseAddr("80.156.0.1")
	for b.Loop() {
		db.Lookup(ip)
	}
}
