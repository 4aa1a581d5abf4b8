#!/bin/sh
# check-generated.sh - the checked-in src/wire/methods.gen.[ch] must be what
# tools/gen_codec.py makes from spec/amqp-rabbitmq-0.9.1.json today. A diff
# means someone edited generated code, or changed the generator or the spec
# without running `make regen`.
set -eu
: "${top_srcdir:=${srcdir:-.}}"
: "${PYTHON:=python3}"
cd "$top_srcdir"
if [ ! -f tools/gen_codec.py ]; then
    echo "check-generated: tools/gen_codec.py is missing" >&2
    exit 1
fi
if ! "$PYTHON" tools/gen_codec.py --check; then
    echo "check-generated: src/wire/methods.gen.[ch] are stale; run 'make regen' and commit" >&2
    exit 1
fi
echo "check-generated: generated codec is up to date"
