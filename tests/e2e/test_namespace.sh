#!/bin/bash
# tests/e2e/test_namespace.sh - deleting a namespace through kubectl: it
# turns Terminating and refuses new content, the namespace controller
# deletes what is in it and reports progress in the namespace's conditions
# (a pod on a node without an agent stays until its node lets it go, an
# object with a finalizer until the finalizer is removed), then removes the
# "kubernetes" finalizer through namespaces/NAME/finalize and the namespace
# goes. Without controllers a namespace stays Terminating, as in Kubernetes
# without a controller manager.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

gone() { not k get "$@"; }
ns_field() { k get ns "$1" -o "jsonpath=$2"; }
# cond NS TYPE: "STATUS REASON: MESSAGE" of a namespace condition
cond() {
	k get ns "$1" -o "jsonpath={.status.conditions[?(@.type==\"$2\")].status} {.status.conditions[?(@.type==\"$2\")].reason}: {.status.conditions[?(@.type==\"$2\")].message}"
}
cond_is() { [ "$(cond "$1" "$2")" = "$3" ]; }
finalizers_are() { [ "$(ns_field "$1" '{.spec.finalizers[*]}')" = "$2" ]; }

# --- namespaces the system needs ------------------------------------------------------------
for ns in default kube-system kube-public; do
	expect_fail_with "$ns may not be deleted" \
		"namespaces \"$ns\" is forbidden: this namespace may not be deleted" k delete ns "$ns"
done
expect_output "default is still Active" "Active" ns_field default '{.status.phase}'

# --- an empty namespace ------------------------------------------------------------------
ok "create an empty namespace" mk_ns empty
expect_output "a new namespace carries the kubernetes finalizer" "kubernetes" \
	ns_field empty '{.spec.finalizers[*]}'
ok "kubectl delete namespace waits until it is gone" k delete ns empty --timeout=20s
expect_fail_with "it is gone" "not found" k get ns empty

# --- a namespace with content --------------------------------------------------------------
ok "create namespace busy" mk_ns busy
ok "a configmap" mk_cm settings busy a=1
ok "a secret" k create secret generic token -n busy --from-literal=t=x
ok "a deployment (its object)" mk_deploy web busy nginx:1.25
ok "a pod with no node" k create -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: unbound, namespace: busy}
spec:
  containers: [{name: c, image: busybox}]
EOF
ok "a pod bound to a node that has no agent" k create -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: bound, namespace: busy}
spec:
  nodeName: ghost-node
  containers: [{name: c, image: busybox}]
EOF
ok "a configmap held by a finalizer" k create -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: held, namespace: busy, finalizers: [example.com/hold]}
EOF
expect_contains "delete the namespace" 'namespace "busy" deleted' k delete ns busy --wait=false

expect_contains "kubectl get ns shows it Terminating" "Terminating" k get ns busy
expect_contains "-o yaml shows the deletionTimestamp" "deletionTimestamp:" k get ns busy -o yaml
like "$OUT" "phase: Terminating" "and the Terminating phase"
ok "the configmap is deleted" wait_for 10 gone cm settings -n busy
ok "the secret is deleted" wait_for 10 gone secret token -n busy
ok "the deployment is deleted" wait_for 10 gone deployment web -n busy
ok "the pod without a node is deleted" wait_for 10 gone pod unbound -n busy
expect_contains "the pod on a node stops gracefully: still there" "Terminating" k get pod bound -n busy
ok "the content-remaining condition names the pods and the held configmap" \
	wait_for 10 cond_is busy NamespaceContentRemaining \
	"True SomeResourcesRemain: Some resources are remaining: configmaps. has 1 resource instances, pods. has 1 resource instances"
expect_output "the finalizers-remaining condition names the finalizer" \
	"True SomeFinalizersRemain: Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances" \
	cond busy NamespaceFinalizersRemaining
expect_output "deletion did not fail" \
	"False ContentDeleted: All content successfully deleted, may be waiting on finalization" \
	cond busy NamespaceDeletionContentFailure
expect_output "discovery did not fail" \
	"False ResourcesDiscovered: All resources successfully discovered" \
	cond busy NamespaceDeletionDiscoveryFailure
