#!/usr/bin/env bash
# s3rver, an S3-compatible server (npm), for the AWS storage driver test and
# the many-frontends tests (cmd/ztlog).
set -u
dest=/opt/ztlog-tools
[ -x "$dest/node_modules/.bin/s3rver" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "npm missing: cannot install s3rver"; exit 1; }
mkdir -p "$dest" && cd "$dest" && npm install --no-audit --no-fund --silent s3rver@3.7.1 >/dev/null
