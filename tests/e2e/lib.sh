# tests/e2e/lib.sh - shared helpers for the end-to-end tests: TAP output,
# starting and stopping a private `skiff server`, and checks around kubectl
# and curl. Each test script sources this file, starts its own server on its
# own port and data directory, and everything is cleaned up by an EXIT trap.
# It must not depend on anything outside Debian's base tools, curl and kubectl.
# shellcheck shell=bash

# --- locations ---------------------------------------------------------------
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SKIFF_SRC_DIR:=$(cd "$E2E_DIR/../.." && pwd)}"
: "${SKIFF_BUILD_DIR:=$SKIFF_SRC_DIR}"
: "${SKIFF_BIN:=$SKIFF_BUILD_DIR/skiff}"
: "${KUBECTL:=kubectl}"
# The whole script is stopped after this many seconds, so no test can hang
# `make check` (kubectl calls are bounded too, see k()).
: "${E2E_SCRIPT_TIMEOUT:=300}"
: "${E2E_START_TIMEOUT:=30}"
: "${E2E_LOG_LEVEL:=info}"
export SKIFF_SRC_DIR SKIFF_BUILD_DIR

E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/skiff-e2e.XXXXXX") || {
	echo "Bail out! cannot create a temporary directory"
	exit 1
}
E2E_DATA=
E2E_PORT=
E2E_URL=
SERVER_PID=
E2E_BG_PIDS=()
E2E_WATCHDOG_PID=
HOLLOW_PIDS=()
HOLLOW_PID=
HOLLOW_LOG=

# --- TAP ---------------------------------------------------------------------
_tap_count=0
_tap_failed=0
_tap_planned=

# plan N: announce the number of tests up front (optional; done_testing
# prints the plan at the end when none was given).
plan() {
	_tap_planned=$1
	echo "1..$1"
}

diag() {
	local line
	printf '%s\n' "$*" | while IFS= read -r line || [ -n "$line" ]; do echo "# $line"; done
}

# diag_file FILE [LINES]: show the tail of a file as diagnostics.
diag_file() {
	[ -f "$1" ] || return 0
	tail -n "${2:-20}" "$1" | while IFS= read -r line || [ -n "$line" ]; do echo "#   $line"; done
}

pass() {
	_tap_count=$((_tap_count + 1))
	echo "ok $_tap_count - $*"
}

fail() {
	_tap_count=$((_tap_count + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_count - $*"
}

# bail_out MSG: stop the whole script; the TAP driver reports an error.
bail_out() {
	echo "Bail out! $*"
	exit 1
}

# skip_all REASON: the script has nothing to test here.
skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

done_testing() {
	[ -n "$_tap_planned" ] || echo "1..$_tap_count"
	# Failures are already counted by the TAP driver from the "not ok" lines;
	# a non-zero status would add a second, unnamed error.
	exit 0
}

# --- checks ------------------------------------------------------------------
# Every check runs its command with stdout in $E2E_TMP/out and stderr in
# $E2E_TMP/err, and shows both when it fails. OUT and ERR hold them afterwards.
OUT=
ERR=
_run() {
	"$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err"
	local rc=$?
	OUT=$(cat "$E2E_TMP/out")
	ERR=$(cat "$E2E_TMP/err")
	return $rc
}

_diag_run() {
	diag "command: $*"
	[ -s "$E2E_TMP/out" ] && { diag "stdout:"; diag_file "$E2E_TMP/out" 15; }
	[ -s "$E2E_TMP/err" ] && { diag "stderr:"; diag_file "$E2E_TMP/err" 15; }
	return 0
}

# ok DESC CMD...: the command succeeds.
ok() {
	local desc=$1
	shift
	if _run "$@"; then
		pass "$desc"
	else
		fail "$desc"
		_diag_run "$@"
		return 1
	fi
}

# is GOT EXPECTED DESC
is() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3"
		diag "expected: '$2'"
		diag "     got: '$1'"
		return 1
	fi
}

# like GOT TEXT DESC: GOT contains TEXT (fixed string).
like() {
	case "$1" in
	*"$2"*) pass "$3" ;;
	*)
		fail "$3"
		diag "expected to contain: '$2'"
		diag "got:"
		diag "$(printf '%s\n' "$1" | head -n 20)"
		return 1
		;;
	esac
}

