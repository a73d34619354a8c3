#!/bin/bash
# AES-128-GCM speed of the wolfSSL that `make` links (built from Debian's source with AES-NI)
# against Debian's binary libwolfssl (`make WOLFSSL=system`): scripts/aesgcm_speed.c built
# against each, 3 runs of about a second each, medians and their ratio; OpenSSL's
# `openssl speed` on the same record size for reference.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup
prefix=$(scripts/wolfssl-build --prefix)
scripts/wolfssl-build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Wall -Wextra -Werror -I"$prefix/include" scripts/aesgcm_speed.c "$prefix/lib/libwolfssl.a" -lm -lpthread \
    -o "$tmp/source"
cc -O2 -Wall -Wextra -Werror $(pkg-config --cflags wolfssl) scripts/aesgcm_speed.c $(pkg-config --libs wolfssl) \
    -o "$tmp/system"
median() { sort -n | sed -n 2p; }
src=$(for i in 1 2 3; do "$tmp/source"; done | median)
sys=$(for i in 1 2 3; do "$tmp/system"; done | median)
echo "AES-128-GCM, 16 KiB records, median of 3 runs of 1 s:"
echo "  wolfSSL built from Debian's source (make):        $src MB/s"
echo "  Debian's libwolfssl (make WOLFSSL=system):        $sys MB/s"
ossl=$(for i in 1 2 3; do
    openssl speed -evp aes-128-gcm -bytes 16384 -seconds 1 2>/dev/null |
        awk '/^AES-128-GCM/ { sub(/k$/, "", $2); printf "%.0f\n", $2 * 1000 / 1e6 }'
done | median)
echo "  OpenSSL (openssl speed -evp aes-128-gcm), reference: $ossl MB/s"
echo "  source build / Debian's library: x$(awk -v a="$src" -v b="$sys" 'BEGIN { printf "%.1f", a / b }')"
