#!/bin/bash
# tests/e2e/test_deployment.sh - Deployments and ReplicaSets through the
# real kubectl against a real `skiff server` running controller-replicaset,
# controller-deployment and scheduler-default, with pods on hollow nodes:
# convergence of 10 replicas, a rolling update that keeps replicas -
# maxUnavailable pods ready (checked from a watch recorded during the
# rollout), rollout undo/history/restart/pause/resume,
# kubectl scale, a deleted pod replaced, Recreate, a rollout that cannot
# become ready exceeding its progress deadline, proportional scaling
# mid-rollout, revisionHistoryLimit, ReplicaSet adoption and release,
# ReplicaFailure when pods are refused, a 63-character Deployment name,
# (with the garbage collector) deleting a Deployment removes its
# ReplicaSets and pods, and both controllers' workers settings.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# The scheduler binds pods to three hollow nodes, whose kubelet reports
# them Running and Ready after 200 ms; a pod annotated
# hollow.skiff.io/ready: "false" runs but never becomes Ready. The server
# logs at info level, where the controllers say how many workers they run.
E2E_LOG_LEVEL=info
AUDIT="$E2E_TMP/audit.log"
start_server --controllers replicaset,deployment,garbage-collector --audit-log-path "$AUDIT" \
	--plugin-settings "controller-replicaset.workers=3;controller-deployment.workers=2" ||
	bail_out "server did not start"
start_hollow 3 --ready-delay 200ms || bail_out "hollow nodes did not start"

# deploy NS NAME IMAGE REPLICAS [EXTRA SPEC YAML, indented 2]
deploy() {
	mk_ns "$1" >/dev/null 2>&1
	cat <<EOF | k apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: $2, namespace: $1}
spec:
  replicas: $4
  selector:
    matchLabels: {app: $2}
$5
  template:
    metadata:
      labels: {app: $2}
    spec:
      containers:
      - {name: main, image: $3}
EOF
}

field() { jp "$@" 2>/dev/null; }
ready_is() { [ "$(field "deploy/$3" '{.status.readyReplicas}' -n "$1")" = "$2" ]; }
pods_of() { k get pods -n "$1" -l "app=$2" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }
pod_count() { [ "$(pods_of "$1" "$2" | grep -c .)" = "$3" ]; }
images_are() {
	local got
	got=$(k get pods -n "$1" -l "app=$2" -o jsonpath='{range .items[*]}{.spec.containers[0].image}{"\n"}{end}' | sort -u)
	[ "$got" = "$3" ] && pod_count "$1" "$2" "$4"
}

# --- a Deployment of 10 replicas converges ------------------------------------
deploy roll web img:a 10 "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 3, maxUnavailable: 2}}"
ok "rollout status of a new Deployment of 10 succeeds" k rollout status deploy/web -n roll --timeout=60s
is "$(field deploy/web '{.status.readyReplicas}/{.status.availableReplicas}/{.status.updatedReplicas}/{.status.replicas}' -n roll)" \
	"10/10/10/10" "status: ready, available, updated and replicas are 10"
RS1=$(k get rs -n roll -l app=web -o jsonpath='{.items[0].metadata.name}')
HASH=$(field "rs/$RS1" '{.metadata.labels.pod-template-hash}' -n roll)
is "$RS1" "web-$HASH" "the ReplicaSet is named <deployment>-<pod-template-hash>"
like "$(field "rs/$RS1" '{.spec.selector.matchLabels}' -n roll)" "\"pod-template-hash\":\"$HASH\"" \
	"the ReplicaSet's selector carries the hash"
is "$(field "rs/$RS1" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion}' -n roll)" \
	"Deployment/true/true" "the ReplicaSet is controlled by the Deployment"
P=$(pods_of roll web | head -n 1)
is "$(field "pod/$P" '{.metadata.labels.pod-template-hash} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}' -n roll)" \
	"$HASH ReplicaSet/$RS1" "pods carry the hash label and are controlled by the ReplicaSet"
