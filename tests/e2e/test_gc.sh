#!/bin/bash
# tests/e2e/test_gc.sh - the garbage collector through kubectl: dependents
# (ConfigMaps, Secrets, ... naming their owner's uid in ownerReferences)
# go with their owner under `kubectl delete --cascade=background|foreground`,
# stay without the reference under --cascade=orphan; foreground deletion
# keeps the owner (deletionTimestamp, foregroundDeletion) until every
# dependent with blockOwnerDeletion is gone; owners that never existed or
# live in another namespace count as absent; a restart catches up.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"
ok "namespace gc" mk_ns gc

uid_of() { k get "$@" -o 'jsonpath={.metadata.uid}'; }

# dep KIND NAME OWNER-KIND OWNER-NAME OWNER-UID [BLOCK] [FINALIZER] [OWNER-API]
dep() {
	local fin=
	[ -n "$7" ] && fin="  finalizers: [\"$7\"]"
	cat <<EOF | k create -f -
apiVersion: v1
kind: $1
metadata:
  name: $2
  namespace: gc
$fin
  ownerReferences:
  - apiVersion: ${8:-v1}
    kind: $3
    name: $4
    uid: $5
    blockOwnerDeletion: ${6:-false}
EOF
}

gone() { not k get "$@"; }
# terminating ARGS...: the object has a deletionTimestamp
terminating() { [ -n "$(k get "$@" -o 'jsonpath={.metadata.deletionTimestamp}' 2>/dev/null)" ]; }
# owners_are NAME WANT: the names in a configmap's ownerReferences
owners_are() { [ "$(k get cm "$1" -n gc -o 'jsonpath={.metadata.ownerReferences[*].name}')" = "$2" ]; }

# --- background (kubectl's default) ---------------------------------------------------
ok "owner configmap" mk_cm owner gc
OWNER=$(uid_of cm owner -n gc)
ok "a configmap owned by it" dep ConfigMap child ConfigMap owner "$OWNER"
ok "a secret owned by it" dep Secret child-secret ConfigMap owner "$OWNER"
CHILD=$(uid_of cm child -n gc)
ok "a configmap owned by the child" dep ConfigMap grandchild ConfigMap child "$CHILD"
expect_contains "delete the owner (background)" 'configmap "owner" deleted' k delete cm owner -n gc
ok "its configmap dependent is collected" wait_for 10 gone cm child -n gc
ok "its secret dependent is collected" wait_for 10 gone secret child-secret -n gc
ok "the dependent's dependent is collected" wait_for 10 gone cm grandchild -n gc

# --- foreground: the owner waits for blocking dependents ---------------------------------
ok "owner for foreground deletion" mk_cm fg gc
FG=$(uid_of cm fg -n gc)
ok "a blocking dependent held by a finalizer" dep ConfigMap fg-block ConfigMap fg "$FG" true example.com/hold
ok "a non-blocking dependent" dep ConfigMap fg-free ConfigMap fg "$FG" false
expect_contains "delete --cascade=foreground --wait=false" 'configmap "fg" deleted' \
	k delete cm fg -n gc --cascade=foreground --wait=false
ok "the non-blocking dependent is deleted" wait_for 10 gone cm fg-free -n gc
ok "the blocking dependent is being deleted" wait_for 10 terminating cm fg-block -n gc
sleep 1
expect_contains "the owner is still there, marked for deletion" "deletionTimestamp:" \
	k get cm fg -n gc -o yaml
like "$OUT" "- foregroundDeletion" "the owner carries the foregroundDeletion finalizer"
ok "the finalizer holding the dependent is removed" \
	k patch cm fg-block -n gc --type=merge -p '{"metadata":{"finalizers":null}}'
ok "the dependent goes" wait_for 10 gone cm fg-block -n gc
ok "then the owner goes" wait_for 10 gone cm fg -n gc

# a dependent without blockOwnerDeletion does not hold its owner back
ok "owner with a non-blocking held dependent" mk_cm fg2 gc
FG2=$(uid_of cm fg2 -n gc)
ok "its dependent, held by a finalizer" dep ConfigMap fg2-dep ConfigMap fg2 "$FG2" false example.com/hold
ok "delete --cascade=foreground returns once the owner is gone" \
	k delete cm fg2 -n gc --cascade=foreground --timeout=20s
