#!/bin/bash
# tests/e2e/test_errors.sh - bad requests over plain HTTP: each gets the
# right status code and a Kubernetes Status (reason, message naming the
# problem), and the server keeps serving with the store intact afterwards.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

CM=/api/v1/namespaces/default/configmaps
DEPLOY=/apis/apps/v1/namespaces/default/deployments
JSON=(-H 'Content-Type: application/json')

# status_is CODE REASON DESC: the last api call answered CODE with a Status
# whose reason is REASON.
status_is() {
	if [ "$HTTP_CODE" = "$1" ] && [ "$(json_str kind)" = Status ] &&
		[ "$(json_str reason)" = "$2" ] && [ "$(json_num code)" = "$1" ]; then
		pass "$3"
	else
		fail "$3"
		diag "expected HTTP $1 and a Status with reason $2 and code $1"
		diag "got HTTP $HTTP_CODE: $(head -c 600 <<<"$BODY")"
		[ -s "$E2E_TMP/curl.err" ] && diag "curl: $(cat "$E2E_TMP/curl.err")"
	fi
}

# refused DESC: the last api call was refused as the client's fault (4xx
# with a Status), not a crash, a hang or a 5xx.
refused() {
	if [ "$HTTP_CODE" -ge 400 ] 2>/dev/null && [ "$HTTP_CODE" -lt 500 ] &&
		[ "$(json_str kind)" = Status ]; then
		pass "$1"
	else
		fail "$1"
		diag "expected a 4xx Status; got HTTP $HTTP_CODE: $(head -c 400 <<<"$BODY")"
		[ -s "$E2E_TMP/curl.err" ] && diag "curl: $(cat "$E2E_TMP/curl.err")"
	fi
}

# message_has TEXT DESC: the last Status' message contains TEXT.
message_has() {
	like "$(json_str message)" "$1" "$2"
}

# --- a baseline object that must survive everything below -------------------------------
api POST "$CM" "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"},"data":{"a":"1"}}'
is "$HTTP_CODE" 201 "POST a configmap answers 201 Created"
keep_rv=$(json_str resourceVersion)

# --- 400: malformed body -------------------------------------------------------------------------
api POST "$CM" "${JSON[@]}" -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":'
status_is 400 BadRequest "malformed JSON answers 400 BadRequest"
ok "the Status says Failure" test "$(json_str status)" = Failure
api POST "$CM" "${JSON[@]}" -d '[1,2,3]'
status_is 400 BadRequest "a JSON array instead of an object answers 400"
api POST "$CM" "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrongkind"}}'
status_is 400 BadRequest "a Secret posted to configmaps answers 400"
api POST "$CM" "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"elsewhere","namespace":"kube-system"}}'
status_is 400 BadRequest "a body namespace that differs from the URL answers 400"

# --- 404 -------------------------------------------------------------------------------------------
api GET /api/v1/namespaces/default/foos
status_is 404 NotFound "an unknown resource answers 404 NotFound"
api GET /apis/nope.example.com/v1/namespaces/default/things
status_is 404 NotFound "an unknown API group answers 404 NotFound"
api GET "$CM/ghost"
status_is 404 NotFound "a missing object answers 404 NotFound"
message_has 'configmaps "ghost" not found' "the message names the missing object"
api POST /api/v1/namespaces/nope/configmaps "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}'
status_is 404 NotFound "creating in a missing namespace answers 404 NotFound"
message_has 'namespaces "nope" not found' "the message names the missing namespace"

# --- 422: invalid objects ------------------------------------------------------------------------------
deploy_body() {
	cat <<EOF
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"$1"},
 "spec":{$2"template":{"metadata":{"labels":{"app":"x"}},
  "spec":{"containers":[{"name":"c","image":"nginx:1.25"}]}}}}
EOF
}
api POST "$DEPLOY" "${JSON[@]}" -d "$(deploy_body noselector '"replicas":1,')"
status_is 422 Invalid "a deployment without spec.selector answers 422 Invalid"
message_has "spec.selector" "the message names spec.selector"
api POST "$DEPLOY" "${JSON[@]}" \
	-d "$(deploy_body badtype '"replicas":"three","selector":{"matchLabels":{"app":"x"}},')"
status_is 422 Invalid "replicas given as a string answers 422 Invalid"
message_has "spec.replicas" "the message names spec.replicas"
api POST "$DEPLOY" "${JSON[@]}" \
	-d "$(deploy_body negative '"replicas":-1,"selector":{"matchLabels":{"app":"x"}},')"
