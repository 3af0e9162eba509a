#!/usr/bin/env bash
# podman + runc, for the container image test (deploy/image_test.go) and
# `make image`. crun and the systemd cgroup manager do not work on these
# machines, so the tests run `podman --runtime runc --cgroup-manager=cgroupfs`;
# podman also needs containers.conf to say `default_ulimits = []` (the
# default asks for RLIMIT_NOFILE values the sandbox refuses). Tests that need
# podman skip, naming it, when it is absent or cannot run.
set -u
conf=/etc/containers/containers.conf
have_conf() { [ -f "$conf" ] && grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=[[:space:]]*\[[[:space:]]*\]' "$conf"; }
if command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && have_conf; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "podman/runc/containers.conf missing and cannot be installed here (needs root and apt-get)"; exit 1
fi
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "podman or runc missing and apt-get absent"; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends podman runc >/dev/null || {
    echo "podman/runc could not be installed"; exit 1; }
fi
# Root podman reads /etc/containers/containers.conf (after
# /usr/share/containers/containers.conf, which the package ships). Keep an
# existing file: add the setting to its [containers] table, or add the table.
have_conf && exit 0
mkdir -p /etc/containers
if [ ! -f "$conf" ]; then
  printf '[containers]\ndefault_ulimits = []\n' >"$conf"
elif grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
  echo "containers.conf: $conf sets default_ulimits to something other than []; not changed (podman may fail to start containers here)"
  exit 1
elif grep -Eq '^[[:space:]]*\[containers\][[:space:]]*$' "$conf"; then
  cp "$conf" "$conf.ztlog-backup"
  sed -i '0,/^[[:space:]]*\[containers\][[:space:]]*$/s//[containers]\ndefault_ulimits = []/' "$conf"
else
  printf '\n[containers]\ndefault_ulimits = []\n' >>"$conf"
fi
have_conf || { echo "containers.conf: could not set default_ulimits = [] in $conf"; exit 1; }
