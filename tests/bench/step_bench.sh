#!/bin/bash
# tests/bench/step_bench.sh - the cost of one scheduler score step per pod
# in one command: builds tests/bench/step_bench and node-weight in
# BUILD_DIR if needed, then runs it at 100, 1,000 and 5,000 synthetic nodes
# (the same score in C, in Lua, and in Lua calling C through skiff.ffi,
# against the cycle without a score step) and once more for the raw cost
# of a skiff.ffi.call. Prints figures; not a test.
#
#   tests/bench/step_bench.sh [BUILD_DIR] [--runs R]
#
# Build without sanitizers (a plain ./configure) for meaningful figures.
set -u
BUILD=${1:-.}
[ $# -gt 0 ] && shift
SRC=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$BUILD" tests/bench/step_bench plugins/node-weight.la >/dev/null || exit 2
export SKIFF_SRC_DIR=$SRC
for n in 100 1000 5000; do
	# about 0.3 s of cycles a run at each size
	"$BUILD/tests/bench/step_bench" --nodes "$n" --pods $((300000 / n)) --calls 0 "$@" 2>&1 |
		grep -v '^# raw calls\|^call='
done
"$BUILD/tests/bench/step_bench" --nodes 100 --pods 10 --calls 1000000 "$@" 2>&1 | grep '^# raw\|^call='
