#!/bin/bash
# tests/e2e/test_crd.sh - CustomResourceDefinitions with the real kubectl:
# the CronTab of the Kubernetes documentation is created, waited for
# (condition Established), found in discovery and OpenAPI (explain), and its
# custom resources go through apply/get/describe/patch/scale/edit/delete,
# schema validation (422 naming the field and the rule), pruning or strict
# rejection of unknown fields, defaults, the status and scale subresources,
# printer columns, short names and the `all` category, a second version,
# watch and selectors; RBAC, the garbage collector and the namespace
# controller handle them; deleting the CRD deletes its objects (a finalizer
# holds it Terminating meanwhile); CRDs survive a restart.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"
M=$SKIFF_SRC_DIR/tests/e2e/crd
CRD=crontabs.stable.example.com

# --- the CRD itself ------------------------------------------------------------
expect_contains "kubectl apply creates the CRD" "$CRD created" k apply -f "$M/crontab-crd.yaml"
ok "kubectl wait --for condition=established" \
	k wait --for condition=established "crd/$CRD" --timeout=10s
expect_output "the CRD's NamesAccepted condition is True" "True" \
	k get crd "$CRD" -o 'jsonpath={.status.conditions[?(@.type=="NamesAccepted")].status}'
expect_output "status.acceptedNames and storedVersions" "CronTab ct v1" \
	k get crd "$CRD" -o 'jsonpath={.status.acceptedNames.kind} {.status.acceptedNames.shortNames[0]} {.status.storedVersions[0]}'
expect_output "the cleanup finalizer is set" "customresourcecleanup.apiextensions.k8s.io" \
	k get crd "$CRD" -o 'jsonpath={.metadata.finalizers[0]}'
expect_contains "kubectl get crd lists it with CREATED AT" "CREATED AT" k get crd
expect_contains "short name crd works" "$CRD" k get crds
expect_contains "kubectl apply twice leaves the CRD unchanged" "unchanged" k apply -f "$M/crontab-crd.yaml"
api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?watch=true&timeoutSeconds=1"
like "$BODY" '{"type":"ADDED","object":{"kind":"CustomResourceDefinition"' "CRDs can be watched"

# --- discovery and OpenAPI -------------------------------------------------------
api GET /apis/stable.example.com/v1
like "$BODY" '"name":"crontabs"' "/apis/stable.example.com/v1 lists crontabs"
like "$BODY" '"shortNames":["ct"]' "... with its short names"
like "$BODY" '"categories":["all"]' "... and categories"
like "$BODY" '"name":"crontabs/scale"' "... and the scale subresource"
api GET /apis/stable.example.com
like "$BODY" '"preferredVersion":{"groupVersion":"stable.example.com/v1"' "v1 is the preferred version"
api GET /apis -H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList'
like "$BODY" '"resource":"crontabs"' "aggregated discovery has crontabs"
expect_contains "kubectl api-resources shows it" "stable.example.com/v1" k api-resources --api-group=stable.example.com
api GET /openapi/v3
like "$BODY" '"apis/stable.example.com/v1"' "OpenAPI v3 lists the group version"
api GET /openapi/v2 -H 'Accept: application/json'
like "$BODY" '"com.example.stable.v1.CronTab"' "OpenAPI v2 has the CronTab definition"
expect_contains "kubectl explain reads the schema" "replicas	<integer>" k explain crontab.spec
api GET /apis/stable.example.com/v2/namespaces/default/crontabs
is "$HTTP_CODE" 404 "a version the CRD does not have is 404"

# --- custom resources ---------------------------------------------------------------
expect_contains "kubectl apply creates a CronTab" "crontab.stable.example.com/my-new-cron-object created" \
	k apply -f "$M/crontab.yaml"
expect_contains "kubectl apply twice: unchanged" "unchanged" k apply -f "$M/crontab.yaml"
expect_output "the schema default fills spec.replicas" 1 \
	k get ct my-new-cron-object -o 'jsonpath={.spec.replicas}'
