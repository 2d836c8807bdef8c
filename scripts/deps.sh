#!/bin/sh
# Installs the Debian packages correo needs to build, test, fuzz and run.
# Idempotent: does nothing (no network) when everything is already present.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libevent-dev libssl-dev libsqlite3-dev sqlite3 libunbound-dev
libgmime-3.0-dev libgsasl-dev libcrypt-dev libinih-dev libcmocka-dev
python3 python3-pytest swaks libnet-ssleay-perl openssl
fetchmail getmail6 msmtp gsasl isync offlineimap3 unbound dnsmasq-base postfix
libsasl2-modules dns-root-data ldnsutils"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
