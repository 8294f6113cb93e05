#!/bin/bash
# tests/e2e/test_endpoints.sh - the Endpoints and EndpointSlice controllers
# seen through kubectl: ready and not-ready pods, named target ports
# resolved per pod, pods changing readiness and going away, Services
# without selector left alone, headless and publishNotReadyAddresses
# Services, more than 100 pods over two slices, dual-stack slices, and the
# Service's deletion taking its endpoints along.
#
# Pods are made by hand: bound to a Node object with spec.nodeName, their
# IPs and Ready condition written through the status subresource, as a
# kubelet would.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

JSON=(-H "Content-Type: application/json")
MERGE=(-H "Content-Type: application/merge-patch+json")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# mk_node NAME ZONE
mk_node() {
	printf 'apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n  labels: {topology.kubernetes.io/zone: %s}\n' \
		"$1" "$2" | k create -f -
}

# mk_pod NAME APP PORTNAME PORT [EXTRA SPEC LINES]
mk_pod() {
	cat <<EOF | k create -f -
apiVersion: v1
kind: Pod
metadata:
  name: $1
  labels: {app: $2}
spec:
  nodeName: node-a
$5
  containers:
  - name: main
    image: nginx
    ports: [{name: $3, containerPort: $4}]
EOF
}

# pod_status NAME READY(True|False) IP [IP...]: what a kubelet reports.
pod_status() {
	local name=$1 ready=$2 ips="" ip
	shift 2
	for ip in "$@"; do ips="$ips${ips:+,}{\"ip\":\"$ip\"}"; done
	k patch pod "$name" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"Running\",
		\"podIP\":\"$1\",\"podIPs\":[$ips],
		\"conditions\":[{\"type\":\"Ready\",\"status\":\"$ready\",\"lastTransitionTime\":\"$NOW\"}]}}"
}

set_ready() {
	k patch pod "$1" --subresource=status --type=merge \
		-p "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$2\",\"lastTransitionTime\":\"$NOW\"}]}}"
}

ep_field() { k get endpoints "$1" -o "jsonpath=$2" 2>/dev/null; }
# ep_col SVC: the ENDPOINTS column of `kubectl get endpoints`
ep_col() { k get endpoints "$1" --no-headers 2>/dev/null | awk '{print $2}'; }
ready_ips() { ep_field "$1" '{.subsets[*].addresses[*].ip}' | tr ' ' '\n' | sort | xargs; }
not_ready_ips() { ep_field "$1" '{.subsets[*].notReadyAddresses[*].ip}' | tr ' ' '\n' | sort | xargs; }
slices_of() { k get endpointslices -l "kubernetes.io/service-name=$1" "${@:2}"; }
# slice_eps SVC: "ip ready serving terminating" per endpoint, sorted
slice_eps() {
	slices_of "$1" -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready} {.conditions.serving} {.conditions.terminating}{"\n"}{end}' |
		sort
}
eq() { [ "$("${@:2}")" = "$1" ]; }

ok "a node with a zone" mk_node node-a zone-a

# --- a user's own Endpoints for a Service without selector ------------------------------
cat <<EOF | k create -f - >/dev/null
apiVersion: v1
kind: Service
metadata: {name: external}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: external}
subsets:
- addresses: [{ip: 192.0.2.10}]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: alias}
spec:
  type: ExternalName
  externalName: db.example.com
  selector: {app: web}
EOF

# --- ready and not-ready pods, named target port ------------------------------------------
cat <<EOF | k create -f - >/dev/null
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {tier: front}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: web}]
EOF
mk_pod web-a web web 8080 >/dev/null
mk_pod web-b web web 9090 >/dev/null
mk_pod web-c web web 8080 >/dev/null
mk_pod other other web 8080 >/dev/null
pod_status web-a True 10.1.0.1 >/dev/null
pod_status web-b True 10.1.0.2 >/dev/null
pod_status web-c False 10.1.0.3 >/dev/null
pod_status other True 10.1.0.9 >/dev/null

