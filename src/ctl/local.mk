# src/ctl: warrenctl, the admin tool, a client of the management HTTP API.
# Its own library, so that the unit tests link the pure parts (URL, config
# file, typed values, numbers, the HTTP response parser); nothing of the
# broker is in it.
noinst_LIBRARIES += src/ctl/libwarrenctl.a
src_ctl_libwarrenctl_a_SOURCES = \
	src/ctl/buf.c src/ctl/buf.h \
	src/ctl/url.c src/ctl/url.h \
	src/ctl/value.c src/ctl/value.h \
	src/ctl/conn.c src/ctl/conn.h \
	src/ctl/http.c src/ctl/http.h \
	src/ctl/out.c src/ctl/out.h \
	src/ctl/ctl.h src/ctl/api.c src/ctl/cli.c \
	src/ctl/cmd_show.c src/ctl/cmd_object.c src/ctl/cmd_admin.c \
	src/ctl/cmd_queue.c
CTL_LIBS = src/ctl/libwarrenctl.a $(OPENSSL_LIBS) $(JANSSON_LIBS)
