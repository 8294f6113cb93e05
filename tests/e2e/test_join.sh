#!/bin/bash
# tests/e2e/test_join.sh - joining nodes with a bootstrap token (TLS
# bootstrapping) and CertificateSigningRequests as kubectl sees them:
# `skiff agent --server --token --ca-cert-hash --hollow 2` refuses a wrong
# CA hash before sending the token and a bad or expired token with a clear
# message, then joins: its CSRs are auto-approved and issued with the
# bootstrap token's identity as requestor, the nodes are Ready and run a
# pod, each saved kubeconfig (0600) authenticates as system:node:NAME and
# the node authorizer stops it changing another node; a node's renewal CSR
# is auto-approved (selfnodeclient) but not one for another node's name; a
# second start reuses the credentials. A user's CSR (made with openssl) for
# kube-apiserver-client is pending until `kubectl certificate approve`,
# then its certificate works with kubectl; deny, a forged requestor and a
# subject the signer refuses are checked too.
. "$(dirname "$0")/lib.sh"

start_server --tls --audit-log-path "$E2E_TMP/audit.log" || bail_out "server did not start"
A="$SKIFF_BIN agent --log-level $E2E_LOG_LEVEL --hollow 2 --node-prefix join- --data-dir $E2E_TMP/agent"

# --- kinds and roles --------------------------------------------------------------------------
expect_contains "certificatesigningrequests are served (short name csr)" \
	"certificatesigningrequests" k api-resources --api-group=certificates.k8s.io
expect_contains "bootstrappers may ask for node certificates (as kubeadm binds them)" yes \
	k auth can-i create certificatesigningrequests --as=system:bootstrap:abcdef \
	--as-group=system:bootstrappers
expect_contains "... and get them approved (nodeclient)" yes \
	k auth can-i create certificatesigningrequests/nodeclient --as=system:bootstrap:abcdef \
	--as-group=system:bootstrappers

# --- the token ----------------------------------------------------------------------------------
_run "$SKIFF_BIN" token create --data-dir "$E2E_DATA" --ttl 1h
TOKEN=$OUT
HASH=$(printf '%s\n' "$ERR" | sed -n 's/^CA certificate hash: //p')
ok "skiff token create prints a token" sh -c "echo '$TOKEN' | grep -qE '^[a-z0-9]{6}\.[a-z0-9]{16}$'"
ok "... and the CA hash" sh -c "echo '$HASH' | grep -qE '^sha256:[0-9a-f]{64}$'"
ID=${TOKEN%%.*}

# --- refusals -----------------------------------------------------------------------------------
WRONG=sha256:$(printf '%064d' 0)
expect_fail_with "a wrong CA hash is refused" "does not match --ca-cert-hash" \
	timeout 20 $A --server "$E2E_URL" --token "$TOKEN" --ca-cert-hash "$WRONG"
like "$ERR" "the token was not sent" "... saying the token was not sent"
ok "... and it was not: no request as system:bootstrap:$ID reached the server" \
	not grep -q "system:bootstrap:$ID" "$E2E_TMP/audit.log"
expect_fail_with "a missing hash is refused" "--ca-cert-hash sha256:<64 hex digits> is required" \
	timeout 20 $A --server "$E2E_URL" --token "$TOKEN"
expect_fail_with "an unknown token is refused" "the server refused the bootstrap token" \
	timeout 20 $A --server "$E2E_URL" --token abcdef.0123456789abcdef --ca-cert-hash "$HASH"
SHORT=$("$SKIFF_BIN" token create --data-dir "$E2E_DATA" --ttl 1s 2>/dev/null)
sleep 2
expect_fail_with "an expired token is refused" "expired" \
	timeout 20 $A --server "$E2E_URL" --token "$SHORT" --ca-cert-hash "$HASH"
is "$(k get csr -o name | wc -l)" 0 "no CSR was created by the refused attempts"