like "$(field "pod/$P" '{.metadata.generateName}' -n roll)" "$RS1-" "pods are named from generateName <rs>-"
is "$(field deploy/web '{.metadata.annotations.deployment\.kubernetes\.io/revision}' -n roll)" "1" \
	"the Deployment is at revision 1"
like "$(k get events -n roll --field-selector involvedObject.kind=Deployment -o jsonpath='{range .items[*]}{.reason}: {.message} [{.source.component}]{"\n"}{end}')" \
	"ScalingReplicaSet: Scaled up replica set $RS1 from 0 to 10 [deployment-controller]" \
	"Event: Scaled up replica set ... from 0 to 10"
like "$(k get events -n roll --field-selector involvedObject.kind=ReplicaSet -o jsonpath='{range .items[*]}{.reason} [{.source.component}]{"\n"}{end}')" \
	"SuccessfulCreate [replicaset-controller]" "Event: SuccessfulCreate from the replicaset-controller"
like "$(k get deploy web -n roll)" "web    10/10   10           10" "kubectl get deploy shows 10/10 ready, up to date, available"
like "$(k get deploy web -n roll -o jsonpath='{.status.conditions[?(@.type=="Available")].reason} {.status.conditions[?(@.type=="Progressing")].reason}')" \
	"MinimumReplicasAvailable NewReplicaSetAvailable" "conditions: Available and Progressing (NewReplicaSetAvailable)"

# --- a rolling update never drops below replicas - maxUnavailable ready pods ------
WATCH=$E2E_TMP/rolling.watch
k get pods -n roll -l app=web -w --output-watch-events \
	-o jsonpath='{.type}|{.object.metadata.name}|{.object.metadata.deletionTimestamp}|{.object.spec.containers[0].image}|{.object.status.conditions[?(@.type=="Ready")].status}{"\n"}' \
	>"$WATCH" 2>/dev/null &
