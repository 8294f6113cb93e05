#!/bin/bash
# tests/e2e/test_quota.sh - ResourceQuota through kubectl: `kubectl
# describe quota` shows Used and Hard and follows creates and deletes;
# object counts (pods, configmaps, count/deployments.apps) and compute
# (requests.cpu, limits.memory) are enforced with Kubernetes' messages; a
# pod without requests under a compute quota is refused; a burst of
# concurrent creates cannot exceed a count; scopes; and the status is kept
# without any controller running.
. "$(dirname "$0")/lib.sh"

start_server --controllers none || bail_out "server did not start"
mk_ns team >/dev/null
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: ResourceQuota
metadata: {name: team-quota, namespace: team}
spec:
  hard:
    pods: "2"
    requests.cpu: "1"
    limits.memory: 1Gi
    configmaps: "2"
    count/deployments.apps: "1"
EOF
# used NAME: the Used column of `kubectl describe quota` for NAME
used() { k describe quota team-quota -n team | awk -v r="$1" '$1 == r { print $2 }'; }
hard() { k describe quota team-quota -n team | awk -v r="$1" '$1 == r { print $3 }'; }
eq() { [ "$("${@:2}")" = "$1" ]; }
ok "kubectl describe quota shows what is used: nothing yet" wait_for 5 eq 0 used pods
is "$(for r in pods requests.cpu limits.memory configmaps count/deployments.apps; do hard $r; done | xargs)" \
	"2 1 1Gi 2 1" "and the hard limits"
expect_output "status.hard copies spec.hard" '1Gi' jp quota/team-quota '{.status.hard.limits\.memory}' -n team

pod() { # pod NAME CPU MEMORY: one container with a cpu request and a memory limit
	k run "$1" --image=busybox -n team --overrides="{\"spec\":{\"containers\":[{\"name\":\"$1\",\"image\":\"busybox\",\"resources\":{\"requests\":{\"cpu\":\"$2\"},\"limits\":{\"memory\":\"$3\"}}}]}}"
}
expect_fail_with "a pod without requests under a compute quota is refused" \
	'Error from server (Forbidden): pods "bare" is forbidden: failed quota: team-quota: must specify limits.memory for: bare; must specify requests.cpu for: bare' \
	k run bare --image=busybox -n team
ok "a pod within the quota" pod a 600m 512Mi
ok "Used follows: pods" wait_for 5 eq 1 used pods
is "$(used requests.cpu) $(used limits.memory)" "600m 512Mi" "requests.cpu and limits.memory"
expect_fail_with "a pod that would exceed requests.cpu is refused with Kubernetes' message" \
	'Error from server (Forbidden): pods "b" is forbidden: exceeded quota: team-quota, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1' \
	pod b 600m 256Mi
expect_fail_with "several limits exceeded at once are all named" \
	'exceeded quota: team-quota, requested: limits.memory=1Gi,requests.cpu=2, used: limits.memory=512Mi,requests.cpu=600m, limited: limits.memory=1Gi,requests.cpu=1' \
	pod c 2 1Gi
ok "a second pod that fits" pod d 300m 256Mi
expect_fail_with "the third pod exceeds the pod count" \
	'exceeded quota: team-quota, requested: pods=1, used: pods=2, limited: pods=2' \
	pod e 1m 1Mi
unlike "$ERR" "requests.cpu" "only the exceeded limit is named"
ok "delete a pod" k delete pod a -n team --grace-period=0
ok "Used goes down" wait_for 5 eq 1 used pods
is "$(used requests.cpu) $(used limits.memory)" "300m 256Mi" "and so do its resources"
ok "then a pod fits again" pod e 100m 64Mi
expect_fail_with "a dry run is checked against the quota too" 'exceeded quota: team-quota' \
	k run f --image=busybox -n team --dry-run=server --overrides='{"spec":{"containers":[{"name":"f","image":"busybox","resources":{"requests":{"cpu":"1m"},"limits":{"memory":"1Mi"}}}]}}'

