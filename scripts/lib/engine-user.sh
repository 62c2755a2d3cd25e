# Shared by scripts/engines.sh and scripts/secure-opensearch.sh: Java and
# the unprivileged user the engines run as (both refuse to run as root, and
# CI is root). The sourcing script defines log, die, $engine_user and $home.

as_root() { [[ $(id -u) -eq 0 ]]; }

java_home() {
	if [[ -n ${OFFTRAIL_JAVA_HOME:-} ]]; then
		echo "$OFFTRAIL_JAVA_HOME"
		return
	fi
	local java
	java=$(command -v java) || die "no java on PATH (need Java 17+; or set OFFTRAIL_JAVA_HOME)"
	java=$(readlink -f "$java")
	dirname "$(dirname "$java")"
}

ensure_user() {
	as_root || return 0
	if ! getent passwd "$engine_user" >/dev/null; then
		log "creating system user $engine_user"
		useradd --system --no-create-home --home-dir "$home" \
			--shell /usr/sbin/nologin "$engine_user" ||
			die "useradd $engine_user failed"
	fi
}

# Run a command as the engine user (or as ourselves when not root).
as_engine() {
	if as_root && command -v runuser >/dev/null; then
		runuser -u "$engine_user" -- "$@"
	elif as_root; then
		su -s /bin/bash "$engine_user" -c "$(printf '%q ' "$@")"
	else
		"$@"
	fi
}
