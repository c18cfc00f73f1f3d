#!/bin/sh
# Generates a self-signed certificate for the local demo (CN and SAN
# localhost + 127.0.0.1) unless one already exists.
#   scripts/gen-certs.sh DIR      writes DIR/cert.pem and DIR/key.pem (0600)
set -eu
dir=${1:?usage: gen-certs.sh DIR}
[ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ] && exit 0
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 0644 "$dir/cert.pem"
echo "generated a self-signed certificate in $dir"
