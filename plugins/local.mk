# plugins: loadable modules (include/warren/plugin.h is all they see).
# Built as NAME.so with libtool -module -avoid-version into plugins/.libs
# (what `make check` points plugins.directory at) and installed into
# $(plugindir), the default plugins.directory.
plugindir = $(pkglibdir)/plugins
PLUGIN_LDFLAGS = -module -avoid-version -shared $(SAN_CFLAGS)
PLUGIN_CPPFLAGS = -I$(top_srcdir)/include -D_POSIX_C_SOURCE=200809L
PLUGIN_CFLAGS = -std=c11 $(WARN_CFLAGS) $(SAN_CFLAGS) -fvisibility=hidden

plugin_LTLIBRARIES = plugins/consistent_hash.la
plugins_consistent_hash_la_SOURCES = plugins/consistent_hash/consistent_hash.c
plugins_consistent_hash_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_consistent_hash_la_CFLAGS = $(PLUGIN_CFLAGS)
plugins_consistent_hash_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_consistent_hash_la_LIBADD = -lm

# The one installed header: the plugin interface.
warrenincludedir = $(includedir)/warren
warreninclude_HEADERS = include/warren/plugin.h

plugin_LTLIBRARIES += plugins/delayed_message.la
plugins_delayed_message_la_SOURCES = plugins/delayed_message/delayed_message.c
plugins_delayed_message_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_delayed_message_la_CFLAGS = $(PLUGIN_CFLAGS)
plugins_delayed_message_la_LDFLAGS = $(PLUGIN_LDFLAGS)

plugin_LTLIBRARIES += plugins/auth_file.la
plugins_auth_file_la_SOURCES = plugins/auth_file/auth_file.c
plugins_auth_file_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_auth_file_la_CFLAGS = $(PLUGIN_CFLAGS)
plugins_auth_file_la_LDFLAGS = $(PLUGIN_LDFLAGS)

# Test plugins (make check only): refused for their ABI version, their
# failing init, a missing descriptor, a descriptor of another name.
TEST_PLUGIN_LDFLAGS = $(PLUGIN_LDFLAGS) -rpath $(abs_builddir)/tests/plugins
check_LTLIBRARIES = tests/plugins/bad_abi.la tests/plugins/bad_init.la \
	tests/plugins/no_desc.la tests/plugins/wrong_name.la
tests_plugins_bad_abi_la_SOURCES = tests/plugins/bad_abi.c
tests_plugins_bad_abi_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
tests_plugins_bad_abi_la_CFLAGS = $(PLUGIN_CFLAGS)
tests_plugins_bad_abi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_bad_init_la_SOURCES = tests/plugins/bad_init.c
tests_plugins_bad_init_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
tests_plugins_bad_init_la_CFLAGS = $(PLUGIN_CFLAGS)
tests_plugins_bad_init_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_no_desc_la_SOURCES = tests/plugins/no_desc.c
tests_plugins_no_desc_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
tests_plugins_no_desc_la_CFLAGS = $(PLUGIN_CFLAGS)
tests_plugins_no_desc_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_wrong_name_la_SOURCES = tests/plugins/wrong_name.c
tests_plugins_wrong_name_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
tests_plugins_wrong_name_la_CFLAGS = $(PLUGIN_CFLAGS)
tests_plugins_wrong_name_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)

# The integration suite once more with the shipped exchange-type plugins
# loaded in every broker the tests start (issue 14: nothing may change for
# a client that does not use them). Not part of `make check`: it doubles
# its time.
check-with-plugins: all
	WARREN_TEST_ARGS='--set plugins.directory=$(abs_top_builddir)/plugins/.libs --set plugins.enabled.1=delayed_message --set plugins.enabled.2=consistent_hash' \
	  $(MAKE) $(AM_MAKEFLAGS) check TESTS='$(INTEG_TESTS)'
.PHONY: check-with-plugins