# unlike GOT TEXT DESC: GOT does not contain TEXT.
unlike() {
	case "$1" in
	*"$2"*)
		fail "$3"
		diag "expected not to contain: '$2'"
		diag "got:"
		diag "$(printf '%s\n' "$1" | head -n 20)"
		return 1
		;;
	*) pass "$3" ;;
	esac
}

# expect_output DESC EXPECTED CMD...: the command succeeds and prints exactly
# EXPECTED (trailing newlines ignored).
expect_output() {
	local desc=$1 expected=$2
	shift 2
	if ! _run "$@"; then
		fail "$desc"
		_diag_run "$@"
		return 1
	fi
	if [ "$OUT" = "$expected" ]; then
		pass "$desc"
	else
		fail "$desc"
		diag "expected: '$expected'"
		_diag_run "$@"
		return 1
	fi
}

# expect_contains DESC TEXT CMD...: the command succeeds and its stdout
# contains TEXT.
expect_contains() {
	local desc=$1 text=$2
	shift 2
	if ! _run "$@"; then
		fail "$desc"
		_diag_run "$@"
		return 1
	fi
	case "$OUT" in
	*"$text"*) pass "$desc" ;;
	*)
		fail "$desc"
		diag "expected stdout to contain: '$text'"
		_diag_run "$@"
		return 1
		;;
	esac
}

# expect_fail_with DESC TEXT CMD...: the command fails and its stderr
# contains TEXT.
expect_fail_with() {
	local desc=$1 text=$2
	shift 2
	if _run "$@"; then
		fail "$desc"
		diag "expected the command to fail, it succeeded"
		_diag_run "$@"
		return 1
	fi
	case "$ERR" in
	*"$text"*) pass "$desc" ;;
	*)
		fail "$desc"
		diag "expected stderr to contain: '$text'"
		_diag_run "$@"
		return 1
		;;
	esac
}

