#!/bin/bash
# tests/e2e/test_daemonset.sh - the DaemonSet controller through kubectl:
# one pod per eligible node (nodeSelector, taints, node labels changing),
# placed with a required node affinity on the node's name; nodes joining
# and leaving; the status kubectl shows; a rolling update that keeps
# maxUnavailable (checked from a watch), maxSurge, OnDelete; rollout
# status/history/undo over ControllerRevisions; Events; deleting the
# DaemonSet removes its pods and revisions (garbage collector).
#
# The nodes are hollow nodes (`skiff agent --hollow`, several agents with
# their own labels and taints) and the default scheduler binds the pods,
# so the test sees what a cluster does.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is needed to read the watch"

start_server --controllers daemonset,garbage-collector || bail_out "server did not start"

# The nodes the DaemonSet's pods are for, sorted, one line.
pod_nodes() {
	k get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]}{"\n"}{end}' |
		sort | tr '\n' ' ' | sed 's/ $//'
}
pod_nodes_are() { [ "$(pod_nodes)" = "$1" ]; }

# The nodes the scheduler bound the pods to, sorted, one line.
bound_nodes() {
	k get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' |
		sort | tr '\n' ' ' | sed 's/ $//'
}
bound_nodes_are() { [ "$(bound_nodes)" = "$1" ]; }
images_sorted() { k get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.containers[0].image}{"\n"}{end}' | sort | tr '\n' ' ' | sed 's/ $//'; }
ds_status() { jp ds/agent '{.status.desiredNumberScheduled} {.status.currentNumberScheduled} {.status.numberReady} {.status.numberAvailable} {.status.updatedNumberScheduled} {.status.numberMisscheduled}'; }
ds_status_is() { [ "$(ds_status)" = "$1" ]; }

ok "an agent with hollow nodes ssd-0, ssd-1 (disk=ssd)" start_hollow 2 --node-prefix ssd- --labels disk=ssd
ok "an agent with hollow node hdd-0 (disk=hdd)" start_hollow 1 --node-prefix hdd- --labels disk=hdd
ok "an agent with hollow node db-0 (disk=ssd, tainted dedicated=db:NoSchedule)" \
	start_hollow 1 --node-prefix db- --labels disk=ssd --taints dedicated=db:NoSchedule

cat >"$E2E_TMP/ds.yaml" <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {disk: ssd}
      containers:
      - name: main
        image: agent:1
YAML
expect_contains "create the DaemonSet" "daemonset.apps/agent created" k apply -f "$E2E_TMP/ds.yaml"

# --- placement ----------------------------------------------------------------------
if wait_for 10 pod_nodes_are "ssd-0 ssd-1"; then pass "one pod for each node with disk=ssd and no untolerated taint"
else fail "one pod for each node with disk=ssd and no untolerated taint"; diag "pods are for: $(pod_nodes)"; fi
p1=$(k get pods -l app=agent -o jsonpath='{.items[0].metadata.name}')
expect_output "the pod is placed by required node affinity on metadata.name" \
	"metadata.name In" jp "pod/$p1" '{.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key} {.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].operator}'
if wait_for 10 bound_nodes_are "ssd-0 ssd-1"; then pass "the scheduler bound each pod to the node its affinity names"
else fail "the scheduler bound each pod to the node its affinity names"; diag "bound to: $(bound_nodes)"; fi
expect_output "the pod carries the daemon tolerations" \
	"node.kubernetes.io/not-ready:NoExecute node.kubernetes.io/unreachable:NoExecute node.kubernetes.io/disk-pressure:NoSchedule node.kubernetes.io/memory-pressure:NoSchedule node.kubernetes.io/pid-pressure:NoSchedule node.kubernetes.io/unschedulable:NoSchedule" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get pod/$p1 -o jsonpath='{range .spec.tolerations[*]}{.key}:{.effect} {end}' | sed 's/ \$//'"
hash1=$(jp "pod/$p1" '{.metadata.labels.controller-revision-hash}')
expect_output "the pod is owned by the DaemonSet" "DaemonSet/agent true" \
	jp "pod/$p1" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].controller}'
