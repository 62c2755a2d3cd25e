#!/usr/bin/env bash
# ElastAlert 2 side by side with offtrail (BENCHMARKS.md): installs
# elastalert2 into a venv under the cache (outside git) and runs its
# new_term rule on event.action per user ARN over an index holding the
# demo data, once over a fixed past span (internal/bench/testdata/
# elastalert/replay.py drives it; ElastAlert's own loop cannot stop at a
# past --end).
#
#   scripts/elastalert-bench.sh install
#   scripts/elastalert-bench.sh run INDEX LABELS START END [URL]   # times RFC 3339
#
# INDEX holds the data of LABELS' directory (offtrail load --store URL
# --index INDEX DIR). Prints CPU time, peak RSS, and the alerts scored
# against the labels.
#
# `offtrail bench --elastalert` uses the steps on their own, so that it
# reads the engine's CPU around the replay alone:
#
#   scripts/elastalert-bench.sh setup WORK INDEX URL [MATCHES [BUFFER_MINUTES]]  # config, rule, writeback index
#   scripts/elastalert-bench.sh replay WORK START END           # becomes the python process
#   scripts/elastalert-bench.sh cleanup WORK URL                # drops the writeback indices
#
# With MATCHES the rule pipes every match as JSON to that file (one sh
# per alert); without it, it uses ElastAlert's debug alerter (a log line).
set -euo pipefail
cache="${OFFTRAIL_CACHE:-$HOME/.cache/offtrail}"
venv="$cache/elastalert-venv"
here="$(cd "$(dirname "$0")/.." && pwd)"
ea="$here/internal/bench/testdata/elastalert"

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

setup() {
	local work="$1" index="$2" url="$3" matches="${4:-}" buffer="${5:-120}"
	local hostport="${url#http://}"
	hostport="${hostport%/}"
	mkdir -p "$work/rules"
	# writeback index for ElastAlert's own state, unique per run
	sed -e "s|@HOST@|${hostport%:*}|; s|@PORT@|${hostport##*:}|; s|@BUFFER_MINUTES@|$buffer|" \
		-e "s|@WRITEBACK@|offtrail-bench-elastalert-$$|" \
		"$ea/config.yaml" >"$work/config.yaml"
	echo "offtrail-bench-elastalert-$$" >"$work/writeback"
	if [ -n "$matches" ]; then
		sed -e "s|@INDEX@|$index|" -e "s|@MATCHES@|$matches|g" "$ea/new_term.yaml" >"$work/rules/new_term.yaml"
	else
		sed -e "s|@INDEX@|$index|" -e '/^alert:/,$d' "$ea/new_term.yaml" >"$work/rules/new_term.yaml"
		printf 'alert:\n  - debug\n' >>"$work/rules/new_term.yaml"
	fi
	"$venv/bin/python" "$ea/replay.py" create-index "$work/config.yaml" >"$work/create-index.log"
}

replay() {
	local work="$1" start="$2" end="$3"
	cd "$work"
	exec "$venv/bin/python" "$ea/replay.py" run "$work/config.yaml" "$work/rules/new_term.yaml" "$start" "$end"
}

cleanup() {
	local work="$1" url="$2" wb
	wb="$(cat "$work/writeback")"
	# the engines refuse wildcard deletes
	for suffix in "" _status _silence _error _past; do
		curl -s -XDELETE "$url/$wb$suffix" >/dev/null || true
	done
}

run() {
	local index="$1" labels="$2" start="$3" end="$4" url="${5:-http://127.0.0.1:19200}" work
	work="$(mktemp -d)"
	: >"$work/matches.ndjson"
	setup "$work" "$index" "$url" "$work/matches.ndjson"
	# Compare CPU time (user+sys), not wall time.
	echo go | /usr/bin/time -v "$0" replay "$work" "$start" "$end" >"$work/out.log" 2>"$work/err.log" || true
	echo "work dir: $work"
	cat "$work/out.log"
	grep -E "Ran offtrail|Found [0-9]+ unique" "$work/err.log" || true
	grep -E "User time|System time|Maximum resident" "$work/err.log" || true
	"$venv/bin/python" "$ea/score.py" "$labels" "$work/matches.ndjson" "$start" "$end"
	cleanup "$work" "$url"
}

case "${1:-}" in
install) install ;;
setup | replay | cleanup | run) cmd="$1"; shift; "$cmd" "$@" ;;
*) echo "usage: $0 install | run INDEX LABELS START END [URL] | setup WORK INDEX URL [MATCHES] | replay WORK START END | cleanup WORK URL" >&2; exit 2 ;;
esac
