# src/net: the only socket code. Connections, channels, delivery, the server loop.
src_libwarren_a_SOURCES += \
	src/net/server.c src/net/server.h \
	src/net/conn.c src/net/conn.h \
	src/net/io.c src/net/io.h \
	src/net/asm.c src/net/asm.h \
	src/net/chan.c src/net/chan.h \
	src/net/deliver.c src/net/deliver.h \
	src/net/transport.h src/net/transport_plain.c \
	src/net/tls.c src/net/tls.h \
	src/net/tls_ctx.c src/net/tls_ctx.h \
	src/net/listen.c src/net/listen.h
