# src/broker: vhosts, exchanges, queues, messages. No sockets, no frames.
src_libwarren_a_SOURCES += \
	src/broker/msg.c src/broker/msg.h \
	src/broker/queue.c src/broker/queue.h \
	src/broker/qargs.c src/broker/qargs.h \
	src/broker/dlx.c src/broker/dlx.h \
	src/broker/move.c src/broker/move.h \
	src/broker/persist.h \
	src/broker/exchange.c src/broker/exchange.h \
	src/broker/xtype.c src/broker/x_direct.c src/broker/x_fanout.c \
	src/broker/x_topic.c src/broker/x_headers.c \
	src/broker/vhost.c src/broker/vhost.h \
	src/broker/broker.c src/broker/broker.h \
	src/broker/publish.c src/broker/publish.h \
	src/broker/dedup.c src/broker/dedup.h \
	src/broker/stream.c src/broker/stream.h \
	src/broker/access.c src/broker/access.h \
	src/broker/stats.c src/broker/stats.h