expect_output "group versions parsed" \
	"False ParsedGroupVersions: All legacy kube types successfully parsed" \
	cond busy NamespaceDeletionGroupVersionParsingFailure
expect_contains "kubectl describe shows the conditions" "SomeResourcesRemain" k describe ns busy
expect_fail_with "new content is refused" \
	'configmaps "late" is forbidden: unable to create new content in namespace busy because it is being terminated' \
	mk_cm late busy
expect_fail_with "deleting it again says the system is at work" \
	"The system is ensuring all content is removed from this namespace" k delete ns busy
ok "the namespace stays while content remains" k get ns busy
ok "the finalizer on the configmap is removed" \
	k patch cm held -n busy --type=merge -p '{"metadata":{"finalizers":null}}'
ok "the pod remains the only content" wait_for 10 cond_is busy NamespaceContentRemaining \
	"True SomeResourcesRemain: Some resources are remaining: pods. has 1 resource instances"
expect_output "no finalizers remain" \
	"False ContentHasNoFinalizers: All content-preserving finalizers finished" \
	cond busy NamespaceFinalizersRemaining
ok "the node lets its pod go (what its agent does)" \
	k delete pod bound -n busy --grace-period=0 --force
ok "then the namespace goes" wait_for 10 gone ns busy

# --- pods on a node with an agent: the namespace goes once the node removed them ----------
start_hollow 1 --ready-delay 100ms || bail_out "hollow node did not start"
ok "namespace apps" mk_ns apps
for p in a b c; do
	ok "pod $p, scheduled onto the hollow node" k create -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $p, namespace: apps}
spec:
  terminationGracePeriodSeconds: 30
  containers: [{name: c, image: busybox}]
EOF
done
phases_are() { [ "$(k get pods -n "$1" -o 'jsonpath={.items[*].status.phase}')" = "$2" ]; }
ok "the pods run" wait_for 20 phases_are apps "Running Running Running"
ok "kubectl delete namespace waits while the node stops the pods" \
	k delete ns apps --timeout=30s
expect_fail_with "the namespace is gone" "not found" k get ns apps
stop_hollow

# --- another finalizer in spec.finalizers; namespaces/NAME/finalize -------------------------
ok "a namespace with a finalizer of its own" k create -f - <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: custom}
spec:
  finalizers: [example.com/cleanup]
EOF
expect_output "the server adds the kubernetes finalizer" "example.com/cleanup kubernetes" \
	ns_field custom '{.spec.finalizers[*]}'
ok "a configmap in it" mk_cm c1 custom
ok "an update does not change spec.finalizers" \
	k patch ns custom --type=merge -p '{"spec":{"finalizers":[]}}'
expect_output "spec.finalizers unchanged" "example.com/cleanup kubernetes" \
	ns_field custom '{.spec.finalizers[*]}'
ok "delete it" k delete ns custom --wait=false
ok "the controller empties it and removes only its own finalizer" \
	wait_for 10 finalizers_are custom example.com/cleanup
expect_fail_with "its content is gone" "not found" k get cm c1 -n custom
expect_contains "the namespace waits for the other finalizer" "Terminating" k get ns custom
k get ns custom -o json | sed 's|"example.com/cleanup"||' >"$E2E_TMP/custom.json"
ok "the other party finalizes through namespaces/custom/finalize" \
	k replace --raw /api/v1/namespaces/custom/finalize -f "$E2E_TMP/custom.json"
ok "and the namespace goes" wait_for 10 gone ns custom

# --- without controllers: Terminating until a namespace controller runs -------------------
ok "namespace later" mk_ns later
ok "a configmap in it" mk_cm keep later
E2E_SERVER_ARGS="--plain-http --controllers none"
restart_server || bail_out "server did not restart without controllers"
ok "delete it with no controller running" k delete ns later --wait=false
sleep 1
expect_contains "it stays Terminating" "Terminating" k get ns later
ok "its content stays" k get cm keep -n later
E2E_SERVER_ARGS="--plain-http"
restart_server || bail_out "server did not restart"
ok "with the namespace controller back, it goes" wait_for 15 gone ns later

stop_server_cleanly
done_testing