expect_output "generation starts at 1" 1 k get ct my-new-cron-object -o 'jsonpath={.metadata.generation}'
ok "kubectl get crontab (printer columns)" k get crontab
like "$OUT" "NAME                 SPEC          REPLICAS   AGE" "the columns are NAME SPEC REPLICAS AGE"
like "$OUT" "my-new-cron-object   * * * * */5   1" "the row shows the cron spec and replicas"
expect_contains "-o wide adds the priority-1 column" "my-awesome-cron-image" k get ct -o wide
expect_contains "kubectl get all includes the category all" "crontab.stable.example.com/my-new-cron-object" \
	k get all
expect_contains "kubectl describe" "Cron Spec:  * * * * */5" k describe ct my-new-cron-object
expect_contains "the plural.group form works" my-new-cron-object k get crontabs.stable.example.com

# --- validation -------------------------------------------------------------------------
expect_fail_with "a value below minimum is refused with Kubernetes' message" \
	'The CronTab "my-new-cron-object" is invalid: spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1' \
	k patch ct my-new-cron-object --type merge -p '{"spec":{"replicas":0}}'
expect_fail_with "a pattern mismatch names the pattern" \
	"spec.cronSpec: Invalid value: \"every minute\": spec.cronSpec in body should match" \
	k patch ct my-new-cron-object --type merge -p '{"spec":{"cronSpec":"every minute"}}'
expect_fail_with "a wrong type is refused" \
	'spec.image: Invalid value: "integer": spec.image in body must be of type string: "integer"' \
	k patch ct my-new-cron-object --type merge -p '{"spec":{"image":5}}'
api POST /apis/stable.example.com/v1/namespaces/default/crontabs -H 'Content-Type: application/json' \
	-d '{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"x"},"spec":{"replicas":20}}'
is "$HTTP_CODE" 422 "an invalid object gets 422"
like "$BODY" '"causes":[{"reason":"FieldValueInvalid","message":"Invalid value: 20: spec.replicas in body should be less than or equal to 10","field":"spec.replicas"}]' \
	"the cause names the field and the rule"
cat >"$E2E_TMP/unknown.yaml" <<'EOF'
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: unknown-field
spec:
  cronSpec: "*/5 * * * *"
  colour: blue
EOF
expect_fail_with "kubectl's strict field validation refuses an unknown field" \
	'strict decoding error: unknown field "spec.colour"' k apply -f "$E2E_TMP/unknown.yaml"
ok "with --validate=false the object is created" k apply --validate=false -f "$E2E_TMP/unknown.yaml"
expect_output "... and the unknown field is pruned" '{"cronSpec":"*/5 * * * *","replicas":1}' \
	k get ct unknown-field -o 'jsonpath={.spec}'

# --- patch, scale, status -------------------------------------------------------------------
expect_fail_with "a strategic merge patch is 415 for custom resources" \
	"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" \
	k patch ct my-new-cron-object -p '{"spec":{"replicas":2}}'
ok "a merge patch works" k patch ct my-new-cron-object --type merge -p '{"spec":{"replicas":2}}'
ok "a JSON patch works" k patch ct my-new-cron-object --type json -p '[{"op":"replace","path":"/spec/image","value":"other"}]'
expect_output "both landed; generation counts the two spec changes" "2 other 3" \
	k get ct my-new-cron-object -o 'jsonpath={.spec.replicas} {.spec.image} {.metadata.generation}'
expect_contains "kubectl scale works on a CronTab" scaled k scale ct my-new-cron-object --replicas=4
expect_output "scale wrote specReplicasPath" 4 k get ct my-new-cron-object -o 'jsonpath={.spec.replicas}'
ok "the status subresource takes status" \
	k patch ct my-new-cron-object --subresource=status --type merge -p '{"status":{"replicas":4,"labelSelector":"app=cron","conditions":[{"type":"Synced","status":"False"},{"type":"Ready","status":"True"}]}}'
