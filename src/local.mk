# src: the daemon, the admin tool, and the library modules that are not in a
# subdirectory fragment of their own yet.

src_libwarren_a_SOURCES += \
	src/conf/conf.c src/conf/conf.h

sbin_PROGRAMS += src/warrend
src_warrend_SOURCES = src/warrend.c
src_warrend_LDADD = $(WR_LIBS)

bin_PROGRAMS += src/warrenctl
src_warrenctl_SOURCES = src/warrenctl.c
src_warrenctl_LDADD = $(CTL_LIBS)