expect_output "a ControllerRevision agent-<hash> holds revision 1" "agent-$hash1 1" \
	jp controllerrevisions '{range .items[*]}{.metadata.name} {.revision}{end}'

if wait_for 10 ds_status_is "2 2 2 2 2 0"; then pass "status: desired 2, current 2, ready 2, available 2, up-to-date 2, misscheduled 0"
else fail "status: desired 2, current 2, ready 2, available 2, up-to-date 2, misscheduled 0"; diag "got $(ds_status)"; fi
expect_output "observedGeneration follows the generation" "$(jp ds/agent '{.metadata.generation}')" \
	jp ds/agent '{.status.observedGeneration}'
expect_contains "kubectl get ds shows the counts" "agent   2         2         2       2            2           disk=ssd" k get ds agent

# --- nodes joining and leaving, labels and taints changing ----------------------------
ok "a second agent joins with edge-0, edge-1 (disk=ssd)" \
	start_hollow 2 --node-prefix edge- --labels disk=ssd --delete-nodes-on-exit
EDGE_PID=$HOLLOW_PID
if wait_for 10 bound_nodes_are "edge-0 edge-1 ssd-0 ssd-1"; then pass "pods appear on its nodes"
else fail "pods appear on its nodes"; diag "bound to: $(bound_nodes)"; fi
if wait_for 10 ds_status_is "4 4 4 4 4 0"; then pass "status counts four nodes, all Ready"
else fail "status counts four nodes, all Ready"; diag "got $(ds_status)"; fi
ok "the second agent stops and deletes its nodes" stop_hollow "$EDGE_PID"
if wait_for 10 pod_nodes_are "ssd-0 ssd-1"; then pass "the pods of its nodes go"
else fail "the pods of its nodes go"; diag "pods are for: $(pod_nodes)"; fi
if wait_for 10 ds_status_is "2 2 2 2 2 0"; then pass "status is back to two nodes"
else fail "status is back to two nodes"; diag "got $(ds_status)"; fi
ok "label hdd-0 disk=ssd" k label node hdd-0 disk=ssd --overwrite
if wait_for 10 bound_nodes_are "hdd-0 ssd-0 ssd-1"; then pass "a node that starts matching the nodeSelector gets a pod"
else fail "a node that starts matching the nodeSelector gets a pod"; diag "bound to: $(bound_nodes)"; fi
ok "taint ssd-1 with NoExecute" k taint node ssd-1 evict=yes:NoExecute
if wait_for 10 pod_nodes_are "hdd-0 ssd-0"; then pass "an untolerated NoExecute taint removes the node's pod"
else fail "an untolerated NoExecute taint removes the node's pod"; diag "pods are for: $(pod_nodes)"; fi
ok "remove the taint" k taint node ssd-1 evict=yes:NoExecute-
if wait_for 10 bound_nodes_are "hdd-0 ssd-0 ssd-1"; then pass "the pod comes back once the taint is gone"
else fail "the pod comes back once the taint is gone"; diag "bound to: $(bound_nodes)"; fi
ok "taint hdd-0 with NoSchedule" k taint node hdd-0 other=x:NoSchedule
if wait_for 10 ds_status_is "2 2 2 2 2 1"; then pass "status: the node no longer counts as desired; its pod is misscheduled"
else fail "status: the node no longer counts as desired; its pod is misscheduled"; diag "got $(ds_status)"; fi
expect_output "a NoSchedule taint leaves a running pod alone" "hdd-0 ssd-0 ssd-1" bound_nodes
ok "remove the NoSchedule taint" k taint node hdd-0 other=x:NoSchedule-
if wait_for 10 ds_status_is "3 3 3 3 3 0"; then pass "status counts three nodes"
else fail "status counts three nodes"; diag "got $(ds_status)"; fi

