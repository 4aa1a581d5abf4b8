#!/bin/sh
# bootstrap.sh - from a fresh clone to a configured tree.
#
#  1. Install the Debian packages the build and the tests need, if any is
#     missing (apt-get update runs only then). Needs root, or sudo.
#  2. Generate the build system (autoreconf -fi).
#  3. Run ./configure, passing this script's arguments through, e.g.
#     tools/bootstrap.sh --enable-sanitizers
#
# Then: make -j2 && make check (see README.md).
set -eu
cd "$(dirname "$0")/.."

DEPS="build-essential autoconf automake libtool pkg-config libevent-dev libssl-dev
libjansson-dev libpcre2-dev check python3 python3-pika librabbitmq-dev amqp-tools clang
libclang-rt-14-dev groff-base man-db curl nagios-plugins-rabbitmq prometheus python3-celery
strace"

if command -v dpkg-query >/dev/null 2>&1; then
    missing=
    for p in $DEPS; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing="$missing $p"
        fi
    done
    if [ -n "$missing" ]; then
        echo "bootstrap: installing missing packages:$missing"
        if [ "$(id -u)" -eq 0 ]; then
            sudo=
        elif command -v sudo >/dev/null 2>&1; then
            sudo=sudo
        else
            echo "bootstrap: need root (or sudo) to install:$missing" >&2
            exit 1
        fi
        $sudo apt-get update
        # shellcheck disable=SC2086
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
    fi
else
    echo "bootstrap: not a Debian system; make sure these are installed:" $DEPS >&2
fi

mkdir -p m4 build-aux
autoreconf -fi
./configure "$@"
