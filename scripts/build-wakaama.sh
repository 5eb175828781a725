#!/usr/bin/env bash
# Build Eclipse Wakaama's example LwM2M server and client (an independent C implementation of
# LwM2M 1.0) for the interop tests in tests/e2e/test_wakaama_peer.py.
#
# The sources are the Wakaama tree that the npm package node-red-contrib-lwm2m 2.12.3 carries
# (npm is the registry this machine reaches; GitHub is not), checked against the tarball's
# SHA-256 before anything is built. Nothing of it is committed here.
#
# Usage: scripts/build-wakaama.sh [OUTDIR]   (default build/wakaama; does nothing when built)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/wakaama}
package=node-red-contrib-lwm2m-2.12.3.tgz
sha256=3e8f4fc9bb3f68933baf010bb3c8dd50f846f338a9eee85f67d52c71e98681c8
[ -x "$out/lwm2mserver" ] && [ -x "$out/lwm2mclient" ] && [ -f "$out/.holdoff-0" ] && exit 0
command -v cmake >/dev/null || scripts/ensure-system-deps.sh cmake
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
mkdir -p "$out"
for program in server client; do
    cmake -S "$src/examples/$program" -B "$work/$program" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS="-w" -Wno-dev -Wno-deprecated >/dev/null
    cmake --build "$work/$program" -j 2 >/dev/null
    cp "$work/$program/lwm2m$program" "$out/"
done
touch "$out/.holdoff-0"
echo "built Wakaama's lwm2mserver and lwm2mclient in $out"
