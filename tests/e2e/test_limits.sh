#!/bin/bash
# tests/e2e/test_limits.sh - a client flooding the server gets 429 with
# Retry-After while another client is still served at once; the admin
# (system:masters) is never throttled.
. "$(dirname "$0")/lib.sh"

start_server --tls --client-qps 5 --client-burst 5 || bail_out "server did not start"
for u in bob alice; do
	ok "create user $u" "$SKIFF_BIN" user create "$u" --data-dir "$E2E_DATA" --out "$E2E_TMP/$u.kubeconfig"
	ok "bind $u to view" k create clusterrolebinding "$u-view" --clusterrole=view --user="$u"
	python3 - "$E2E_TMP/$u.kubeconfig" "$E2E_TMP" "$u" <<'PY'
import base64, json, sys
kc = json.load(open(sys.argv[1]))
u = kc['users'][0]['user']; c = kc['clusters'][0]['cluster']
for name, data in (('ca.pem', c['certificate-authority-data']), (sys.argv[3] + '.crt', u['client-certificate-data']), (sys.argv[3] + '.key', u['client-key-data'])):
    open(sys.argv[2] + '/' + name, 'wb').write(base64.b64decode(data))
PY
done
as() { # as USER ARGS...: curl with USER's certificate
	local u=$1
	shift
	curl -s --max-time 10 --cacert "$E2E_TMP/ca.pem" --cert "$E2E_TMP/$u.crt" --key "$E2E_TMP/$u.key" "$@"
}
CM=$E2E_URL/api/v1/namespaces/default/configmaps
is "$(as alice -o /dev/null -w '%{http_code}' "$CM")" 200 "alice is served"

# bob sends 40 requests at once: beyond his burst of 5 he gets 429
pids=
for i in $(seq 1 40); do
	as bob -D "$E2E_TMP/bob.$i.h" -o "$E2E_TMP/bob.$i.b" -w '%{http_code}\n' "$CM" >>"$E2E_TMP/bob.codes" &
	pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids # not a bare wait: the server is a background job of this shell too
n429=$(grep -c '^429$' "$E2E_TMP/bob.codes")
n200=$(grep -c '^200$' "$E2E_TMP/bob.codes")
ok "the flood is answered 429 ($n429 of 40)" test "$n429" -ge 20
ok "bob still got his burst ($n200 of 40)" test "$n200" -ge 1
refused=$(grep -l '^HTTP/1.1 429' "$E2E_TMP"/bob.*.h | head -1)
ok "a 429 carries Retry-After" grep -q '^Retry-After: [0-9]' "$refused"
like "$(cat "${refused%.h}.b")" '"reason":"TooManyRequests"' "and a TooManyRequests Status"
start=$(date +%s%N)
is "$(as alice -o /dev/null -w '%{http_code}' "$CM")" 200 "alice is still served during bob's flood"
ms=$((($(date +%s%N) - start) / 1000000))
ok "alice's request took ${ms} ms (under 1 s)" test "$ms" -lt 1000
for i in $(seq 1 20); do k get configmaps -o name >/dev/null 2>&1 || echo fail; done >"$E2E_TMP/admin.out"
ok "the admin (system:masters) is never throttled" not grep -q fail "$E2E_TMP/admin.out"

stop_server_cleanly
done_testing
