#!/bin/bash
# tests/e2e/test_statefulset.sh - the StatefulSet controller through
# kubectl: ordinal pods created one at a time (each after the one before
# is Ready, seen from a watch) and removed from the highest ordinal; stable
# hostname, subdomain and labels; PersistentVolumeClaims from
# volumeClaimTemplates with the retention policy's owners; Parallel
# management; a rolling update from the highest ordinal down that honours
# the partition; rollout status/history/undo; kubectl scale; adoption;
# Events; deletion through the garbage collector (claims kept or not by
# the retention policy).
#
# Pods run on hollow nodes (`skiff agent --hollow`), bound by the default
# scheduler; pods become Ready 0.5 s after they are bound.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is needed to read the watch"

start_server --controllers statefulset,garbage-collector || bail_out "server did not start"
start_hollow 3 --ready-delay 500ms || bail_out "hollow nodes did not start"

# watch_pods SELECTOR FILE: pods' watch events (kubectl get -w) until killed
watch_pods() {
	timeout 90 "$KUBECTL" --kubeconfig="$KUBECONFIG" get pods -l "$1" -w \
		--output-watch-events -o json >"$2" 2>/dev/null
}
# The watch as lines "TYPE NAME ready=0|1 image"
watch_lines() {
	python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
dec, i = json.JSONDecoder(), 0
while True:
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    ev, i = dec.raw_decode(text, i)
    o = ev["object"]
    ready = any(c["type"] == "Ready" and c["status"] == "True"
                for c in o.get("status", {}).get("conditions", []))
    term = 1 if o["metadata"].get("deletionTimestamp") else 0
    print(ev["type"], o["metadata"]["name"], "ready=%d" % ready, o["spec"]["containers"][0]["image"],
          "term=%d" % term)
PY
}
# first_line FILE PATTERN: line number of the first line matching (9999 if none)
first_line() { local n; n=$(grep -n -m1 -E "$2" "$1" | cut -d: -f1); echo "${n:-9999}"; }
pods_are() { [ "$(k get pods -l "$1" -o jsonpath='{range .items[*]}{.metadata.name} {end}' | sed 's/ $//')" = "$2" ]; }
images() { k get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}' | sed 's/ $//'; }
images_are() { [ "$(images)" = "$1" ]; }
sts_status() { jp sts/web '{.status.replicas} {.status.readyReplicas} {.status.availableReplicas} {.status.currentReplicas} {.status.updatedReplicas}'; }
sts_status_is() { [ "$(sts_status)" = "$1" ]; }
kc() { timeout 60 "$KUBECTL" --kubeconfig="$KUBECONFIG" "$@"; }

cat >"$E2E_TMP/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 3
  serviceName: web
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: web:1
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
YAML

# --- ordered creation ---------------------------------------------------------------
watch_pods app=web "$E2E_TMP/create.json" &
WATCH_PID=$!
sleep 1
expect_contains "create the StatefulSet" "statefulset.apps/web created" k apply -f "$E2E_TMP/web.yaml"
if wait_for 20 pods_are app=web "web-0 web-1 web-2"; then pass "web-0, web-1, web-2 exist once each is Ready"
else fail "web-0, web-1, web-2 exist once each is Ready"; diag "pods: $(k get pods -l app=web -o name)"; fi
if wait_for 10 sts_status_is "3 3 3 3 3"; then pass "status: replicas 3, ready 3, available 3, current 3, updated 3"
else fail "status: replicas 3, ready 3, available 3, current 3, updated 3"; diag "got $(sts_status)"; fi
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
watch_lines "$E2E_TMP/create.json" >"$E2E_TMP/create.txt"
r0=$(first_line "$E2E_TMP/create.txt" '^[A-Z]+ web-0 ready=1')
a1=$(first_line "$E2E_TMP/create.txt" '^ADDED web-1 ')
r1=$(first_line "$E2E_TMP/create.txt" '^[A-Z]+ web-1 ready=1')
a2=$(first_line "$E2E_TMP/create.txt" '^ADDED web-2 ')
ok "the watch saw web-1 created only after web-0 was Ready" test "$r0" -lt "$a1" -a "$a1" -lt 9999 || diag_file "$E2E_TMP/create.txt" 20
ok "the watch saw web-2 created only after web-1 was Ready" test "$r1" -lt "$a2" -a "$a2" -lt 9999 || diag_file "$E2E_TMP/create.txt" 20
expect_contains "kubectl get sts shows 3/3" "web    3/3" k get sts web

