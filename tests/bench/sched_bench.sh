#!/bin/bash
# tests/bench/sched_bench.sh - the scheduling benchmark in one command: starts
# `skiff server --plain-http` from BUILD_DIR on a fresh data directory, runs
# sched_bench against it (nodes registered through the API, bare pods created
# through the API, each timed from its create to the watch event showing it
# bound), then prints the server's peak RSS and CPU seconds (in all, and
# of the event loop's thread alone), and the CPU seconds sched_bench spent
# (it shares the machine). Not a test.
#
#   tests/bench/sched_bench.sh [BUILD_DIR] [sched_bench options...]
#
# With SCHED_BENCH_HOLLOW=N the nodes are N hollow nodes of `skiff agent
# --hollow N` (pods bound to them turn Running, which the server also pays
# for) instead of Nodes registered by sched_bench; pass --skip-nodes then.
# SCHED_BENCH_AGENT_ARGS adds agent options, e.g. '--max-in-flight 256'.
#
# With SCHED_BENCH_BACKLOG=1 the pods are first created on a server without
# a scheduler, which is then restarted with one: the figures are how fast a
# backlog of pods is bound, without creates competing for the server.
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
# shellcheck source=tests/bench/busy_check.sh
. "$(dirname "$0")/busy_check.sh"
busy_check
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sched-bench.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PID= APID=
trap 'kill -TERM $APID $PID 2>/dev/null; wait $APID $PID 2>/dev/null; rm -rf "$TMP"' EXIT
# The server runs no controllers but the scheduler, unless the pods come
# from Deployments (--deployments): then their two controllers run too;
# --controllers in SCHED_BENCH_SERVER_ARGS decides over both.
CONTROLLERS=none
case " $* " in *" --deployments "*) CONTROLLERS=deployment,replicaset ;; esac
# start_server [ARGS]: the server on $PORT, ready
start_server() {
	# shellcheck disable=SC2086
	"$SKIFF" server --plain-http --port "$PORT" --data-dir "$TMP/data" --controllers "$CONTROLLERS" \
		--log-level warn ${SCHED_BENCH_SERVER_ARGS:-} "$@" >>"$TMP/server.log" 2>&1 &
	PID=$!
	for _ in $(seq 600); do
		curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
}
if [ -n "${SCHED_BENCH_BACKLOG:-}" ]; then
	start_server --scheduler none
	"$LOAD" --port "$PORT" --create-only "$@" || exit 1
	kill -TERM $PID
	wait $PID
	start_server
	set -- "$@" --bound-only
else
	start_server
fi
if [ -n "${SCHED_BENCH_HOLLOW:-}" ]; then
	# shellcheck disable=SC2086
	"$SKIFF" agent --hollow "$SCHED_BENCH_HOLLOW" --kubeconfig "$TMP/data/kubeconfig" \
		--cpu 32 --memory 256Gi --log-level warn ${SCHED_BENCH_AGENT_ARGS:-} >"$TMP/agent.log" 2>&1 &
	APID=$!
	t0=$(date +%s)
	until [ "$(KUBECONFIG=$TMP/data/kubeconfig kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)" -ge "$SCHED_BENCH_HOLLOW" ]; do
		kill -0 "$APID" 2>/dev/null || { echo "the agent exited"; cat "$TMP/agent.log"; exit 1; }
		[ $(($(date +%s) - t0)) -lt 600 ] || { echo "hollow nodes not Ready after 10 min"; exit 1; }
		sleep 1
	done
	echo "hollow nodes Ready   $SCHED_BENCH_HOLLOW in $(($(date +%s) - t0)) s"
fi
ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{printf "%.1f", ($14 + $15) / t}' "/proc/${1:-$PID}/stat"; }
# the event loop's own thread: the server's bottleneck when it is busy
loop_cpu() { awk -v t="$ticks" '{printf "%.1f", ($14 + $15) / t}' "/proc/$PID/task/$PID/stat"; }
cpu0=$(cpu)
lcpu0=$(loop_cpu)
# children_cpu FILE: user + system seconds of this shell's children waited
# for (`times` runs in this shell, not in a subshell that has no children)
children_cpu() { awk 'NR == 2 {split($1, u, "m"); split($2, s, "m"); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2]}' "$1"; }
times >"$TMP/times0"
[ -n "$APID" ] && acpu0=$(cpu "$APID")
wall0=$(date +%s.%N)
"$LOAD" --port "$PORT" "$@"
rc=$?
wall1=$(date +%s.%N)
times >"$TMP/times1"
echo "server_cpu_s          $(awk -v a="$(cpu)" -v b="$cpu0" 'BEGIN{printf "%.1f", a - b}')"
echo "server_loop_cpu_s     $(awk -v a="$(loop_cpu)" -v b="$lcpu0" 'BEGIN{printf "%.1f", a - b}')"
# how much of the run the event loop had work (and a CPU): near 100%, it is
# the bottleneck; well under, something else is (another process, a wait)
echo "server_loop_busy_pct  $(awk -v a="$(loop_cpu)" -v b="$lcpu0" -v w0="$wall0" -v w1="$wall1" 'BEGIN{printf "%.0f", (w1 > w0 ? 100 * (a - b) / (w1 - w0) : 0)}')   (of the run's wall time)"
echo "load_cpu_s            $(awk -v a="$(children_cpu "$TMP/times1")" -v b="$(children_cpu "$TMP/times0")" 'BEGIN{printf "%.1f", a - b}')   (sched_bench itself)"
echo "server_rss_mb         $(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$PID/status")"
echo "server_peak_rss_mb    $(awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$PID/status")"
if [ -n "$APID" ]; then
	echo "agent_cpu_s           $(awk -v a="$(cpu "$APID")" -v b="$acpu0" 'BEGIN{printf "%.1f", a - b}')"
	echo "agent_rss_mb          $(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$APID/status")"
fi
exit $rc
