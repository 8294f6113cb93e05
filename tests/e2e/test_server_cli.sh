#!/bin/bash
# tests/e2e/test_server_cli.sh - the `skiff server` command line as a user
# meets it: --help, a wrong flag, the default data directory under $HOME,
# --kubeconfig, --log-level, a port already taken, and SIGINT.
. "$(dirname "$0")/lib.sh"

[ -x "$SKIFF_BIN" ] || bail_out "no server binary at $SKIFF_BIN"

# --- help and mistakes ------------------------------------------------------------------
_run timeout 10 "$SKIFF_BIN" server --help
is "$?" 0 "server --help exits 0"
like "$OUT$ERR" "--data-dir" "server --help lists --data-dir"
like "$OUT$ERR" "--port" "server --help lists --port"
like "$OUT$ERR" "--log-level" "server --help lists --log-level"

_run timeout 10 "$SKIFF_BIN" server --no-such-flag
rc=$? said=$OUT$ERR
ok "an unknown flag fails" test "$rc" -ne 0 -a "$rc" -ne 124
like "$said" "no-such-flag" "the error names the unknown flag"
unlike "$said" "Sanitizer" "refusing an unknown flag is clean (no sanitizer report)"

_run timeout 10 "$SKIFF_BIN" server --port notaport --data-dir "$E2E_TMP/unused"
rc=$? said=$OUT$ERR
ok "a port that is not a number fails" test "$rc" -ne 0 -a "$rc" -ne 124
like "$said" "notaport" "the error names the bad value"
unlike "$said" "Sanitizer" "refusing a bad port is clean (no sanitizer report)"

# wait_ready URL PID: wait up to E2E_START_TIMEOUT for /readyz while PID lives.
wait_ready() {
	local i=0
	while [ "$(curl -s -k --max-time 2 "$1/readyz" 2>/dev/null)" != ok ]; do
		kill -0 "$2" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -gt $((E2E_START_TIMEOUT * 10)) ] && return 1
		sleep 0.1
	done
}

# stop PID SIGNAL: the exit status after the signal (137 if it had to be killed).
stop_pid() {
	local i=0
	kill "-$2" "$1" 2>/dev/null
	while kill -0 "$1" 2>/dev/null && [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# --- plain HTTP is a loopback-only development listener ---------------------------------------------
_run timeout 10 "$SKIFF_BIN" server --plain-http --bind-address 0.0.0.0 --data-dir "$E2E_TMP/remote"
rc=$? msg=$ERR
ok "--plain-http on a non-loopback address is refused" test "$rc" -ne 0
like "$msg" "refusing to listen on 0.0.0.0" "the refusal names the address"
_run timeout 10 "$SKIFF_BIN" server --tls --plain-http --data-dir "$E2E_TMP/both"
ok "--tls and --plain-http together are refused" test "$?" -ne 0

# --- default data directory, and SIGINT ---------------------------------------------------------
mkdir -p "$E2E_TMP/home"
port=$(free_port)
HOME=$E2E_TMP/home "$SKIFF_BIN" server --port "$port" >"$E2E_TMP/home.log" 2>&1 &
pid=$!
E2E_BG_PIDS+=("$pid")
if wait_ready "https://127.0.0.1:$port" "$pid"; then
	pass "server starts without --data-dir (HTTPS by default)"
else
	fail "server starts without --data-dir"
	diag_file "$E2E_TMP/home.log"
fi
ok "default data dir is \$HOME/.local/share/skiff (kubeconfig there)" \
	test -s "$E2E_TMP/home/.local/share/skiff/kubeconfig"
expect_output "kubectl works with the default kubeconfig" default \
	k --kubeconfig="$E2E_TMP/home/.local/share/skiff/kubeconfig" get namespace default \
	-o 'jsonpath={.metadata.name}'
stop_pid "$pid" INT
is "$?" 0 "server exits with status 0 on SIGINT"

# --- --kubeconfig and --log-level ------------------------------------------------------------------
start_server --kubeconfig "$E2E_TMP/admin.kubeconfig" --log-level error ||
	bail_out "server did not start with --kubeconfig and --log-level"
ok "--kubeconfig FILE writes the kubeconfig there" test -s "$E2E_TMP/admin.kubeconfig"
expect_output "kubectl works with that kubeconfig" default \
	k --kubeconfig="$E2E_TMP/admin.kubeconfig" get namespace default -o 'jsonpath={.metadata.name}'
ok "--log-level error leaves out info lines" not grep -qE '^I ' "$E2E_TMP/server.log"

# --- a port already in use -----------------------------------------------------------------------------
_run timeout 15 "$SKIFF_BIN" server --port "$E2E_PORT" --data-dir "$E2E_TMP/second"
rc=$? said=$OUT$ERR
ok "a second server on a taken port exits with an error" test "$rc" -ne 0 -a "$rc" -ne 124
like "$said" "$E2E_PORT" "the error names the port"
like "$said" "address already in use" "the error says the address is in use"
unlike "$said" "Sanitizer" "failing to listen exits cleanly (no sanitizer report)"
expect_output "the first server still answers" ok curl -s --max-time 5 "$E2E_URL/readyz"

stop_server_cleanly
done_testing