# not CMD...: succeeds when CMD fails (for use with ok and wait_for).
not() {
	! "$@"
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; returns 1
# when SECONDS pass first.
wait_for() {
	local limit=$1 i=0
	shift
	while [ $i -lt $((limit * 5)) ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# --- kubectl and curl ----------------------------------------------------------
# k ARGS...: kubectl against the test server, never waiting forever.
k() {
	timeout 40 "$KUBECTL" --kubeconfig="$KUBECONFIG" --request-timeout=10s \
		--cache-dir="$E2E_TMP/kube-cache" "$@"
}

# Objects made from YAML through `kubectl create -f -`. Tests use these when
# the object is only a means to an end, so that a problem with one of
# kubectl's generators (create namespace/configmap/deployment) shows up in
# the test of that generator only.
# mk_ns NAME
mk_ns() {
	printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$1" | k create -f -
}

# mk_cm NAME NAMESPACE [KEY=VALUE...]
mk_cm() {
	local name=$1 ns=$2 kv
	shift 2
	{
		printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n' "$name" "$ns"
		for kv in "$@"; do printf '  "%s": "%s"\n' "${kv%%=*}" "${kv#*=}"; done
		[ $# -gt 0 ] || printf '  {}\n'
	} | k create -f -
}

# mk_deploy NAME NAMESPACE IMAGE [REPLICAS]: one container named "main".
mk_deploy() {
	cat <<EOF | k create -f -
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
  namespace: $2
  labels: {app: $1}
spec:
  replicas: ${4:-1}
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1}
    spec:
      containers:
      - name: main
        image: $3
EOF
}

# api METHOD PATH [CURL ARGS...]: one plain HTTP request to the server.
# Sets HTTP_CODE and BODY (the response body, also in $E2E_TMP/body).
HTTP_CODE=
BODY=
api() {
	local method=$1 path=$2
	shift 2
	rm -f "$E2E_TMP/body"
	HTTP_CODE=$(curl -sS --max-time 15 -X "$method" -o "$E2E_TMP/body" \
		-w '%{http_code}' "$@" "$E2E_URL$path" 2>"$E2E_TMP/curl.err")
	[ -n "$HTTP_CODE" ] || HTTP_CODE=000
	BODY=$(cat "$E2E_TMP/body" 2>/dev/null)
}

# json_str FIELD [TEXT]: the first string value of "FIELD" in a JSON text
# (default: BODY), with \" and \\ unescaped. Enough for flat fields such as
# a Status' reason and message.
json_str() {
	local text=${2-$BODY}
	printf '%s' "$text" | tr -d '\n' |
		grep -oE "\"$1\"[[:space:]]*:[[:space:]]*\"(\\\\.|[^\"\\\\])*\"" | head -n 1 |
		sed -E "s/^\"$1\"[[:space:]]*:[[:space:]]*\"//; s/\"\$//" |
		sed -E 's/\\"/"/g; s/\\\\/\\/g'
}

# json_num FIELD [TEXT]: the first numeric value of "FIELD".
json_num() {
	local text=${2-$BODY}
	printf '%s' "$text" | tr -d '\n' |
		grep -oE "\"$1\"[[:space:]]*:[[:space:]]*-?[0-9]+" | head -n 1 |
		sed -E 's/.*:[[:space:]]*//'
}

# jp OBJECT JSONPATH [kubectl get args...]: one field through kubectl.
jp() {
	local obj=$1 path=$2
	shift 2
	k get "$obj" "$@" -o "jsonpath=$path"
}

# --- the server ----------------------------------------------------------------
# free_port: print a TCP port on 127.0.0.1 nobody listens on. Ports are taken
# below the Linux ephemeral range so outgoing connections do not collide.
free_port() {
	local i p
	for i in $(seq 1 100); do
		p=$((10000 + (RANDOM * 7 + $$ + i) % 22000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

_ready() {
	# with --tls the CA is new at each start: readiness only needs the answer
	[ "$(curl -s -k --max-time 2 "$E2E_URL/readyz" 2>/dev/null)" = ok ]
}

_write_fallback_kubeconfig() {
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: $E2E_URL
users:
- name: admin
  user: {}
contexts:
- name: skiff
  context:
    cluster: skiff
    user: admin
current-context: skiff
EOF
}

# Start the binary on E2E_PORT and E2E_DATA and wait until it is ready.
_launch_server() {
	[ -x "$SKIFF_BIN" ] || { diag "no server binary at $SKIFF_BIN"; return 1; }
	echo "=== start $(date +%T) port $E2E_PORT" >>"$E2E_TMP/server.log"
	# shellcheck disable=SC2086
	"$SKIFF_BIN" server --data-dir "$E2E_DATA" --port "$E2E_PORT" \
		--log-level "$E2E_LOG_LEVEL" $E2E_SERVER_ARGS >>"$E2E_TMP/server.log" 2>&1 &
	SERVER_PID=$!
	local i=0
	while ! _ready; do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			wait "$SERVER_PID"
			diag "server exited with status $? before it was ready; its log:"
			diag_file "$E2E_TMP/server.log" 30
			SERVER_PID=
			return 1
		fi
		i=$((i + 1))
		if [ $i -gt $((E2E_START_TIMEOUT * 10)) ]; then
			diag "server not ready after ${E2E_START_TIMEOUT}s; its log:"
			diag_file "$E2E_TMP/server.log" 30
			return 1
		fi
		sleep 0.1
	done
	# The server writes its admin kubeconfig before it reports ready; if it
	# did not, talk to it anyway with one of ours and let the kubeconfig
	# test say so.
	KUBECONFIG=$E2E_DATA/kubeconfig
	if [ ! -s "$KUBECONFIG" ]; then
		diag "server wrote no kubeconfig at $KUBECONFIG; using a generated one"
		KUBECONFIG=$E2E_TMP/kubeconfig.generated
		_write_fallback_kubeconfig "$KUBECONFIG"
	fi
	export KUBECONFIG
	return 0
}

# start_server [EXTRA ARGS]: a fresh server on a free port and an empty data
# directory. Extra arguments go to `skiff server` (kept for restarts).
start_server() {
	# HTTPS is the server's default; tests that talk plain HTTP with curl
	# use the development listener unless they ask for --tls
	case " $* " in
	*" --tls "*) E2E_SERVER_ARGS="$*" ;;
	*) E2E_SERVER_ARGS="--plain-http $*" ;;
	esac
	E2E_DATA=$E2E_TMP/data
	mkdir -p "$E2E_DATA"
	E2E_PORT=$(free_port) || bail_out "no free TCP port"
	case " $* " in
	*" --tls "*) E2E_URL=https://127.0.0.1:$E2E_PORT ;;
	*) E2E_URL=http://127.0.0.1:$E2E_PORT ;;
	esac
	_launch_server
}

# stop_server: SIGTERM, then SIGKILL after 15 s. Returns the server's exit
# status (137 when it had to be killed).
stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	local pid=$SERVER_PID i=0 rc
	SERVER_PID=
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		diag "server did not stop within 15 s of SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	echo "=== stopped $(date +%T) status $rc" >>"$E2E_TMP/server.log"
	return $rc
}

# kill9_server: stop the server the hard way, as a crash or power cut would.
kill9_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill -KILL "$SERVER_PID" 2>/dev/null
	wait "$SERVER_PID" 2>/dev/null
	echo "=== killed -9 $(date +%T)" >>"$E2E_TMP/server.log"
	SERVER_PID=
	return 0
}