# --- release and adoption -------------------------------------------------------------------
orig=$(k get pods -l app=agent --field-selector spec.nodeName=ssd-0 -o jsonpath='{.items[0].metadata.name}')
ok "relabel the pod on ssd-0 so the selector no longer matches it" k label pod "$orig" app=gone --overwrite
owned_by() { [ "$(jp "pod/$1" '{.metadata.ownerReferences[*].name}')" = "$2" ]; }
if wait_for 10 owned_by "$orig" ""; then pass "the DaemonSet releases it (no owner left)"
else fail "the DaemonSet releases it (no owner left)"; diag "owners: $(jp "pod/$orig" '{.metadata.ownerReferences}')"; fi
if wait_for 10 bound_nodes_are "hdd-0 ssd-0 ssd-1"; then pass "and starts a new pod on ssd-0"
else fail "and starts a new pod on ssd-0"; diag "bound to: $(bound_nodes)"; fi
ok "label the old pod back" k label pod "$orig" app=agent --overwrite
if wait_for 10 owned_by "$orig" agent; then pass "the DaemonSet adopts it again"
else fail "the DaemonSet adopts it again"; diag "owners: $(jp "pod/$orig" '{.metadata.ownerReferences}')"; fi
ssd0_pods() { k get pods -l app=agent --field-selector spec.nodeName=ssd-0 -o jsonpath='{range .items[*]}{.metadata.name} {end}' | sed 's/ $//'; }
ssd0_pods_are() { [ "$(ssd0_pods)" = "$1" ]; }
if wait_for 10 ssd0_pods_are "$orig"; then pass "two pods on ssd-0: the newer one goes, the oldest stays"
else fail "two pods on ssd-0: the newer one goes, the oldest stays"; diag "pods on ssd-0: $(ssd0_pods)"; fi
if wait_for 10 ds_status_is "3 3 3 3 3 0"; then pass "status counts three nodes again"
else fail "status counts three nodes again"; diag "got $(ds_status)"; fi

# --- rolling update, watched -----------------------------------------------------------------
# From the watch: the fewest pods Ready at once, the most pods at once.
watch_pods() {
	timeout 60 "$KUBECTL" --kubeconfig="$KUBECONFIG" get pods -l app=agent -w \
		--output-watch-events -o json >"$1" 2>/dev/null
}
summarize_watch() {
	python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
dec = json.JSONDecoder()
pods, i, started = {}, 0, False
min_ready, max_per_node, max_unready = None, 0, 0
def ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in p.get("status", {}).get("conditions", []))
def node(p):
    t = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return t["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
while True:
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    ev, i = dec.raw_decode(text, i)
    o = ev["object"]; name = o["metadata"]["name"]
    if ev["type"] == "DELETED": pods.pop(name, None)
    else: pods[name] = o
    if ev["type"] != "ADDED" or started:
        # the initial ADDED events list what was there; count from the first change
        started = True
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        r = sum(1 for p in live if ready(p))
        min_ready = r if min_ready is None else min(min_ready, r)
        max_unready = max(max_unready, len(live) - r)
        per = {}
        for p in pods.values(): per[node(p)] = per.get(node(p), 0) + 1
        max_per_node = max([max_per_node] + list(per.values()))
print(min_ready, max_per_node, max_unready)
PY
}
watch_pods "$E2E_TMP/watch1.json" &
WATCH_PID=$!
sleep 1
ok "kubectl set image ds/agent main=agent:2" k set image ds/agent main=agent:2
ok "kubectl rollout status ds/agent finishes" timeout 40 "$KUBECTL" --kubeconfig="$KUBECONFIG" rollout status ds/agent --timeout=30s
like "$OUT" 'daemon set "agent" successfully rolled out' "rollout status says it rolled out"
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
read -r min_ready max_per_node max_unready < <(summarize_watch "$E2E_TMP/watch1.json")
is "$min_ready" 2 "maxUnavailable 1: never fewer than 2 of 3 pods Ready during the update (from a watch)"
is "$max_per_node" 1 "maxSurge 0: never two pods on one node"
expect_output "every pod runs agent:2" "agent:2 agent:2 agent:2" images_sorted
hash2=$(k get pods -l app=agent -o jsonpath='{.items[0].metadata.labels.controller-revision-hash}')
ok "the pods carry the new revision's hash" test -n "$hash2" -a "$hash2" != "$hash1"
if wait_for 10 ds_status_is "3 3 3 3 3 0"; then pass "status: all three updated and available"
else fail "status: all three updated and available"; diag "got $(ds_status)"; fi

