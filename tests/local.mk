# tests: everything `make check` runs, through automake's parallel harness.
#
#   unit tests     tests/unit/check_<module>   (Check; only when configure found it)
#   fuzz replay    tests/fuzz/replay_<target>  (each fuzz target over its corpus)
#   scripts        tests/*.sh                  (generated code, man pages, docs)
#   integration    tests/integ/*.py            (start a real warrend; python3)
#   the same, threaded  tests/integ/*_thr.thr  (each again with io_threads = 2)
#
# Adding an integration test is one line: append it to INTEG_TESTS.

TEST_EXTENSIONS = .sh .py .thr
SH_LOG_COMPILER = $(SHELL)
# Integration tests use the system interpreter on purpose: python3-pika is
# a Debian package, installed for /usr/bin/python3 only.
INTEG_INTERPRETER = /usr/bin/python3
PY_LOG_COMPILER = $(INTEG_INTERPRETER)

# What every test may need, whatever it is written in.
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	PYTHON='$(PYTHON)'; export PYTHON; \
	WARREND='$(abs_top_builddir)/src/warrend$(EXEEXT)'; export WARREND; \
	WARRENCTL='$(abs_top_builddir)/src/warrenctl$(EXEEXT)'; export WARRENCTL; \
	WARREN_SANITIZERS='$(SANITIZERS_ON)'; export WARREN_SANITIZERS;

# Under ASan the broker's RSS includes the allocator's quarantine of freed
# blocks (256 MB by default), under TSan its shadow memory: memory bounds
# are reported, not asserted.
if SANITIZERS
SANITIZERS_ON = yes
else
SANITIZERS_ON =
endif

# ---- unit tests (Check) ----
UNIT_TESTS =
if HAVE_CHECK
UNIT_TESTS += tests/unit/check_conf tests/unit/check_field tests/unit/check_codec \
	tests/unit/check_xtype tests/unit/check_auth tests/unit/check_journal \
	tests/unit/check_names tests/unit/check_route tests/unit/check_passwd \
	tests/unit/check_perm tests/unit/check_defs tests/unit/check_ctl \
	tests/unit/check_defslog tests/unit/check_sdnotify tests/unit/check_service \
	tests/unit/check_plugins tests/unit/check_x509 tests/unit/check_dedup \
	tests/unit/check_recover tests/unit/check_offsets tests/unit/check_msg \
	tests/unit/check_deliver tests/unit/check_asm tests/unit/check_tls \
	tests/unit/check_iopool
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
UNIT_LDADD = $(WR_LIBS) $(CHECK_LIBS)

tests_unit_check_conf_SOURCES = tests/unit/check_conf.c
tests_unit_check_conf_CPPFLAGS = $(AM_CPPFLAGS) \
	-DWR_TEST_SRCDIR='"$(abs_top_srcdir)"' -DWR_TEST_BUILDDIR='"$(abs_top_builddir)"'
tests_unit_check_conf_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_conf_LDADD = $(UNIT_LDADD)
# It checks the installed sample configuration, which make builds.
EXTRA_tests_unit_check_conf_DEPENDENCIES = etc/warren.conf

tests_unit_check_asm_SOURCES = tests/unit/check_asm.c
tests_unit_check_asm_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_asm_LDADD = $(UNIT_LDADD)

tests_unit_check_field_SOURCES = tests/unit/check_field.c
tests_unit_check_field_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_field_LDADD = $(UNIT_LDADD)

tests_unit_check_xtype_SOURCES = tests/unit/check_xtype.c
tests_unit_check_xtype_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_xtype_LDADD = $(UNIT_LDADD)

tests_unit_check_route_SOURCES = tests/unit/check_route.c
tests_unit_check_route_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_route_LDADD = $(UNIT_LDADD)

tests_unit_check_auth_SOURCES = tests/unit/check_auth.c
tests_unit_check_auth_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_auth_LDADD = $(UNIT_LDADD)

tests_unit_check_passwd_SOURCES = tests/unit/check_passwd.c
tests_unit_check_passwd_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_passwd_LDADD = $(UNIT_LDADD)

tests_unit_check_perm_SOURCES = tests/unit/check_perm.c
tests_unit_check_perm_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_perm_LDADD = $(UNIT_LDADD)

tests_unit_check_x509_SOURCES = tests/unit/check_x509.c
tests_unit_check_x509_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_x509_LDADD = $(UNIT_LDADD)

tests_unit_check_tls_SOURCES = tests/unit/check_tls.c
tests_unit_check_tls_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_tls_LDADD = $(UNIT_LDADD)

