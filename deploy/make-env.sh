#!/usr/bin/env bash
# Make the settings file of a cluster from deploy/.env.example: every `replace-me…`
# value becomes a fresh random secret (32 characters), the file is mode 600, and an
# existing file is never overwritten.
#
#   deploy/make-env.sh [FILE]            (default: .env, what honcho reads)
set -euo pipefail
FILE=${1:-.env}
EXAMPLE="$(cd "$(dirname "$0")" && pwd)/.env.example"
if [ -e "$FILE" ]; then
  echo "make-env.sh: $FILE exists, kept (remove it to make a new one)" >&2
  exit 0
fi
umask 077
python3 - "$EXAMPLE" "$FILE" <<'PY'
import re, secrets, sys
source, target = sys.argv[1], sys.argv[2]
text = open(source, encoding="utf-8").read()
text = re.sub(r"(?<=[=:])replace-me[\w-]*", lambda _: secrets.token_urlsafe(24), text)
with open(target, "w", encoding="utf-8") as f:
    f.write(text)
PY
echo "make-env.sh: wrote $FILE (fresh secrets; keep it private)" >&2