WATCH_PID=$!
E2E_BG_PIDS+=("$WATCH_PID")
wait_for 10 test -s "$WATCH"
ok "kubectl set image starts a rollout" k set image deploy/web -n roll main=img:b
ok "rollout status waits for the update and succeeds" k rollout status deploy/web -n roll --timeout=60s
ok "all 10 pods run image B afterwards" wait_for 20 images_are roll web img:b 10
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
# Replay the watch: after the initial 10 pods, count Ready pods that are
# not being deleted after every event.
MIN_READY=$(awk -F'|' '
	{ live = ($1 != "DELETED" && $3 == "" && $5 == "True"); if (live) r[$2] = 1; else delete r[$2]
	  n = 0; for (p in r) n++
	  if (NR >= 10 && (min == "" || n < min)) min = n
	  if ($4 == "img:b" && $1 == "ADDED") saw_b = 1 }
	END { print (saw_b ? min : "no-b") }' "$WATCH")
diag "ready pods during the rollout: at least $MIN_READY ($(wc -l <"$WATCH") watch events)"
ok "the watch saw new pods and never fewer than 10 - maxUnavailable (2) ready pods" \
	test "$MIN_READY" != "no-b" -a "$MIN_READY" -ge 8
like "$(k get events -n roll --field-selector involvedObject.kind=Deployment -o jsonpath='{range .items[*]}{.message}{"\n"}{end}')" \
	"Scaled down replica set $RS1 from" "Event: the old ReplicaSet was scaled down"
is "$(field "rs/$RS1" '{.spec.replicas}' -n roll)" "0" "the old ReplicaSet is kept at 0 replicas"

# --- history and undo -------------------------------------------------------------
HIST=$(k rollout history deploy/web -n roll)
like "$HIST" "1         <none>" "rollout history lists revision 1"
like "$HIST" "2         <none>" "rollout history lists revision 2"
like "$(k rollout history deploy/web -n roll --revision=1)" "Image:	img:a" \
	"rollout history --revision=1 shows the old template"
ok "rollout undo" k rollout undo deploy/web -n roll
ok "rollout status after undo succeeds" k rollout status deploy/web -n roll --timeout=60s
ok "rollout undo brings image A back on all 10 pods" wait_for 20 images_are roll web img:a 10
is "$(field "rs/$RS1" '{.spec.replicas} {.metadata.annotations.deployment\.kubernetes\.io/revision} {.metadata.annotations.deployment\.kubernetes\.io/revision-history}' -n roll)" \
	"10 3 1" "the first ReplicaSet is back, as revision 3 (history 1)"
is "$(field deploy/web '{.metadata.annotations.deployment\.kubernetes\.io/revision}' -n roll)" "3" \
	"the Deployment is at revision 3"
# each new revision is patched onto the Deployment, then its status is
# written: with the version that patch made, not the one read before it
STATUS_409=$(grep -c '"requestURI":"/apis/apps/v1/namespaces/roll/deployments/web/status[^"]*".*"code":409' "$AUDIT")
is "$STATUS_409" "0" "the rollouts wrote the Deployment's status without a conflict (audit log)"
is "$(k get rs -n roll -l app=web -o name | wc -l)" "2" "undo made no third ReplicaSet"
ok "rollout undo --to-revision=2" k rollout undo deploy/web -n roll --to-revision=2
ok "rollout --to-revision=2 brings image B back" wait_for 30 images_are roll web img:b 10

# --- a deleted pod is replaced --------------------------------------------------------
ok "rollout status" k rollout status deploy/web -n roll --timeout=60s
VICTIM=$(pods_of roll web | head -n 1)
ok "delete one pod" k delete pod "$VICTIM" -n roll --wait=false
replaced() { ! pods_of roll web | grep -qx "$VICTIM" && ready_is roll 10 web && pod_count roll web 10; }
ok "the pod is replaced and 10 are ready again" wait_for 20 replaced

# --- kubectl scale ---------------------------------------------------------------------
ok "kubectl scale --replicas=4" k scale deploy/web -n roll --replicas=4
ok "scaled down to 4 pods" wait_for 20 pod_count roll web 4
ok "status follows (4 ready)" wait_for 10 ready_is roll 4 web
ok "kubectl scale --replicas=6" k scale deploy/web -n roll --replicas=6
ok "scaled up to 6 ready pods" wait_for 20 ready_is roll 6 web
is "$(field deploy/web '{.spec.replicas}' -n roll)" "6" "the scale subresource wrote spec.replicas"

# --- restart, pause and resume --------------------------------------------------------
BEFORE=$(pods_of roll web)
ok "rollout restart" k rollout restart deploy/web -n roll
ok "rollout status after restart" k rollout status deploy/web -n roll --timeout=60s
like "$(field deploy/web '{.spec.template.metadata.annotations}' -n roll)" "kubectl.kubernetes.io/restartedAt" \
	"the template carries restartedAt"
fresh() { [ -z "$(comm -12 <(echo "$BEFORE") <(pods_of roll web))" ] && ready_is roll 6 web && pod_count roll web 6; }
ok "every pod was replaced by the restart" wait_for 20 fresh
ok "rollout pause" k rollout pause deploy/web -n roll
ok "set image while paused" k set image deploy/web -n roll main=img:c
paused_cond() { [ "$(field deploy/web '{.status.conditions[?(@.type=="Progressing")].reason}' -n roll)" = DeploymentPaused ]; }
ok "Progressing reason is DeploymentPaused" wait_for 10 paused_cond
sleep 1
ok "no pod runs image C while paused" images_are roll web img:b 6
RSCOUNT=$(k get rs -n roll -l app=web -o name | wc -l)
ok "rollout resume" k rollout resume deploy/web -n roll
ok "rollout status after resume" k rollout status deploy/web -n roll --timeout=60s
ok "the resumed rollout runs image C" wait_for 20 images_are roll web img:c 6
is "$(k get rs -n roll -l app=web -o name | wc -l)" "$((RSCOUNT + 1))" "resuming made one new ReplicaSet"

# --- Recreate: old pods are gone before new ones start --------------------------------
deploy rec app img:a 3 "  strategy: {type: Recreate}"
ok "Recreate Deployment rolls out" k rollout status deploy/app -n rec --timeout=60s
WATCH=$E2E_TMP/recreate.watch
k get pods -n rec -l app=app -w --output-watch-events \
	-o jsonpath='{.type}|{.object.metadata.name}|{.object.metadata.deletionTimestamp}|{.object.spec.containers[0].image}{"\n"}' \
	>"$WATCH" 2>/dev/null &
WATCH_PID=$!
E2E_BG_PIDS+=("$WATCH_PID")
wait_for 10 test -s "$WATCH"
ok "update the Recreate Deployment" k set image deploy/app -n rec main=img:b
ok "Recreate rollout status succeeds" k rollout status deploy/app -n rec --timeout=60s
ok "all 3 pods run image B" wait_for 20 images_are rec app img:b 3
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
OVERLAP=$(awk -F'|' '
	{ if ($4 == "img:a") { if ($1 == "DELETED") delete a[$2]; else a[$2] = 1 }
	  if ($4 == "img:b" && $1 == "ADDED") { n = 0; for (p in a) n++; if (n > worst) worst = n; seen = 1 } }
	END { print (seen ? worst + 0 : "none") }' "$WATCH")
is "$OVERLAP" "0" "no new pod was created while an old one existed"

# --- a rollout that cannot become ready hits its progress deadline ------------------
deploy stuck app img:a 2 "  progressDeadlineSeconds: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"
ok "stuck: first rollout succeeds" k rollout status deploy/app -n stuck --timeout=60s
k patch deploy/app -n stuck --type=merge \
	-p '{"spec":{"template":{"metadata":{"annotations":{"hollow.skiff.io/ready":"false"}},"spec":{"containers":[{"name":"main","image":"img:never"}]}}}}' >/dev/null
_run k rollout status deploy/app -n stuck --timeout=30s
RC=$?
STUCK_ERR=$ERR
ok "rollout status fails on a rollout that never becomes ready" test "$RC" -ne 0
like "$STUCK_ERR" "exceeded its progress deadline" "kubectl says the progress deadline was exceeded"
is "$(field deploy/app '{.status.conditions[?(@.type=="Progressing")].status} {.status.conditions[?(@.type=="Progressing")].reason}' -n stuck)" \
	"False ProgressDeadlineExceeded" "Progressing is False with ProgressDeadlineExceeded"
is "$(field deploy/app '{.status.availableReplicas} {.status.updatedReplicas}' -n stuck)" "2 1" \
	"maxUnavailable 0: both old pods stay available, one new pod surged"

# --- scaling mid-rollout is proportional ---------------------------------------------
# The example of Kubernetes' documentation: 10 replicas, maxSurge 3,
# maxUnavailable 2, a new template that never becomes ready: the old
# ReplicaSet stays at 8 and the new one at 5; scaling to 15 gives the old
# ReplicaSet 3 of the 5 new replicas and the new one 2.
deploy prop app img:a 10 "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 3, maxUnavailable: 2}}"
ok "prop: first rollout succeeds" k rollout status deploy/app -n prop --timeout=60s
k patch deploy/app -n prop --type=merge \
	-p '{"spec":{"template":{"metadata":{"annotations":{"hollow.skiff.io/ready":"false"}},"spec":{"containers":[{"name":"main","image":"img:never"}]}}}}' >/dev/null
rs_sizes() { k get rs -n prop -l app=app --sort-by='.metadata.annotations.deployment\.kubernetes\.io/revision' -o jsonpath='{range .items[*]}{.spec.replicas} {end}'; }
sizes_are() { [ "$(rs_sizes)" = "$1" ]; }
ok "mid-rollout: old ReplicaSet at 8, new at 5" wait_for 20 sizes_are "8 5 "
ok "scale to 15 mid-rollout" k scale deploy/app -n prop --replicas=15
ok "proportional: old ReplicaSet at 11, new at 7" wait_for 20 sizes_are "11 7 "
diag "sizes now: $(rs_sizes)"

# --- revisionHistoryLimit ------------------------------------------------------------
deploy hist app img:1 1 "  revisionHistoryLimit: 1"
ok "hist: rollout 1" k rollout status deploy/app -n hist --timeout=60s
for i in 2 3 4; do
	k set image deploy/app -n hist main=img:$i >/dev/null
	k rollout status deploy/app -n hist --timeout=60s >/dev/null
done
two_rs() { [ "$(k get rs -n hist -l app=app -o name | wc -l)" = 2 ]; }
ok "revisionHistoryLimit 1 keeps the current and one old ReplicaSet" wait_for 20 two_rs
like "$(k rollout history deploy/app -n hist)" "3         <none>" "the kept old ReplicaSet is revision 3"
unlike "$(k rollout history deploy/app -n hist)" "2         <none>" "revision 2 is gone"

# --- ReplicaSet adoption and release -------------------------------------------------
mk_ns adopt >/dev/null
cat <<EOF | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: orphan, namespace: adopt, labels: {app: kept}}
spec: {containers: [{name: main, image: img:a}]}
EOF
wait_for 10 test "$(field pod/orphan '{.status.phase}' -n adopt)" = Running
cat <<EOF | k apply -f - >/dev/null
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: kept, namespace: adopt}
spec:
  replicas: 3
  selector: {matchLabels: {app: kept}}
  template:
    metadata: {labels: {app: kept}}
    spec: {containers: [{name: main, image: img:a}]}
