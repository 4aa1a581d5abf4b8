#!/bin/sh
# fuzz.sh - build and run the libFuzzer targets; driven by `make fuzz`
# (tools/local.mk), which passes the preprocessor flags as arguments and the
# rest in the environment:
#
#   CLANG          the clang to use
#   FUZZ_SOURCES   the library's sources, relative to srcdir (.h are skipped)
#   FUZZ_LIBS      libraries to link
#   FUZZ_TARGETS   names: tests/fuzz/fuzz_<name>.c, tests/fuzz/corpus/<name>/
#   FUZZ_SECONDS   how long each target runs
#   FUZZ_KEEP      if set, keep the grown corpus copies (paths are printed)
#
# Each target runs on a temporary copy of its checked-in corpus, so fuzzing
# never edits the tree; interesting new inputs can be merged back by hand
# with `fuzz-build/fuzz_<name> -merge=1 tests/fuzz/corpus/<name> <copy>`.
set -eu
: "${CLANG:=clang}" "${FUZZ_SECONDS:=60}" "${FUZZ_TARGETS:=frame table conf journal sasl defs defslog mgmt recover offsets asm}"
: "${FUZZ_SOURCES:?}" "${FUZZ_LIBS:=}" "${srcdir:=.}" "${FUZZ_KEEP:=}"

out=fuzz-build
CF="-g -O1 -std=c11 -fno-omit-frame-pointer -fno-sanitize-recover=all"
mkdir -p "$out/obj"

echo "fuzz: compiling the library with $CLANG"
objs=
for f in $FUZZ_SOURCES; do
    case $f in
    *.c)
        o="$out/obj/$(echo "$f" | tr / _).o"
        # shellcheck disable=SC2086
        $CLANG $CF -fsanitize=fuzzer-no-link,address,undefined "$@" -c "$srcdir/$f" -o "$o"
        objs="$objs $o"
        ;;
    esac
done

for t in $FUZZ_TARGETS; do
    echo "fuzz: linking fuzz_$t"
    # shellcheck disable=SC2086
    $CLANG $CF -fsanitize=fuzzer,address,undefined "$@" -I"$srcdir/tests/fuzz" \
        "$srcdir/tests/fuzz/fuzz_$t.c" $objs $FUZZ_LIBS -o "$out/fuzz_$t"
done

failed=
for t in $FUZZ_TARGETS; do
    corpus=$(mktemp -d "${TMPDIR:-/tmp}/warren-fuzz-$t.XXXXXX")
    if [ -d "$srcdir/tests/fuzz/corpus/$t" ]; then
        find "$srcdir/tests/fuzz/corpus/$t" -maxdepth 1 -type f ! -name '.*' \
            -exec cp {} "$corpus/" \;
    fi
    before=$(find "$corpus" -type f | wc -l)
    mkdir -p "$out/artifacts/$t"
    echo "fuzz: running fuzz_$t for ${FUZZ_SECONDS}s on $before seeds"
    if "$out/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t/" "$corpus"; then
        after=$(find "$corpus" -type f | wc -l)
        echo "fuzz: fuzz_$t ok, corpus $before -> $after inputs"
    else
        echo "fuzz: fuzz_$t FAILED; reproducer in $out/artifacts/$t/" >&2
        failed="$failed $t"
    fi
    if [ -n "$FUZZ_KEEP" ]; then
        echo "fuzz: grown corpus kept in $corpus"
    else
        rm -rf "$corpus"
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz: failures in:$failed" >&2
    exit 1
fi
