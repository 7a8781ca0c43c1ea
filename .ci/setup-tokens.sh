#!/usr/bin/env bash
# Installs and prepares the PKCS#11 modules the token tests run against (Debian/Ubuntu):
#   - SoftHSM2 (each test makes its own store through SOFTHSM2_CONF: nothing to prepare)
#   - OpenSC, for pkcs11-tool (the tests check token state with a tool we did not write)
#   - openCryptoki: runtime directories, the pkcsslotd daemon, and its software token
#     initialised (label tokenrun-test, SO PIN 87654321, user PIN 11112222) if it is not yet.
# Safe to run again: every step checks before it acts. Needs root (or sudo).
set -euo pipefail

OCK_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
OCK_SLOT=3                 # the software token's slot in Debian's opencryptoki.conf
OCK_SO_PIN=87654321        # the software token's factory SO PIN
OCK_USER_PIN=11112222      # 4 to 8 characters on this token
OCK_LABEL=tokenrun-test
PIDFILE=/var/run/pkcsslotd.pid
SOCKET=/var/run/pkcsslotd.socket

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi

log() { printf 'setup-tokens: %s\n' "$*" >&2; }

export DEBIAN_FRONTEND=noninteractive
log "installing softhsm2 opensc opencryptoki"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends softhsm2 opensc opencryptoki >/dev/null

# pkcsslotd needs its lock and state directories (normally made by systemd at boot; CI
# containers have no systemd running).
if command -v systemd-tmpfiles >/dev/null; then
	$SUDO systemd-tmpfiles --create /usr/lib/tmpfiles.d/opencryptoki.conf
else
	for d in /var/lock/opencryptoki /var/lock/opencryptoki/swtok /var/lib/opencryptoki \
		/var/lib/opencryptoki/swtok /var/lib/opencryptoki/swtok/TOK_OBJ; do
		$SUDO install -d -m 0770 -o root -g pkcs11 "$d"
	done
fi

daemon_running() {
	[ -S "$SOCKET" ] && [ -r "$PIDFILE" ] && $SUDO kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

if daemon_running; then
	log "pkcsslotd already running (pid $(cat "$PIDFILE"))"
else
	log "starting pkcsslotd"
	$SUDO /usr/sbin/pkcsslotd
	for _ in $(seq 1 100); do
		daemon_running && break
		sleep 0.1
	done
	daemon_running || { log "pkcsslotd did not start"; exit 1; }
fi

tool() { $SUDO pkcs11-tool --module "$OCK_MODULE" --slot "$OCK_SLOT" "$@"; }

if tool --show-info >/dev/null 2>&1 && $SUDO pkcs11-tool --module "$OCK_MODULE" --list-slots | grep -q 'token state: *uninitialized'; then
	log "initialising the openCryptoki software token"
	tool --init-token --label "$OCK_LABEL" --so-pin "$OCK_SO_PIN" >/dev/null
	tool --login --login-type so --so-pin "$OCK_SO_PIN" --init-pin --new-pin "$OCK_USER_PIN" >/dev/null
else
	log "openCryptoki software token already initialised (the tests reset it themselves)"
fi

$SUDO pkcs11-tool --module "$OCK_MODULE" --list-slots >&2
log "done"
