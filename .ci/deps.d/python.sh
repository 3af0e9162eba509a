#!/usr/bin/env bash
# Debian's python3 with python3-cryptography and python3-pytest, for the
# Python SDK's tests (make test-sdk-python, contract/sdk/python). The Python
# package registry is not reachable: only Debian packages. The tests skip,
# naming what is missing, without them.
set -u
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import cryptography, pytest' >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "python3, python3-cryptography or python3-pytest missing and cannot be installed here (needs root and apt-get)"; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends python3 python3-cryptography python3-pytest >/dev/null