tests_unit_check_defs_SOURCES = tests/unit/check_defs.c
tests_unit_check_defs_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_defs_LDADD = $(UNIT_LDADD)
tests_unit_check_plugins_SOURCES = tests/unit/check_plugins.c
tests_unit_check_plugins_CPPFLAGS = $(AM_CPPFLAGS) -DWR_TEST_BUILDDIR='"$(abs_top_builddir)"'
tests_unit_check_plugins_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_plugins_LDADD = $(UNIT_LDADD)
tests_unit_check_defslog_SOURCES = tests/unit/check_defslog.c
tests_unit_check_defslog_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_defslog_LDADD = $(UNIT_LDADD)

tests_unit_check_ctl_SOURCES = tests/unit/check_ctl.c
tests_unit_check_ctl_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_ctl_LDADD = $(CTL_LIBS) $(CHECK_LIBS)

tests_unit_check_sdnotify_SOURCES = tests/unit/check_sdnotify.c
tests_unit_check_sdnotify_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_sdnotify_LDADD = $(UNIT_LDADD)

tests_unit_check_service_SOURCES = tests/unit/check_service.c
tests_unit_check_service_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_service_LDADD = $(UNIT_LDADD)

tests_unit_check_dedup_SOURCES = tests/unit/check_dedup.c
tests_unit_check_dedup_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_dedup_LDADD = $(UNIT_LDADD)

tests_unit_check_recover_SOURCES = tests/unit/check_recover.c
tests_unit_check_recover_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_recover_LDADD = $(UNIT_LDADD)

tests_unit_check_offsets_SOURCES = tests/unit/check_offsets.c
tests_unit_check_offsets_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_offsets_LDADD = $(UNIT_LDADD)
tests_unit_check_msg_SOURCES = tests/unit/check_msg.c
tests_unit_check_msg_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_msg_LDADD = $(UNIT_LDADD)
tests_unit_check_iopool_SOURCES = tests/unit/check_iopool.c
tests_unit_check_iopool_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_iopool_LDADD = $(UNIT_LDADD)
tests_unit_check_deliver_SOURCES = tests/unit/check_deliver.c
tests_unit_check_deliver_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_deliver_LDADD = $(UNIT_LDADD)

tests_unit_check_journal_SOURCES = tests/unit/check_journal.c
tests_unit_check_journal_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_journal_LDADD = $(UNIT_LDADD)

tests_unit_check_names_SOURCES = tests/unit/check_names.c
tests_unit_check_names_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_names_LDADD = $(UNIT_LDADD)

tests_unit_check_codec_SOURCES = tests/unit/check_codec.c
tests_unit_check_codec_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_codec_LDADD = $(UNIT_LDADD)
endif

# ---- fuzz corpus replay (gcc build of the libFuzzer targets) ----
# Each target's corpus lives in tests/fuzz/corpus/<name>/; replay.c runs
# every file through the target (see its header). A fuzz entry point has no
# header in the library, hence the prototype from tests/fuzz/fuzz.h.
FUZZ_REPLAY = tests/fuzz/replay_frame tests/fuzz/replay_table tests/fuzz/replay_conf \
	tests/fuzz/replay_journal tests/fuzz/replay_sasl tests/fuzz/replay_defs tests/fuzz/replay_mgmt \
	tests/fuzz/replay_defslog tests/fuzz/replay_recover tests/fuzz/replay_offsets \
	tests/fuzz/replay_asm
check_PROGRAMS += $(FUZZ_REPLAY)
TESTS += $(FUZZ_REPLAY)

tests_fuzz_replay_frame_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_frame.c tests/fuzz/fuzz.h
tests_fuzz_replay_frame_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"frame"'
tests_fuzz_replay_frame_LDADD = $(WR_LIBS)

tests_fuzz_replay_table_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_table.c tests/fuzz/fuzz.h
tests_fuzz_replay_table_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"table"'
tests_fuzz_replay_table_LDADD = $(WR_LIBS)

tests_fuzz_replay_conf_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_conf.c tests/fuzz/fuzz.h
tests_fuzz_replay_conf_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"conf"'
tests_fuzz_replay_conf_LDADD = $(WR_LIBS)

tests_fuzz_replay_journal_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_journal.c tests/fuzz/fuzz.h
tests_fuzz_replay_journal_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"journal"'
tests_fuzz_replay_journal_LDADD = $(WR_LIBS)

tests_fuzz_replay_sasl_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_sasl.c tests/fuzz/fuzz.h
tests_fuzz_replay_sasl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"sasl"'
tests_fuzz_replay_sasl_LDADD = $(WR_LIBS)

tests_fuzz_replay_defs_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_defs.c tests/fuzz/fuzz.h
tests_fuzz_replay_defs_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"defs"'
tests_fuzz_replay_defs_LDADD = $(WR_LIBS)

tests_fuzz_replay_defslog_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_defslog.c tests/fuzz/fuzz.h
tests_fuzz_replay_defslog_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"defslog"'
tests_fuzz_replay_defslog_LDADD = $(WR_LIBS)

