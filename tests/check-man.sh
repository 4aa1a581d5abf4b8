#!/bin/sh
# check-man.sh - every man page must format without a single groff warning
# (undefined macros, bad arguments, lines that cannot be broken, ...).
set -eu
: "${top_srcdir:=${srcdir:-.}}"
if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
    echo "check-man: man or groff not installed (Debian: apt-get install man-db groff-base)"
    exit 77
fi
status=0
for page in "$top_srcdir"/man/*.[1-8]; do
    # Warnings go to stderr; the formatted page is thrown away.
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -E UTF-8 -l -Tutf8 "$page" 2>&1 >/dev/null) || {
        echo "check-man: $page: man failed"
        status=1
    }
    if [ -n "$warnings" ]; then
        echo "check-man: $page:"
        echo "$warnings"
        status=1
    else
        echo "check-man: $page: ok"
    fi
done
exit $status
