#!/usr/bin/env bash
# A self-signed TLS certificate for nginx, valid 825 days, for NAME (plus localhost and
# 127.0.0.1): DIR/mt4hub.crt and DIR/mt4hub.key (mode 600). Keeps an existing pair.
#
#   deploy/make-cert.sh [DIR] [NAME]     (defaults: /etc/nginx/tls, the host's name)
#
# Browsers warn about a self-signed certificate; clients can trust this one file
# (curl --cacert DIR/mt4hub.crt, Python ssl.create_default_context(cafile=…)).
set -euo pipefail
DIR=${1:-/etc/nginx/tls}
NAME=${2:-$(hostname -f 2>/dev/null || hostname)}
command -v openssl >/dev/null || { echo "make-cert.sh: openssl is missing (apt-get install openssl)" >&2; exit 1; }
if [ -s "$DIR/mt4hub.crt" ] && [ -s "$DIR/mt4hub.key" ]; then
  echo "make-cert.sh: $DIR/mt4hub.crt exists, kept" >&2
  exit 0
fi
SAN="DNS:$NAME,IP:127.0.0.1"
[ "$NAME" = localhost ] || SAN="$SAN,DNS:localhost"
mkdir -p "$DIR"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 \
  -keyout "$DIR/mt4hub.key" -out "$DIR/mt4hub.crt" -subj "/CN=$NAME" \
  -addext "subjectAltName=$SAN" 2>/dev/null \
  || { echo "make-cert.sh: openssl could not make the certificate in $DIR" >&2; exit 1; }
chmod 644 "$DIR/mt4hub.crt"
echo "make-cert.sh: $DIR/mt4hub.crt and $DIR/mt4hub.key for $NAME" >&2