# --- joining ------------------------------------------------------------------------------------
AGENT_LOG=$E2E_TMP/agent.log
$A --server "$E2E_URL" --token "$TOKEN" --ca-cert-hash "$HASH" >>"$AGENT_LOG" 2>&1 &
HOLLOW_PID=$!
HOLLOW_PIDS+=("$HOLLOW_PID")
ok "the agent joins: nodes join-0 and join-1 are Ready" wait_for 30 _hollow_ready join- 2 ||
	diag_file "$AGENT_LOG" 20
csrs=$(k get csr --no-headers)
is "$(printf '%s\n' "$csrs" | grep -c "kubernetes.io/kube-apiserver-client-kubelet *system:bootstrap:$ID .*Approved,Issued")" 2 \
	"kubectl get csr: two kubelet client CSRs from system:bootstrap:$ID, Approved,Issued" ||
	diag "$csrs"
expect_contains "the approval says why (AutoApproved)" AutoApproved \
	k get csr -o 'jsonpath={.items[*].status.conditions[*].reason}'
KC0=$E2E_TMP/agent/nodes/join-0/kubeconfig
is "$(stat -c %a "$KC0")" 600 "the node's kubeconfig is saved mode 0600"
expect_contains "its credentials authenticate as system:node:join-0" "system:node:join-0" \
	kubectl --kubeconfig "$KC0" auth whoami
expect_contains "... in group system:nodes" "system:nodes" kubectl --kubeconfig "$KC0" auth whoami
expect_contains "the certificate was issued by the cluster CA" OK \
	sh -c "kubectl --kubeconfig '$KC0' config view --raw -o jsonpath='{.users[0].user.client-certificate-data}' |
		base64 -d | openssl verify -CAfile '$E2E_DATA/pki/ca.crt'"
expect_fail_with "system:node:join-0 cannot modify node join-1 (node authorizer)" \
	'nodes "join-1" is forbidden: User "system:node:join-0" cannot patch resource "nodes"' \
	kubectl --kubeconfig "$KC0" label node join-1 team=x
ok "... but may change its own node" kubectl --kubeconfig "$KC0" label node join-0 team=x
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: on-join\nspec:\n  nodeName: join-1\n  containers:\n  - name: c\n    image: registry.local/app:1\n' |
	k create -f - >/dev/null
ok "a pod bound to join-1 turns Running (its status written with join-1's credentials)" \
	wait_for 20 sh -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod on-join -o jsonpath='{.status.phase}')\" = Running ]"
stop_hollow
is "$?" 0 "the agent exits with status 0 on SIGTERM"

# a second start needs no token: the saved credentials are used
$A --server "$E2E_URL" >>"$AGENT_LOG" 2>&1 &
HOLLOW_PID=$!
HOLLOW_PIDS+=("$HOLLOW_PID")
ok "a second start (no --token) reuses the saved credentials" \
	wait_for 20 grep -q "using the saved credentials of 2 node" "$AGENT_LOG"
k delete pod on-join --wait=false >/dev/null 2>&1
ok "... and its nodes still do their work (a deleted pod is removed)" \
	wait_for 20 not kubectl --kubeconfig "$KUBECONFIG" get pod on-join
is "$(k get csr --no-headers | grep -c kube-apiserver-client-kubelet)" 2 "... without new CSRs"
stop_hollow

# --- renewal: a node's own CSR (selfnodeclient) against one for another node ----------------------
for n in join-0 join-1; do
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/$n.key" \
		-subj "/O=system:nodes/CN=system:node:$n" -out "$E2E_TMP/$n.csr" 2>/dev/null
	printf 'apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: renew-%s\nspec:\n  request: %s\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  usages: [digital signature, client auth]\n' \
		"$n" "$(base64 -w0 "$E2E_TMP/$n.csr")" | kubectl --kubeconfig "$KC0" create -f - >/dev/null
done
like "$(k get csr renew-join-0 --no-headers)" "system:node:join-0" "a node's renewal CSR has the node as requestor"
like "$(k get csr renew-join-0 --no-headers)" "Approved,Issued" "... and is approved (selfnodeclient) and issued"
like "$(k get csr renew-join-1 --no-headers)" "Pending" \
	"a node's CSR for another node's name stays Pending (nodes lack nodeclient)"

