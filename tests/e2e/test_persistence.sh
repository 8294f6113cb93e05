#!/bin/bash
# tests/e2e/test_persistence.sh - what the server acknowledged is kept: objects
# survive a clean restart and a kill -9 straight after kubectl got its answer,
# and resourceVersions keep moving forward across restarts.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

# --- a clean restart --------------------------------------------------------------------
ok "create namespace keep" mk_ns keep
ok "create a deployment" mk_deploy app keep nginx:1.25 2
ok "create a configmap" mk_cm settings keep mode=fast
ok "create a secret" k create -f - <<'EOF'
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: keep}
data: {token: YWJj}
EOF
ok "label the deployment" k label deployment app -n keep stage=prod
uid=$(jp deployment/app '{.metadata.uid}' -n keep)
rv=$(jp deployment/app '{.metadata.resourceVersion}' -n keep)

stop_server_cleanly
restart_server || bail_out "server did not restart on the same data dir"
pass "server restarts on the same data dir and port"

expect_output "namespace survives a restart" keep k get namespace keep -o 'jsonpath={.metadata.name}'
expect_output "deployment survives with its spec" "2 nginx:1.25" \
	jp deployment/app '{.spec.replicas} {.spec.template.spec.containers[0].image}' -n keep
expect_output "deployment keeps its label" prod jp deployment/app '{.metadata.labels.stage}' -n keep
expect_output "deployment keeps its uid" "$uid" jp deployment/app '{.metadata.uid}' -n keep
expect_output "deployment keeps its resourceVersion" "$rv" \
	jp deployment/app '{.metadata.resourceVersion}' -n keep
expect_output "configmap survives" fast jp configmap/settings '{.data.mode}' -n keep
token=$(jp secret/creds '{.data.token}' -n keep 2>/dev/null)
is "$(base64 -d <<<"$token" 2>/dev/null)" abc "secret survives"
for ns in default kube-system kube-public; do
	expect_output "built-in namespace $ns is still there once" "namespace/$ns" \
		k get namespace --field-selector "metadata.name=$ns" -o name
done

ok "update after the restart" k patch deployment app -n keep --type=merge -p '{"spec":{"replicas":4}}'
rv2=$(jp deployment/app '{.metadata.resourceVersion}' -n keep)
ok "the new resourceVersion differs from the old one" test -n "$rv2" -a "$rv2" != "$rv"
case "$rv$rv2" in
*[!0-9]*) diag "resourceVersions are not numbers; ordering not checked" ;;
*) ok "resourceVersions keep increasing across a restart" test "$rv2" -gt "$rv" ;;
esac
expect_output "the update is visible" 4 jp deployment/app '{.spec.replicas}' -n keep

# --- kill -9 right after the answers -------------------------------------------------------------
created=0
for i in $(seq 1 20); do
	mk_cm "crash-$i" keep i="$i" >/dev/null 2>&1 &&
		created=$((created + 1))
done
is "$created" 20 "20 configmaps created"
k delete configmap settings -n keep >/dev/null 2>&1
kill9_server
restart_server || bail_out "server did not restart after kill -9"
pass "server restarts after kill -9"
count=$(k get configmaps -n keep -o name 2>/dev/null | grep -c '^configmap/crash-')
is "$count" 20 "all 20 acknowledged configmaps survive kill -9"
expect_output "the last one has its data" 20 jp configmap/crash-20 '{.data.i}' -n keep
expect_fail_with "the acknowledged delete survives kill -9" "not found" \
	k get configmap settings -n keep
expect_output "the scale survives kill -9" 4 jp deployment/app '{.spec.replicas}' -n keep

# A write right after restart after a crash must not reuse a resourceVersion.
rv3=$(jp configmap/crash-20 '{.metadata.resourceVersion}' -n keep)
ok "write after the crash restart" k label configmap crash-20 -n keep after=crash
rv4=$(jp configmap/crash-20 '{.metadata.resourceVersion}' -n keep)
ok "resourceVersion after the crash differs from every earlier one" \
	test -n "$rv4" -a "$rv4" != "$rv3" -a "$rv4" != "$rv2" -a "$rv4" != "$rv"

# A client that watched before the crash resumes from its last resourceVersion
# and gets what changed while it was away, also across the restart.
ok "label crash-19 before the restart" k label configmap crash-19 -n keep phase=one
kill9_server
restart_server || bail_out "server did not restart for the resume test"
ok "label crash-19 after the restart" k label configmap crash-19 -n keep phase=two --overwrite
curl -sN --max-time 3 \
	"$E2E_URL/api/v1/namespaces/keep/configmaps?watch=1&resourceVersion=$rv4&fieldSelector=metadata.name%3Dcrash-19" \
	-o "$E2E_TMP/resume.out" 2>/dev/null
phases=$(grep -oE '"phase"[[:space:]]*:[[:space:]]*"[a-z]+"' "$E2E_TMP/resume.out" | sed -E 's/.*"([a-z]+)"$/\1/' | tr '\n' ' ')
is "$phases" "one two " "a watch from before the crash replays the changes before and after it"

# Twice in a row, with nothing written in between.
kill9_server
restart_server || bail_out "server did not restart after a second kill -9"
count=$(k get configmaps -n keep -o name 2>/dev/null | grep -c '^configmap/crash-')
is "$count" 20 "objects survive a second kill -9"

stop_server_cleanly
done_testing