ok "a ConfigMap" mk_cm one team
ok "another" mk_cm two team
expect_fail_with "the third exceeds configmaps" \
	'configmaps "three" is forbidden: exceeded quota: team-quota, requested: configmaps=1, used: configmaps=2, limited: configmaps=2' \
	mk_cm three team
ok "one Deployment" mk_deploy web team busybox
expect_fail_with "a second exceeds count/deployments.apps" \
	'deployments.apps "api" is forbidden: exceeded quota: team-quota, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1' \
	mk_deploy api team busybox
ok "Used counts it" wait_for 5 eq 1 used count/deployments.apps
ok "kubectl get quota" k get quota -n team --no-headers
like "$OUT" "configmaps: 2/2, count/deployments.apps: 1/1, pods: 2/2, requests.cpu: 400m/1" \
	"shows the request column"
like "$OUT" "limits.memory: 320Mi/1Gi" "and the limit column"

# a burst: ten creates at once against a count of two
mk_ns burst >/dev/null
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: ResourceQuota
metadata: {name: two, namespace: burst}
spec: {hard: {configmaps: "2"}}
EOF
# (curl, not kubectl: ten requests really in flight together)
seq 1 10 | xargs -P 10 -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
	--data '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm{}"}}' \
	"$E2E_URL/api/v1/namespaces/burst/configmaps"
is "$(k get configmaps -n burst --no-headers | wc -l)" 2 \
	"ten concurrent creates against configmaps: 2 leave two"

# scopes: BestEffort pods only
mk_ns scoped >/dev/null
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: ResourceQuota
metadata: {name: besteffort, namespace: scoped}
spec:
  hard: {pods: "1"}
  scopes: [BestEffort]
EOF
ok "a best-effort pod" k run be1 --image=busybox -n scoped
expect_fail_with "a second best-effort pod exceeds the scoped quota" \
	'exceeded quota: besteffort, requested: pods=1, used: pods=1, limited: pods=1' \
	k run be2 --image=busybox -n scoped
ok "a pod with requests is outside the scope" k run burstable --image=busybox -n scoped \
	--overrides='{"spec":{"containers":[{"name":"burstable","image":"busybox","resources":{"requests":{"cpu":"10m"}}}]}}'

# updates are charged what they add
mk_ns grow >/dev/null
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: ResourceQuota
metadata: {name: caps, namespace: grow}
spec: {hard: {requests.storage: 2Gi, services.nodeports: "1"}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: grow}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: grow}
spec: {ports: [{name: a, port: 80}, {name: b, port: 443}]}
EOF
storage_used() { k describe quota caps -n grow | awk '$1 == "requests.storage" { print $2 }'; }
ok "Used counts the claim" wait_for 5 eq 1Gi storage_used
expect_fail_with "growing a claim past the quota is refused, charged what it adds" \
	'persistentvolumeclaims "data" is forbidden: exceeded quota: caps, requested: requests.storage=2Gi, used: requests.storage=1Gi, limited: requests.storage=2Gi' \
	k patch pvc data -n grow -p '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}'
ok "growing it within the quota is allowed" \
	k patch pvc data -n grow -p '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}'
ok "Used follows the update" wait_for 5 eq 2Gi storage_used
expect_fail_with "a Service that would become a NodePort with two ports exceeds services.nodeports" \
	'services "web" is forbidden: exceeded quota: caps, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1' \
	k patch service web -n grow -p '{"spec":{"type":"NodePort"}}'
ok "other updates of it go through" k label service web -n grow tier=front
stop_server_cleanly

# Used survives a restart and is recounted from what is stored
start_server --controllers none || bail_out "server did not restart"
ok "after a restart Used is still right" wait_for 15 eq 2 used pods
ok "delete a pod after the restart" k delete pod e -n team --grace-period=0
ok "Used is recounted" wait_for 5 eq 1 used pods
stop_server_cleanly

done_testing