status_is 422 Invalid "negative replicas answer 422 Invalid"
message_has "spec.replicas" "the message names spec.replicas"
api POST "$CM" "${JSON[@]}" -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}'
status_is 422 Invalid "an object without a name answers 422 Invalid"
message_has "metadata.name" "the message names metadata.name"
api POST "$CM" "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_A_DNS_Name"}}'
status_is 422 Invalid "an invalid object name answers 422 Invalid"
api POST /api/v1/namespaces/default/pods "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"empty"},"spec":{"containers":[]}}'
status_is 422 Invalid "a pod without containers answers 422 Invalid"
message_has "spec.containers" "the message names spec.containers"
ok "none of the invalid deployments was stored" \
	not k get deployment noselector badtype negative

# --- the same through kubectl: field validation -------------------------------------------------------
cat >"$E2E_TMP/bad-replicas.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: kbad}
spec:
  replicas: three
  selector: {matchLabels: {app: kbad}}
  template:
    metadata: {labels: {app: kbad}}
    spec:
      containers: [{name: c, image: nginx:1.25}]
EOF
expect_fail_with "kubectl apply of a wrongly typed field names it" "spec.replicas" \
	k apply -f "$E2E_TMP/bad-replicas.yaml"
cat >"$E2E_TMP/unknown-field.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: strict}
data: {a: "1"}
colour: blue
EOF
expect_fail_with "kubectl apply refuses an unknown field (strict validation)" 'unknown field "colour"' \
	k apply -f "$E2E_TMP/unknown-field.yaml"
expect_fail_with "the refused object was not stored" "not found" k get configmap strict
_run k apply --validate=warn -f "$E2E_TMP/unknown-field.yaml"
is "$?" 0 "apply --validate=warn accepts it"
like "$ERR" 'unknown field "colour"' "apply --validate=warn prints the server's warning"
ok "apply --validate=false accepts it" k apply --validate=false -f "$E2E_TMP/unknown-field.yaml"
expect_output "the unknown field is dropped" "" k get configmap strict -o 'jsonpath={.colour}'
expect_output "the known fields are kept" 1 k get configmap strict -o 'jsonpath={.data.a}'
ok "delete the configmap" k delete configmap strict

# --- 409: conflicts ----------------------------------------------------------------------------------------
api POST "$CM" "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"},"data":{"a":"other"}}'
status_is 409 AlreadyExists "creating an existing object answers 409 AlreadyExists"
message_has 'configmaps "keep" already exists' "the message names the existing object"

ok "update keep with kubectl" k patch configmap keep --type=merge -p '{"data":{"b":"2"}}'
api PUT "$CM/keep" "${JSON[@]}" \
	-d "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"keep\",\"resourceVersion\":\"$keep_rv\"},\"data\":{\"a\":\"stale\"}}"
status_is 409 Conflict "PUT with a stale resourceVersion answers 409 Conflict"
message_has "the object has been modified" "the conflict message says the object was modified"
api PUT "$CM/other-name" "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"},"data":{}}'
status_is 400 BadRequest "PUT with a body name that differs from the URL answers 400"

# --- 405 ---------------------------------------------------------------------------------------------
api PUT "$CM" "${JSON[@]}" -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}'
status_is 405 MethodNotAllowed "PUT on a collection answers 405 MethodNotAllowed"
api POST "$CM/keep" "${JSON[@]}" -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"}}'
status_is 405 MethodNotAllowed "POST on a single object answers 405 MethodNotAllowed"

# --- 413: too large ------------------------------------------------------------------------------------------
{
	printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"x":"'
	head -c $((3 * 1024 * 1024 + 512 * 1024)) /dev/zero | tr '\0' a
	printf '"}}'
} >"$E2E_TMP/huge.json"
api POST "$CM" "${JSON[@]}" --data-binary @"$E2E_TMP/huge.json"
is "$HTTP_CODE" 413 "a body over 3 MiB answers 413"
[ "$HTTP_CODE" = 413 ] && [ -n "$BODY" ] && is "$(json_str reason)" RequestEntityTooLarge \
	"the 413 Status has reason RequestEntityTooLarge"

