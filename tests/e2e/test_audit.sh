#!/bin/bash
# tests/e2e/test_audit.sh - the audit log: one audit.k8s.io/v1 event per
# request in a 0600 file, a delete recorded with the user's name, a policy
# file choosing levels, no Secret payload ever written, and requests that
# fail authentication recorded with their 401.
. "$(dirname "$0")/lib.sh"

AUDIT=$E2E_TMP/audit.log
cat >"$E2E_TMP/policy.yaml" <<'EOF2'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/api*", "/apis*", "/openapi*", "/version"]
  - level: RequestResponse
    resources:
      - group: ""
        resources: [secrets, configmaps]
  - level: Metadata
EOF2
start_server --audit-log-path "$AUDIT" --audit-policy-file "$E2E_TMP/policy.yaml" ||
	bail_out "server did not start"
ok "create a configmap" k create configmap audited --from-literal=colour=AuditedValue
ok "delete it" k delete configmap audited
ok "create a secret" k create secret generic hush --from-literal=p=NeverInTheAuditLog
stop_server_cleanly

ok "the audit log exists" test -s "$AUDIT"
is "$(stat -c %a "$AUDIT")" 600 "the audit log is mode 0600"
ok "every line is an audit.k8s.io/v1 Event" sh -c "! grep -v '\"apiVersion\":\"audit.k8s.io/v1\"' '$AUDIT'"
ok "the delete is recorded with the user's name" \
	grep -q '"verb":"delete".*"username":"system:admin"' "$AUDIT"
ok "the delete names its object" grep -q '"verb":"delete".*"name":"audited"' "$AUDIT"
ok "events carry the client's address" grep -q '"sourceIPs":\["127.0.0.1"\]' "$AUDIT"
ok "RequestResponse logs the configmap's body" grep -q AuditedValue "$AUDIT"
ok "no Secret payload in the audit log" not grep -q NeverInTheAuditLog "$AUDIT"
ok "the policy's None rule drops discovery requests" not grep -q '"requestURI":"/api?' "$AUDIT"
ok "omitStages drops RequestReceived" not grep -q '"stage":"RequestReceived"' "$AUDIT"

# Over HTTPS a request without credentials is refused, and the refusal is
# audited without a user, as Kubernetes records failed authentication.
stop_server
AUDIT2=$E2E_TMP/audit-tls.log
start_server --tls --audit-log-path "$AUDIT2" || bail_out "server did not start with --tls"
code=$(curl -sk -o /dev/null -w '%{http_code}' "$E2E_URL/api/v1/namespaces/default/secrets")
is "$code" 401 "a request without credentials gets 401"
ok "the 401 is in the audit log" wait_for 5 \
	grep -q '"requestURI":"/api/v1/namespaces/default/secrets".*"code":401' "$AUDIT2"
ok "the failed authentication has no user" \
	grep -q '"user":{"username":""}.*"code":401\|"code":401.*"user":{"username":""}' "$AUDIT2"
ok "a bad bearer token is audited too" sh -c "curl -sk -o /dev/null -H 'Authorization: Bearer nope' \
	'$E2E_URL/api/v1/pods' && sleep 0.5 && grep -q '\"requestURI\":\"/api/v1/pods\".*\"code\":401' '$AUDIT2'"

done_testing
