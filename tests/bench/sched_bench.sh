#!/bin/bash
# tests/bench/sched_bench.sh - the scheduling benchmark in one command: starts
# `skiff server --plain-http` from BUILD_DIR on a fresh data directory, runs
# sched_bench against it (nodes registered through the API, bare pods created
# through the API, each timed from its create to the watch event showing it
# bound), then prints the server's peak RSS and CPU seconds. Not a test.
#
#   tests/bench/sched_bench.sh [BUILD_DIR] [sched_bench options...]
#
# Build without sanitizers (./configure CFLAGS=-O2) for meaningful figures.
# SCHED_BENCH_SERVER_ARGS adds server options, e.g.
#   SCHED_BENCH_SERVER_ARGS='--plugin-settings scheduler-default.scheduled-events=false'
set -u
BUILD=${1:-.}
[ $# -gt 0 ] && shift
SKIFF=$BUILD/skiff
LOAD=$BUILD/tests/bench/sched_bench
[ -x "$SKIFF" ] && [ -x "$LOAD" ] || {
	echo "usage: $0 BUILD_DIR [options]: $SKIFF or $LOAD is missing (make tests/bench/sched_bench)" >&2
	exit 2
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sched-bench.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$SKIFF" server --plain-http --port "$PORT" --data-dir "$TMP/data" --controllers none \
	--log-level warn ${SCHED_BENCH_SERVER_ARGS:-} >"$TMP/server.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{printf "%.1f", ($14 + $15) / t}' "/proc/$PID/stat"; }
cpu0=$(cpu)
"$LOAD" --port "$PORT" "$@"
rc=$?
echo "server_cpu_s          $(awk -v a="$(cpu)" -v b="$cpu0" 'BEGIN{printf "%.1f", a - b}')"
echo "server_rss_mb         $(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$PID/status")"
echo "server_peak_rss_mb    $(awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$PID/status")"
exit $rc
