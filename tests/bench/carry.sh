#!/bin/sh
# carry.sh - put warrend, warren-perf and the shared libraries they use
# (not glibc's) into ./carry/, for a machine the tree is copied to without
# a build (the device machine of docs/PERFORMANCE.md, "Threads": 8+ cores).
# There:
#   LD_LIBRARY_PATH=$PWD/carry WARREND=$PWD/carry/warrend \
#   WARREN_PERF=$PWD/carry/warren-perf /usr/bin/python3 tests/bench/scale_bench.py
# Run after `make`, from the top of the tree.
set -eu
rm -rf carry
mkdir carry
cp src/warrend tests/bench/warren-perf carry/
ldd src/warrend tests/bench/warren-perf | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
    sort -u | grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" carry/; done
ls carry