# restart_server: stop (if running) and start again on the same data
# directory and port.
restart_server() {
	stop_server
	_launch_server
}

# stop_server_cleanly: a test line saying SIGTERM ends the server with status
# 0 (under the sanitizers this also catches leaks at exit).
stop_server_cleanly() {
	local rc
	stop_server
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "server exits with status 0 on SIGTERM"
	else
		fail "server exits with status 0 on SIGTERM"
		if grep -q "ERROR: \(AddressSanitizer\|LeakSanitizer\)\|runtime error:" "$E2E_TMP/server.log" 2>/dev/null; then
			# the sanitizer's report whole (its stacks), not the shadow bytes at its end
			diag "exit status $rc; the sanitizer's report:"
			sed -n '/ERROR: \(AddressSanitizer\|LeakSanitizer\)\|runtime error:/,/^SUMMARY:/p' \
				"$E2E_TMP/server.log" | head -n 200 | while IFS= read -r line || [ -n "$line" ]; do
				echo "#   $line"
			done
		else
			diag "exit status $rc; end of its log:"
			diag_file "$E2E_TMP/server.log" 30
		fi
	fi
}

# background CMD...: run a command in the background, killed at exit. Sets BG_PID.
BG_PID=
background() {
	"$@" &
	BG_PID=$!
	E2E_BG_PIDS+=("$BG_PID")
}

# --- hollow nodes (skiff agent --hollow) ---------------------------------------
# _hollow_ready PREFIX N: N nodes named PREFIX<number> report Ready=True.
_hollow_ready() {
	local got
	got=$(k get nodes -o 'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
		awk -v p="$1" '$2 == "True" && substr($1, 1, length(p)) == p && substr($1, length(p) + 1) ~ /^[0-9]+$/ { n++ } END { print n + 0 }')
	[ "$got" -ge "$2" ]
}