# --- 415: media types ------------------------------------------------------------------------------------------
api POST "$CM" -H 'Content-Type: text/plain' \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"plain"}}'
status_is 415 UnsupportedMediaType "POST with Content-Type text/plain answers 415"
api PATCH "$CM/keep" -H 'Content-Type: text/plain' -d '{"data":{"c":"3"}}'
status_is 415 UnsupportedMediaType "PATCH with Content-Type text/plain answers 415"

# --- odd input is refused, not fatal ------------------------------------------------------------------
api PATCH "$CM/keep" -H 'Content-Type: application/json-patch+json' -d '[{"op":"bogus","path":"/data"}]'
refused "a JSON patch with an unknown op is refused"
api PATCH "$CM/keep" -H 'Content-Type: application/json-patch+json' -d '{"op":"add"}'
refused "a JSON patch that is not a list is refused"
api PATCH "$CM/keep" -H 'Content-Type: application/merge-patch+json' -d '"just a string"'
refused "a merge patch that is not an object is refused"
api PATCH "$CM/keep" -H 'Content-Type: application/strategic-merge-patch+json' -d '{"data":{"$patch":"bogus"}}'
refused "a strategic patch with an unknown directive is refused"
api PATCH "$CM/ghost" -H 'Content-Type: application/merge-patch+json' -d '{"data":{"a":"b"}}'
status_is 404 NotFound "patching a missing object answers 404"
api GET "$CM?limit=abc"
refused "limit=abc is refused"
api GET "$CM?labelSelector=a%20in%20(b"
refused "a malformed label selector is refused"
api GET "$CM?fieldSelector=spec.nothing%3Dx"
refused "a field selector on an unsupported field is refused"
api GET "$CM?watch=1&resourceVersion=notanumber" --max-time 5
refused "a watch from a malformed resourceVersion is refused"
api GET "$CM?continue=garbage"
refused "a malformed continue token is refused"
mk_cm victim default a=1 >/dev/null 2>&1
api DELETE "$CM/victim" "${JSON[@]}" -d '{"preconditions":'
refused "DELETE with malformed options is refused"
expect_output "a refused DELETE deletes nothing" 1 jp configmap/victim '{.data.a}'
deep=$(printf '%0.s[' $(seq 1 5000))
api POST "$CM" "${JSON[@]}" -d "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"deep\"},\"x\":$deep"
refused "a body nested 5000 levels deep is refused"
api GET "/api/v1/namespaces/default/configmaps/$(head -c 20000 /dev/zero | tr '\0' a)"
ok "a 20000-character path is answered (no crash)" test "$HTTP_CODE" -ge 400 -a "$HTTP_CODE" -lt 500
api GET "/api/v1/namespaces/default/configmaps/%ff%fe"
ok "a path with invalid UTF-8 is answered (no crash)" test "$HTTP_CODE" -ge 400 -a "$HTTP_CODE" -lt 500
code=$(curl -s --max-time 5 -H "Host: attacker.example:$E2E_PORT" -o /dev/null -w '%{http_code}' "$E2E_URL/api/v1/namespaces")
is "$code" 403 "the development listener refuses a non-loopback Host (DNS rebinding)"
expect_output "/readyz answers ok after the odd input" ok curl -s --max-time 5 "$E2E_URL/readyz"

# --- preconditions -----------------------------------------------------------------------------------
# DELETE with a uid precondition that does not hold.
k get configmap victim >/dev/null 2>&1 || mk_cm victim default a=1 >/dev/null 2>&1
api DELETE "$CM/victim" "${JSON[@]}" -d '{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}'
status_is 409 Conflict "DELETE with a wrong uid precondition answers 409 Conflict"
expect_output "a failed precondition deletes nothing" 1 jp configmap/victim '{.data.a}'
k delete configmap victim --ignore-not-found >/dev/null 2>&1

# --- afterwards ------------------------------------------------------------------------------------------------
expect_output "/readyz still answers ok" ok curl -s --max-time 5 "$E2E_URL/readyz"
expect_output "the baseline object is intact" "1 2" \
	k get configmap keep -o 'jsonpath={.data.a} {.data.b}'
expect_output "no rejected object was stored" "configmap/keep" \
	k get configmaps --field-selector metadata.name!=kube-root-ca.crt -o name
ok "kubectl still creates objects" mk_cm after default ok=yes
api GET "$CM/after"
is "$HTTP_CODE" 200 "GET an object answers 200"
is "$(json_str ok)" yes "GET returns the object's data"

stop_server_cleanly
done_testing
