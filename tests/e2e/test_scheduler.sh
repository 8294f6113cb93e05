#!/bin/bash
# tests/e2e/test_scheduler.sh - the default scheduler as a user sees it:
# pods with requests spread (LeastAllocated) or packed (MostAllocated); an
# unschedulable pod's reasons in `kubectl describe` and `kubectl get events`
# and its scheduling once a node that fits appears; taints and
# tolerations, nodeSelector, node affinity, pod anti-affinity and topology
# spread honoured; pods/binding refusing a second binding; preemption of a
# lower-priority pod. Most nodes are registered with kubectl (no kubelet: a
# preemption victim is removed by hand, as a node's agent would); the last
# part runs on hollow nodes (skiff agent --hollow), where pods turn Running
# and the agent removes the victim itself.
. "$(dirname "$0")/lib.sh"

# mk_node NAME CPU [LABELS-JSON] [SPEC-JSON]
mk_node() {
	k create -f - <<EOF
{"apiVersion": "v1", "kind": "Node",
 "metadata": {"name": "$1", "labels": ${3:-{\}}},
 "spec": ${4:-{\}},
 "status": {"capacity": {"cpu": "$2", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "$2", "memory": "8Gi", "pods": "110"}}}
EOF
}

# mk_pod NAME CPU [SPEC-JSON merged into spec] [LABELS-JSON]
mk_pod() {
	local extra=${3:-}
	[ -n "$extra" ] && extra=", $extra"
	k create -f - <<EOF
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "$1", "labels": ${4:-{\}}},
 "spec": {"containers": [{"name": "c", "image": "busybox",
                          "resources": {"requests": {"cpu": "$2"}}}]$extra}}
EOF
}

node_of() { jp "pod/$1" '{.spec.nodeName}'; }
bound() { [ -n "$(node_of "$1")" ]; }

# all_bound POD...: every pod has a node
all_bound() {
	local p
	for p in "$@"; do bound "$p" || return 1; done
}

# --- LeastAllocated spreads ------------------------------------------------------
start_server || bail_out "server did not start"
mk_node a 4 >/dev/null
mk_node b 4 >/dev/null
mk_pod s1 1 >/dev/null && mk_pod s2 1 >/dev/null
wait_for 15 all_bound s1 s2
ok "pods with requests are bound" all_bound s1 s2
isnt_same() { [ "$(node_of s1)" != "$(node_of s2)" ]; }
ok "LeastAllocated (the default) spreads two pods over two nodes" isnt_same
is "$(jp pod/s1 '{.status.conditions[?(@.type=="PodScheduled")].status}')" "True" \
	"a bound pod has PodScheduled=True"
like "$(k get events --field-selector involvedObject.name=s1)" \
	"Successfully assigned default/s1 to $(node_of s1)" "a Scheduled event names the node"

# pods/binding: a bound pod cannot be bound again
api POST /api/v1/namespaces/default/pods/s1/binding -H 'Content-Type: application/json' \
	-d '{"apiVersion":"v1","kind":"Binding","metadata":{"name":"s1"},"target":{"kind":"Node","name":"zzz"}}'
is "$HTTP_CODE" "409" "binding an already bound pod answers 409"
like "$(json_str message)" "Operation cannot be fulfilled on pods/binding \"s1\": pod s1 is already assigned to node \"$(node_of s1)\"" \
	"the 409 says where the pod is, as Kubernetes words it"

# --- unschedulable: reasons, then a node that fits appears ------------------------------
mk_node c 8 '{"dedicated": "db"}' '{"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}' >/dev/null
mk_pod big 6 >/dev/null
want="0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.."
has_reason() { k get events --field-selector involvedObject.name=big,reason=FailedScheduling | grep -qF "$want"; }
wait_for 15 has_reason
ok "kubectl get events shows FailedScheduling with kube-scheduler's counts" has_reason
desc=$(k describe pod big)
like "$desc" "PodScheduled   False" "describe shows PodScheduled False"
like "$desc" "Warning  FailedScheduling" "describe lists the FailedScheduling event"
is "$(jp pod/big '{.status.conditions[?(@.type=="PodScheduled")].reason}')" "Unschedulable" \
	"the condition's reason is Unschedulable"
is "$(jp pod/big '{.status.phase}')" "Pending" "the pod stays Pending"
mk_node d 8 >/dev/null
wait_for 15 bound big
is "$(node_of big)" "d" "the pod is scheduled once a node that fits appears"

# --- tolerations, nodeSelector, node affinity ----------------------------------------------
mk_pod tol 1 '"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}], "nodeSelector": {"dedicated": "db"}' >/dev/null
wait_for 15 bound tol
is "$(node_of tol)" "c" "a pod tolerating the taint and selecting the node lands on it"
mk_pod sel 1 '"nodeSelector": {"dedicated": "db"}' >/dev/null
sel_reason() { k get events --field-selector involvedObject.name=sel | grep -qF "1 node(s) had untolerated taint {dedicated: db}, 3 node(s) didn't match Pod's node affinity/selector"; }
wait_for 15 sel_reason
ok "a nodeSelector without the toleration is refused by both filters" sel_reason
mk_pod aff 1 '"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}' >/dev/null
wait_for 15 bound aff
is "$(node_of aff)" "b" "required node affinity on metadata.name is honoured"

