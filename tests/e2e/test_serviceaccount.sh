#!/bin/bash
# tests/e2e/test_serviceaccount.sh - the ServiceAccount controller: every
# namespace gets a "default" ServiceAccount as soon as it exists, a deleted
# one comes back, and nothing else is made (no token Secrets).
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

sa_names() { k get serviceaccounts -n "$1" -o jsonpath='{.items[*].metadata.name}' 2>/dev/null; }
eq() { [ "$("${@:2}")" = "$1" ]; }

for ns in default kube-system kube-public kube-node-lease; do
	ok "namespace $ns has a default ServiceAccount" wait_for 10 eq default sa_names "$ns"
done

expect_contains "kubectl create namespace" "namespace/team-a created" k create namespace team-a
start=$(date +%s%N)
if wait_for 5 k get serviceaccount default -n team-a; then
	ms=$((($(date +%s%N) - start) / 1000000))
	pass "the new namespace gets a default ServiceAccount (seen by kubectl after ${ms} ms)"
else
	fail "the new namespace gets a default ServiceAccount"
fi
ns_time=$(jp namespace/team-a '{.metadata.creationTimestamp}')
sa_time=$(jp serviceaccount/default '{.metadata.creationTimestamp}' -n team-a)
ok "it was made within a second of the namespace ($ns_time, $sa_time)" \
	test $(($(date -d "$sa_time" +%s) - $(date -d "$ns_time" +%s))) -le 1
expect_output "kubectl get sa shows it with no secrets" "default 0" \
	eval "k get sa -n team-a --no-headers | awk '{print \$1, \$2}'"
expect_output "no token Secret is made for it" "" \
	k get secrets -n team-a -o jsonpath='{.items[*].metadata.name}'

uid=$(jp serviceaccount/default '{.metadata.uid}' -n team-a)
ok "delete the default ServiceAccount" k delete serviceaccount default -n team-a
recreated() {
	local now
	now=$(k get serviceaccount default -n team-a -o jsonpath='{.metadata.uid}' 2>/dev/null)
	[ -n "$now" ] && [ "$now" != "$uid" ]
}
ok "a deleted default ServiceAccount comes back (a new object)" wait_for 5 recreated

ok "a ServiceAccount of the user's" k create serviceaccount robot -n team-a
ok "deleting it is final" k delete serviceaccount robot -n team-a
sleep 1
expect_output "only the default ServiceAccount is left" "default" sa_names team-a

mk_ns team-b >/dev/null
ok "a namespace made from YAML gets one too" wait_for 5 eq default sa_names team-b
ok "delete namespace team-b" k delete namespace team-b --wait=false
ok "the namespace goes away: its default ServiceAccount is not made again meanwhile" \
	wait_for 20 not k get namespace team-b

stop_server_cleanly

# Without the controller no ServiceAccount appears: it is the controller's work.
start_server --controllers none || bail_out "server did not start without controllers"
mk_ns team-c >/dev/null
sleep 1
expect_output "with --controllers none a new namespace has no ServiceAccount" "" sa_names team-c
stop_server_cleanly
done_testing
