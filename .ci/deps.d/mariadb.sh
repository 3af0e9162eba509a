#!/usr/bin/env bash
# MariaDB server binaries, for the AWS storage driver test (log/storage) and the
# many-frontends tests (cmd/ztlog, contract/gate/results/sqlclaims). The
# test runs its own private server in a temp dir; no service is started here.
set -u
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "mariadb-server missing and cannot be installed here (needs root and apt-get)"; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
# Debian's postinst may start a system server; the tests do not use it.
(command -v service >/dev/null && service mariadb stop) >/dev/null 2>&1 || true