expect_contains "the held dependent is terminating" "example.com/hold" k get cm fg2-dep -n gc -o yaml
like "$OUT" "deletionTimestamp:" "it has a deletionTimestamp"
ok "release it" k patch cm fg2-dep -n gc --type=merge -p '{"metadata":{"finalizers":null}}'
ok "it goes" wait_for 10 gone cm fg2-dep -n gc

# a chain: kubectl returns when the top is gone, which is after the bottom
ok "chain top" mk_cm top gc
TOP=$(uid_of cm top -n gc)
ok "chain middle (blocks the top)" dep ConfigMap middle ConfigMap top "$TOP" true
MID=$(uid_of cm middle -n gc)
ok "chain bottom (blocks the middle)" dep Secret bottom ConfigMap middle "$MID" true
ok "delete the top with --cascade=foreground (waits)" \
	k delete cm top -n gc --cascade=foreground --timeout=20s
expect_fail_with "the bottom was gone before the top" "not found" k get secret bottom -n gc
expect_fail_with "so was the middle" "not found" k get cm middle -n gc

# --- orphan: dependents stay, without the reference --------------------------------------
ok "owner for orphaning" mk_cm parent gc
PARENT=$(uid_of cm parent -n gc)
ok "first dependent" dep ConfigMap kept1 ConfigMap parent "$PARENT" true
ok "second dependent" dep Secret kept2 ConfigMap parent "$PARENT" false
expect_contains "delete --cascade=orphan" 'configmap "parent" deleted' \
	k delete cm parent -n gc --cascade=orphan --timeout=20s
expect_fail_with "the owner is gone" "not found" k get cm parent -n gc
expect_output "the first dependent stays, without ownerReferences" "kept1:" \
	k get cm kept1 -n gc -o 'jsonpath={.metadata.name}:{.metadata.ownerReferences}'
expect_output "the second dependent too" "kept2:" \
	k get secret kept2 -n gc -o 'jsonpath={.metadata.name}:{.metadata.ownerReferences}'

# --- absent owners ------------------------------------------------------------------------
ok "a dependent whose owner never existed" \
	dep ConfigMap stray ConfigMap nobody 0b6c2a1e-1111-4222-8333-944445555666
ok "is collected" wait_for 10 gone cm stray -n gc
ok "a dependent of a configmap that exists, with another uid" mk_cm same-name gc
ok "the dependent names it with a stale uid" \
	dep ConfigMap stale ConfigMap same-name 0b6c2a1e-2222-4222-8333-944445555666
ok "is collected as well" wait_for 10 gone cm stale -n gc
ok "the configmap it named stays" k get cm same-name -n gc

ok "namespace other" mk_ns other
ok "an owner in namespace other" mk_cm far other
FAR=$(uid_of cm far -n other)
ok "a dependent in gc naming it" dep ConfigMap cross ConfigMap far "$FAR"
ok "an owner in another namespace counts as absent" wait_for 10 gone cm cross -n gc
expect_contains "a Warning Event says why" "OwnerRefInvalidNamespace" \
	k get events -n gc --field-selector reason=OwnerRefInvalidNamespace
ok "the owner in the other namespace stays" k get cm far -n other

# two owners: one going leaves the reference to the other
ok "first owner" mk_cm o1 gc
ok "second owner" mk_cm o2 gc
O1=$(uid_of cm o1 -n gc)
O2=$(uid_of cm o2 -n gc)
ok "a dependent of both" k create -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: shared
  namespace: gc
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: o1, uid: $O1}
  - {apiVersion: v1, kind: ConfigMap, name: o2, uid: $O2}
EOF
ok "delete the first owner" k delete cm o1 -n gc
ok "the dependent keeps only the second owner" wait_for 10 owners_are shared o2
ok "the dependent is still there" k get cm shared -n gc
ok "delete the second owner" k delete cm o2 -n gc
ok "now the dependent is collected" wait_for 10 gone cm shared -n gc

