#!/bin/bash
# tests/e2e/test_rbac.sh - users and RBAC over TLS: a user made with
# `skiff user create` is refused until bound, the view role lists but does
# not delete or read secrets, denials are 403 Status objects worded as
# Kubernetes words them, and the admin kubeconfig (system:masters) may do
# everything.
. "$(dirname "$0")/lib.sh"

start_server --tls || bail_out "server did not start with --tls"
like "$(grep -o 'https://[^"]*' "$KUBECONFIG" | head -1)" 'https://127.0.0.1:' \
	"the admin kubeconfig points at https"
ok "the admin lists namespaces over TLS" k get namespaces
ok "skiff user create writes a kubeconfig" \
	"$SKIFF_BIN" user create alice --data-dir "$E2E_DATA" --out "$E2E_TMP/alice.kubeconfig"
is "$(stat -c %a "$E2E_TMP/alice.kubeconfig")" 600 "the user's kubeconfig is mode 0600"
alice() { timeout 20 kubectl --kubeconfig "$E2E_TMP/alice.kubeconfig" --request-timeout=10s "$@"; }

expect_fail_with "an unbound user cannot list pods" \
	'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"' \
	alice get pods
ok "the default clusterroles exist" k get clusterrole view edit admin cluster-admin
ok "the admin creates a configmap" k create configmap shared --from-literal=a=b
ok "the admin binds alice to view in default" \
	k create rolebinding alice-view --clusterrole=view --user=alice -n default
expect_contains "with view, alice lists configmaps" shared alice get configmaps -n default
expect_fail_with "with view, alice cannot delete" \
	'configmaps "shared" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "default"' \
	alice delete configmap shared -n default
expect_fail_with "view does not read secrets" 'cannot list resource "secrets"' alice get secrets -n default
expect_fail_with "the binding does not reach other namespaces" \
	'in the namespace "kube-system"' alice get configmaps -n kube-system
expect_fail_with "nor the cluster scope" 'at the cluster scope' alice get namespaces

# the Status object itself
url=$(grep -o 'https://[^"]*' "$KUBECONFIG" | head -1)
ok "alice's client certificate can be extracted" sh -c "
	python3 - '$E2E_TMP/alice.kubeconfig' '$E2E_TMP' <<'PY'
import base64, json, sys
kc = json.load(open(sys.argv[1]))
u = kc['users'][0]['user']; c = kc['clusters'][0]['cluster']
for name, data in (('ca.pem', c['certificate-authority-data']), ('alice.crt', u['client-certificate-data']), ('alice.key', u['client-key-data'])):
    open(sys.argv[2] + '/' + name, 'wb').write(base64.b64decode(data))
PY"
body=$(curl -s --max-time 10 --cacert "$E2E_TMP/ca.pem" --cert "$E2E_TMP/alice.crt" --key "$E2E_TMP/alice.key" \
	-X DELETE "$url/api/v1/namespaces/default/configmaps/shared")
like "$body" '"code":403' "the denial is a 403 Status"
like "$body" '"reason":"Forbidden"' "with reason Forbidden"
expect_output "the configmap is still there" b k get configmap shared -o 'jsonpath={.data.a}'
body=$(curl -s --max-time 10 --cacert "$E2E_TMP/ca.pem" -w ' %{http_code}' "$url/api/v1/namespaces")
like "$body" ' 401' "a request without a client certificate gets 401"
like "$body" '"reason":"Unauthorized"' "with reason Unauthorized"
is "$(curl -s --max-time 10 --cacert "$E2E_TMP/ca.pem" "$url/readyz")" ok "health checks need no certificate"

# --- kubectl auth: whoami, can-i, can-i --list -------------------------------------------------
expect_contains "auth whoami names the user" alice alice auth whoami
expect_output "auth can-i list configmaps (bound)" yes alice auth can-i list configmaps -n default
expect_output "auth can-i delete configmaps (not bound)" no sh -c \
	"kubectl --kubeconfig '$E2E_TMP/alice.kubeconfig' auth can-i delete configmaps -n default; true"
expect_contains "auth can-i --list shows the view rules" configmaps alice auth can-i --list -n default
expect_output "the admin may do anything" yes k auth can-i '*' '*'
expect_fail_with "reviews cannot be listed (create only)" "MethodNotAllowed" \
	k get selfsubjectaccessreviews

# --- impersonation: kubectl --as / --as-group -----------------------------------------------------
expect_contains "the admin may act as alice (whoami)" alice k auth whoami --as alice --as-group qa
expect_contains "... with the groups asked for" qa k auth whoami --as alice --as-group qa
expect_fail_with "acting as alice, the admin gets alice's rights" \
	'User "alice" cannot delete resource "configmaps"' k delete configmap shared --as alice
expect_fail_with "alice may not impersonate" \
	'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope' \
	alice get configmaps --as bob

stop_server_cleanly
done_testing
