#!/bin/bash
# tests/e2e/test_apply.sh - changing objects with kubectl: apply and re-apply
# (strategic merge patch), patch in its three types, scale, edit with an
# EDITOR script, diff and server-side dry runs.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

# deployment_yaml IMAGE REPLICAS ENV-LINES [EXTRA CONTAINER LINES]
deployment_yaml() {
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {app: app}
spec:
  replicas: $2
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: $1
        env:
$3
$4
EOF
}

deployment_yaml nginx:1.24 2 '        - {name: A, value: "1"}
        - {name: B, value: "2"}' >"$E2E_TMP/v1.yaml"
deployment_yaml nginx:1.25 3 '        - {name: A, value: "1"}' >"$E2E_TMP/v2.yaml"
deployment_yaml nginx:1.25 3 '        - {name: A, value: "1"}' '      - name: sidecar
        image: busybox:1.36' >"$E2E_TMP/v3.yaml"

images() { jp deployment/app '{.spec.template.spec.containers[*].image}'; }
envnames() { jp deployment/app '{.spec.template.spec.containers[0].env[*].name}'; }

# --- apply, re-apply -------------------------------------------------------------------
expect_contains "apply -f creates" "deployment.apps/app created" k apply -f "$E2E_TMP/v1.yaml"
expect_output "created with replicas 2" 2 jp deployment/app '{.spec.replicas}'
expect_output "created with image nginx:1.24" nginx:1.24 images
expect_output "created with env A and B" "A B" envnames
expect_contains "apply stores the last-applied-configuration annotation" '"image":"nginx:1.24"' \
	jp deployment/app '{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}'

expect_contains "re-apply of the same manifest is unchanged" "deployment.apps/app unchanged" \
	k apply -f "$E2E_TMP/v1.yaml"
expect_contains "re-apply of a changed manifest is configured" "deployment.apps/app configured" \
	k apply -f "$E2E_TMP/v2.yaml"
expect_output "re-apply changed the image" nginx:1.25 images
expect_output "re-apply removed env B" A envnames
expect_output "re-apply changed replicas to 3" 3 jp deployment/app '{.spec.replicas}'
ok "re-apply sends a strategic merge patch" \
	grep -q 'application/strategic-merge-patch+json' <(k apply -f "$E2E_TMP/v1.yaml" -v=8 2>&1)
ok "apply v2 again" k apply -f "$E2E_TMP/v2.yaml"
ok "apply adds a second container" k apply -f "$E2E_TMP/v3.yaml"
expect_output "containers are merged by name" "nginx:1.25 busybox:1.36" images
ok "apply without the sidecar" k apply -f "$E2E_TMP/v2.yaml"
expect_output "the sidecar container is removed" nginx:1.25 images

# A field set by another client survives apply (three-way merge).
ok "label the deployment outside the manifest" k label deployment app owner=ops
ok "re-apply after the label" k apply -f "$E2E_TMP/v2.yaml"
expect_output "a label set by another client survives apply" ops \
	jp deployment/app '{.metadata.labels.owner}'

# --- patch -----------------------------------------------------------------------------------
ok "patch (strategic by default) replaces one container's image" \
	k patch deployment app -p '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.26"}]}}}}'
expect_output "strategic patch changed the image" nginx:1.26 images
expect_output "strategic patch kept the container's env (merge by name)" A envnames
ok "patch --type=strategic" k patch deployment app --type=strategic -p '{"spec":{"replicas":2}}'
expect_output "strategic patch set replicas" 2 jp deployment/app '{.spec.replicas}'
ok "patch --type=merge" k patch deployment app --type=merge -p '{"metadata":{"labels":{"patched":"merge"}}}'
expect_output "merge patch added a label" merge jp deployment/app '{.metadata.labels.patched}'
ok "patch --type=merge with null deletes" \
	k patch deployment app --type=merge -p '{"metadata":{"labels":{"patched":null}}}'
expect_output "merge patch null removed the label" "" jp deployment/app '{.metadata.labels.patched}'
ok "patch --type=json replace" \
	k patch deployment app --type=json -p '[{"op":"replace","path":"/spec/replicas","value":4}]'
expect_output "json patch set replicas" 4 jp deployment/app '{.spec.replicas}'
ok "patch --type=json add" \
	k patch deployment app --type=json -p '[{"op":"add","path":"/metadata/annotations/jp","value":"yes"}]'
expect_output "json patch added an annotation" yes jp deployment/app '{.metadata.annotations.jp}'
ok "patch --type=json with a failing test op is refused" \
	not k patch deployment app --type=json -p '[{"op":"test","path":"/spec/replicas","value":99},{"op":"replace","path":"/spec/replicas","value":99}]'
expect_output "refused json patch changed nothing" 4 jp deployment/app '{.spec.replicas}'
expect_fail_with "patch of a missing object says NotFound" "not found" \
	k patch deployment ghost --type=merge -p '{"spec":{"replicas":1}}'

# --- the status subresource ----------------------------------------------------------------------
cat >"$E2E_TMP/svc.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  selector: {app: app}
  ports: [{port: 80}]
EOF
ok "create a LoadBalancer service" k create -f "$E2E_TMP/svc.yaml"
ok "patch --subresource=status" k patch service lb --subresource=status --type=merge \
	-p '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}},"spec":{"ports":[{"port":81}]}}'
expect_output "the status patch set the status" 192.0.2.10 \
	jp service/lb '{.status.loadBalancer.ingress[0].ip}'