ok "Endpoints list the two ready pods" wait_for 10 eq "10.1.0.1 10.1.0.2" ready_ips web
expect_output "the not-ready pod is under notReadyAddresses" "10.1.0.3" not_ready_ips web
col=$(ep_col web)
like "$col" "10.1.0.1:8080" "kubectl get endpoints shows the first pod with its named port (8080)"
like "$col" "10.1.0.2:9090" "kubectl get endpoints shows the second pod with its own number for the name (9090)"
unlike "$col" "10.1.0.3" "kubectl get endpoints leaves out the not-ready pod"
unlike "$col" "10.1.0.9" "kubectl get endpoints leaves out pods the selector does not pick"
expect_output "pods with different numbers for the port name make two subsets" "8080 9090" \
	ep_field web '{.subsets[*].ports[0].port}'
expect_output "the port keeps the Service port's name" "http http" ep_field web '{.subsets[*].ports[0].name}'
expect_output "addresses name their pod and node" "Pod web-a node-a" \
	ep_field web '{.subsets[0].addresses[0].targetRef.kind} {.subsets[0].addresses[0].targetRef.name} {.subsets[0].addresses[0].nodeName}'
expect_output "Endpoints carry the Service's labels and the controller's" "front endpoint-controller" \
	ep_field web '{.metadata.labels.tier} {.metadata.labels.endpoints\.kubernetes\.io/managed-by}'
expect_output "last-change-trigger-time is the latest change" "$NOW" \
	ep_field web '{.metadata.annotations.endpoints\.kubernetes\.io/last-change-trigger-time}'
expect_contains "kubectl describe endpoints shows NotReadyAddresses" "NotReadyAddresses:  10.1.0.3" \
	k describe endpoints web

# --- EndpointSlices ----------------------------------------------------------------------------
ok "EndpointSlices: one per port number" wait_for 10 eq 2 eval 'slices_of web --no-headers | wc -l'
expect_output "slices carry every selected pod with its conditions" \
	"10.1.0.1 true true false
10.1.0.2 true true false
10.1.0.3 false false false" slice_eps web
expect_contains "kubectl get endpointslices shows the ports and addresses" "9090" slices_of web
like "$OUT" "10.1.0.2" "kubectl get endpointslices shows the address"
expect_output "slices are IPv4, managed by the endpointslice controller" \
	"IPv4 endpointslice-controller.k8s.io
IPv4 endpointslice-controller.k8s.io" \
	slices_of web -o jsonpath='{range .items[*]}{.addressType} {.metadata.labels.endpointslice\.kubernetes\.io/managed-by}{"\n"}{end}'
expect_output "slices are owned by the Service (controller reference)" \
	"Service web true $(jp service/web '{.metadata.uid}')" \
	slices_of web -o jsonpath='{.items[0].metadata.ownerReferences[0].kind} {.items[0].metadata.ownerReferences[0].name} {.items[0].metadata.ownerReferences[0].controller} {.items[0].metadata.ownerReferences[0].uid}'
expect_output "endpoints carry the pod, node and the node's zone" "web-a node-a zone-a" \
	eval "slices_of web -o jsonpath='{range .items[*].endpoints[*]}{.targetRef.name} {.nodeName} {.zone}{\"\\n\"}{end}' | sort | head -n 1"
expect_output "slice ports carry the Service port's name" "http http" \
	slices_of web -o jsonpath='{.items[*].ports[0].name}'
names_before=$(slices_of web -o name | sort | xargs)

# --- readiness changes -------------------------------------------------------------------------
ok "web-c turns ready" set_ready web-c True
ok "web-a turns unready" set_ready web-a False
ok "the ready pod moves to addresses and the unready one out" wait_for 10 eq "10.1.0.2 10.1.0.3" ready_ips web
expect_output "the unready pod is now under notReadyAddresses" "10.1.0.1" not_ready_ips web
ok "slices follow the conditions" wait_for 10 eq "10.1.0.1 false false false
10.1.0.2 true true false
10.1.0.3 true true false" slice_eps web
expect_output "slices were updated in place, not recreated" "$names_before" eval 'slices_of web -o name | sort | xargs'