# a cluster-scoped owner of a namespaced dependent
ok "a ClusterRole" k create clusterrole gc-owner --verb=get --resource=pods
ROLE=$(uid_of clusterrole gc-owner)
ok "a configmap owned by it" dep ConfigMap role-dep ClusterRole gc-owner "$ROLE" false "" rbac.authorization.k8s.io/v1
ok "delete the ClusterRole" k delete clusterrole gc-owner
ok "its namespaced dependent is collected" wait_for 10 gone cm role-dep -n gc

# --- pods on a node: the owner waits until the node's agent has removed them ------------
start_hollow 1 --ready-delay 100ms || bail_out "hollow node did not start"
ok "owner of pods" mk_cm pod-owner gc
POD_OWNER=$(uid_of cm pod-owner -n gc)
for p in p1 p2; do
	ok "pod $p owned by it (blockOwnerDeletion), on the hollow node" k create -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $p
  namespace: gc
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: pod-owner, uid: $POD_OWNER, blockOwnerDeletion: true}
spec:
  nodeName: hollow-0
  containers: [{name: c, image: busybox}]
EOF
done
phases_are() { [ "$(k get pods -n "$1" -o 'jsonpath={.items[*].status.phase}')" = "$2" ]; }
ok "the pods run" wait_for 20 phases_are gc "Running Running"
ok "delete the owner with --cascade=foreground (waits for the pods)" \
	k delete cm pod-owner -n gc --cascade=foreground --timeout=30s
expect_output "the pods were removed by their node before the owner went" "" \
	k get pods -n gc -o name
stop_hollow

# --- no garbage collector: dependents wait; a restart with it catches up ------------------
E2E_SERVER_ARGS="--plain-http --controllers none"
restart_server || bail_out "server did not restart without controllers"
ok "owner, with controllers off" mk_cm later gc
LATER=$(uid_of cm later -n gc)
ok "its dependent" dep ConfigMap later-dep ConfigMap later "$LATER"
ok "delete the owner" k delete cm later -n gc
sleep 1
ok "without a garbage collector the dependent stays" k get cm later-dep -n gc
E2E_SERVER_ARGS="--plain-http"
restart_server || bail_out "server did not restart"
ok "after a restart with the garbage collector it is collected" wait_for 15 gone cm later-dep -n gc

# --- Deployment -> ReplicaSet -> Pod, with only the garbage collector running -------------
# (the objects are written by hand, so no other controller's work is needed)
E2E_SERVER_ARGS="--plain-http --controllers garbage-collector --scheduler none"
restart_server || bail_out "server did not restart with the garbage collector alone"
start_hollow 1 --ready-delay 100ms || bail_out "hollow node did not start"
# chain NAME: a Deployment, a ReplicaSet it controls, two pods the ReplicaSet controls
chain() {
	ok "deployment $1" mk_deploy "$1" gc nginx:1.25 2
	local d rs
	d=$(uid_of deployment "$1" -n gc)
	ok "its replicaset" k create -f - <<EOF
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: $1-rs
  namespace: gc
  labels: {app: $1}
  ownerReferences:
  - {apiVersion: apps/v1, kind: Deployment, name: $1, uid: $d, controller: true, blockOwnerDeletion: true}
spec:
  replicas: 2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec: {containers: [{name: main, image: nginx:1.25}]}
EOF
	rs=$(uid_of rs "$1-rs" -n gc)
	for p in 1 2; do
		ok "its pod $p, on the hollow node" k create -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1-pod-$p
  namespace: gc
  labels: {app: $1}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: $1-rs, uid: $rs, controller: true, blockOwnerDeletion: true}
spec:
  nodeName: hollow-0
  containers: [{name: main, image: nginx:1.25}]
EOF
	done
	ok "the pods of $1 run" wait_for 20 phases_are gc "Running Running"
}
chain web
ok "kubectl delete deployment --cascade=foreground waits for the chain" \
	k delete deployment web -n gc --cascade=foreground --timeout=30s
expect_output "its replicaset and pods were gone before it" "" k get rs,pods -n gc -o name
chain api
ok "kubectl delete deployment (background)" k delete deployment api -n gc
ok "its replicaset is collected" wait_for 15 gone rs api-rs -n gc
no_pods() { local out; out=$(k get pods -n gc -o name) && [ -z "$out" ]; }
ok "then its pods, once their node removed them" wait_for 15 no_pods
stop_hollow

stop_server_cleanly
done_testing