# --- identity and storage ---------------------------------------------------------------
expect_output "web-1 has hostname web-1 and subdomain web (serviceName)" "web-1 web" \
	jp pod/web-1 '{.spec.hostname} {.spec.subdomain}'
expect_output "web-1 is labelled with its name and index" "web-1 1" \
	jp pod/web-1 '{.metadata.labels.statefulset\.kubernetes\.io/pod-name} {.metadata.labels.apps\.kubernetes\.io/pod-index}'
expect_output "web-1 mounts its claim data-web-1" "data data-web-1" \
	jp pod/web-1 '{.spec.volumes[0].name} {.spec.volumes[0].persistentVolumeClaim.claimName}'
expect_output "claims data-web-0..2 exist, labelled with the selector" "data-web-0=web data-web-1=web data-web-2=web" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get pvc -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.labels.app} {end}' | sed 's/ \$//'"
expect_output "Retain policy: the claims have no owner" "" jp pvc/data-web-0 '{.metadata.ownerReferences}'
rev1=$(jp sts/web '{.status.updateRevision}')
expect_output "pods carry controller-revision-hash = the revision's name" "$rev1" jp pod/web-2 '{.metadata.labels.controller-revision-hash}'
expect_output "currentRevision = updateRevision = a ControllerRevision at revision 1" "$rev1 1" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get controllerrevision \$(timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get sts web -o jsonpath='{.status.currentRevision}') -o jsonpath='{.metadata.name} {.revision}'"
ok "rollout status sts/web" kc rollout status sts/web --timeout=20s

# --- rolling update with a partition ---------------------------------------------------------
ok "partition 1" k patch sts web --type=merge -p '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}}}}'
watch_pods app=web "$E2E_TMP/update.json" &
WATCH_PID=$!
sleep 1
ok "set image web:2" k set image sts/web main=web:2
if wait_for 20 images_are "web-0=web:1 web-1=web:2 web-2=web:2"; then pass "pods from the partition up get web:2; web-0 keeps web:1"
else fail "pods from the partition up get web:2; web-0 keeps web:1"; diag "images: $(images)"; fi
expect_contains "rollout status reports the partitioned roll out" "partitioned roll out complete: 2 new pods have been updated" \
	kc rollout status sts/web --timeout=20s
sleep 1
expect_output "web-0 stays at web:1" "web-0=web:1 web-1=web:2 web-2=web:2" images
rev2=$(jp sts/web '{.status.updateRevision}')
expect_output "currentRevision stays, updateRevision is new" "$rev1 $rev2" jp sts/web '{.status.currentRevision} {.status.updateRevision}'
ok "the two revisions differ" test "$rev1" != "$rev2"
ok "partition 0" k patch sts web --type=merge -p '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
if wait_for 20 images_are "web-0=web:2 web-1=web:2 web-2=web:2"; then pass "then web-0 is updated too"
else fail "then web-0 is updated too"; diag "images: $(images)"; fi
ok "rollout status" kc rollout status sts/web --timeout=20s
if wait_for 10 sh -c "[ \"\$(timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get sts web -o jsonpath='{.status.currentRevision}')\" = '$rev2' ]"; then
	pass "when all are updated, currentRevision becomes the update revision"