expect_output "the status patch left the spec alone" 80 jp service/lb '{.spec.ports[0].port}'
ok "patch the main resource with a status" k patch service lb --type=merge \
	-p '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.99"}]}},"metadata":{"labels":{"seen":"yes"}}}'
expect_output "a write to the main resource leaves the status alone" 192.0.2.10 \
	jp service/lb '{.status.loadBalancer.ingress[0].ip}'
expect_output "the rest of that write is kept" yes jp service/lb '{.metadata.labels.seen}'
ok "delete the service" k delete service lb

# --- scale --------------------------------------------------------------------------------------
expect_contains "scale deployment --replicas=5" "scaled" k scale deployment app --replicas=5
expect_output "scaled to 5" 5 jp deployment/app '{.spec.replicas}'
expect_fail_with "scale --current-replicas with a wrong value is refused" "Expected replicas to be 3" \
	k scale deployment app --current-replicas=3 --replicas=1

# --- edit ------------------------------------------------------------------------------------------
cat >"$E2E_TMP/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/^  replicas: 5$/  replicas: 6/' "$1"
EOF
chmod +x "$E2E_TMP/editor.sh"
expect_contains "edit with EDITOR set to a sed script" "edited" \
	env KUBE_EDITOR="$E2E_TMP/editor.sh" EDITOR="$E2E_TMP/editor.sh" \
	timeout 40 "$KUBECTL" --kubeconfig="$KUBECONFIG" --request-timeout=10s \
	--cache-dir="$E2E_TMP/kube-cache" edit deployment app
expect_output "edit changed replicas to 6" 6 jp deployment/app '{.spec.replicas}'

# --- diff and dry runs ----------------------------------------------------------------------------
deployment_yaml nginx:1.26 6 '        - {name: A, value: "1"}' >"$E2E_TMP/same.yaml"
ok "apply the current state" k apply -f "$E2E_TMP/same.yaml"
deployment_yaml nginx:1.27 6 '        - {name: A, value: "1"}' >"$E2E_TMP/changed.yaml"
_run k diff -f "$E2E_TMP/changed.yaml"
is "$?" 1 "diff -f of a changed manifest exits 1"
like "$OUT" "+        image: nginx:1.27" "diff shows the new image"
like "$OUT" "-        image: nginx:1.26" "diff shows the old image"
_run k diff -f "$E2E_TMP/same.yaml"
rc=$?
is "$rc" 0 "diff -f of an unchanged manifest exits 0"
[ "$rc" = 0 ] || diag "$ERR"
is "$OUT" "" "diff of an unchanged manifest prints nothing"
expect_output "diff did not change the object" nginx:1.26 images

expect_contains "apply --dry-run=server of a change" "(server dry run)" \
	k apply --dry-run=server -f "$E2E_TMP/changed.yaml"
expect_output "server dry run did not persist the change" nginx:1.26 images
sed 's/name: app$/name: dry/' "$E2E_TMP/changed.yaml" >"$E2E_TMP/dry.yaml"
expect_contains "apply --dry-run=server of a new object" "(server dry run)" \
	k apply --dry-run=server -f "$E2E_TMP/dry.yaml"
expect_fail_with "server dry run did not create the object" "not found" k get deployment dry
expect_contains "create -f --dry-run=server" "(server dry run)" \
	k create --dry-run=server -f - <<<'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"drycm"}}'
expect_fail_with "create dry run did not persist" "not found" k get configmap drycm

# --- replace and rollout restart ------------------------------------------------------------------
deployment_yaml nginx:1.26 2 '        - {name: R, value: "1"}' >"$E2E_TMP/replace.yaml"
expect_contains "replace -f (PUT)" "deployment.apps/app replaced" k replace -f "$E2E_TMP/replace.yaml"
expect_output "replace set replicas and env" "2 R" \
	jp deployment/app '{.spec.replicas} {.spec.template.spec.containers[0].env[*].name}'
uid_before=$(jp deployment/app '{.metadata.uid}')
expect_contains "replace --force (delete and create)" "replaced" \
	k replace --force -f "$E2E_TMP/replace.yaml" --timeout=30s
uid_after=$(jp deployment/app '{.metadata.uid}')
ok "replace --force made a new object (new uid)" test -n "$uid_after" -a "$uid_after" != "$uid_before"
gen=$(jp deployment/app '{.metadata.generation}')
expect_contains "rollout restart" "restarted" k rollout restart deployment app
ok "rollout restart stamps the pod template" \
	test -n "$(jp deployment/app '{.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}')"
expect_output "rollout restart bumps the generation" $((gen + 1)) jp deployment/app '{.metadata.generation}'

# --- several objects in one file ----------------------------------------------------------------------
cat >"$E2E_TMP/multi.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: multi-a}
data: {x: "1"}
---
apiVersion: v1
kind: Service
metadata: {name: multi-svc}
spec:
  selector: {app: app}
  ports:
  - port: 80
    targetPort: 8080
EOF
ok "apply a file with two documents" k apply -f "$E2E_TMP/multi.yaml"
expect_output "both objects exist" "configmap/multi-a
service/multi-svc" k get configmap/multi-a service/multi-svc -o name
expect_output "service port stored" 8080 jp service/multi-svc '{.spec.ports[0].targetPort}'
ok "delete -f removes them" k delete -f "$E2E_TMP/multi.yaml" --timeout=20s
expect_fail_with "the configmap is gone" "not found" k get configmap multi-a
expect_fail_with "the service is gone" "not found" k get service multi-svc

stop_server_cleanly
done_testing
