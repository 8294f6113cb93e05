#!/bin/bash
# tests/e2e/test_kubectl_basic.sh - everyday kubectl against a fresh server:
# the admin kubeconfig, built-in namespaces, discovery (api-resources,
# explain), create/get in every output format, selectors, describe, label,
# annotate and delete with each cascade mode.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

# --- the server as a user first meets it -----------------------------------------
ok "server wrote its admin kubeconfig into the data dir" test -s "$E2E_DATA/kubeconfig"
like "$(cat "$E2E_DATA/kubeconfig" 2>/dev/null)" "http://127.0.0.1:$E2E_PORT" \
	"kubeconfig points at http://127.0.0.1:<port>"
like "$(cat "$E2E_TMP/server.log")" "$E2E_DATA/kubeconfig" "server log names the kubeconfig path"
expect_output "GET /readyz answers ok" ok curl -s --max-time 5 "$E2E_URL/readyz"

for ns in default kube-system kube-public; do
	expect_output "namespace $ns exists at start" "$ns" \
		k get namespace "$ns" -o 'jsonpath={.metadata.name}'
done

expect_contains "kubectl version shows the server's version" "Server Version: v1." k version
expect_contains "kubectl cluster-info names the server" "running at $E2E_URL" k cluster-info

# --- discovery -----------------------------------------------------------------------
res=$(k api-resources 2>&1)
ok "api-resources lists pods with short name po" \
	grep -qE '^pods[[:space:]]+po[[:space:]]+v1[[:space:]]+true[[:space:]]+Pod$' <<<"$res"
ok "api-resources lists deployments with short name deploy" \
	grep -qE '^deployments[[:space:]]+deploy[[:space:]]+apps/v1[[:space:]]+true[[:space:]]+Deployment$' <<<"$res"
ok "api-resources lists namespaces (ns) as cluster-scoped" \
	grep -qE '^namespaces[[:space:]]+ns[[:space:]]+v1[[:space:]]+false[[:space:]]+Namespace$' <<<"$res"
expect_contains "GET /version has a gitVersion" '"gitVersion"' k get --raw /version
expect_contains "GET /api lists v1" '"v1"' k get --raw /api
expect_contains "GET /apis lists the apps group" '"apps"' k get --raw /apis
expect_contains "GET /openapi/v3 lists group-version paths" '"apis/apps/v1"' k get --raw /openapi/v3
expect_contains "GET /openapi/v2 as JSON is a Swagger 2.0 document" '"swagger"' \
	curl -s --max-time 10 -H 'Accept: application/json' "$E2E_URL/openapi/v2"
api GET /openapi/v2 -H 'Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf'
is "$HTTP_CODE" 200 "GET /openapi/v2 as protobuf (kubectl's validation fallback) answers 200"
expect_output "GET /livez answers ok" ok curl -s --max-time 5 "$E2E_URL/livez"
expect_output "GET /healthz answers ok" ok curl -s --max-time 5 "$E2E_URL/healthz"
expect_contains "explain deployment.spec mentions replicas" "replicas" k explain deployment.spec
expect_output "short names work (get deploy, cm)" "" k get deploy,cm -n kube-public -o name

# --- create: namespace, configmap, secret ---------------------------------------------
# kubectl's generators (create namespace/configmap/secret) use the typed
# client; when one fails, the object is made from YAML so that the tests
# after it still test what they are about.
expect_contains "create namespace" "namespace/e2e created" k create namespace e2e ||
	mk_ns e2e >/dev/null 2>&1
expect_output "new namespace is Active" Active k get ns e2e -o 'jsonpath={.status.phase}'
expect_contains "create configmap --from-literal" "configmap/cm1 created" \
	k create configmap cm1 -n e2e --from-literal=greeting=hello --from-literal=count=3 ||
	mk_cm cm1 e2e greeting=hello count=3 >/dev/null 2>&1
expect_output "configmap data is stored" "hello 3" \
	k get configmap cm1 -n e2e -o 'jsonpath={.data.greeting} {.data.count}'
expect_contains "create secret generic --from-literal" "secret/s1 created" \
	k create secret generic s1 -n e2e --from-literal=password=s3cret ||
	k create -f - >/dev/null 2>&1 <<<'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s1","namespace":"e2e"},"type":"Opaque","data":{"password":"czNjcmV0"}}'
expect_contains "secret data is base64 in -o json" '"password": "czNjcmV0"' \
	k get secret s1 -n e2e -o json
expect_output "secret type is Opaque" Opaque k get secret s1 -n e2e -o 'jsonpath={.type}'
expect_fail_with "object in a missing namespace is refused (NotFound)" \
	'namespaces "nope" not found' \
	mk_cm lost nope a=b