ok "kubectl get -o wide" k get ct my-new-cron-object -o wide
like "$OUT" "READY" "... has the READY column"
like "$(echo "$OUT" | tail -1)" "True" "... filled from the Ready condition"
api GET /apis/stable.example.com/v1/namespaces/default/crontabs/my-new-cron-object/scale
like "$BODY" '"status":{"replicas":4,"selector":"app=cron"}' "the Scale reads statusReplicasPath and labelSelectorPath"
expect_output "a status write leaves generation alone" 4 \
	k get ct my-new-cron-object -o 'jsonpath={.metadata.generation}'
ok "a spec patch through the main resource" \
	k patch ct my-new-cron-object --type merge -p '{"spec":{"replicas":5},"status":{"replicas":9}}'
expect_output "... does not change status" "5 4" \
	k get ct my-new-cron-object -o 'jsonpath={.spec.replicas} {.status.replicas}'
cat >"$E2E_TMP/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/image: other/image: edited/' "$1"
EOF
chmod +x "$E2E_TMP/editor.sh"
ok "kubectl edit" env EDITOR="$E2E_TMP/editor.sh" "$KUBECTL" --kubeconfig="$KUBECONFIG" edit ct my-new-cron-object
expect_output "... changed the object" edited k get ct my-new-cron-object -o 'jsonpath={.spec.image}'

# --- changing the CRD ---------------------------------------------------------------------
ok "a default added to the schema" k patch crd "$CRD" --type json -p \
	'[{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/timezone","value":{"type":"string","default":"UTC"}}]'
tz() { [ "$(k get ct my-new-cron-object -o 'jsonpath={.spec.timezone}')" = UTC ]; }
ok "... applies on read to objects stored before" wait_for 5 tz
expect_fail_with "a stored version cannot be removed from the CRD" \
	'status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions' \
	k patch crd "$CRD" --type json -p '[{"op":"remove","path":"/spec/versions/0"},{"op":"replace","path":"/spec/versions/0/storage","value":true}]'
expect_fail_with "the scope of a CRD is immutable" \
	'spec.scope: Invalid value: "Cluster": field is immutable' \
	k patch crd "$CRD" --type merge -p '{"spec":{"scope":"Cluster"}}'

# --- versions, selectors, watch -------------------------------------------------------------
expect_output "the object reads in v1beta1 with apiVersion rewritten" "stable.example.com/v1beta1 5" \
	k get crontabs.v1beta1.stable.example.com my-new-cron-object -o 'jsonpath={.apiVersion} {.spec.replicas}'
like "$ERR" "Warning: stable.example.com/v1beta1 CronTab is deprecated; use stable.example.com/v1 CronTab" \
	"the deprecated version warns as Kubernetes does"
ok "a label" k label ct my-new-cron-object tier=batch
expect_output "label selector" my-new-cron-object k get ct -l tier=batch -o 'jsonpath={.items[*].metadata.name}'
expect_output "field selector metadata.name" unknown-field \
	k get ct --field-selector metadata.name=unknown-field -o 'jsonpath={.items[*].metadata.name}'
expect_output "field selector on a selectableField" my-new-cron-object \
	k get ct --field-selector spec.image=edited -o 'jsonpath={.items[*].metadata.name}'
expect_fail_with "a field the CRD does not make selectable is refused" \
	"field label not supported: spec.cronSpec" k get ct --field-selector spec.cronSpec=x
background sh -c "exec $KUBECTL --kubeconfig=$KUBECONFIG get ct -w --output-watch-events >$E2E_TMP/watch.out 2>&1"
WATCH_PID=$BG_PID
sleep 1
ok "delete a CronTab" k delete ct unknown-field
wait_for 10 grep -q "DELETED.*unknown-field" "$E2E_TMP/watch.out"
like "$(cat "$E2E_TMP/watch.out")" "DELETED" "kubectl get -w saw the deletion"
kill "$WATCH_PID" 2>/dev/null

# --- RBAC, garbage collector, namespaces -------------------------------------------------------
expect_fail_with "RBAC: an unbound user is refused" \
	'User "alice" cannot list resource "crontabs" in API group "stable.example.com"' k get ct --as alice