# --- a pod going away ----------------------------------------------------------------------------
ok "delete web-b (it waits for its node to stop it)" k delete pod web-b --wait=false
ok "a terminating pod leaves the Endpoints" wait_for 10 eq "10.1.0.3" ready_ips web
ok "a terminating pod stays in its slice as terminating, not ready" wait_for 10 eq "10.1.0.1 false false false
10.1.0.2 false true true
10.1.0.3 true true false" slice_eps web
ok "the node's agent removes it" k delete pod web-b --grace-period=0 --force
ok "a removed pod leaves the slices" wait_for 10 eq "10.1.0.1 false false false
10.1.0.3 true true false" slice_eps web
ok "the emptied 9090 slice is gone" wait_for 10 eq 1 eval 'slices_of web --no-headers | wc -l'
ok "deleting the Endpoints makes them come back" k delete endpoints web
ok "the Endpoints are back" wait_for 10 eq "10.1.0.3" ready_ips web

# --- a Service without selector ---------------------------------------------------------------
expect_output "a Service without selector keeps its user's Endpoints" "192.0.2.10:80" ep_col external
expect_output "its Endpoints get no controller label" "" \
	ep_field external '{.metadata.labels.endpoints\.kubernetes\.io/managed-by}'
expect_output "and it gets no EndpointSlices" "" eval 'slices_of external -o name'
expect_fail_with "an ExternalName Service gets no Endpoints, even with a selector" "NotFound" \
	k get endpoints alias
expect_output "nor EndpointSlices" "" eval 'slices_of alias -o name'

# --- headless with hostnames; publishNotReadyAddresses ---------------------------------------------
cat <<EOF | k create -f - >/dev/null
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: sql, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  selector: {app: db}
  publishNotReadyAddresses: true
  ports: [{name: sql, port: 5432}]
EOF
mk_pod db-0 db sql 5432 '  hostname: db-0
  subdomain: db' >/dev/null
mk_pod db-1 db sql 5432 >/dev/null
pod_status db-0 True 10.3.0.1 >/dev/null
pod_status db-1 False 10.3.0.2 >/dev/null
ok "headless Service: the ready pod is listed" wait_for 10 eq "10.3.0.1" ready_ips db
expect_output "the pod whose subdomain is the Service publishes its hostname" "db-0" \
	ep_field db '{.subsets[0].addresses[0].hostname}'
expect_output "headless Endpoints carry service.kubernetes.io/headless" "true" \
	eval "ep_field db '{.metadata.labels}' | grep -q 'service.kubernetes.io/headless' && echo true"
ok "publishNotReadyAddresses lists the not-ready pod as ready" wait_for 10 eq "10.3.0.1 10.3.0.2" ready_ips peers
expect_output "and its slice endpoints are ready but not serving" "10.3.0.1 true true false
10.3.0.2 true false false" slice_eps peers

# --- more than 100 pods ----------------------------------------------------------------------------
k create -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: bulk}
spec:
  selector: {app: bulk}
  ports: [{port: 80}]
EOF
pods_ok=0
for i in $(seq 1 150); do
	api POST /api/v1/namespaces/default/pods "${JSON[@]}" -d "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",
		\"metadata\":{\"name\":\"bulk-$i\",\"labels\":{\"app\":\"bulk\"}},
		\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"main\",\"image\":\"nginx\"}]}}"
	[ "$HTTP_CODE" = 201 ] || continue
	api PATCH "/api/v1/namespaces/default/pods/bulk-$i/status" "${MERGE[@]}" -d "{\"status\":{
		\"podIP\":\"10.4.$((i / 200)).$((i % 200 + 1))\",\"podIPs\":[{\"ip\":\"10.4.$((i / 200)).$((i % 200 + 1))\"}],
		\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"
	[ "$HTTP_CODE" = 200 ] && pods_ok=$((pods_ok + 1))