like "$ERR" "NotFound" "missing namespace error is a NotFound"
expect_fail_with "getting a missing object says NotFound" 'configmaps "ghost" not found' \
	k get configmap ghost -n e2e

# --- workloads to look at ---------------------------------------------------------------------
cat >"$E2E_TMP/objects.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web, tier: frontend}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  namespace: default
  labels: {app: solo}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-default
  namespace: default
data: {k: v}
EOF
ok "create a deployment, a pod and a configmap from one file" k create -f "$E2E_TMP/objects.yaml"

# --- get in every format ---------------------------------------------------------------------------
expect_contains "get -o yaml" "kind: Deployment" k get deployment web -o yaml
like "$OUT" "image: nginx:1.25" "get -o yaml shows the spec"
expect_contains "get -o json" '"kind": "Deployment"' k get deployment web -o json
like "$OUT" '"replicas": 2' "get -o json shows the spec"
expect_contains "get deployment -o wide has CONTAINERS and IMAGES columns" "IMAGES" \
	k get deployment web -o wide
like "$OUT" "nginx:1.25" "get deployment -o wide shows the image"
like "$OUT" "app=web" "get deployment -o wide shows the selector"
expect_contains "get pods -o wide has a NODE column" "NODE" k get pod solo -o wide
expect_contains "plain get prints a table with NAME" "NAME" k get pods
like "$OUT" "solo" "plain get lists the pod"
expect_output "get -l app=solo" "pod/solo" k get pods -l app=solo -o name
expect_output "get -l with a set-based selector" "pod/solo" k get pods -l 'app in (solo,other)' -o name
# (the Deployment's pods, app=web, are listed: only solo must be absent)
_run k get pods -l 'app!=solo' -o name
unlike "$OUT" "pod/solo" "get -l app!=solo excludes the pod"
expect_output "get --field-selector metadata.name=cm1" "configmap/cm1" \
	k get configmaps -n e2e --field-selector metadata.name=cm1 -o name
expect_output "get --field-selector metadata.name!=cm1 excludes it" "" \
	k get configmaps -n e2e --field-selector metadata.name!=cm1 -o name
expect_contains "get -A lists objects in all namespaces" "e2e/cm1" \
	k get configmaps -A -o 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'
like "$OUT" "default/cfg-default" "get -A includes the default namespace"
expect_contains "get -A table has a NAMESPACE column" "NAMESPACE" k get configmaps -A

# --- paging: kubectl lists in chunks with limit and continue ---------------------------------
ok "create namespace page" mk_ns page
for i in $(seq 1 10); do
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: page-%02d}\ndata: {i: "%d"}\n---\n' "$i" $((11 - i))
done >"$E2E_TMP/page.yaml"
ok "create 10 configmaps" k create -n page -f "$E2E_TMP/page.yaml"
_run k get configmaps -n page --chunk-size=3 -o name -v=6
names=$(grep -c '^configmap/page-' <<<"$OUT")
continues=$(grep -c 'continue=' <<<"$ERR")
is "$names" 10 "get --chunk-size=3 lists all 10 objects"
ok "kubectl followed continue tokens" test "$continues" -ge 3
api GET "/api/v1/namespaces/page/configmaps?limit=4"
token=$(json_str continue)
is "$(grep -o '"name":"page-[0-9]*"' <<<"$BODY" | tr -d '\n')" \
	'"name":"page-01""name":"page-02""name":"page-03""name":"page-04"' \
	"limit=4 returns the first four in name order"
ok "a partial list carries a continue token" test -n "$token"
api GET "/api/v1/namespaces/page/configmaps?limit=4&continue=$token"
is "$(grep -o '"name":"page-[0-9]*"' <<<"$BODY" | tr -d '\n')" \
	'"name":"page-05""name":"page-06""name":"page-07""name":"page-08"' \
	"the continue token returns the next four"
expect_output "get --chunk-size with a field selector" "configmap/page-03" \
	k get configmaps -n page --chunk-size=2 --field-selector metadata.name=page-03 -o name

expect_contains "get --show-labels shows the labels column" "app=solo" k get pod solo --show-labels
_run k get configmaps -n page --sort-by=.data.i --no-headers
is "$(awk '{print $1}' <<<"$OUT" | tr '\n' ' ')" \
	"page-10 page-09 page-08 page-07 page-06 page-05 page-04 page-03 page-02 page-01 " \
	"get --sort-by on a data field orders the rows (not by name)"
