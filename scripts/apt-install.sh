#!/usr/bin/env bash
# Install Debian packages (as root, quietly; the apt log is shown only when it fails).
#
#   scripts/apt-install.sh PACKAGE...
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: apt-install.sh PACKAGE..." >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-install.sh: $* missing and we are not root: apt-get install $*" >&2
  exit 1
fi
echo "apt-install.sh: installing $*" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# A machine that never ran apt-get update has no package lists: update first then.
if ! apt-get install -y -qq "$@" >"$log" 2>&1; then
  { apt-get update -qq && apt-get install -y -qq "$@"; } >"$log" 2>&1 \
    || { cat "$log" >&2; echo "apt-install.sh: apt-get install $* failed" >&2; exit 1; }
fi
