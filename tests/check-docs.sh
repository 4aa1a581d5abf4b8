#!/bin/sh
# check-docs.sh - `warrend --help`, warrend(8) and README.md must agree on the
# command line: every long option in the help is documented in the man page,
# every option the man page documents exists, and the README's run command
# uses only real options. (Settings are checked against the table by
# tests/unit/check_conf.)
set -eu
: "${top_srcdir:=${srcdir:-.}}"
: "${WARREND:=./src/warrend}"
: "${WARRENCTL:=./src/warrenctl}"
status=0
fail() { echo "check-docs: $*"; status=1; }

check_tool() {
    bin=$1 page=$2
    help_opts=$("$bin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
    # mdoc writes a long option as ".Fl -name" (or "Fl -name" inside a line).
    man_opts=$(grep -o 'Fl -[a-z][a-z-]*' "$page" | sed 's/^Fl -/--/' | sort -u)
    for o in $help_opts; do
        echo "$man_opts" | grep -qx -- "$o" || fail "$(basename "$page") does not document $o"
    done
    for o in $man_opts; do
        echo "$help_opts" | grep -qx -- "$o" || fail "$(basename "$page") documents $o, which --help lacks"
    done
}
check_tool "$WARREND" "$top_srcdir/man/warrend.8"
check_tool "$WARRENCTL" "$top_srcdir/man/warrenctl.1"

# README.md lists every option, and its commands running warrend use only
# real ones.
help_opts=$("$WARREND" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
for o in $help_opts; do
    grep -q -- "$o" "$top_srcdir/README.md" || fail "README.md does not mention warrend $o"
done
for o in $(grep 'src/warrend ' "$top_srcdir/README.md" | grep -o -- ' --[a-z][a-z-]*' | sort -u); do
    echo "$help_opts" | grep -qx -- "$o" || fail "README.md runs warrend $o, which --help lacks"
done

[ $status -eq 0 ] && echo "check-docs: --help, man pages and README agree"
exit $status
