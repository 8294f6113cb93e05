#!/bin/bash
# tests/e2e/test_concurrency.sh - several clients at once: parallel creates
# all land with distinct resourceVersions, parallel patches of one object
# are all kept (no lost update), and watchers that vanish mid-stream leave
# the server serving.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

# --- parallel creates ------------------------------------------------------------------------
ok "create namespace busy" mk_ns busy
pids=()
for w in 1 2 3 4 5 6 7 8; do
	(
		for i in 1 2 3 4 5; do
			mk_cm "w$w-$i" busy "w=$w" "i=$i" >/dev/null 2>&1 || echo "w$w-$i" >>"$E2E_TMP/create-failed"
		done
	) &
	pids+=($!)
done
wait "${pids[@]}"
ok "no parallel create failed" test ! -s "$E2E_TMP/create-failed"
count=$(k get configmaps -n busy -o name 2>/dev/null | grep -c '^configmap/w')
is "$count" 40 "8 clients x 5 creates: all 40 configmaps exist"
rvs=$(k get configmaps -n busy -o 'jsonpath={range .items[*]}{.metadata.resourceVersion}{"\n"}{end}' 2>/dev/null)
is "$(sort -u <<<"$rvs" | grep -c .)" 40 "the 40 configmaps have 40 distinct resourceVersions"

# --- parallel patches of one object -----------------------------------------------------------------
ok "create the shared configmap" mk_cm shared busy start=yes
pids=()
for w in 1 2 3 4 5 6; do
	(
		for i in 1 2 3; do
			k patch configmap shared -n busy --type=merge \
				-p "{\"data\":{\"w$w-$i\":\"x\"}}" >/dev/null 2>&1 ||
				echo "w$w-$i" >>"$E2E_TMP/patch-failed"
		done
	) &
	pids+=($!)
done
wait "${pids[@]}"
ok "no parallel patch failed" test ! -s "$E2E_TMP/patch-failed"
keys=$(k get configmap shared -n busy -o json 2>/dev/null | grep -cE '"w[0-9]-[0-9]": "x"')
is "$keys" 18 "6 clients x 3 patches without a resourceVersion: no update is lost"

# --- watchers that go away ------------------------------------------------------------------------------
for i in $(seq 1 20); do
	background curl -sN --max-time 1 -o /dev/null "$E2E_URL/api/v1/namespaces/busy/configmaps?watch=1"
done
for i in 1 2 3 4 5; do
	k patch configmap shared -n busy --type=merge -p "{\"data\":{\"tick\":\"$i\"}}" >/dev/null 2>&1
done
sleep 1.5
background curl -sN --max-time 3 -o "$E2E_TMP/late.out" "$E2E_URL/api/v1/namespaces/busy/configmaps?watch=1&fieldSelector=metadata.name%3Dshared"
sleep 0.5
k patch configmap shared -n busy --type=merge -p '{"data":{"tick":"last"}}' >/dev/null 2>&1
wait_for 5 grep -q '"last"' "$E2E_TMP/late.out"
like "$(cat "$E2E_TMP/late.out")" '"last"' "a new watcher works after 20 others disconnected"
expect_output "server still ready" ok curl -s --max-time 5 "$E2E_URL/readyz"

# A client that sends half a request and hangs up must not disturb others.
(exec 3<>"/dev/tcp/127.0.0.1/$E2E_PORT" && printf 'POST /api/v1/namespaces/busy/configmaps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"apiVersion":' >&3) 2>/dev/null
expect_output "server still serves after a half-sent request" last \
	jp configmap/shared '{.data.tick}' -n busy

stop_server_cleanly
done_testing