else fail "when all are updated, currentRevision becomes the update revision"; diag "status: $(jp sts/web '{.status}')"; fi
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
watch_lines "$E2E_TMP/update.json" >"$E2E_TMP/update.txt"
# the first sign of each pod's replacement: it is marked for deletion
t2=$(first_line "$E2E_TMP/update.txt" '^[A-Z]+ web-2 .*term=1|^DELETED web-2 ')
t1=$(first_line "$E2E_TMP/update.txt" '^[A-Z]+ web-1 .*term=1|^DELETED web-1 ')
t0=$(first_line "$E2E_TMP/update.txt" '^[A-Z]+ web-0 .*term=1|^DELETED web-0 ')
r2=$(first_line "$E2E_TMP/update.txt" '^[A-Z]+ web-2 ready=1 web:2')
r1=$(first_line "$E2E_TMP/update.txt" '^[A-Z]+ web-1 ready=1 web:2')
ok "the update replaced web-2, then web-1, then web-0 (from the watch)" test "$t2" -lt "$t1" -a "$t1" -lt "$t0" -a "$t0" -lt 9999 || diag_file "$E2E_TMP/update.txt" 40
ok "web-1 went only after the new web-2 was Ready" test "$r2" -lt "$t1" || diag_file "$E2E_TMP/update.txt" 40
ok "web-0 went only after the partition moved and the new web-1 was Ready" test "$r1" -lt "$t0" || diag_file "$E2E_TMP/update.txt" 40

# --- history and undo ---------------------------------------------------------------------
expect_output "rollout history lists revisions 1 and 2" "1 2" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' rollout history sts/web | awk '/^[0-9]/ {print \$1}' | tr '\n' ' ' | sed 's/ \$//'"
expect_contains "rollout history --revision=1 shows web:1" "web:1" kc rollout history sts/web --revision=1
expect_contains "rollout undo" "statefulset.apps/web rolled back" kc rollout undo sts/web
expect_output "the template has web:1 again" web:1 jp sts/web '{.spec.template.spec.containers[0].image}'
if wait_for 20 images_are "web-0=web:1 web-1=web:1 web-2=web:1"; then pass "all pods run web:1 again"
else fail "all pods run web:1 again"; diag "images: $(images)"; fi
expect_output "the first revision was renumbered 3 and is the update revision" "3 $rev1" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get controllerrevision $rev1 -o jsonpath='{.revision}'; printf ' '; timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get sts web -o jsonpath='{.status.updateRevision}'"

# --- scale down in reverse order ------------------------------------------------------------
ok "rollout status before scaling" kc rollout status sts/web --timeout=20s
watch_pods app=web "$E2E_TMP/scale.json" &
WATCH_PID=$!
sleep 1
expect_contains "kubectl scale sts web --replicas=1" "statefulset.apps/web scaled" kc scale sts web --replicas=1
if wait_for 20 pods_are app=web web-0; then pass "scaled down to web-0"
else fail "scaled down to web-0"; diag "pods: $(k get pods -l app=web -o name)"; fi
if wait_for 10 sts_status_is "1 1 1 1 1"; then pass "status follows: 1 replica"
else fail "status follows: 1 replica"; diag "got $(sts_status)"; fi
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
watch_lines "$E2E_TMP/scale.json" >"$E2E_TMP/scale.txt"
d2=$(first_line "$E2E_TMP/scale.txt" '^DELETED web-2 ')
t1=$(first_line "$E2E_TMP/scale.txt" '^[A-Z]+ web-1 .*term=1|^DELETED web-1 ')
ok "web-1 was marked for deletion only after web-2 was gone (from the watch)" test "$d2" -lt "$t1" -a "$t1" -lt 9999 || diag_file "$E2E_TMP/scale.txt" 20
expect_output "the claims stay (whenScaled: Retain)" "data-web-0 data-web-1 data-web-2" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get pvc -o jsonpath='{range .items[*]}{.metadata.name} {end}' | sed 's/ \$//'"
ok "scale back to 2" kc scale sts web --replicas=2
if wait_for 20 pods_are app=web "web-0 web-1"; then pass "web-1 comes back"
else fail "web-1 comes back"; fi
expect_output "and mounts its old claim" "data-web-1" jp pod/web-1 '{.spec.volumes[0].persistentVolumeClaim.claimName}'