# --- pod anti-affinity ---------------------------------------------------------------------
anti='"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}'
for n in a b d; do k label node $n kubernetes.io/hostname=$n >/dev/null; done
mk_pod db1 100m "$anti" '{"app": "db"}' >/dev/null
mk_pod db2 100m "$anti" '{"app": "db"}' >/dev/null
mk_pod db3 100m "$anti" '{"app": "db"}' >/dev/null
wait_for 15 all_bound db1 db2 db3
distinct=$(for p in db1 db2 db3; do node_of $p; echo; done | sort -u | grep -c .)
is "$distinct" "3" "pods with anti-affinity on hostname land on three different nodes"
mk_pod db4 100m "$anti" '{"app": "db"}' >/dev/null
anti_reason() { k get events --field-selector involvedObject.name=db4 | grep -qF "3 node(s) didn't match pod anti-affinity rules"; }
wait_for 15 anti_reason
ok "a fourth is refused: node(s) didn't match pod anti-affinity rules" anti_reason

# --- topology spread -------------------------------------------------------------------------
k label node a zone=z1 >/dev/null
k label node b zone=z1 >/dev/null
k label node d zone=z2 >/dev/null
spread='"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]'
for i in 1 2 3 4; do
	mk_pod web$i 100m "$spread" '{"app": "web"}' >/dev/null
	wait_for 15 bound web$i
done
zones=$(for i in 1 2 3 4; do k get node "$(node_of web$i)" -o jsonpath='{.metadata.labels.zone}'; echo; done | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')
is "$zones" "2 2 " "four pods with maxSkew 1 over two zones: two in each"

# --- preemption ------------------------------------------------------------------------------
k create -f - >/dev/null <<EOF
{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
 "value": 1000, "description": "for the test"}
EOF
# fill node e with a low-priority pod; the high one fits nowhere else
mk_node e 2 '{"pool": "p"}' >/dev/null
mk_pod low 1500m '"nodeSelector": {"pool": "p"}' >/dev/null
wait_for 15 bound low
mk_pod high 1 '"priorityClassName": "high", "nodeSelector": {"pool": "p"}' >/dev/null
is "$(jp pod/high '{.spec.priority}')" "1000" "spec.priority comes from the PriorityClass"
terminating() { [ -n "$(jp pod/low '{.metadata.deletionTimestamp}')" ]; }
wait_for 15 terminating
ok "the lower-priority pod is evicted (graceful deletion)" terminating
like "$(k get events --field-selector involvedObject.name=low,reason=Preempted)" "Preempted by pod" \
	"the victim gets a Preempted event"
is "$(jp pod/high '{.status.nominatedNodeName}')" "e" "the preemptor is nominated to the node"
# the node's agent would now remove the victim
k delete pod low --grace-period=0 --force >/dev/null 2>&1
wait_for 15 bound high
is "$(node_of high)" "e" "the preemptor is scheduled where the victim was"
expect_fail_with "an unknown PriorityClass is refused" \
	'pods "ghost" is forbidden: no PriorityClass with name nope was found' \
	mk_pod ghost 1 '"priorityClassName": "nope"'

# --- on hollow nodes: pods run, and a preemption victim really goes ------------------------
start_hollow 2 --node-prefix h- --cpu 2 --labels pool=hollow --ready-delay 100ms ||
	bail_out "hollow nodes did not start"
running() { [ "$(jp "pod/$1" '{.status.phase}')" = Running ]; }
mk_pod h-low1 1500m '"nodeSelector": {"pool": "hollow"}' >/dev/null
mk_pod h-low2 1500m '"nodeSelector": {"pool": "hollow"}' >/dev/null
wait_for 20 running h-low1 && wait_for 20 running h-low2
ok "pods scheduled on hollow nodes run" running h-low2
apart() { [ "$(node_of h-low1)" != "$(node_of h-low2)" ]; }
ok "they are on the two hollow nodes" apart
mk_pod h-high 1 '"priorityClassName": "high", "nodeSelector": {"pool": "hollow"}' >/dev/null
wait_for 30 running h-high
ok "a higher-priority pod preempts one of them and runs" running h-high
gone() { ! k get pod "$1" >/dev/null 2>&1; }
victims=0
for p in h-low1 h-low2; do gone $p && victims=$((victims + 1)); done
is "$victims" "1" "exactly one victim was evicted, and its node removed it"
stop_hollow
stop_server_cleanly

# --- MostAllocated packs ------------------------------------------------------------------------
rm -rf "$E2E_DATA"
start_server --plugin-settings "scheduler-default.scoring-strategy=MostAllocated" ||
	bail_out "server did not start with MostAllocated"
mk_node a 4 >/dev/null
mk_node b 4 >/dev/null
mk_pod s1 1 >/dev/null
wait_for 15 bound s1
mk_pod s2 1 >/dev/null
wait_for 15 bound s2
is "$(node_of s2)" "$(node_of s1)" "MostAllocated packs the second pod onto the first one's node"
stop_server_cleanly

done_testing
