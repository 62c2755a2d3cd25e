package main

import (
	"flag"
	"fmt"

	"github.com/offtrail/offtrail/internal/cloudtrail"
	"github.com/offtrail/offtrail/internal/geoip"
)

// geoFlag registers --geoip with the one default every command shares:
// $OFFTRAIL_GEOIP_DB, else the database scripts/geoip.sh installs, else
// none. An explicit --geoip "" turns it off.
func geoFlag(fs *flag.FlagSet, p *string, purpose string) {
	fs.StringVar(p, "geoip", geoip.DefaultPath(), "city database (.mmdb file, or a directory of them) "+purpose+
		"; default $OFFTRAIL_GEOIP_DB, else the one scripts/geoip.sh installs")
}

// openGeo opens the database at path; without one it says what is lost,
// since the country and city rules then see no places.
func openGeo(env *cliEnv, path, cmd string) (cloudtrail.Geo, func(), error) {
	if path == "" {
		fmt.Fprintf(env.stderr, "offtrail %s: no GeoIP database (scripts/geoip.sh installs one, or --geoip FILE): events get no source.geo, and the country and city rules see no places\n", cmd)
		return nil, func() {}, nil
	}
	db, err := geoip.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--geoip: %w", err)
	}
	env.log.Info().Str("path", path).Str("database", db.Description()).Msg("geoip database open")
	return db, func() { db.Close() }, nil
}
