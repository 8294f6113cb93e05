#!/bin/bash
# tests/e2e/test_audit.sh - the audit log: one audit.k8s.io/v1 event per
# request in a 0600 file, a delete recorded with the user's name, a policy
# file choosing levels, and no Secret payload ever written.
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

done_testing
