#!/bin/bash
# tests/e2e/test_hollow.sh - hollow nodes (`skiff agent --hollow N`) as
# kubectl sees them: nodes registered Ready with the capacity asked, Leases
# in kube-node-lease renewed, pods bound to them turning Running and Ready
# (or never Ready, or finishing with the annotated exit code), deletion
# of a bound pod completing, two agents side by side, adoption of existing
# nodes, an agent outliving its server (waiting, not spinning, and going on
# once it is back), a clean exit that deletes the nodes, and the same over
# HTTPS.
. "$(dirname "$0")/lib.sh"

# pod NAME NODE [restartPolicy] [ANNOTATION=VALUE...]: a pod bound to NODE.
pod() {
	local name=$1 node=$2 policy=${3:-Always} kv
	shift 3 2>/dev/null || shift $#
	{
		printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: default\n' "$name"
		printf '  annotations:\n'
		for kv in "$@"; do printf '    "%s": "%s"\n' "${kv%%=*}" "${kv#*=}"; done
		[ $# -gt 0 ] || printf '    {}\n'
		printf 'spec:\n  nodeName: %s\n  restartPolicy: %s\n' "$node" "$policy"
		printf '  containers:\n  - name: main\n    image: registry.local/app:1\n'
	} | k create -f -
}

phase_is() { [ "$(jp "pod/$1" '{.status.phase}')" = "$2" ]; }

start_server || bail_out "server did not start"

# --- the command line ----------------------------------------------------------
expect_fail_with "skiff agent without --hollow says the real agent is not built" \
	"not built yet" "$SKIFF_BIN" agent --kubeconfig "$KUBECONFIG"
"$SKIFF_BIN" agent --kubeconfig "$KUBECONFIG" >/dev/null 2>&1
is "$?" 2 "skiff agent without --hollow exits 2"
expect_contains "skiff agent --help documents --hollow" "--delete-nodes-on-exit" \
	"$SKIFF_BIN" agent --help
expect_fail_with "a malformed taint is refused" "NoSchedule, PreferNoSchedule or NoExecute" \
	"$SKIFF_BIN" agent --hollow 1 --kubeconfig "$KUBECONFIG" --taints a=b:Sometimes

# --- nodes ----------------------------------------------------------------------------
ok "3 hollow nodes register and turn Ready" start_hollow 3 --cpu 8 --memory 32Gi --pods 50 \
	--labels zone=a --taints dedicated=test:PreferNoSchedule --heartbeat-interval 2s \
	--ready-delay 300ms --delete-nodes-on-exit
AGENT=$HOLLOW_PID
node_states() { k get nodes --no-headers | awk '{print $1, $2}'; }
expect_output "kubectl get nodes lists them Ready" "hollow-0 Ready
hollow-1 Ready
hollow-2 Ready" node_states
is "$(jp node/hollow-1 '{.status.capacity.cpu} {.status.capacity.memory} {.status.capacity.pods} {.status.allocatable.cpu}')" \
	"8 32Gi 50 8" "capacity and allocatable are what was asked"
is "$(jp node/hollow-1 '{.metadata.labels.zone} {.metadata.labels.kubernetes\.io/hostname} {.metadata.labels.kubernetes\.io/os}')" \
	"a hollow-1 linux" "labels: the extra ones and the well-known ones"
is "$(jp node/hollow-1 '{.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}')" \
	"dedicated=test:PreferNoSchedule" "the taint asked for"
is "$(jp node/hollow-1 '{.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion} {.status.nodeInfo.operatingSystem}')" \
	"v1.32.0-skiff hollow:// linux" "nodeInfo names the hollow kubelet and runtime"
is "$(jp node/hollow-1 '{.status.conditions[?(@.type=="Ready")].reason} {.status.conditions[?(@.type=="MemoryPressure")].status}')" \
	"KubeletReady False" "Ready says KubeletReady, no memory pressure"
IP1=$(jp node/hollow-1 '{.status.addresses[?(@.type=="InternalIP")].address}')
like "$IP1" "10." "the node has an InternalIP"
IP2=$(jp node/hollow-2 '{.status.addresses[?(@.type=="InternalIP")].address}')
ok "each node has its own InternalIP" test "$IP1" != "$IP2"

# --- leases ---------------------------------------------------------------------------
is "$(jp lease/hollow-0 '{.spec.holderIdentity} {.spec.leaseDurationSeconds} {.metadata.ownerReferences[0].kind}' -n kube-node-lease)" \
	"hollow-0 40 Node" "each node holds a Lease in kube-node-lease, owned by its Node"
R0=$(jp lease/hollow-0 '{.spec.renewTime}' -n kube-node-lease)
renewed() { [ "$(jp lease/hollow-0 '{.spec.renewTime}' -n kube-node-lease)" != "$R0" ]; }
ok "the Lease is renewed (every 2 s here)" wait_for 8 renewed

# --- pods --------------------------------------------------------------------------------
ok "a pod bound to a hollow node is created" pod web hollow-1
ok "it turns Ready (kubectl wait)" k wait --for=condition=Ready pod/web --timeout=20s
is "$(jp pod/web '{.status.phase} {.status.hostIP} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}')" \
	"Running $IP1 true 0" "Running on its node, container ready, no restarts"
WEB_IP=$(jp pod/web '{.status.podIP}')
like "$WEB_IP" "10.64." "it has a pod IP from its node's range"
like "$(jp pod/web '{.status.containerStatuses[0].containerID}')" "hollow://" \
	"its container ID is a hollow one"
pod web2 hollow-1 >/dev/null
k wait --for=condition=Ready pod/web2 --timeout=20s >/dev/null
ok "two pods on one node get different IPs" test "$(jp pod/web2 '{.status.podIP}')" != "$WEB_IP"

ok "a pod annotated hollow.skiff.io/ready=false is created" pod lazy hollow-0 Always \
	hollow.skiff.io/ready=false
ok "it runs" wait_for 15 phase_is lazy Running
sleep 1
is "$(jp pod/lazy '{.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[0].ready}')" \
	"False false" "but never becomes Ready"

pod done0 hollow-2 Never hollow.skiff.io/run-for=500ms >/dev/null
pod done3 hollow-2 Never hollow.skiff.io/run-for=500ms hollow.skiff.io/exit-code=3 >/dev/null
ok "a restartPolicy Never pod with exit code 0 Succeeds" wait_for 15 phase_is done0 Succeeded
is "$(jp pod/done0 '{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}')" \
	"Completed 0" "its container terminated Completed with exit code 0"
ok "one with exit code 3 Fails" wait_for 15 phase_is done3 Failed
is "$(jp pod/done3 '{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode} {.status.conditions[?(@.type=="Ready")].status}')" \
	"Error 3 False" "its container terminated with Error and exit code 3, not Ready"
expect_contains "kubectl get pods shows Completed and Error" "Error" k get pod done0 done3

cat <<EOF | k create -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: huge, namespace: default}
spec:
  nodeName: hollow-0
  containers:
  - name: main
    image: registry.local/app:1
    resources: {requests: {cpu: "100", memory: 1Ti}}