_run k get pod solo --no-headers -o 'custom-columns=N:.metadata.name,I:.spec.containers[0].image'
is "$(tr -s ' ' <<<"$OUT")" "solo busybox:1.36" "get -o custom-columns"
expect_contains "get all lists the deployment (category all)" "deployment.apps/web" k get all -o name
like "$OUT" "pod/solo" "get all lists the pod"
unlike "$OUT" "configmap/" "get all leaves out configmaps"

# --- describe ---------------------------------------------------------------------------------------
expect_contains "describe deployment" "Name:" k describe deployment web
like "$OUT" "Namespace:" "describe deployment shows Namespace:"
like "$OUT" "Labels:" "describe deployment shows Labels:"
like "$OUT" "Replicas:" "describe deployment shows Replicas:"
expect_contains "describe pod" "Name:" k describe pod solo
like "$OUT" "Namespace:" "describe pod shows Namespace:"
like "$OUT" "Labels:" "describe pod shows Labels:"
like "$OUT" "busybox:1.36" "describe pod shows the image"

# --- label and annotate --------------------------------------------------------------------------------
ok "label pod" k label pod solo tier=backend
expect_output "label is stored" backend k get pod solo -o 'jsonpath={.metadata.labels.tier}'
expect_output "the new label selects the pod" "pod/solo" k get pods -l tier=backend -o name
expect_fail_with "label without --overwrite does not replace a value" "already has a value" \
	k label pod solo tier=other
ok "label --overwrite" k label pod solo tier=other --overwrite
expect_output "overwritten label is stored" other k get pod solo -o 'jsonpath={.metadata.labels.tier}'
ok "label tier- removes it" k label pod solo tier-
expect_output "removed label is gone" "" k get pod solo -o 'jsonpath={.metadata.labels.tier}'
ok "annotate pod" k annotate pod solo note=hello
expect_output "annotation is stored" hello k get pod solo -o 'jsonpath={.metadata.annotations.note}'
ok "annotate note- removes it" k annotate pod solo note-
expect_output "removed annotation is gone" "" k get pod solo -o 'jsonpath={.metadata.annotations.note}'

# --- delete ----------------------------------------------------------------------------------------------
expect_contains "delete configmap" 'configmap "cm1" deleted' k delete configmap cm1 -n e2e
expect_fail_with "deleted configmap is gone" 'not found' k get configmap cm1 -n e2e
expect_fail_with "deleting it again says NotFound" 'not found' k delete configmap cm1 -n e2e
ok "delete --ignore-not-found of a missing object succeeds" \
	k delete configmap cm1 -n e2e --ignore-not-found

# Paused from the start, these Deployments get no ReplicaSet (as in
# Kubernetes), so their deletion needs no garbage collector: this test is
# about kubectl's cascade flags; cascading to dependents is the garbage
# collector's test.
paused_deploy() {
	cat <<EOF | k create -f -
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, namespace: default, labels: {app: $1}}
spec:
  paused: true
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec: {containers: [{name: main, image: nginx:1.25}]}
EOF
}
ok "create deployments for cascade deletes" paused_deploy orphaned
ok "create a second deployment" paused_deploy foreground
expect_contains "create deployment (generator)" "deployment.apps/generated created" \
	k create deployment generated --image=nginx:1.25 --replicas=2
expect_output "generated deployment has the image and replicas" "nginx:1.25 2" \
	jp deployment/generated '{.spec.template.spec.containers[0].image} {.spec.replicas}'

expect_contains "delete --cascade=orphan is accepted" 'deleted' \
	k delete deployment orphaned --cascade=orphan --timeout=20s
ok "orphan-deleted deployment is gone" wait_for 15 not k get deployment orphaned
expect_contains "delete --cascade=foreground is accepted" 'deleted' \
	k delete deployment foreground --cascade=foreground --timeout=20s
ok "foreground-deleted deployment is gone" wait_for 15 not k get deployment foreground
ok "delete the generated deployment" k delete deployment generated --ignore-not-found --timeout=20s
expect_contains "delete --cascade=background (default) deletes the deployment" 'deleted' \
	k delete deployment web --timeout=20s
ok "background-deleted deployment is gone" wait_for 15 not k get deployment web
ok "delete pod by label" k delete pods -l app=solo --timeout=20s
expect_output "pods selected by the label are gone" "" k get pods -l app=solo -o name
expect_contains "delete namespace" 'namespace "e2e" deleted' k delete namespace e2e --wait=false
ok "deleted namespace is gone, with its objects" wait_for 30 not k get namespace e2e
expect_fail_with "objects of a deleted namespace are gone" "not found" k get secret s1 -n e2e

stop_server_cleanly
done_testing
