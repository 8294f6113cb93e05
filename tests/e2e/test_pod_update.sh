#!/bin/bash
# tests/e2e/test_pod_update.sh - what an update may change of a Pod's spec,
# as in Kubernetes: images, activeDeadlineSeconds (set or lowered),
# tolerations (added), scheduling gates (removed); anything else is refused
# with 422 and kube-apiserver's message, and the pod stays as it was; a
# write to its status answers with the whole pod, and one naming another
# pod's uid is refused.
. "$(dirname "$0")/lib.sh"

start_server --controllers none || bail_out "server did not start"
FORBIDDEN='pod updates may not change fields other than `spec.containers[*].image`'

ok "a pod is created" k run web --image=nginx:1.26 --restart=Never
ok "kubectl set image changes a pod's image" k set image pod/web web=nginx:1.27
expect_output "the new image is stored" "nginx:1.27" k get pod web -o 'jsonpath={.spec.containers[0].image}'
expect_fail_with "changing a container's requests is refused" "$FORBIDDEN" \
	k patch pod web -p '{"spec":{"containers":[{"name":"web","resources":{"requests":{"cpu":"1"}}}]}}'
expect_output "the requests are unchanged" "" k get pod web -o 'jsonpath={.spec.containers[0].resources.requests.cpu}'
expect_fail_with "the refusal names what differs" "(spec.containers differs)" \
	k patch pod web -p '{"spec":{"containers":[{"name":"web","resources":{"requests":{"cpu":"1"}}}]}}'
expect_fail_with "changing restartPolicy is refused" "$FORBIDDEN" \
	k patch pod web -p '{"spec":{"restartPolicy":"Always"}}'
api PUT /api/v1/namespaces/default/pods/web -H 'Content-Type: application/json' \
	-d "$(k get pod web -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); d["spec"]["hostname"]="other"; print(json.dumps(d))')"
is "$HTTP_CODE" 422 "a PUT that changes the spec answers 422"
is "$(json_str reason)" Invalid "with a Status of reason Invalid"

ok "activeDeadlineSeconds can be set" k patch pod web -p '{"spec":{"activeDeadlineSeconds":300}}'
ok "and lowered" k patch pod web -p '{"spec":{"activeDeadlineSeconds":200}}'
expect_fail_with "but not raised" "must be less than or equal to previous value" \
	k patch pod web -p '{"spec":{"activeDeadlineSeconds":400}}'

ok "a toleration can be added" k patch pod web -p '{"spec":{"tolerations":[{"key":"a","operator":"Exists"}]}}'
expect_fail_with "an existing toleration cannot be removed" \
	"existing toleration can not be modified except its tolerationSeconds" \
	k patch pod web -p '{"spec":{"tolerations":[]}}'
ok "labels and annotations still change" k label pod web tier=front
ok "kubectl annotate on a pod works" k annotate pod web note=kept
expect_output "and are stored" "front kept" k get pod web -o 'jsonpath={.metadata.labels.tier} {.metadata.annotations.note}'

# a write to the status subresource answers with the whole pod as stored
OUT=$(k patch pod web --subresource=status --type=merge -p '{"status":{"phase":"Running","podIP":"10.1.2.3"}}' -o json)
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"]["phase"], d["status"]["podIP"], d["spec"]["containers"][0]["image"], d["metadata"]["labels"]["tier"])')" \
	"Running 10.1.2.3 nginx:1.27 front" "a status patch answers with the whole pod, status and spec"
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')" \
	"$(k get pod web -o 'jsonpath={.metadata.resourceVersion}')" "with the resourceVersion it was stored at"
expect_fail_with "a status patch for another pod of the same name (its uid) is refused" \
	'metadata.uid: Invalid value: "0000-not-this-pod": field is immutable' \
	k patch pod web --subresource=status --type=merge -p '{"metadata":{"uid":"0000-not-this-pod"},"status":{"message":"late"}}'
expect_fail_with "and so is a patch of the pod itself" 'field is immutable' \
	k patch pod web --type=merge -p '{"metadata":{"uid":"0000-not-this-pod","labels":{"late":"yes"}}}'
expect_output "neither was applied" " " k get pod web -o 'jsonpath={.status.message} {.metadata.labels.late}'
ok "the pod's own uid in a status patch is taken" \
	k patch pod web --subresource=status --type=merge -p "{\"metadata\":{\"uid\":\"$(k get pod web -o 'jsonpath={.metadata.uid}')\"},\"status\":{\"message\":\"mine\"}}"
expect_output "and applied" "mine" k get pod web -o 'jsonpath={.status.message}'
ok "a status merge patch that also names the spec is taken" \
	k patch pod web --subresource=status --type=merge -p '{"spec":{"activeDeadlineSeconds":5},"metadata":{"labels":{"tier":"back"}},"status":{"message":"hi","podIP":null}}'
expect_output "only its status is applied: spec and labels stay, podIP goes, the rest of the status stays" \
	"200 front hi Running" k get pod web -o 'jsonpath={.spec.activeDeadlineSeconds} {.metadata.labels.tier} {.status.message}{.status.podIP} {.status.phase}'
# a status write validates what it changes (the stored spec is not walked again)
expect_fail_with "a status whose phase is not a string is refused" 'status.phase' \
	k patch pod web --subresource=status --type=merge -p '{"status":{"phase":5}}'
api PATCH "/api/v1/namespaces/default/pods/web/status?fieldValidation=Strict" \
	-H 'Content-Type: application/merge-patch+json' -d '{"status":{"bogus":1}}'
is "$HTTP_CODE" 400 "with strict field validation, an unknown status field is refused (400, as Kubernetes)"
like "$BODY" 'unknown field \"status.bogus\"' "naming the field"
ok "without it the unknown field is dropped" \
	k patch pod web --subresource=status --type=merge -p '{"status":{"bogus":1,"message":"kept"}}'
expect_output "and the rest applied" "kept Running" k get pod web -o 'jsonpath={.status.message} {.status.phase}'
is "$(k get pod web -o json | python3 -c 'import json,sys; print("bogus" in json.load(sys.stdin)["status"])')" \
	"False" "the unknown status field was not stored"

cat >"$E2E_TMP/gated.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: gated}
spec:
  schedulingGates: [{name: example.com/one}, {name: example.com/two}]
  containers: [{name: c, image: nginx}]
YAML
ok "a pod with scheduling gates is created" k apply -f "$E2E_TMP/gated.yaml"
ok "a scheduling gate can be removed" k patch pod gated --type=json -p '[{"op":"remove","path":"/spec/schedulingGates/0"}]'
expect_fail_with "a new scheduling gate is refused" "only deletion is allowed, but found new scheduling gate 'example.com/three'" \
	k patch pod gated --type=json -p '[{"op":"add","path":"/spec/schedulingGates/-","value":{"name":"example.com/three"}}]'

stop_server_cleanly
done_testing
