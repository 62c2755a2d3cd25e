#!/usr/bin/env bash
# A secured OpenSearch for the least-privilege tests: the same integ-test
# distribution as scripts/engines.sh, in a separate copy with the security
# plugin installed, TLS on transport and HTTP from a CA made here, basic auth
# against the plugin's internal users, and offtrail's roles loaded from
# mappings/roles/opensearch/roles.yml.
#
#   scripts/secure-opensearch.sh install   fetch (mvn) and unpack, install the plugin, make certs
#   scripts/secure-opensearch.sh start     install if needed, (re)seed security if the roles changed, start, wait
#   scripts/secure-opensearch.sh stop      graceful stop, then kill
#   scripts/secure-opensearch.sh status    running or not
#   scripts/secure-opensearch.sh env       export lines for the test variables
#
# Users (passwords are random, made once per install, kept in the cache):
#   admin               all_access (tests load CloudTrail with it)
#   offtrail            offtrail_runner only
#   offtrail-noread     offtrail_runner_noread (runner minus CloudTrail read)
#   offtrail-installer  offtrail_installer only
#
# Environment (shared with engines.sh where the meaning is the same):
#   OFFTRAIL_ENGINES_HOME    cache and run directory (default /var/tmp/offtrail-engines)
#   OFFTRAIL_OS_VERSION      OpenSearch version (default 2.19.3; plugin VERSION.0)
#   OFFTRAIL_SECURE_OS_PORT  HTTPS port (default 19202; transport +100)
#   OFFTRAIL_ENGINE_HEAP     JVM heap (default 1g)
#   OFFTRAIL_ENGINE_USER     unprivileged user when we are root (default offtrail-engine)
#   OFFTRAIL_JAVA_HOME       JDK (default: the system java)
#   OFFTRAIL_START_TIMEOUT   seconds to wait for the node (default 180)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
home=${OFFTRAIL_ENGINES_HOME:-/var/tmp/offtrail-engines}
version=${OFFTRAIL_OS_VERSION:-2.19.3}
port=${OFFTRAIL_SECURE_OS_PORT:-19202}
heap=${OFFTRAIL_ENGINE_HEAP:-1g}
engine_user=${OFFTRAIL_ENGINE_USER:-offtrail-engine}
timeout=${OFFTRAIL_START_TIMEOUT:-180}
m2=${OFFTRAIL_M2_REPO:-$HOME/.m2/repository}

dir=$home/secure-opensearch-$version
run=$home/run/secure-opensearch-$version
pid_file=$run/pid
secdir=$dir/config/opensearch-security
certs=$dir/config/certs
creds=$run/credentials
url=https://127.0.0.1:$port

os_artifact=org.opensearch.distribution.integ-test-zip:opensearch:$version:zip
os_zip=$m2/org/opensearch/distribution/integ-test-zip/opensearch/$version/opensearch-$version.zip
sec_artifact=org.opensearch.plugin:opensearch-security:$version.0:zip
sec_zip=$m2/org/opensearch/plugin/opensearch-security/$version.0/opensearch-security-$version.0.zip

