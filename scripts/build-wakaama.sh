#!/usr/bin/env bash
# Build Eclipse Wakaama's example LwM2M server and client (an independent C implementation of
# LwM2M 1.0) for the interop tests in tests/e2e/test_wakaama_peer.py.
#
# The sources are the Wakaama tree that the npm package node-red-contrib-lwm2m 2.12.3 carries
# (npm is the registry this machine reaches; GitHub is not), checked against the tarball's
# SHA-256 before anything is built. Nothing of it is committed here.
#
# Usage: scripts/build-wakaama.sh [OUTDIR]   (default build/wakaama; does nothing when built)
# Output: OUTDIR/lwm2mserver, OUTDIR/bootstrap_server, OUTDIR/lwm2mclient and
# OUTDIR/lwm2mclient-dtls (PSK).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/wakaama}
package=node-red-contrib-lwm2m-2.12.3.tgz
sha256=3e8f4fc9bb3f68933baf010bb3c8dd50f846f338a9eee85f67d52c71e98681c8
# built by this very script already: nothing to do (a changed script builds again)
stamp=$(sha256sum "$0" | cut -c1-16)
[ "$(cat "$out/.built" 2>/dev/null)" = "$stamp" ] && exit 0
command -v cmake >/dev/null || scripts/ensure-system-deps.sh cmake
command -v autoreconf >/dev/null || scripts/ensure-system-deps.sh autoconf automake libtool
command -v npm >/dev/null || scripts/ensure-system-deps.sh nodejs npm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent node-red-contrib-lwm2m@2.12.3 >/dev/null)
echo "$sha256  $work/$package" | sha256sum --check --quiet -
tar xzf "$work/$package" -C "$work" package/deps/wakatiwai/deps/wakaama
src=$work/package/deps/wakatiwai/deps/wakaama
# The example client hard-codes a 10 s Client Hold Off Time for its bootstrap account (no
# command-line option): the test build waits 0 s, so a bootstrap test does not idle 10 s.
# This is the only change to Wakaama's sources, and the build fails if the line moved.
holdoff="$src/examples/client/object_security.c"
grep -q 'targetP->clientHoldOffTime = 10;' "$holdoff"
sed -i 's/targetP->clientHoldOffTime = 10;/targetP->clientHoldOffTime = 0;/' "$holdoff"
# The DTLS client configures the tinydtls tree it carries with autoconf; the npm package left
# out files that tinydtls' configure.ac lists but the build never uses (tests/, doc/): empty
# placeholders let configure run.
tinydtls=$src/examples/shared/tinydtls
for file in tests/Makefile.in doc/Makefile.in doc/Doxyfile.in; do
    [ -e "$tinydtls/$file" ] || { mkdir -p "$(dirname "$tinydtls/$file")"; : >"$tinydtls/$file"; }
done
mkdir -p "$out"
build() {  # build EXAMPLE-DIR BINARY OUTPUT-NAME [CMAKE-ARGS...]
    local program=$1 binary=$2 name=$3
    shift 3
    # No Release build type: with -O3 -DNDEBUG the DTLS client never completes a handshake
    # (its tinydtls misbehaves optimised); speed does not matter for a test peer.
    if ! { cmake -S "$src/examples/$program" -B "$work/$name" \
            -DCMAKE_C_FLAGS="-w" -Wno-dev -Wno-deprecated "$@" &&
        cmake --build "$work/$name" -j 2; } >"$work/$name.log" 2>&1; then
        cat "$work/$name.log" >&2
        echo "building Wakaama's $name failed" >&2
        exit 1
    fi
    cp "$work/$name/$binary" "$out/$name"
}
build server lwm2mserver lwm2mserver
build bootstrap_server bootstrap_server bootstrap_server
build client lwm2mclient lwm2mclient
build client lwm2mclient lwm2mclient-dtls -DDTLS=ON   # PSK over tinydtls
echo "$stamp" >"$out/.built"
echo "built Wakaama's lwm2mserver, bootstrap_server, lwm2mclient and lwm2mclient-dtls in $out"