# --- maxUnavailable: two pods replaced at once ---------------------------------------------
ok "scale to 3" kc scale sts web --replicas=3
ok "rollout status at 3" kc rollout status sts/web --timeout=30s
ok "maxUnavailable 2" k patch sts web --type=merge -p '{"spec":{"updateStrategy":{"rollingUpdate":{"maxUnavailable":2}}}}'
watch_pods app=web "$E2E_TMP/mu.json" &
WATCH_PID=$!
sleep 1
ok "set image web:3" k set image sts/web main=web:3
if wait_for 30 images_are "web-0=web:3 web-1=web:3 web-2=web:3"; then pass "all pods updated to web:3"
else fail "all pods updated to web:3"; diag "images: $(images)"; fi
sleep 0.5
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
watch_lines "$E2E_TMP/mu.json" >"$E2E_TMP/mu.txt"
t1=$(first_line "$E2E_TMP/mu.txt" '^[A-Z]+ web-1 .*term=1|^DELETED web-1 ')
t0=$(first_line "$E2E_TMP/mu.txt" '^[A-Z]+ web-0 .*term=1|^DELETED web-0 ')
r2=$(first_line "$E2E_TMP/mu.txt" '^[A-Z]+ web-2 ready=1 web:3')
r1=$(first_line "$E2E_TMP/mu.txt" '^[A-Z]+ web-1 ready=1 web:3')
ok "maxUnavailable 2: web-1 was replaced without waiting for the new web-2 (from the watch)" test "$t1" -lt "$r2" || diag_file "$E2E_TMP/mu.txt" 40
ok "but web-0 waited until one of them was Ready again" test "$t0" -gt "$r2" -o "$t0" -gt "$r1" || diag_file "$E2E_TMP/mu.txt" 40

# --- Events ----------------------------------------------------------------------------------
expect_contains "describe shows SuccessfulCreate from statefulset-controller" "statefulset-controller  create Pod web-0 in StatefulSet web successful" \
	k describe sts web
expect_contains "describe shows the claim's creation" "create Claim data-web-0 Pod web-0 in StatefulSet web success" \
	k describe sts web
expect_contains "describe shows SuccessfulDelete" "delete Pod web-2 in StatefulSet web successful" k describe sts web

# --- Parallel, retention policy Delete -----------------------------------------------------------
cat >"$E2E_TMP/par.yaml" <<'YAML'
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: par
spec:
  replicas: 3
  podManagementPolicy: Parallel
  serviceName: par
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  selector:
    matchLabels: {app: par}
  template:
    metadata:
      labels: {app: par}
      annotations: {hollow.skiff.io/ready: "false"}
    spec:
      containers:
      - name: main
        image: par:1
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
YAML
ok "create a Parallel StatefulSet (its pods never become Ready)" k apply -f "$E2E_TMP/par.yaml"
if wait_for 10 pods_are app=par "par-0 par-1 par-2"; then pass "Parallel: all three pods are created at once, without waiting for readiness"
else fail "Parallel: all three pods are created at once, without waiting for readiness"; diag "pods: $(k get pods -l app=par -o name)"; fi
expect_output "whenDeleted: Delete: the claim is owned by the StatefulSet" "StatefulSet/par true" \
	jp pvc/data-par-2 '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].controller}'
ok "scale par to 2" kc scale sts par --replicas=2
if wait_for 10 pods_are app=par "par-0 par-1"; then pass "Parallel: par-2 is removed although no pod is Ready"
else fail "Parallel: par-2 is removed although no pod is Ready"; fi
claim_gone() { not k get pvc data-par-2; }
if wait_for 20 claim_gone; then pass "whenScaled: Delete: the scaled-away pod's claim goes with it (handed to the pod, removed by the garbage collector)"
else fail "whenScaled: Delete: the scaled-away pod's claim goes with it (handed to the pod, removed by the garbage collector)"; diag "claim: $(jp pvc/data-par-2 '{.metadata.ownerReferences}')"; fi
expect_output "the claims of the pods that stay are kept" "data-par-0 data-par-1" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get pvc -o jsonpath='{range .items[*]}{.metadata.name} {end}' | tr ' ' '\n' | grep par | tr '\n' ' ' | sed 's/ \$//'"

