#!/usr/bin/env bash
# chromium (Debian), the real browser the evidence explorer's tests drive
# with chromedp (verifier/explorer): the pages render and verify the log in
# the page. Tests that need it skip, naming chromium, when it is absent.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium missing and cannot be installed here (needs root and apt-get)"; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null || {
  echo "apt-get install chromium failed: the explorer's browser tests will skip"; exit 1; }