ok "a Role on the group/resource" k create role ct-reader --verb=get,list --resource=crontabs.stable.example.com
ok "... bound to alice" k create rolebinding ct-reader --role=ct-reader --user=alice
expect_contains "grants listing" my-new-cron-object k get ct --as alice
expect_fail_with "but not deleting" 'cannot delete resource "crontabs"' k delete ct my-new-cron-object --as alice

ok "a namespace for owners" mk_ns crons
ok "a CronTab in it" k -n crons apply -f "$M/crontab.yaml"
owner=$(k -n crons get ct my-new-cron-object -o 'jsonpath={.metadata.uid}')
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: crons\n  ownerReferences:\n  - apiVersion: stable.example.com/v1\n    kind: CronTab\n    name: my-new-cron-object\n    uid: %s\n' "$owner" >"$E2E_TMP/owned.yaml"
ok "a ConfigMap owned by the CronTab" k create -f "$E2E_TMP/owned.yaml"
ok "deleting the owner" k -n crons delete ct my-new-cron-object
ok "the garbage collector deletes the dependent" wait_for 20 not k -n crons get configmap owned
ok "a CronTab again" k -n crons apply -f "$M/crontab.yaml"
ok "deleting the namespace" k delete namespace crons --timeout=30s
api GET /apis/stable.example.com/v1/namespaces/crons/crontabs
like "$BODY" '"items":[]' "the namespace controller deleted its CronTabs"

# --- bad CRDs ------------------------------------------------------------------------------------
cat >"$E2E_TMP/bad-crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example
spec:
  group: example
  scope: Somewhere
  names: {plural: widgets, kind: Widget}
  versions:
  - {name: v1, served: true, storage: false, schema: {openAPIV3Schema: {type: object}}}
EOF
sed 's/^  scope: Namespaced/  scop: Namespaced/' "$M/crontab-crd.yaml" >"$E2E_TMP/typo-crd.yaml"
expect_fail_with "a misspelt CRD field is refused by strict field validation" \
	'strict decoding error: unknown field "spec.scop"' k apply -f "$E2E_TMP/typo-crd.yaml"
expect_contains "kubectl explain reads the CRD's own schema" "specReplicasPath" \
	k explain crd.spec.versions.subresources.scale
ok "an invalid CRD is refused" not k apply -f "$E2E_TMP/bad-crd.yaml"
like "$ERR" 'spec.group: Invalid value: "example": should be a domain with at least one dot' "... naming the group rule"
like "$ERR" 'spec.scope: Unsupported value: "Somewhere": supported values: "Cluster", "Namespaced"' "... the scope"
like "$ERR" 'must have exactly one version marked as storage version' "... and the storage version"
cat >"$E2E_TMP/clash-crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs2.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs2, kind: CronTab}
  versions:
  - {name: v9, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}
EOF
ok "a CRD whose kind is taken in its group is stored" k apply -f "$E2E_TMP/clash-crd.yaml"
names_reason() {
	k get crd crontabs2.stable.example.com -o 'jsonpath={.status.conditions[?(@.type=="NamesAccepted")].reason}' | grep -q NameConflict
}
ok "... and not accepted (NameConflict)" wait_for 5 names_reason
expect_output "... saying which name" '"CronTab" is already in use' \
	k get crd crontabs2.stable.example.com -o 'jsonpath={.status.conditions[?(@.type=="NamesAccepted")].message}'
expect_output "... and not Established" False \
	k get crd crontabs2.stable.example.com -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
api GET /apis/stable.example.com/v9/namespaces/default/crontabs2
is "$HTTP_CODE" 404 "a CRD that is not established serves nothing (404)"
ok "the clashing CRD is deleted" k delete crd crontabs2.stable.example.com --timeout=20s

# --- within a second -------------------------------------------------------------------------------
sed 's/crontabs/gadgets/g; s/CronTab/Gadget/g; s/crontab/gadget/g; s/- ct$/- gd/' "$M/crontab-crd.yaml" >"$E2E_TMP/gadget-crd.yaml"
ok "a second CRD as JSON" sh -c "$KUBECTL create --dry-run=client -o json -f $E2E_TMP/gadget-crd.yaml >$E2E_TMP/gadget-crd.json"
served() { api GET /apis/stable.example.com/v1/namespaces/default/gadgets; [ "$HTTP_CODE" = 200 ]; }
t0=$(date +%s%N)
api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions -H 'Content-Type: application/json' \
	--data-binary "@$E2E_TMP/gadget-crd.json"