# --- OnDelete -------------------------------------------------------------------------------------
ok "par: OnDelete" k patch sts par --type=merge -p '{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}'
ok "par: set image par:2" k set image sts/par main=par:2
sleep 1.5
par_images() { k get pods -l app=par -o jsonpath='{range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}' | sed 's/ $//'; }
par_images_are() { [ "$(par_images)" = "$1" ]; }
expect_output "OnDelete: the pods are not replaced" "par-0=par:1 par-1=par:1" par_images
ok "delete par-0 by hand" k delete pod par-0 --wait=false
if wait_for 20 par_images_are "par-0=par:2 par-1=par:1"; then pass "OnDelete: par-0 comes back with the new template"
else fail "OnDelete: par-0 comes back with the new template"; diag "images: $(par_images)"; fi

# --- adoption -----------------------------------------------------------------------------------
# bare_pod NAME APP
bare_pod() {
	printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  labels: {app: %s}\nspec:\n  containers:\n  - {name: main, image: "bare:1"}\n' "$1" "$2" |
		k create -f -
}
ok "a bare pod par-5 matching par's selector" bare_pod par-5 par
gone() { not k get pod "$1"; }
if wait_for 10 gone par-5; then pass "par adopts it and, as ordinal 5 is beyond its replicas, removes it"
else fail "par adopts it and, as ordinal 5 is beyond its replicas, removes it"; diag "owners: $(jp pod/par-5 '{.metadata.ownerReferences}')"; fi
ok "a bare pod adopt-0 (app=adopt)" bare_pod adopt-0 adopt
cat <<'YAML' >"$E2E_TMP/adopt.yaml"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: adopt
spec:
  replicas: 1
  serviceName: adopt
  updateStrategy: {type: OnDelete}
  selector:
    matchLabels: {app: adopt}
  template:
    metadata:
      labels: {app: adopt}
    spec:
      containers:
      - name: main
        image: adopt:1
YAML
ok "a StatefulSet adopt of 1 replica (OnDelete, so an adopted pod is not rolled)" k apply -f "$E2E_TMP/adopt.yaml"
adopted() { [ "$(jp pod/adopt-0 '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.labels.statefulset\.kubernetes\.io/pod-name}')" = "StatefulSet/adopt adopt-0" ]; }
if wait_for 10 adopted; then pass "it adopts adopt-0 instead of creating it, and gives it its identity labels"
else fail "it adopts adopt-0 instead of creating it, and gives it its identity labels"; diag "pod: $(jp pod/adopt-0 '{.metadata}')"; fi
expect_output "the adopted pod is the same (its image stays bare:1)" bare:1 jp pod/adopt-0 '{.spec.containers[0].image}'

# --- deletion ---------------------------------------------------------------------------------
ok "kubectl delete sts par" k delete sts par --wait=true --timeout=30s
no_par() { [ -z "$(k get pods -l app=par -o name)" ] && ! k get pvc data-par-0 >/dev/null 2>&1; }
if wait_for 20 no_par; then pass "its pods go, and its claims with them (whenDeleted: Delete)"
else fail "its pods go, and its claims with them (whenDeleted: Delete)"; diag "left: $(k get pods,pvc -o name | grep par)"; fi
ok "kubectl delete sts web" k delete sts web --wait=true --timeout=30s
no_web() { [ -z "$(k get pods -l app=web -o name)" ]; }
if wait_for 20 no_web; then pass "web's pods go"
else fail "web's pods go"; diag "left: $(k get pods -l app=web -o name)"; fi
expect_output "web's claims stay (whenDeleted: Retain)" "data-web-0 data-web-1 data-web-2" \
	sh -c "timeout 20 '$KUBECTL' --kubeconfig='$KUBECONFIG' get pvc -o jsonpath='{range .items[*]}{.metadata.name} {end}' | tr ' ' '\n' | grep web | tr '\n' ' ' | sed 's/ \$//'"

stop_server_cleanly
done_testing
