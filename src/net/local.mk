# src/net: the only socket code. Connections, channels, delivery, the server loop.
src_libwarren_a_SOURCES += \
	src/net/server.c src/net/server.h \
	src/net/conn.c src/net/conn.h \
	src/net/chan.c src/net/chan.h \
	src/net/deliver.c src/net/deliver.h
