#!/usr/bin/env bash
# ElastAlert 2 side by side with offtrail (BENCHMARKS.md): installs
# elastalert2 into a venv under the cache (outside git) and runs its
# new_term rule on event.action per user ARN over an index holding the
# demo data, timing it with /usr/bin/time -v.
#
#   scripts/elastalert-bench.sh install
#   scripts/elastalert-bench.sh run INDEX LABELS START END [URL]   # times RFC 3339
#
# INDEX holds the data of LABELS' directory (offtrail load --store URL
# --index INDEX DIR). Prints wall time, peak RSS, and the alerts scored
# against the labels.
set -euo pipefail
cache="${OFFTRAIL_CACHE:-$HOME/.cache/offtrail}"
venv="$cache/elastalert-venv"
here="$(cd "$(dirname "$0")/.." && pwd)"

install() {
	mkdir -p "$cache"
	if [ ! -x "$venv/bin/elastalert" ]; then
		python3 -m venv "$venv"
		"$venv/bin/pip" install --quiet --upgrade pip
		# elastalert2 2.19.0 imports pytz without declaring it
		"$venv/bin/pip" install --quiet elastalert2 pytz
	fi
	"$venv/bin/pip" show elastalert2 | sed -n '1,2p'
}

run() {
	local index="$1" labels="$2" start="$3" end="$4" url="${5:-http://127.0.0.1:19200}"
	local host="${url#http://}" work
	work="$(mktemp -d)"
	mkdir -p "$work/rules"
	sed -e "s|@HOST@|${host%:*}|; s|@PORT@|${host##*:}|" \
		"$here/internal/bench/testdata/elastalert/config.yaml" >"$work/config.yaml"
	sed -e "s|@INDEX@|$index|" -e "s|@MATCHES@|$work/matches.ndjson|g" \
		"$here/internal/bench/testdata/elastalert/new_term.yaml" >"$work/rules/new_term.yaml"
	# writeback index for ElastAlert's own state, unique per run
	sed -i "s|@WRITEBACK@|offtrail-bench-elastalert-$$|" "$work/config.yaml"
	"$venv/bin/elastalert-create-index" --config "$work/config.yaml" >/dev/null
	: >"$work/matches.ndjson"
	# ElastAlert exits at once when --end lies before its next wall-clock
	# run, so a replay of the past runs from --start up to now and is
	# stopped after its first pass (the data ends at END). Compare CPU time
	# (user+sys), not wall time, which includes the idle wait.
	/usr/bin/time -v timeout "${EA_TIMEOUT:-240}" "$venv/bin/elastalert" --config "$work/config.yaml" \
		--rule "$work/rules/new_term.yaml" --start "$start" --verbose \
		>"$work/out.log" 2>"$work/err.log" || true
	echo "work dir: $work"
	grep -E "Ran offtrail|Found [0-9]+ unique" "$work/err.log" || true
	grep -E "User time|System time|Maximum resident" "$work/err.log" || true
	"$venv/bin/python" "$here/internal/bench/testdata/elastalert/score.py" "$labels" "$work/matches.ndjson" "$start" "$end"
	# the engines refuse wildcard deletes
	for suffix in "" _status _silence _error _past; do
		curl -s -XDELETE "$url/offtrail-bench-elastalert-$$$suffix" >/dev/null || true
	done
}

case "${1:-}" in
install) install ;;
run) shift; run "$@" ;;
*) echo "usage: $0 install | run INDEX LABELS START END [URL]" >&2; exit 2 ;;
esac