done
is "$pods_ok" 150 "150 pods made with their IPs"
bulk_counts() {
	slices_of bulk -o jsonpath='{range .items[*]}{.endpoints[*].addresses[0]}{"\n"}{end}' |
		awk '{print NF}' | sort -n | xargs
}
ok "150 endpoints spill into a second slice (100 + 50)" wait_for 20 eq "50 100" bulk_counts
expect_output "the Endpoints object lists all 150" 150 \
	eval "ep_field bulk '{.subsets[*].addresses[*].ip}' | wc -w"
bulk_total() { bulk_counts | awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; print s}'; }
bulk_before=$(slices_of bulk -o name | sort | xargs)
for i in $(seq 1 30); do api DELETE "/api/v1/namespaces/default/pods/bulk-$i?gracePeriodSeconds=0"; done
ok "after 30 pods go, the slices hold 120" wait_for 20 eq 120 bulk_total
expect_output "and are the same slices, edited in place" "$bulk_before" eval 'slices_of bulk -o name | sort | xargs'

# --- dual stack ------------------------------------------------------------------------------------
expect_contains "the API server accepts a dual-stack Service" "service/dual created" k create -f - <<EOF
apiVersion: v1
kind: Service
metadata: {name: dual}
spec:
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: dual}
  ports: [{port: 80}]
EOF
expect_output "ipFamilies are kept" "RequireDualStack IPv4 IPv6" \
	jp service/dual '{.spec.ipFamilyPolicy} {.spec.ipFamilies[0]} {.spec.ipFamilies[1]}'
mk_pod dual-1 dual http 80 >/dev/null
mk_pod dual-2 dual http 80 >/dev/null
pod_status dual-1 True 10.5.0.1 fd00::1 >/dev/null
pod_status dual-2 True 10.5.0.2 fd00::2 >/dev/null
dual_slices() {
	slices_of dual -o jsonpath='{range .items[*]}{.addressType}={.endpoints[*].addresses[0]}{"\n"}{end}' | sort
}
ok "a dual-stack Service gets an IPv4 and an IPv6 slice" wait_for 10 eq "IPv4=10.5.0.1 10.5.0.2
IPv6=fd00::1 fd00::2" dual_slices
expect_output "its Endpoints use the first family" "10.5.0.1 10.5.0.2" ready_ips dual
cat <<EOF | k create -f - >/dev/null
apiVersion: v1
kind: Service
metadata: {name: six}
spec:
  ipFamilies: [IPv6]
  selector: {app: dual}
  ports: [{port: 80}]
EOF
ok "an IPv6-only Service gets only IPv6 slices" wait_for 10 eq "IPv6=fd00::1 fd00::2" \
	eval 'slices_of six -o jsonpath="{range .items[*]}{.addressType}={.endpoints[*].addresses[0]}{\"\\n\"}{end}"'
expect_output "and IPv6 Endpoints" "fd00::1 fd00::2" ready_ips six

# --- pods placed by the scheduler on hollow nodes ------------------------------------------------
if start_hollow 2 --labels topology.kubernetes.io/zone=zone-h --ready-delay 100ms; then
	pass "two hollow nodes in zone-h"
else
	fail "two hollow nodes in zone-h"
fi
k create -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: app}
  ports: [{name: web, port: 80, targetPort: http}]
EOF
for p in app-1 app-2 app-3; do
	ann=
	[ $p = app-3 ] && ann='  annotations: {hollow.skiff.io/ready: "false"}'
	k create -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $p
  labels: {app: app}
$ann
spec:
  containers:
  - name: main
    image: nginx
    ports: [{name: http, containerPort: 8080}]
EOF
done
pod_ip() { jp "pod/$1" '{.status.podIP}'; }
ok "the scheduler places the pods and the hollow kubelet gives them IPs" \
	wait_for 20 eval '[ -n "$(pod_ip app-1)" ] && [ -n "$(pod_ip app-2)" ] && [ -n "$(pod_ip app-3)" ]'