EOF
ok "a pod requesting more than its node holds runs anyway (placement is the scheduler's)" \
	k wait --for=condition=Ready pod/huge --timeout=20s

# bound by the scheduler (pods/binding) rather than created bound
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: sched, namespace: default}\nspec:\n  containers: [{name: main, image: registry.local/app:1}]\n' |
	k create -f - >/dev/null
ok "a pod placed by the scheduler turns Ready on its hollow node" \
	k wait --for=condition=Ready pod/sched --timeout=30s
like "$(jp pod/sched '{.spec.nodeName}')" "hollow-" "it is on one of the hollow nodes"

pod stray not-ours >/dev/null
sleep 1
is "$(jp pod/stray '{.status.phase}')" "Pending" "a pod bound to a node of no agent stays Pending"

ok "kubectl delete of a bound pod finishes" k delete pod web --timeout=20s
expect_fail_with "the pod is gone" "NotFound" k get pod web

# --- a second agent, adoption ---------------------------------------------------------------
ok "a second agent with another prefix runs beside the first" start_hollow 2 --node-prefix edge-
EDGE=$HOLLOW_PID
is "$(k get nodes --no-headers | wc -l | tr -d ' ')" 5 "five nodes in all"
pod edgepod edge-1 >/dev/null
ok "the second agent runs the pods bound to its nodes" k wait --for=condition=Ready pod/edgepod --timeout=20s
EDGE_IP=$(jp pod/edgepod '{.status.podIP}')
stop_hollow "$EDGE"
is "$?" 0 "the second agent exits 0 on SIGTERM"
ok "without --delete-nodes-on-exit its nodes stay" k get node edge-0 edge-1
ok "started again, it adopts its existing nodes" start_hollow 2 --node-prefix edge-
# its nodes are still Ready from before: start_hollow may return before the
# agent has written its first lines
ok "its log says it adopted them" wait_for 20 grep -q "2 exist already" "$HOLLOW_LOG"
is "$(jp pod/edgepod '{.status.podIP} {.status.phase}')" "$EDGE_IP Running" \
	"a running pod keeps its IP across the restart"
stop_hollow

# --- the server goes away and comes back ----------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }
renewed() { k get lease -n kube-node-lease hollow-0 -o jsonpath='{.spec.renewTime}'; }
RENEWED=$(renewed)
stop_server_cleanly
T0=$(cpu_ticks "$AGENT")
sleep 3
T1=$(cpu_ticks "$AGENT")
ok "with its server gone the agent waits, not spinning ($((${T1:-0} - ${T0:-0})) CPU ticks in 3 s)" \
	test -n "$T0" -a -n "$T1" -a $((${T1:-0} - ${T0:-0})) -lt 50
restart_server || bail_out "server did not restart"
lease_moved() { [ "$(renewed)" != "$RENEWED" ]; }
ok "the server back, the agent renews its nodes' Leases again" wait_for 30 lease_moved
pod back-0 hollow-0 >/dev/null
ok "and a pod bound to one of them turns Running" wait_for 30 phase_is back-0 Running
k delete pod back-0 --wait=false >/dev/null

# --- the end ------------------------------------------------------------------------------------
stop_hollow "$AGENT"
is "$?" 0 "the agent exits 0 on SIGTERM"
nodes_gone() { [ -z "$(k get nodes -o name | grep hollow-)" ]; }
ok "with --delete-nodes-on-exit its nodes are gone" nodes_gone
is "$(k get leases -n kube-node-lease -o name | grep -c hollow-)" 0 "and so are their Leases"

stop_server_cleanly

# --- over HTTPS -------------------------------------------------------------------------------------
start_server --tls || bail_out "server did not start with --tls"
ok "over HTTPS with the admin kubeconfig's client certificate, nodes turn Ready" \
	start_hollow 1 --node-prefix tls-
stop_hollow
is "$?" 0 "that agent exits 0 too"
stop_server_cleanly

done_testing