EOF
rs_ready() { [ "$(field rs/kept '{.status.readyReplicas}' -n adopt)" = "$1" ]; }
ok "the ReplicaSet has 3 ready pods" wait_for 20 rs_ready 3
is "$(field pod/orphan '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}' -n adopt)" \
	"ReplicaSet/kept/true" "the matching orphan pod was adopted"
is "$(pods_of adopt kept | wc -l)" "3" "only 2 pods were created next to the adopted one"
ok "relabel an owned pod out of the selector" k label pod orphan -n adopt app=gone --overwrite
released() { [ -z "$(field pod/orphan '{.metadata.ownerReferences}' -n adopt)" ]; }
ok "the pod is released (no ownerReference)" wait_for 10 released
ok "and replaced: 3 ready pods match again" wait_for 20 rs_ready 3
is "$(pods_of adopt kept | wc -l)" "3" "3 pods carry the selector's label"
like "$(k get rs kept -n adopt -o jsonpath='{.status}')" '"fullyLabeledReplicas":3' "status.fullyLabeledReplicas"
ok "scale the ReplicaSet to 1" k scale rs/kept -n adopt --replicas=1
ok "the ReplicaSet deletes 2 pods" wait_for 20 pod_count adopt kept 1
like "$(k get events -n adopt --field-selector involvedObject.name=kept -o jsonpath='{range .items[*]}{.reason}{"\n"}{end}')" \
	"SuccessfulDelete" "Event: SuccessfulDelete"