is "$HTTP_CODE" 201 "the CRD is created (201)"
wait_for 5 served
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "gadgets served ${ms} ms after the CRD was posted"
ok "its resource is served within a second" test "$ms" -lt 1000

# a custom resource as a dependent: the new resource is watched by the
# garbage collector without a restart
ok "an owner ConfigMap" mk_cm gadget-owner default
cm_uid=$(k get configmap gadget-owner -o 'jsonpath={.metadata.uid}')
printf 'apiVersion: stable.example.com/v1\nkind: Gadget\nmetadata:\n  name: owned-gadget\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: gadget-owner\n    uid: %s\nspec:\n  cronSpec: "* * * * *"\n' "$cm_uid" >"$E2E_TMP/owned-gadget.yaml"
ok "a Gadget owned by it" k create -f "$E2E_TMP/owned-gadget.yaml"
ok "deleting the ConfigMap" k delete configmap gadget-owner
ok "the garbage collector deletes the Gadget" wait_for 20 not k get gadget owned-gadget

# --- deleting the CRD ------------------------------------------------------------------------------
ok "a CronTab with a finalizer" k patch ct my-new-cron-object --type merge -p '{"metadata":{"finalizers":["example.com/hold"]}}'
ok "deleting the CRD does not wait" k delete crd "$CRD" --wait=false
ok "the CRD is Terminating while an object is left" wait_for 5 sh -c "$KUBECTL --kubeconfig=$KUBECONFIG get crd $CRD -o 'jsonpath={.status.conditions[?(@.type==\"Terminating\")].status}' | grep -q True"
ok "creating a CronTab meanwhile is refused" not k apply -f "$E2E_TMP/unknown.yaml"
like "$ERR" "create not allowed while custom resource definition is terminating" "... with Kubernetes' message"
background sh -c "exec $KUBECTL --kubeconfig=$KUBECONFIG get ct -w >$E2E_TMP/watch2.out 2>&1"
WATCH_PID=$BG_PID
sleep 1
ok "the finalizer is removed" k patch ct my-new-cron-object --type merge -p '{"metadata":{"finalizers":null}}'
ok "then the CRD is gone" wait_for 10 not k get crd "$CRD"
watch_ended() { ! kill -0 "$WATCH_PID" 2>/dev/null; }
ok "a watch on its resource ends" wait_for 10 watch_ended
api GET /apis/stable.example.com/v1/namespaces/default/crontabs
is "$HTTP_CODE" 404 "crontabs are no longer served"
expect_fail_with "kubectl gets NotFound" "the server could not find the requested resource" k get ct
ok "recreating the CRD works" k apply -f "$M/crontab-crd.yaml"
ok "... established again" k wait --for condition=established "crd/$CRD" --timeout=10s
expect_output "... with no objects left from before" "" k get ct -A -o 'jsonpath={.items[*].metadata.name}'
ok "a CronTab again" k apply -f "$M/crontab.yaml"

# --- restart --------------------------------------------------------------------------------------------
restart_server || bail_out "the server did not restart"
expect_contains "after a restart the CronTab is served" my-new-cron-object k get ct
expect_output "the gadgets CRD is still established" True \
	k get crd gadgets.stable.example.com -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}'

# --- shared manifests ---------------------------------------------------------------------------------
shared=$(grep -rlE '^kind: CustomResourceDefinition' "$SKIFF_SRC_DIR/../shared/manifests" 2>/dev/null | head -20)
if [ -z "$shared" ]; then
	pass "# SKIP no CustomResourceDefinition manifests under ../shared/manifests"
else
	for f in $shared; do
		ok "shared CRD manifest $(basename "$f") applies" k apply -f "$f"
	done
fi

stop_server_cleanly
done_testing
