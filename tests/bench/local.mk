# tests/bench: the load generator and the side-by-side comparison with
# RabbitMQ (docs/PERFORMANCE.md). Built by plain `make`, never run by
# `make check`: `make bench` runs tests/bench/compare.sh.

noinst_PROGRAMS += tests/bench/warren-perf
tests_bench_warren_perf_SOURCES = tests/bench/warren-perf.c tests/bench/perf.h \
	tests/bench/options.c tests/bench/report.c \
	tests/bench/client.c tests/bench/client.h \
	tests/bench/hist.c tests/bench/hist.h
tests_bench_warren_perf_LDADD = $(WR_LIBS)

noinst_PROGRAMS += tests/bench/bench_priority
tests_bench_bench_priority_SOURCES = tests/bench/bench_priority.c
tests_bench_bench_priority_LDADD = $(WR_LIBS)

EXTRA_DIST += tests/bench/compare.sh tests/bench/access_cost.sh tests/bench/access-defs.json \
	tests/bench/ack_timeout_cost.sh \
	tests/bench/mgmt_cost.py tests/bench/declare_cost.py tests/bench/stream_bench.py \
	tests/bench/stream_big.py tests/bench/confirm_matrix.py tests/bench/threads_bench.py \
	tests/bench/mem_return.py tests/bench/scale_bench.py tests/bench/carry.sh

# Environment knobs: BENCH_REPS (3), BENCH_SECONDS (4, per scenario),
# BENCH_SCENARIOS ("h g i a b c c8 d e f1 f2 f3 j"), BENCH_BROKERS, BENCH_PIN, BENCH_OUT
# (tests/bench/bench-results.txt); see docs/PERFORMANCE.md.
bench: src/warrend$(EXEEXT) tests/bench/warren-perf$(EXEEXT)
	top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)' \
	  $(SHELL) $(top_srcdir)/tests/bench/compare.sh
.PHONY: bench