expect_output "rollout history lists revisions 1 and 2" "1 2" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' rollout history ds/agent | awk '/^[0-9]/ {print \$1}' | tr '\n' ' ' | sed 's/ \$//'"
expect_contains "rollout history --revision=1 shows the old template" "agent:1" \
	timeout 20 "$KUBECTL" --kubeconfig="$KUBECONFIG" rollout history ds/agent --revision=1
expect_contains "rollout undo" "daemonset.apps/agent rolled back" \
	timeout 20 "$KUBECTL" --kubeconfig="$KUBECONFIG" rollout undo ds/agent
expect_output "undo brought agent:1 back into the template" agent:1 jp ds/agent '{.spec.template.spec.containers[0].image}'
ok "rollout status after undo" timeout 40 "$KUBECTL" --kubeconfig="$KUBECONFIG" rollout status ds/agent --timeout=30s
expect_output "the pods run agent:1 again, with the first revision's hash" "agent:1/$hash1 agent:1/$hash1 agent:1/$hash1" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.containers[0].image}/{.metadata.labels.controller-revision-hash} {end}' | sed 's/ \$//'"
expect_output "the old revision was renumbered 3" "2 3" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get controllerrevision agent-$hash2 agent-$hash1 -o jsonpath='{range .items[*]}{.revision} {end}' | sed 's/ \$//'"

# --- maxSurge: the new pod first, then the old one ---------------------------------------
ok "switch to maxSurge 1, maxUnavailable 0" k patch ds agent --type=merge \
	-p '{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}'
watch_pods "$E2E_TMP/watch2.json" &
WATCH_PID=$!
sleep 1
ok "set image agent:3" k set image ds/agent main=agent:3
ok "rollout status with surge" timeout 40 "$KUBECTL" --kubeconfig="$KUBECONFIG" rollout status ds/agent --timeout=30s
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
read -r min_ready max_per_node max_unready < <(summarize_watch "$E2E_TMP/watch2.json")
is "$min_ready" 3 "maxUnavailable 0: all 3 old pods stay Ready until replaced (from a watch)"
is "$max_per_node" 2 "maxSurge: the new pod starts next to the old one"
is "$max_unready" 1 "maxSurge 1: one new pod at a time is not yet Ready"

# --- OnDelete ------------------------------------------------------------------------------
ok "switch to OnDelete" k patch ds agent --type=merge \
	-p '{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}'
ok "set image agent:4" k set image ds/agent main=agent:4
sleep 1.5
expect_output "OnDelete: running pods are not replaced" "agent:3 agent:3 agent:3" images_sorted
victim=$(k get pods -l app=agent -o jsonpath='{.items[0].metadata.name}')
ok "delete one pod by hand" k delete pod "$victim" --wait=false
images_sorted_are() { [ "$(images_sorted)" = "$1" ]; }
wait_for 10 images_sorted_are "agent:3 agent:3 agent:4"
expect_output "OnDelete: the replacement runs the new template" "agent:3 agent:3 agent:4" images_sorted
expect_fail_with "rollout status needs RollingUpdate" "only available for RollingUpdate strategy type" \
	timeout 20 "$KUBECTL" --kubeconfig="$KUBECONFIG" rollout status ds/agent --timeout=5s

# --- Events -------------------------------------------------------------------------------
expect_contains "describe shows SuccessfulCreate from daemonset-controller" "daemonset-controller  Created pod: agent-" \
	k describe ds agent
expect_contains "describe shows SuccessfulDelete" "SuccessfulDelete" k describe ds agent

# --- deletion ---------------------------------------------------------------------------------
ok "kubectl delete ds agent" k delete ds agent --wait=true --timeout=30s
no_pods() { [ -z "$(k get pods -l app=agent -o name)" ]; }
if wait_for 20 no_pods; then pass "its pods are gone (garbage collector, through their owner references)"
else fail "its pods are gone (garbage collector, through their owner references)"; diag "pods: $(k get pods -l app=agent -o name)"; fi
no_revisions() { [ -z "$(k get controllerrevisions -o name)" ]; }
if wait_for 20 no_revisions; then pass "and its ControllerRevisions"
else fail "and its ControllerRevisions"; diag "revisions: $(k get controllerrevisions -o name)"; fi

stop_server_cleanly
done_testing
