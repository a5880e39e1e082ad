#!/bin/sh
# Installs the Debian packages erserve needs to build, run and test, only those
# that are missing. Uses sudo when not root. Extra package names may be passed
# as arguments (e.g. python3-torch for `make fixtures`).
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev libopenblas-dev libopenblas0-pthread
libmicrohttpd-dev liblmdb-dev lmdb-utils libjansson-dev check libutf8proc-dev libsodium-dev
curl wrk valgrind libonig-dev libmemcached-dev memcached haproxy nginx-light python3-yaml
libdnnl-dev $*"
# Node.js (for the optional OpenAI-client test) may come from elsewhere than Debian.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
