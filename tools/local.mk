# tools: developer targets that are not part of `make all`.
#
#   make regen (or gen)  regenerate src/wire/methods.gen.[ch] from the spec
#   make fuzz            build the libFuzzer targets with clang and run each
#                        FUZZ_SECONDS (default 60) over a copy of its corpus
#   make format          clang-format the C sources (generated code excluded)
#   make check-unit      unit tests only (defined in tests/local.mk)
#   make check-sanitizers  the whole suite under ASan+UBSan, in build-san/
#   make deb             the Debian package (debian/), built in deb-build/

EXTRA_DIST += tools/gen_codec.py tools/bootstrap.sh tools/fuzz.sh .clang-format

regen gen:
	cd $(srcdir) && $(PYTHON) tools/gen_codec.py

# ---- fuzzing ----
# clang compiles the library sources itself (with -fsanitize=fuzzer-no-link)
# instead of linking the gcc-built libwarren.a, so coverage reaches into the
# library and the sanitizers see all of it. Objects and binaries go to
# fuzz-build/; crashes are written to fuzz-build/artifacts/<target>/.
FUZZ_SECONDS = 60
FUZZ_TARGETS = frame table conf journal sasl defs defslog mgmt recover offsets asm
fuzz:
	@test -n "$(CLANG)" || { echo "make fuzz needs clang (Debian: apt-get install clang)" >&2; exit 1; }
	CLANG='$(CLANG)' FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_TARGETS='$(FUZZ_TARGETS)' \
	FUZZ_SOURCES='$(src_libwarren_a_SOURCES)' \
	FUZZ_LIBS='$(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(JANSSON_LIBS) $(PCRE2_LIBS) $(LIBS)' \
	srcdir='$(srcdir)' \
	$(SHELL) $(srcdir)/tools/fuzz.sh $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) \
		$(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS) $(JANSSON_CFLAGS) $(PCRE2_CFLAGS)

# ---- formatting ----
CLANG_FORMAT = clang-format
format:
	cd $(srcdir) && find src tests -name '*.[ch]' ! -name '*.gen.[ch]' -print \
		| LC_ALL=C sort | xargs $(CLANG_FORMAT) -i

# ---- the test suite under sanitizers ----
# A VPATH build needs an unconfigured source tree, so the sources are first
# copied with `make distdir` (which keeps timestamps: later runs rebuild only
# what changed) to build-san/src, then configured once in build-san/build.
# check-tsan does the same with ThreadSanitizer in build-tsan/; check-sanitizers
# runs both.
check-sanitizers: check-asan check-tsan

check-asan:
	$(MKDIR_P) build-san/build
	$(MAKE) $(AM_MAKEFLAGS) distdir distdir=build-san/src
	cd build-san/build && { test -f Makefile || ../src/configure --enable-sanitizers; } \
		&& $(MAKE) $(AM_MAKEFLAGS) check

check-tsan:
	$(MKDIR_P) build-tsan/build
	$(MAKE) $(AM_MAKEFLAGS) distdir distdir=build-tsan/src
	cd build-tsan/build && { test -f Makefile || ../src/configure --enable-tsan; } \
		&& $(MAKE) $(AM_MAKEFLAGS) check

# ---- the Debian package ----
# dpkg-buildpackage cleans and reconfigures the tree it runs in, so it runs
# on a copy: `make distdir` into deb-build/warren-VERSION/ with debian/
# beside the sources. The .deb, its -dbgsym, .buildinfo and .changes land
# in deb-build/. Needs dpkg-dev and debhelper (not in tools/bootstrap.sh:
# the test suite does not build the package).
DEB_BUILD = deb-build
# dh runs autoreconf on the copy, and aclocal wants the m4 directory.
EXTRA_DIST += m4/.gitkeep
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || { \
		echo "make deb needs dpkg-dev and debhelper (Debian: apt-get install dpkg-dev debhelper)" >&2; \
		exit 1; }
	@v=`cd $(srcdir) && dpkg-parsechangelog -S Version`; case "$$v" in \
		$(VERSION)-*) ;; \
		*) echo "debian/changelog is at $$v, configure.ac at $(VERSION): add a changelog entry (dch -v $(VERSION)-1)" >&2; \
			exit 1;; esac
	rm -rf $(DEB_BUILD) && $(MKDIR_P) $(DEB_BUILD)
	$(MAKE) $(AM_MAKEFLAGS) distdir distdir=$(DEB_BUILD)/$(PACKAGE)-$(VERSION)
	cp -R $(srcdir)/debian $(DEB_BUILD)/$(PACKAGE)-$(VERSION)/
	cd $(DEB_BUILD)/$(PACKAGE)-$(VERSION) && \
		env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b
	@ls -l $(DEB_BUILD)/*.deb

clean-local: clean-local-tools
clean-local-tools:
	rm -rf fuzz-build
distclean-local: distclean-local-tools
distclean-local-tools:
	rm -rf build-san build-tsan $(DEB_BUILD)

.PHONY: regen gen fuzz format check-sanitizers check-asan check-tsan deb clean-local-tools distclean-local-tools
