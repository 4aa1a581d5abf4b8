# src/plugin: loading plugins (dlopen), the API table they call, and the
# adapter that makes a plugin's exchange type a struct wr_xtype.
src_libwarren_a_SOURCES += \
	src/plugin/plugin.c src/plugin/plugin.h \
	src/plugin/api.c src/plugin/api.h \
	src/plugin/xtype.c \
	src/plugin/auth.c