# start_hollow N [ARGS]: an agent with N hollow nodes (extra ARGS go to
# `skiff agent`, e.g. --node-prefix edge- --cpu 8) against the test's
# server; returns once its N nodes are Ready. Sets HOLLOW_PID and
# HOLLOW_LOG (its log in $E2E_TMP); several agents may run at once with
# different prefixes. The EXIT trap stops those still running.
start_hollow() {
	local n=$1 prefix=hollow- prev= a i=0
	shift
	for a in "$@"; do
		[ "$prev" = --node-prefix ] && prefix=$a
		case $a in --node-prefix=*) prefix=${a#--node-prefix=} ;; esac
		prev=$a
	done
	HOLLOW_LOG=$E2E_TMP/hollow-${prefix}${#HOLLOW_PIDS[@]}.log
	"$SKIFF_BIN" agent --hollow "$n" --kubeconfig "$KUBECONFIG" --log-level "$E2E_LOG_LEVEL" \
		"$@" >>"$HOLLOW_LOG" 2>&1 &
	HOLLOW_PID=$!
	HOLLOW_PIDS+=("$HOLLOW_PID")
	while ! _hollow_ready "$prefix" "$n"; do
		if ! kill -0 "$HOLLOW_PID" 2>/dev/null; then
			wait "$HOLLOW_PID"
			diag "skiff agent exited with status $? before its nodes were Ready; its log:"
			diag_file "$HOLLOW_LOG" 30
			return 1
		fi
		i=$((i + 1))
		if [ $i -gt $((E2E_START_TIMEOUT * 5)) ]; then
			diag "$n hollow nodes ${prefix}* not Ready after ${E2E_START_TIMEOUT}s; agent log:"
			diag_file "$HOLLOW_LOG" 30
			return 1
		fi
		sleep 0.2
	done
	return 0
}

# stop_hollow [PID]: SIGTERM to an agent (default: the last one started),
# SIGKILL after 25 s. Returns its exit status (137 when it had to be killed).
stop_hollow() {
	local pid=${1:-$HOLLOW_PID} i=0 rc p keep=()
	[ -n "$pid" ] || return 0
	for p in "${HOLLOW_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	HOLLOW_PIDS=("${keep[@]}")
	[ "$pid" = "$HOLLOW_PID" ] && HOLLOW_PID=
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 250 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		diag "skiff agent $pid did not stop within 25 s of SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	return $rc
}

# --- cleanup -------------------------------------------------------------------
_e2e_cleanup() {
	local pid f
	for pid in "${E2E_BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	# agents before the server, so they can still say goodbye to it
	for pid in "${HOLLOW_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${HOLLOW_PIDS[@]}"; do
		timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "$_tap_failed" -gt 0 ]; then
		for f in "$E2E_TMP"/hollow-*.log; do
			[ -f "$f" ] || continue
			diag "end of $(basename "$f"):"
			diag_file "$f" 20
		done
	fi
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null
		sleep 0.5
		kill -KILL "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	if [ "$_tap_failed" -gt 0 ] && [ -f "$E2E_TMP/server.log" ]; then
		diag "end of the server log:"
		diag_file "$E2E_TMP/server.log" 40
	fi
	[ -n "$E2E_WATCHDOG_PID" ] && kill -TERM "$E2E_WATCHDOG_PID" 2>/dev/null
	if [ -n "$E2E_KEEP" ]; then
		diag "kept $E2E_TMP"
	else
		rm -rf "$E2E_TMP"
	fi
}
trap _e2e_cleanup EXIT
trap 'exit 130' INT TERM

# The watchdog ends a script that runs too long; the EXIT trap then cleans up.
# Its sleep must not hold our stdout open, or the TAP driver would wait for it.
(
	sleep "$E2E_SCRIPT_TIMEOUT" >/dev/null 2>&1
	echo "Bail out! test script exceeded ${E2E_SCRIPT_TIMEOUT}s"
	kill -TERM $$ 2>/dev/null
) </dev/null &
E2E_WATCHDOG_PID=$!

command -v "$KUBECTL" >/dev/null 2>&1 ||
	bail_out "kubectl not found; install kubectl 1.32 (see README.md)"
command -v curl >/dev/null 2>&1 || bail_out "curl not found (apt-get install curl)"
