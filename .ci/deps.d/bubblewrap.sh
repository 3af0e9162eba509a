#!/usr/bin/env bash
# bubblewrap (bwrap), for the local broker's network-namespace sandbox
# (contract/broker/sandbox tests and `zt broker`). Tests that need it skip,
# naming bwrap, when it is absent.
set -u
command -v bwrap >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "bubblewrap missing and cannot be installed here (needs root and apt-get)"; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
