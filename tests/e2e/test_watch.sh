#!/bin/bash
# tests/e2e/test_watch.sh - watches: `kubectl get -w` sees what another
# kubectl changes, and the raw watch stream (?watch=1) sends ADDED, MODIFIED
# and DELETED events from a resourceVersion, filtered by selectors.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

# watch_types FILE: the event types in a watch stream, one line, bookmarks left out.
watch_types() {
	grep -oE '"type"[[:space:]]*:[[:space:]]*"[A-Z]+"' "$1" | sed -E 's/.*"([A-Z]+)"$/\1/' |
		grep -v BOOKMARK | tr '\n' ' ' | sed 's/ $//'
}

# --- kubectl get -w ---------------------------------------------------------------
ok "create the watched configmap" mk_cm watched default v=one
background timeout 20 "$KUBECTL" --kubeconfig="$KUBECONFIG" --cache-dir="$E2E_TMP/kube-cache" \
	get configmap watched -w -o 'jsonpath={.data.v}{"\n"}' >"$E2E_TMP/kw.out" 2>"$E2E_TMP/kw.err"
ok "get -w prints the current state" wait_for 10 grep -qx one "$E2E_TMP/kw.out"
ok "another kubectl updates the configmap" \
	k patch configmap watched --type=merge -p '{"data":{"v":"two"}}'
if wait_for 10 grep -qx two "$E2E_TMP/kw.out"; then
	pass "get -w sees the update made by another kubectl"
else
	fail "get -w sees the update made by another kubectl"
	diag "watch output:"; diag_file "$E2E_TMP/kw.out"; diag_file "$E2E_TMP/kw.err"
fi
kill "$BG_PID" 2>/dev/null

background timeout 20 "$KUBECTL" --kubeconfig="$KUBECONFIG" --cache-dir="$E2E_TMP/kube-cache" \
	get configmaps -w --watch-only -o name -v=6 >"$E2E_TMP/kwo.out" 2>"$E2E_TMP/kwo.err"
# --watch-only leaves out what its first list saw, so create only once the
# watch request is under way (kubectl -v=6 logs it).
wait_for 10 grep -q 'watch=true' "$E2E_TMP/kwo.err" || diag "kubectl never logged its watch request"
ok "create a configmap while watching" mk_cm newcomer default a=b
if wait_for 10 grep -qx configmap/newcomer "$E2E_TMP/kwo.out"; then
	pass "get -w --watch-only sees a new object"
else
	fail "get -w --watch-only sees a new object"
	diag_file "$E2E_TMP/kwo.out"; diag_file "$E2E_TMP/kwo.err"
fi
unlike "$(cat "$E2E_TMP/kwo.out")" "configmap/watched" "--watch-only does not list existing objects"
kill "$BG_PID" 2>/dev/null

# --- the raw stream from a resourceVersion ---------------------------------------------------
ok "create namespace w" mk_ns w
ok "create configmap w1" mk_cm w1 w a=1
rv=$(jp configmap/w1 '{.metadata.resourceVersion}' -n w)
ok "w1 has a resourceVersion" test -n "$rv"
background curl -sN --max-time 20 "$E2E_URL/api/v1/namespaces/w/configmaps?watch=1&resourceVersion=$rv" \
	-o "$E2E_TMP/watch.out"
sleep 0.5
ok "modify w1" k patch configmap w1 -n w --type=merge -p '{"data":{"a":"2"}}'
ok "create w2" mk_cm w2 w b=1
ok "delete w1" k delete configmap w1 -n w
wait_for 10 grep -q DELETED "$E2E_TMP/watch.out"
types=$(watch_types "$E2E_TMP/watch.out")
is "$types" "MODIFIED ADDED DELETED" "watch from a resourceVersion sends MODIFIED, ADDED, DELETED in order"
lines=$(grep -c '"type"' "$E2E_TMP/watch.out")
ok "each event is on its own line" test "$lines" -ge 3
ok "the DELETED event carries the deleted object" \
	grep -qE '"name"[[:space:]]*:[[:space:]]*"w1"' <(grep DELETED "$E2E_TMP/watch.out")
ok "the MODIFIED event carries the new data" \
	grep -qE '"a"[[:space:]]*:[[:space:]]*"2"' <(grep MODIFIED "$E2E_TMP/watch.out")
ok "events at the start resourceVersion are not sent again" \
	not grep -qE "\"resourceVersion\"[[:space:]]*:[[:space:]]*\"$rv\"" "$E2E_TMP/watch.out"
kill "$BG_PID" 2>/dev/null

# --- without a resourceVersion: existing objects come first as ADDED ---------------------------
background curl -sN --max-time 20 "$E2E_URL/api/v1/namespaces/w/configmaps?watch=1" -o "$E2E_TMP/watch0.out"
wait_for 10 grep -q ADDED "$E2E_TMP/watch0.out"
like "$(grep ADDED "$E2E_TMP/watch0.out")" "w2" "watch without resourceVersion starts with ADDED for existing objects"
kill "$BG_PID" 2>/dev/null

# --- selectors on a watch ---------------------------------------------------------------------------
ok "create namespace ws" mk_ns ws
background curl -sN --max-time 20 "$E2E_URL/api/v1/namespaces/ws/configmaps?watch=1&labelSelector=app%3Dpicked" \
	-o "$E2E_TMP/watchl.out"