ip1=$(pod_ip app-1) ip2=$(pod_ip app-2) ip3=$(pod_ip app-3)
ok "Endpoints list the two Ready pods" wait_for 20 eq "$(printf '%s\n' "$ip1" "$ip2" | sort | xargs)" ready_ips app
expect_output "the pod that never turns Ready is under notReadyAddresses" "$ip3" not_ready_ips app
like "$(ep_col app)" "$ip1:8080" "kubectl get endpoints shows IP:8080 from the named port"
expect_output "slice endpoints carry the hollow node and its zone" \
	"$(jp pod/app-1 '{.spec.nodeName}') zone-h" \
	eval "slices_of app -o jsonpath='{range .items[*].endpoints[*]}{.targetRef.name} {.nodeName} {.zone}{\"\\n\"}{end}' | grep '^app-1 ' | cut -d' ' -f2-"
ok "delete app-1; its hollow node stops it" k delete pod app-1 --wait=false
ok "the deleted pod leaves the Endpoints" wait_for 20 eq "$ip2" ready_ips app
ok "and the slices once its node removed it" wait_for 20 eq "$(printf '%s false false false\n%s true true false' "$ip3" "$ip2" | sort)" slice_eps app
stop_hollow

# --- a Service with no pods; deleting a Service ------------------------------------------------------
k create -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
EOF
ok "a Service without pods gets an empty Endpoints" wait_for 10 k get endpoints empty
expect_output "... with no subsets" "" ep_field empty '{.subsets}'
ok "and one empty placeholder slice" wait_for 10 eq 1 eval 'slices_of empty --no-headers | wc -l'
expect_output "the placeholder has no endpoints" "" slices_of empty -o jsonpath='{.items[0].endpoints[*].addresses}'

ok "delete the web Service" k delete service web
ok "its Endpoints go with it" wait_for 10 not k get endpoints web
ok "its slices go with it" wait_for 10 eq "" eval 'slices_of web -o name'
expect_output "the Service without selector still has its user's Endpoints" "192.0.2.10:80" ep_col external

stop_server_cleanly

# --- the size settings, and a restart on the same data -----------------------------------------------
# Kubernetes caps Endpoints at 1000 addresses; the cap is a setting here so
# that 120 pods can show the truncation.
start_server --plugin-settings \
	"controller-endpointslice.maxEndpointsPerSlice=50;controller-endpoints.maxAddresses=100" ||
	bail_out "server did not start with maxEndpointsPerSlice=50 and maxAddresses=100"
bulk_shape() { echo "$(bulk_counts | wc -w) $(bulk_total) $(bulk_counts | awk '{print $NF}')"; }
ok "with maxEndpointsPerSlice=50 the 120 endpoints are in 3 slices of at most 50" \
	wait_for 20 eq "3 120 50" bulk_shape
ok "with maxAddresses=100 the Endpoints stop at 100 addresses" wait_for 20 eq 100 \
	eval "ep_field bulk '{.subsets[*].addresses[*].ip}' | wc -w"
expect_output "and say so with endpoints.kubernetes.io/over-capacity" truncated \
	ep_field bulk '{.metadata.annotations.endpoints\.kubernetes\.io/over-capacity}'
for i in $(seq 31 50); do api DELETE "/api/v1/namespaces/default/pods/bulk-$i?gracePeriodSeconds=0"; done
ok "at 100 pods every address is listed" wait_for 20 eq 100 \
	eval "ep_field bulk '{.subsets[*].addresses[*].ip}' | wc -w"
ok "and the over-capacity annotation is gone" wait_for 10 eq "" \
	ep_field bulk '{.metadata.annotations.endpoints\.kubernetes\.io/over-capacity}'
expect_output "after the restart the other Endpoints are as they were" "10.5.0.1 10.5.0.2" ready_ips dual
stop_server_cleanly
done_testing