cat <<EOF | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: newcomer, namespace: adopt, labels: {app: kept, extra: x}}
spec: {containers: [{name: main, image: img:a}]}
EOF
adopted_or_gone() {
	local o
	o=$(field pod/newcomer '{.metadata.ownerReferences[0].name}' -n adopt) || return 0
	[ "$o" = kept ]
}
ok "an orphan pod created after the ReplicaSet is adopted (or deleted as surplus)" wait_for 20 adopted_or_gone
ok "the ReplicaSet is back to 1 pod" wait_for 20 pod_count adopt kept 1

# --- pods that cannot be created: FailedCreate and ReplicaFailure ------------------
cat <<EOF | k apply -f - >/dev/null
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: nopc, namespace: adopt}
spec:
  replicas: 2
  selector: {matchLabels: {app: nopc}}
  template:
    metadata: {labels: {app: nopc}}
    spec: {priorityClassName: late, containers: [{name: main, image: img:a}]}
EOF
failure_cond() { [ "$(field rs/nopc '{.status.conditions[?(@.type=="ReplicaFailure")].reason}' -n adopt)" = FailedCreate ]; }
ok "a pod the API refuses sets ReplicaFailure (FailedCreate)" wait_for 20 failure_cond
like "$(field rs/nopc '{.status.conditions[?(@.type=="ReplicaFailure")].message}' -n adopt)" \
	"no PriorityClass with name late" "the condition says why"
