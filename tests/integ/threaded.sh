#!/bin/sh
# threaded.sh FILE.thr - run the integration test FILE.thr names (a .py)
# against brokers with two I/O threads (io_threads = 2, net/io.h; the
# harness passes WARREN_TEST_IO_THREADS on): the whole suite runs in both
# modes (tests/local.mk). The sockets move between the core and the
# threads every 20 ms (io_threads.placement = shuffle), so that every test
# meets both places and the moves between them; WARREN_TEST_IO_PLACEMENT
# set beforehand overrides it.
set -e
py=$(cat "$1")
case $py in
/*) ;;
*) [ -f "$py" ] || py=${top_srcdir:-.}/$py ;;
esac
WARREN_TEST_IO_THREADS=2
WARREN_TEST_IO_PLACEMENT=${WARREN_TEST_IO_PLACEMENT:-shuffle}
export WARREN_TEST_IO_THREADS WARREN_TEST_IO_PLACEMENT
exec /usr/bin/python3 "$py"
