#!/usr/bin/env bash
# Ensure Debian's Chromium is installed (for the dashboard browser tests) and print its path.
set -euo pipefail
BIN=/usr/bin/chromium
if [ ! -x "$BIN" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium.sh: $BIN is missing; run as root to install it (apt-get install chromium)" >&2
    exit 1
  fi
  echo "chromium.sh: installing Debian chromium (one time)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
fi
echo "$BIN"