background curl -sN --max-time 20 "$E2E_URL/api/v1/namespaces/ws/configmaps?watch=1&fieldSelector=metadata.name%3Dfield" \
	-o "$E2E_TMP/watchf.out"
sleep 0.5
mk_cm other ws a=b >/dev/null 2>&1
mk_cm field ws a=b >/dev/null 2>&1
ok "create a labelled configmap" mk_cm picked ws a=b
ok "label it app=picked" k label configmap picked -n ws app=picked
wait_for 10 grep -q picked "$E2E_TMP/watchl.out"
wait_for 10 grep -q field "$E2E_TMP/watchf.out"
like "$(cat "$E2E_TMP/watchl.out")" '"picked"' "label-selector watch sees the object once it matches"
ok "remove the label" k label configmap picked -n ws app-
wait_for 10 grep -q DELETED "$E2E_TMP/watchl.out"
ok "label-selector watch sends DELETED when the object stops matching" \
	grep -qE '"name"[[:space:]]*:[[:space:]]*"picked"' <(grep DELETED "$E2E_TMP/watchl.out")
unlike "$(cat "$E2E_TMP/watchl.out")" '"other"' "label-selector watch leaves out other objects"
like "$(cat "$E2E_TMP/watchf.out")" '"field"' "field-selector watch sees the named object"
unlike "$(cat "$E2E_TMP/watchf.out")" '"other"' "field-selector watch leaves out other objects"

# --- a watch across all namespaces ------------------------------------------------------------------
background curl -sN --max-time 20 "$E2E_URL/api/v1/configmaps?watch=1&resourceVersion=$rv" -o "$E2E_TMP/watchall.out"
sleep 0.5
ok "create a configmap in namespace w" mk_cm everywhere-w w a=b
ok "create a configmap in namespace ws" mk_cm everywhere-ws ws a=b
wait_for 10 grep -q everywhere-ws "$E2E_TMP/watchall.out"
like "$(cat "$E2E_TMP/watchall.out")" '"everywhere-w"' "an all-namespaces watch sees the first namespace"
like "$(cat "$E2E_TMP/watchall.out")" '"everywhere-ws"' "an all-namespaces watch sees the second namespace"

# --- a watch on a whole cluster-scoped kind ------------------------------------------------------------
background curl -sN --max-time 20 "$E2E_URL/api/v1/namespaces?watch=1&resourceVersion=$rv" -o "$E2E_TMP/watchns.out"
sleep 0.5
ok "create namespace late" mk_ns late
wait_for 10 grep -q '"late"' "$E2E_TMP/watchns.out"
like "$(cat "$E2E_TMP/watchns.out")" '"late"' "namespace watch sees a new namespace"

# --- timeoutSeconds ends the stream ---------------------------------------------------------------------
start=$(date +%s)
_run curl -sN --max-time 15 "$E2E_URL/api/v1/namespaces/w/configmaps?watch=1&timeoutSeconds=1"
rc=$?
took=$(($(date +%s) - start))
is "$rc" 0 "a watch with timeoutSeconds=1 ends normally"
ok "it ends after about a second (took ${took}s)" test "$took" -le 5

expect_output "server still ready after the watches" ok curl -s --max-time 5 "$E2E_URL/readyz"
stop_server_cleanly

# --- compacted history: 410 ---------------------------------------------------------------------------
# A server that keeps one second of history; a watch from before that is told
# its resourceVersion is gone (HTTP 410, or as Kubernetes does it, an ERROR
# event carrying a Status with code 410 and reason Expired).
rm -rf "$E2E_DATA"
if start_server --compaction-interval 1; then
	pass "server starts with --compaction-interval 1"
	mk_cm old default v=1 >/dev/null 2>&1
	old_rv=$(jp configmap/old '{.metadata.resourceVersion}')
	k patch configmap old --type=merge -p '{"data":{"v":"2"}}' >/dev/null 2>&1
	gone() {
		k patch configmap old --type=merge -p "{\"data\":{\"t\":\"$RANDOM\"}}" >/dev/null 2>&1
		curl -sN --max-time 2 -o "$E2E_TMP/gone.out" -w '%{http_code}' \
			"$E2E_URL/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$old_rv" \
			>"$E2E_TMP/gone.code" 2>/dev/null
		[ "$(cat "$E2E_TMP/gone.code")" = 410 ] ||
			grep -qE '"code"[[:space:]]*:[[:space:]]*410' "$E2E_TMP/gone.out"
	}
	if wait_for 15 gone; then
		pass "a watch from a compacted resourceVersion gets 410"
	else
		fail "a watch from a compacted resourceVersion gets 410"
		diag "HTTP $(cat "$E2E_TMP/gone.code" 2>/dev/null); body:"
		diag_file "$E2E_TMP/gone.out" 5
	fi
	like "$(cat "$E2E_TMP/gone.out")" "Expired" "the 410 Status has reason Expired"
	expect_output "current objects are still served after compaction" 2 \
		jp configmap/old '{.data.v}'
	stop_server_cleanly
else
	fail "server starts with --compaction-interval 1"
fi
done_testing