# --- a user's certificate, approved by hand -----------------------------------------------------
# csr_yaml NAME SIGNER CSRFILE [USAGES] [EXTRA SPEC LINE]
csr_yaml() {
	printf 'apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: %s\nspec:\n' "$1"
	printf '  request: %s\n  signerName: %s\n  usages: [%s]\n' "$(base64 -w0 "$3")" "$2" "${4:-client auth}"
	[ -z "$5" ] || printf '  %s\n' "$5"
}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/carol.key" \
	-subj "/O=devs/CN=carol" -out "$E2E_TMP/carol.csr" 2>/dev/null
csr_yaml carol kubernetes.io/kube-apiserver-client "$E2E_TMP/carol.csr" "client auth" \
	"expirationSeconds: 3600" >"$E2E_TMP/carol.yaml"
ok "a CSR for kube-apiserver-client is created" k create -f "$E2E_TMP/carol.yaml"
row=$(k get csr carol --no-headers)
like "$row" "kubernetes.io/kube-apiserver-client" "kubectl get csr shows its signer"
like "$row" "60m" "... its requested duration (as kubectl words an hour)"
like "$row" "Pending" "... and it is Pending (no automatic approval for this signer)"
expect_contains "kubectl certificate approve" approved k certificate approve carol
like "$(k get csr carol --no-headers)" "Approved,Issued" "the CSR is Approved,Issued"
k get csr carol -o jsonpath='{.status.certificate}' | base64 -d >"$E2E_TMP/carol.crt"
expect_contains "the certificate is for CN=carol, O=devs" "CN = carol" \
	openssl x509 -in "$E2E_TMP/carol.crt" -noout -subject
nb=$(date -d "$(openssl x509 -in "$E2E_TMP/carol.crt" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$E2E_TMP/carol.crt" -noout -enddate | cut -d= -f2)" +%s)
is "$((na - nb))" 3900 "it lasts the hour asked for (plus 5 minutes of backdating)"
CKC=$E2E_TMP/carol.kubeconfig
cp "$KUBECONFIG" "$CKC"
kubectl --kubeconfig "$CKC" config set-credentials carol --client-certificate="$E2E_TMP/carol.crt" \
	--client-key="$E2E_TMP/carol.key" --embed-certs >/dev/null
kubectl --kubeconfig "$CKC" config set-context --current --user=carol >/dev/null
expect_contains "kubectl with the certificate authenticates as carol" carol \
	kubectl --kubeconfig "$CKC" auth whoami
expect_contains "... in group devs" devs kubectl --kubeconfig "$CKC" auth whoami
expect_fail_with "carol may not approve CSRs" "forbidden" \
	kubectl --kubeconfig "$CKC" certificate approve carol

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/dave.key" \
	-subj "/CN=dave" -out "$E2E_TMP/dave.csr" 2>/dev/null
csr_yaml dave kubernetes.io/kube-apiserver-client "$E2E_TMP/dave.csr" "client auth" \
	"username: system:node:forged" | k create -f - >/dev/null
is "$(k get csr dave -o jsonpath='{.spec.username}')" skiff-admin \
	"spec.username is the requester's, whatever the body says"
expect_contains "kubectl certificate deny" denied k certificate deny dave
like "$(k get csr dave --no-headers)" "Denied" "the CSR is Denied"
is "$(k get csr dave -o jsonpath='{.status.certificate}')" "" "... and has no certificate"
expect_fail_with "a denied CSR cannot be approved afterwards" "Denied" k certificate approve dave

csr_yaml sneaky kubernetes.io/kube-apiserver-client-kubelet "$E2E_TMP/dave.csr" \
	"digital signature, client auth" >"$E2E_TMP/sneaky.yaml"
expect_fail_with "a kubelet client CSR whose subject is not system:node:NAME is invalid" \
	'must begin with "system:node:"' k create -f "$E2E_TMP/sneaky.yaml"

stop_server_cleanly
done_testing