tests_fuzz_replay_mgmt_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_mgmt.c tests/fuzz/fuzz.h
tests_fuzz_replay_mgmt_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"mgmt"'
tests_fuzz_replay_mgmt_LDADD = $(WR_LIBS)

tests_fuzz_replay_recover_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_recover.c tests/fuzz/fuzz.h
tests_fuzz_replay_recover_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"recover"'
tests_fuzz_replay_recover_LDADD = $(WR_LIBS)

tests_fuzz_replay_offsets_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_offsets.c tests/fuzz/fuzz.h
tests_fuzz_replay_offsets_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"offsets"'
tests_fuzz_replay_offsets_LDADD = $(WR_LIBS)

tests_fuzz_replay_asm_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_asm.c tests/fuzz/fuzz.h
tests_fuzz_replay_asm_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DWR_FUZZ_CORPUS='"asm"'
tests_fuzz_replay_asm_LDADD = $(WR_LIBS)

EXTRA_DIST += tests/fuzz/corpus tests/fuzz/make_frame_seeds.py tests/fuzz/make_recover_seeds.py

# ---- script tests ----
SCRIPT_TESTS = \
	tests/check-generated.sh \
	tests/check-man.sh \
	tests/check-docs.sh
TESTS += $(SCRIPT_TESTS)
EXTRA_DIST += $(SCRIPT_TESTS)

# ---- integration tests (python3, a real warrend on free ports) ----
INTEG_TESTS = \
	tests/integ/test_mgmt_http.py \
	tests/integ/test_mgmt_tools.py \
	tests/integ/test_startup.py \
	tests/integ/test_connection.py \
	tests/integ/test_channel.py \
	tests/integ/test_adversarial.py \
	tests/integ/test_closing.py \
	tests/integ/test_login.py \
	tests/integ/test_access.py \
	tests/integ/test_limits.py \
	tests/integ/test_many_connections.py \
	tests/integ/test_stress.py \
	tests/integ/test_alarms.py \
	tests/integ/test_exchange.py \
	tests/integ/test_exchange_graph.py \
	tests/integ/test_queue.py \
	tests/integ/test_basic.py \
	tests/integ/test_ttl.py \
	tests/integ/test_maxlen.py \
	tests/integ/test_memory_return.py \
	tests/integ/test_priority.py \
	tests/integ/test_dlx.py \
	tests/integ/test_delivery_limit.py \
	tests/integ/test_quorum.py \
	tests/integ/test_quorum_clients.py \
	tests/integ/test_consumers.py \
	tests/integ/test_crash.py \
	tests/integ/test_corruption.py \
	tests/integ/test_diskfull.py \
	tests/integ/test_paging.py \
	tests/integ/test_compaction.py \
	tests/integ/test_defslog.py \
	tests/integ/test_plugins.py \
	tests/integ/test_confirm_latency.py \
	tests/integ/test_names.py \
	tests/integ/test_definitions.py \
	tests/integ/test_mgmt_access.py \
	tests/integ/test_mgmt_objects.py \
	tests/integ/test_mgmt_node.py \
	tests/integ/test_metrics.py \
	tests/integ/test_warrenctl.py \
	tests/integ/test_service.py \
	tests/integ/test_service_limits.py \
	tests/integ/test_install.py \
	tests/integ/test_man_examples.py \
	tests/integ/test_tls.py \
	tests/integ/test_listen.py \
	tests/integ/test_io_placement.py \
	tests/integ/test_dedup.py \
	tests/integ/test_consumer_timeout.py \
	tests/integ/test_stream_durable.py \
	tests/integ/test_stream.py \
	tests/integ/test_stream_pace.py
TESTS += $(INTEG_TESTS)
# Every integration test runs twice: as itself, with the broker's
# io_threads from its default (auto: 0 on a machine of 1 or 2 cores), and
# as tests/integ/NAME_thr.thr with two I/O threads (net/io.h). A .thr file
# only names its .py; tests/integ/threaded.sh runs that.
INTEG_THREADED = $(INTEG_TESTS:.py=_thr.thr)
TESTS += $(INTEG_THREADED)
THR_LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/integ/threaded.sh
$(INTEG_THREADED):
	$(AM_V_GEN)mkdir -p tests/integ && echo '$(srcdir)/$(@:_thr.thr=.py)' > $@
CLEANFILES += $(INTEG_THREADED)
# Helper modules the tests import.
EXTRA_DIST += $(INTEG_TESTS) tests/integ/threaded.sh tests/integ/warren_test.py \
	tests/integ/rawamqp.py \
	tests/integ/harness.py tests/integ/amqpcase.py tests/integ/README.md \
	tests/integ/durability.py tests/integ/fixtures tests/integ/mgmtcase.py \
	tests/integ/tlscerts.py

# `make check-unit`: the fast loop, unit tests only.
check-unit:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(UNIT_TESTS)'
.PHONY: check-unit