log() { printf 'secure-opensearch: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# shellcheck source=lib/engine-user.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/engine-user.sh"

fetch() { # artifact zip
	[[ -s $2 ]] && return 0
	command -v mvn >/dev/null || die "mvn not found; cannot fetch $1"
	log "fetching $1 with mvn"
	mvn -B -q dependency:get -Dartifact="$1" -Dtransitive=false || die "mvn dependency:get $1 failed"
	[[ -s $2 ]] || die "mvn reported success but $2 is missing (set OFFTRAIL_M2_REPO?)"
}

make_certs() {
	[[ -s $certs/node.pem && -s $certs/admin.pem ]] && return 0
	command -v openssl >/dev/null || die "openssl not found"
	log "making a CA, a node certificate and an admin certificate in $certs"
	mkdir -p "$certs"
	local t
	t=$(mktemp -d)
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
		-subj "/O=offtrail/OU=test/CN=offtrail-test-ca" \
		-keyout "$t/ca-key.pem" -out "$certs/ca.pem" 2>/dev/null
	# name, subject, extensions
	local spec
	for spec in "node|/O=offtrail/OU=test/CN=node|subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth" "admin|/O=offtrail/OU=test/CN=admin|extendedKeyUsage=clientAuth"; do
		local name=${spec%%|*} rest=${spec#*|}
		local subj=${rest%%|*} ext=${rest#*|}
		openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$t/$name-rsa.pem" -out "$t/$name.csr" 2>/dev/null
		printf '%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n' "$ext" >"$t/$name.ext"
		openssl x509 -req -in "$t/$name.csr" -CA "$certs/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial \
			-days 3650 -sha256 -extfile "$t/$name.ext" -out "$certs/$name.pem" 2>/dev/null
		# The plugin reads PKCS#8 keys only.
		openssl pkcs8 -topk8 -nocrypt -in "$t/$name-rsa.pem" -out "$certs/$name-key.pem"
	done
	rm -rf "$t"
}

install() {
	if [[ ! -d $dir/plugins/opensearch-security ]]; then
		fetch "$os_artifact" "$os_zip"
		fetch "$sec_artifact" "$sec_zip"
		log "unpacking OpenSearch $version into $dir"
		mkdir -p "$home"
		local tmp
		tmp=$(mktemp -d "$home/.unpack.XXXXXX")
		unzip -q "$os_zip" -d "$tmp" || die "unpacking $os_zip failed"
		chmod -R a+rx "$tmp"/*/bin
		rm -rf "$dir"
		mv "$tmp/opensearch-$version" "$dir"
		rm -rf "$tmp"
		log "installing the security plugin $version.0"
		env -u JAVA_HOME OPENSEARCH_JAVA_HOME="$(java_home)" \
			"$dir/bin/opensearch-plugin" install -b -s "file://$sec_zip" >&2 ||
			die "opensearch-plugin install failed"
		chmod -R a+rx "$dir/plugins/opensearch-security/tools"
	fi
	make_certs
}

password() { # user -> its password, made once
	mkdir -p "$run"
	touch "$creds"
	chmod 600 "$creds"
	local p
	p=$(sed -n "s/^$1=//p" "$creds")
	if [[ -z $p ]]; then
		p=$(openssl rand -hex 16)
		echo "$1=$p" >>"$creds"
	fi
	echo "$p"
}

bcrypt() { # password -> hash, with the plugin's own tool
	env -u JAVA_HOME OPENSEARCH_JAVA_HOME="$(java_home)" \
		"$dir/plugins/opensearch-security/tools/hash.sh" -p "$1" 2>/dev/null | tail -n 1
}

# Security configuration the plugin loads into its index on first start
# (allow_default_init_securityindex). Printed to stdout so the caller can
# hash it and reseed only when it changed.
write_security() {
	local users=(admin offtrail offtrail-noread offtrail-installer) u mark
	for u in "${users[@]}"; do password "$u" >/dev/null; done
	# bcrypt takes a JVM start per user: redo it only when a password changed.
	mark="# credentials $(sha256sum "$creds" | cut -d' ' -f1)"
	if [[ $(head -n 1 "$secdir/internal_users.yml" 2>/dev/null) != "$mark" ]]; then
		{
			echo "$mark"
			printf '_meta:\n  type: "internalusers"\n  config_version: 2\n'
			for u in "${users[@]}"; do
				printf '%s:\n  hash: "%s"\n  reserved: false\n' "$u" "$(bcrypt "$(password "$u")")"
			done
		} >"$secdir/internal_users.yml.new"
		mv "$secdir/internal_users.yml.new" "$secdir/internal_users.yml"
	fi
	cat "$repo/mappings/roles/opensearch/roles.yml" "$repo/mappings/roles/testdata/opensearch-noread.yml" >"$secdir/roles.yml"
	cat >"$secdir/roles_mapping.yml" <<'EOF'
_meta:
  type: "rolesmapping"
  config_version: 2
all_access:
  reserved: false
  users: ["admin"]
offtrail_runner:
  users: ["offtrail"]
offtrail_runner_noread:
  users: ["offtrail-noread"]
offtrail_installer:
  users: ["offtrail-installer"]
EOF
	cat >"$dir/config/opensearch.yml" <<EOF
# Written by scripts/secure-opensearch.sh; rewritten on every start.
cluster.name: offtrail-test-secure
node.name: offtrail-secure-1
path.data: $run/data
path.logs: $run/logs
network.host: 127.0.0.1
http.port: $port
transport.port: $((port + 100))
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
plugins.security.ssl.transport.pemcert_filepath: certs/node.pem
plugins.security.ssl.transport.pemkey_filepath: certs/node-key.pem
plugins.security.ssl.transport.pemtrustedcas_filepath: certs/ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: certs/node.pem
plugins.security.ssl.http.pemkey_filepath: certs/node-key.pem
plugins.security.ssl.http.pemtrustedcas_filepath: certs/ca.pem
plugins.security.allow_default_init_securityindex: true
plugins.security.authcz.admin_dn: ["CN=admin,OU=test,O=offtrail"]
plugins.security.nodes_dn: ["CN=node,OU=test,O=offtrail"]
plugins.security.restapi.roles_enabled: ["all_access"]
plugins.security.system_indices.enabled: true
EOF
	cat "$secdir/roles.yml" "$secdir/roles_mapping.yml" "$dir/config/opensearch.yml" "$creds"
}

pid_alive() {
	[[ -s $pid_file ]] || return 1
	local pid
	pid=$(<"$pid_file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir"
}

healthy() {
	local p
	p=$(password admin)
	curl -fsS --max-time 10 --cacert "$certs/ca.pem" -u "admin:$p" \
		"$url/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null 2>&1
}

log_tail() {
	local f
	for f in "$run/launch.log" "$run/logs/offtrail-test-secure.log"; do
		[[ -s $f ]] && {
			echo "---- last lines of $f" >&2
			tail -n 40 "$f" >&2
		}
	done
	return 0
}

wait_healthy() {
	local deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		healthy && return 0
		if [[ -s $pid_file ]] && ! pid_alive; then
			log_tail
			die "OpenSearch exited during startup"
		fi
		sleep 2
	done
	log_tail
	die "secured OpenSearch did not become healthy within ${timeout}s at $url"
}

stop() {
	pid_alive || {
		rm -f "$pid_file"
		log "not running"
		return 0
	}
	local pid i
	pid=$(<"$pid_file")
	log "stopping (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	rm -f "$pid_file"
}

start() {
	install
	ensure_user
	mkdir -p "$run/logs" "$run/tmp"
	local sum
	sum=$(write_security | sha256sum | cut -d' ' -f1)
	if [[ $(cat "$run/security.sha256" 2>/dev/null) != "$sum" ]]; then
		# The plugin seeds its index from the files only when the index does
		# not exist: a changed role means a fresh data directory.
		log "security configuration changed: reseeding (fresh data directory)"
		stop
		rm -rf "$run/data"
	elif pid_alive; then
		wait_healthy
		log "already running at $url"
		return 0
	fi
	if curl -ksS --max-time 3 "$url/" >/dev/null 2>&1; then
		die "port $port already answers but not from our node; set OFFTRAIL_SECURE_OS_PORT"
	fi
	mkdir -p "$run/data"
	rm -f "$pid_file"
	if as_root; then
		chown -R "$engine_user:" "$dir" "$run"
		chmod a+rx "$home" "$home/run"
		# The engine user reads the config; the credentials stay root's.
		chown root: "$creds"
	fi
	local jh
	jh=$(java_home)
	log "starting secured OpenSearch $version on $url (heap $heap)"
	if ! (cd "$run" && as_engine env -u JAVA_HOME HOME="$run" OPENSEARCH_JAVA_HOME="$jh" \
		OPENSEARCH_JAVA_OPTS="-Xms$heap -Xmx$heap" OPENSEARCH_TMPDIR="$run/tmp" \
		"$dir/bin/opensearch" -d -p "$pid_file" >"$run/launch.log" 2>&1 </dev/null 9>&-); then
		log_tail
		die "OpenSearch failed to start"
	fi
	wait_healthy
	echo "$sum" >"$run/security.sha256"
	log "up at $url"
}

locked() {
	mkdir -p "$home"
	exec 9>"$home/.secure-opensearch.lock"
	flock 9
}

case ${1:-} in
install)
	locked
	install
	;;
start)
	locked
	start
	echo "secure opensearch: $url"
	;;
stop)
	locked
	stop
	;;
status)
	if pid_alive; then
		echo "secure opensearch: running (pid $(<"$pid_file")), $url"
	else
		echo "secure opensearch: stopped"
		exit 1
	fi
	;;
env)
	[[ -s $certs/ca.pem ]] || die "not installed; run $0 start"
	printf 'export OFFTRAIL_TEST_SECURE_OS_URL=%q OFFTRAIL_TEST_SECURE_OS_CA=%q' "$url" "$certs/ca.pem"
	printf ' OFFTRAIL_TEST_SECURE_OS_ADMIN_PASSWORD=%q' "$(password admin)"
	printf ' OFFTRAIL_TEST_SECURE_OS_PASSWORD=%q' "$(password offtrail)"
	printf ' OFFTRAIL_TEST_SECURE_OS_NOREAD_PASSWORD=%q' "$(password offtrail-noread)"
	printf ' OFFTRAIL_TEST_SECURE_OS_INSTALLER_PASSWORD=%q\n' "$(password offtrail-installer)"
	;;
*)
	echo "usage: $0 {install|start|stop|status|env}" >&2
	exit 2
	;;
esac
