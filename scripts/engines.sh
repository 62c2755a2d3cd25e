#!/usr/bin/env bash
# Real test engines for offtrail's integration tests: one single-node
# Elasticsearch and one single-node OpenSearch on loopback, from the
# "integ-test" distributions both projects publish to Maven Central (they are
# the engines' own minimal runnable builds: no bundled JDK, no security
# plugin, a few hundred MB lighter than the release tarballs).
#
#   scripts/engines.sh install [es|os]   fetch (mvn) and unpack into the cache
#   scripts/engines.sh start   [es|os]   install if needed, start, wait for yellow
#   scripts/engines.sh stop    [es|os]   graceful stop, then kill
#   scripts/engines.sh status  [es|os]   running or not, URL, version
#   scripts/engines.sh env               export lines for the test variables
#
# Environment:
#   OFFTRAIL_ENGINES_HOME  cache and run directory (default /var/tmp/offtrail-engines),
#                          deliberately outside the git tree
#   OFFTRAIL_ES_VERSION    Elasticsearch version (default 8.19.7)
#   OFFTRAIL_OS_VERSION    OpenSearch version (default 2.19.3)
#   OFFTRAIL_ES_PORT       Elasticsearch HTTP port (default 19200; transport +100)
#   OFFTRAIL_OS_PORT       OpenSearch HTTP port (default 19201; transport +100)
#   OFFTRAIL_ENGINE_HEAP   JVM heap for each engine (default 1g)
#   OFFTRAIL_ENGINE_USER   unprivileged user the engines run as when we are root
#                          (default offtrail-engine; both engines refuse root)
#   OFFTRAIL_JAVA_HOME     JDK to run them with (default: the system java)
#   OFFTRAIL_START_TIMEOUT seconds to wait for yellow health (default 300: a
#                          cold start took 2 min on a 2-core machine under load)
set -euo pipefail

home=${OFFTRAIL_ENGINES_HOME:-/var/tmp/offtrail-engines}
es_version=${OFFTRAIL_ES_VERSION:-8.19.7}
os_version=${OFFTRAIL_OS_VERSION:-2.19.3}
es_port=${OFFTRAIL_ES_PORT:-19200}
os_port=${OFFTRAIL_OS_PORT:-19201}
heap=${OFFTRAIL_ENGINE_HEAP:-1g}
engine_user=${OFFTRAIL_ENGINE_USER:-offtrail-engine}
timeout=${OFFTRAIL_START_TIMEOUT:-300}
m2=${OFFTRAIL_M2_REPO:-$HOME/.m2/repository}

log() { printf 'engines: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Per-engine facts. $1 is "es" or "os".
name_of() { case $1 in es) echo elasticsearch ;; os) echo opensearch ;; esac; }
version_of() { case $1 in es) echo "$es_version" ;; os) echo "$os_version" ;; esac; }
port_of() { case $1 in es) echo "$es_port" ;; os) echo "$os_port" ;; esac; }
group_of() {
	case $1 in
	es) echo org.elasticsearch.distribution.integ-test-zip ;;
	os) echo org.opensearch.distribution.integ-test-zip ;;
	esac
}
url_of() { echo "http://127.0.0.1:$(port_of "$1")"; }
install_dir() { echo "$home/$(name_of "$1")-$(version_of "$1")"; }
run_dir() { echo "$home/run/$(name_of "$1")-$(version_of "$1")"; }
pid_file() { echo "$(run_dir "$1")/pid"; }

# shellcheck source=lib/engine-user.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/engine-user.sh"

unzip_to() { # zip dest
	if command -v unzip >/dev/null; then
		unzip -q "$1" -d "$2"
	elif command -v python3 >/dev/null; then
		python3 -m zipfile -e "$1" "$2"
	elif command -v jar >/dev/null; then
		(cd "$2" && jar xf "$1")
	else
		die "need unzip, python3 or jar to unpack $1"
	fi
}

artifact_zip() { # engine -> path of the zip in the local Maven repository
	local e=$1 g v n
	g=$(group_of "$e")
	v=$(version_of "$e")
	n=$(name_of "$e")
	echo "$m2/${g//.//}/$n/$v/$n-$v.zip"
}