like "$(k get events -n adopt --field-selector involvedObject.name=nopc,reason=FailedCreate -o jsonpath='{range .items[*]}{.type} {.message}{"\n"}{end}')" \
	"Warning Error creating: pods" "Warning Event FailedCreate: Error creating: ..."
ok "create the missing PriorityClass" k create priorityclass late --value=1000
ok "scale the ReplicaSet to 1" k scale rs/nopc -n adopt --replicas=1
nopc_ok() { [ "$(field rs/nopc '{.status.readyReplicas}' -n adopt)" = 1 ] && ! failure_cond; }
ok "it creates its pod and drops ReplicaFailure" wait_for 30 nopc_ok

# --- a 63-character name: the ReplicaSet's name is longer, as Kubernetes allows ----
LONG=$(printf 'd%.0s' $(seq 1 63))
deploy long "$LONG" img:a 1
ok "a Deployment with a 63-character name rolls out" k rollout status "deploy/$LONG" -n long --timeout=60s
like "$(k get rs -n long -o name)" "$LONG-" "its ReplicaSet is named <name>-<hash>"

# --- deleting a Deployment removes its ReplicaSets and pods (garbage collector) ----
ok "delete the Deployment" k delete deploy/web -n roll --timeout=30s
no_rs() { [ -z "$(k get rs -n roll -l app=web -o name)" ]; }
ok "its ReplicaSets are gone" wait_for 20 no_rs
ok "its pods are gone" wait_for 20 pod_count roll web 0

# --- the workers settings ------------------------------------------------------
# (everything above ran with 3 ReplicaSet and 2 Deployment workers)
ok "the ReplicaSet controller ran with the 3 workers its setting asked for" \
	grep -q "replicaset: started with 3 worker(s)" "$E2E_TMP/server.log"
ok "the Deployment controller ran with 2" \
	grep -q "deployment: started with 2 worker(s)" "$E2E_TMP/server.log"
stop_server_cleanly
# the log of the next start only
this_start() { awk '/^=== start /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$E2E_TMP/server.log"; }
E2E_SERVER_ARGS="--plain-http --controllers replicaset,deployment --plugin-settings controller-replicaset.workers=3x"
restart_server || bail_out "server did not restart"
refused() { this_start | grep -q "plugin controller-replicaset (.*): start failed"; }
ok "workers=3x keeps the ReplicaSet controller from starting" wait_for 10 refused
like "$(this_start)" "controller-replicaset: workers must be a whole number from 1 to 1024, not 3x" \
	"with a message saying what to give"
unlike "$(this_start)" "replicaset: started with" "no ReplicaSet workers were started"
dep_started() { this_start | grep -q "deployment: started with 4 worker(s)"; }
ok "the Deployment controller started with its default of 4 workers" wait_for 10 dep_started
ok "and the server keeps serving" k get deployments -A

stop_server_cleanly
done_testing
