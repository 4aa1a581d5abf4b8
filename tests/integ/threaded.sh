#!/bin/sh
# threaded.sh FILE.thr - run the integration test FILE.thr names (a .py)
# against brokers with two I/O threads (io_threads = 2, net/io.h; the
# harness passes WARREN_TEST_IO_THREADS on): the whole suite runs in both
# modes (tests/local.mk).
set -e
py=$(cat "$1")
case $py in
/*) ;;
*) [ -f "$py" ] || py=${top_srcdir:-.}/$py ;;
esac
WARREN_TEST_IO_THREADS=2
export WARREN_TEST_IO_THREADS
exec /usr/bin/python3 "$py"
