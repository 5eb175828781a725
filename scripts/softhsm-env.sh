#!/bin/sh
# Create a throw-away SoftHSM2 token directory and print the environment to use it.
#
#   eval "$(scripts/softhsm-env.sh [DIR] [LABEL] [USER_PIN])"
#   lwm2m sc info --secure-component "$LWM2M_SECURE_COMPONENT"
#
# DIR defaults to a new temporary directory, LABEL to "lwm2m", USER_PIN to 1234 (SO PIN 12345678).
# Needs Debian's softhsm2 package. The PIN goes into the URI as pin-value: development only.
set -eu
dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/softhsm.XXXXXX")}
label=${2:-lwm2m}
pin=${3:-1234}
module=""
for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so; do
    if [ -f "$candidate" ]; then module=$candidate; break; fi
done
if [ -z "$module" ] || ! command -v softhsm2-util >/dev/null 2>&1; then
    echo "softhsm-env.sh: SoftHSM2 is not installed (apt-get install softhsm2)" >&2
    exit 1
fi
mkdir -p "$dir/tokens"
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free --label "$label" \
    --so-pin 12345678 --pin "$pin" >/dev/null
echo "export SOFTHSM2_CONF='$dir/softhsm2.conf'"
echo "export LWM2M_SECURE_COMPONENT='pkcs11:token=$label?module-path=$module&pin-value=$pin'"