install_one() {
	local e=$1 dir zip tmp artifact
	dir=$(install_dir "$e")
	if [[ -x $dir/bin/$(name_of "$e") ]]; then
		return 0
	fi
	zip=$(artifact_zip "$e")
	artifact="$(group_of "$e"):$(name_of "$e"):$(version_of "$e"):zip"
	if [[ ! -s $zip ]]; then
		command -v mvn >/dev/null || die "mvn not found; cannot fetch $artifact"
		log "fetching $artifact with mvn"
		mvn -B -q dependency:get -Dartifact="$artifact" -Dtransitive=false ||
			die "mvn dependency:get $artifact failed"
		[[ -s $zip ]] || die "mvn reported success but $zip is missing (is the local repository elsewhere? set OFFTRAIL_M2_REPO)"
	fi
	log "unpacking $(basename "$zip") into $home"
	mkdir -p "$home"
	tmp=$(mktemp -d "$home/.unpack.XXXXXX")
	unzip_to "$zip" "$tmp" || {
		rm -rf "$tmp"
		die "unpacking $zip failed"
	}
	# python's zipfile drops the executable bits; restore them.
	chmod -R a+rx "$tmp"/*/bin
	rm -rf "$dir"
	mv "$tmp/$(basename "$dir")" "$dir" || die "unexpected layout in $zip (no $(basename "$dir")/)"
	rm -rf "$tmp"
}

write_config() {
	local e=$1 dir run port conf
	dir=$(install_dir "$e")
	run=$(run_dir "$e")
	port=$(port_of "$e")
	conf=$dir/config/$(name_of "$e").yml
	# Loopback binding plus single-node discovery keeps the node in
	# development mode, so bootstrap checks (vm.max_map_count, file
	# descriptors) only warn. Only keys that exist in the integ-test build:
	# an unknown setting makes either engine refuse to start.
	cat >"$conf" <<EOF
# Written by scripts/engines.sh; rewritten on every start.
cluster.name: offtrail-test-$e
node.name: offtrail-$e-1
path.data: $run/data
path.logs: $run/logs
network.host: 127.0.0.1
http.port: $port
transport.port: $((port + 100))
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
EOF
	if [[ $e == es ]]; then
		# The integ-test zip carries the x-pack-security module, which is on by
		# default in 8.x and would demand credentials nobody has.
		echo 'xpack.security.enabled: false' >>"$conf"
	fi
}

# The engine's server JVM, found by the path.home property its launcher
# passes. Not the pid file: OpenSearch's -d returns before the JVM writes it,
# so during start-up it may be missing or half written.
engine_pid() {
	local prop owner
	case $1 in es) prop=es ;; os) prop=opensearch ;; esac
	if as_root; then owner=$engine_user; else owner=$(id -un); fi
	getent passwd "$owner" >/dev/null || return 0
	pgrep -u "$owner" -f -- "-D$prop\.path\.home=$(install_dir "$1")( |\$)" | head -n1 || true
}

pid_alive() { [[ -n $(engine_pid "$1") ]]; }

healthy() { # engine -> 0 if the cluster answers yellow or green
	curl -fsS --max-time 10 "$(url_of "$1")/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null 2>&1
}

log_tail() {
	local e=$1 run
	run=$(run_dir "$e")
	for f in "$run/launch.log" "$run/logs/offtrail-test-$e.log"; do
		if [[ -s $f ]]; then
			echo "---- last lines of $f" >&2
			tail -n 40 "$f" >&2
		fi
	done
}

wait_healthy() {
	local e=$1 deadline misses=0
	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		if healthy "$e"; then
			return 0
		fi
		# Two misses in a row, so a JVM still being exec'd is not taken for dead.
		if pid_alive "$e"; then
			misses=0
		elif ((++misses >= 2)); then
			log_tail "$e"
			die "$(name_of "$e") exited during startup"
		fi
		sleep 2
	done
	log_tail "$e"
	die "$(name_of "$e") did not reach yellow within ${timeout}s at $(url_of "$e")"
}

start_one() {
	local e=$1 n dir run jh bin
	n=$(name_of "$e")
	if pid_alive "$e"; then
		wait_healthy "$e"
		log "$n $(version_of "$e") already running at $(url_of "$e")"
		return 0
	fi
	if curl -fsS --max-time 3 "$(url_of "$e")/" >/dev/null 2>&1; then
		die "port $(port_of "$e") already answers HTTP but not from our $n (pid file $(pid_file "$e")); stop it or set OFFTRAIL_$(tr a-z A-Z <<<"$e")_PORT"
	fi
	install_one "$e"
	ensure_user
	dir=$(install_dir "$e")
	run=$(run_dir "$e")
	mkdir -p "$run/data" "$run/logs" "$run/tmp"
	write_config "$e"
	rm -f "$(pid_file "$e")"
	if as_root; then
		chown -R "$engine_user:" "$dir" "$run"
		# Parents must be traversable by the engine user.
		chmod a+rx "$home" "$home/run"
	fi
	jh=$(java_home)
	[[ -x $jh/bin/java ]] || die "no java at $jh/bin/java"
	bin=$dir/bin/$n
	log "starting $n $(version_of "$e") on $(url_of "$e") (heap $heap, java $jh)"
	# -d daemonizes once the node has started; the launcher's own output
	# (JVM errors, bad settings) goes to launch.log. cwd is the run dir because
	# the JVM options write gc.log and heap dumps relative to it. fd 9 (our
	# lock) is closed so the daemon does not hold it for ever.
	if ! (cd "$run" && as_engine env -u JAVA_HOME \
		HOME="$run" ES_JAVA_HOME="$jh" OPENSEARCH_JAVA_HOME="$jh" \
		ES_JAVA_OPTS="-Xms$heap -Xmx$heap" OPENSEARCH_JAVA_OPTS="-Xms$heap -Xmx$heap" \
		ES_TMPDIR="$run/tmp" OPENSEARCH_TMPDIR="$run/tmp" \
		"$bin" -d -p "$(pid_file "$e")" >"$run/launch.log" 2>&1 </dev/null 9>&-); then
		log_tail "$e"
		die "$n failed to start"
	fi
	wait_healthy "$e"
	log "$n $(version_of "$e") is up at $(url_of "$e")"
}

stop_one() {
	local e=$1 n pid i
	n=$(name_of "$e")
	if ! pid_alive "$e"; then
		rm -f "$(pid_file "$e")"
		log "$n not running"
		return 0
	fi
	pid=$(engine_pid "$e")
	log "stopping $n (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$n did not stop in 30s; killing"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$(pid_file "$e")"
}

status_one() {
	local e=$1 n v
	n=$(name_of "$e")
	if pid_alive "$e"; then
		# Not GET /: the Elasticsearch integ-test build lacks the rest-root module.
		v=$(curl -fsS --max-time 5 "$(url_of "$e")/_nodes/_local?filter_path=nodes.*.version" 2>/dev/null | sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p' | head -n1)
		echo "$n: running (pid $(engine_pid "$e"), $(url_of "$e"), version ${v:-not answering})"
	else
		echo "$n: stopped"
		return 1
	fi
}

engines_from() { # optional engine argument -> list
	case ${1:-all} in
	all | both) echo es os ;;
	es | elasticsearch) echo es ;;
	os | opensearch) echo os ;;
	*) die "unknown engine '$1' (want es or os)" ;;
	esac
}

# Serialise concurrent callers (several people run start at once).
locked() {
	mkdir -p "$home"
	exec 9>"$home/.lock"
	flock 9
}

cmd=${1:-}
shift || true
case $cmd in
install)
	locked
	for e in $(engines_from "${1:-}"); do install_one "$e"; done
	;;
start)
	locked
	# Both at once: JVM start-up is mostly waiting, and it halves a cold start.
	pids=()
	for e in $(engines_from "${1:-}"); do
		start_one "$e" &
		pids+=($!)
	done
	rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	((rc == 0)) || die "not all engines started (see above)"
	for e in $(engines_from "${1:-}"); do echo "$(name_of "$e"): $(url_of "$e")"; done
	;;
stop)
	locked
	for e in $(engines_from "${1:-}"); do stop_one "$e"; done
	;;
status)
	rc=0
	for e in $(engines_from "${1:-}"); do status_one "$e" || rc=1; done
	exit $rc
	;;
env)
	echo "export OFFTRAIL_TEST_ES_URL=$(url_of es) OFFTRAIL_TEST_OS_URL=$(url_of os)"
	;;
*)
	echo "usage: $0 {install|start|stop|status|env} [es|os]" >&2
	exit 2
	;;
esac
