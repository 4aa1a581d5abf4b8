# src/core: the broker's own small libraries (logging, clocks, error codes).
# Nothing here knows about AMQP or sockets.
src_libwarren_a_SOURCES += \
	src/core/err.h \
	src/core/version.h \
	src/core/log.c src/core/log.h \
	src/core/clock.c src/core/clock.h \
	src/core/errbuf.c src/core/errbuf.h \
	src/core/hmap.c src/core/hmap.h \
	src/core/heap.c src/core/heap.h \
	src/core/randname.c src/core/randname.h \
	src/core/utf8.c src/core/utf8.h \
	src/core/pidfile.c src/core/pidfile.h \
	src/core/histo.h \
	src/core/list.h
