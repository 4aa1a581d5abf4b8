# src: the daemon, the admin tool, and the library modules that are not in a
# subdirectory fragment of their own yet.

src_libwarren_a_SOURCES += \
	src/conf/conf.c src/conf/conf.h \
	src/conf/unknown.c src/conf/unknown.h

sbin_PROGRAMS += src/warrend
src_warrend_SOURCES = src/warrend.c
src_warrend_LDADD = $(WR_LIBS)

bin_PROGRAMS += src/warrenctl
src_warrenctl_SOURCES = src/warrenctl.c
src_warrenctl_LDADD = $(CTL_LIBS)

# What `warrend --version` prints as its commit: `git describe` of the
# source tree when it is a git checkout, else the package version. The
# header is rewritten only when that changes, so only warrend.o rebuilds.
gitdescribe.h: FORCE
	$(AM_V_GEN)d=`cd $(top_srcdir) && git describe --always --dirty --tags 2>/dev/null` || d=; \
	test -n "$$d" || d='$(PACKAGE_VERSION)'; \
	printf '#define WR_GIT_DESCRIBE "%s"\n' "$$d" > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:
.PHONY: FORCE
BUILT_SOURCES = gitdescribe.h
nodist_src_warrend_SOURCES = gitdescribe.h
CLEANFILES += gitdescribe.h
