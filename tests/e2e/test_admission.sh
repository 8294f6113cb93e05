#!/bin/bash
# tests/e2e/test_admission.sh - the admission chain through kubectl:
# NamespaceLifecycle (missing and terminating namespaces, the system
# namespaces), ServiceAccount (default account, token volume, opt-out,
# missing account), LimitRanger (defaults, maxima, claims),
# DefaultStorageClass, the options that choose the chain, and the worked
# example plugin of docs/plugins.md built out of the tree from that page.
# ResourceQuota and PodSecurity have their own scripts.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"
like "$(cat "$E2E_TMP/server.log")" \
	"admission plugins: NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,Priority,DefaultStorageClass,ResourceQuota" \
	"the server logs the default admission chain"

# --- NamespaceLifecycle ---------------------------------------------------------
expect_fail_with "no pod in a namespace that does not exist (404)" \
	'Error from server (NotFound): namespaces "nowhere" not found' \
	k run p --image=busybox -n nowhere
for ns in default kube-system kube-public kube-node-lease; do
	expect_fail_with "namespace $ns cannot be deleted" \
		"Error from server (Forbidden): namespaces \"$ns\" is forbidden: this namespace may not be deleted" \
		k delete namespace "$ns"
done
api DELETE /api/v1/namespaces
is "$HTTP_CODE $(json_str message)" \
	'403 namespaces "default" is forbidden: this namespace may not be deleted' \
	"deleting the collection of namespaces is refused for the system ones (403)"
unlike "$(k get namespaces --no-headers)" "Terminating" "and no namespace of it is being deleted"
mk_ns ending >/dev/null
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: ConfigMap
metadata: {name: held, namespace: ending, finalizers: [example.com/hold]}
EOF
ok "delete a namespace whose content waits for a finalizer" k delete namespace ending --wait=false
ok "it is terminating" wait_for 10 eval '[ "$(jp namespace/ending "{.status.phase}")" = Terminating ]'
expect_fail_with "nothing new is created in a terminating namespace (403)" \
	'Error from server (Forbidden): error when creating "STDIN": configmaps "late" is forbidden: unable to create new content in namespace ending because it is being terminated' \
	mk_cm late ending
ok "updates inside it go on (the finalizer is removed)" \
	k patch configmap held -n ending --type=merge -p '{"metadata":{"finalizers":null}}'
ok "then the namespace goes" wait_for 20 not k get namespace ending

# --- ServiceAccount -------------------------------------------------------------
mk_ns apps >/dev/null
ok "the namespace gets its default ServiceAccount" wait_for 10 k get serviceaccount default -n apps
ok "a pod without a service account" k run web --image=busybox -n apps
expect_output "it runs as the default ServiceAccount" "default default" \
	jp pod/web '{.spec.serviceAccountName} {.spec.serviceAccount}' -n apps
vol=$(jp pod/web '{.spec.volumes[0].name}' -n apps)
case $vol in
kube-api-access-?????) pass "it gets a kube-api-access-XXXXX volume ($vol)" ;;
*) fail "it gets a kube-api-access-XXXXX volume (got '$vol')" ;;
esac
expect_output "a projected token, the cluster CA and the namespace" \
	"token 3607 kube-root-ca.crt metadata.namespace 420" \
	jp pod/web '{.spec.volumes[0].projected.sources[0].serviceAccountToken.path} {.spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds} {.spec.volumes[0].projected.sources[1].configMap.name} {.spec.volumes[0].projected.sources[2].downwardAPI.items[0].fieldRef.fieldPath} {.spec.volumes[0].projected.defaultMode}' -n apps
expect_output "mounted read-only where client libraries look for it" \
	"$vol /var/run/secrets/kubernetes.io/serviceaccount true" \
	jp pod/web '{.spec.containers[0].volumeMounts[0].name} {.spec.containers[0].volumeMounts[0].mountPath} {.spec.containers[0].volumeMounts[0].readOnly}' -n apps
ok "a pod that opts out" k run quiet --image=busybox -n apps \
	--overrides='{"spec":{"automountServiceAccountToken":false}}'
expect_output "gets no token volume" "" jp pod/quiet '{.spec.volumes}' -n apps
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: apps}
automountServiceAccountToken: false
imagePullSecrets: [{name: registry-key}]
EOF
ok "a pod of a ServiceAccount that opts out" k run bot --image=busybox -n apps \
	--overrides='{"spec":{"serviceAccountName":"robot"}}'
expect_output "gets no token, but the account's image pull secrets" " registry-key" \
	jp pod/bot '{.spec.volumes} {.spec.imagePullSecrets[0].name}' -n apps
expect_fail_with "a pod naming a ServiceAccount that does not exist is refused" \
	'Error from server (Forbidden): pods "ghost" is forbidden: error looking up service account apps/nobody: serviceaccount "nobody" not found' \
	k run ghost --image=busybox -n apps --overrides='{"spec":{"serviceAccountName":"nobody"}}'
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: own-mount, namespace: apps}
spec:
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: mine, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]
  volumes: [{name: mine, emptyDir: {}}]
EOF
expect_output "a container with its own mount there keeps it, and no token volume is added" \
	"mine" jp pod/own-mount '{.spec.volumes[*].name}' -n apps

# --- LimitRanger ------------------------------------------------------------------
cat <<'EOF' | k create -f - >/dev/null
apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: apps}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m, memory: 128Mi}
    max: {cpu: "1"}
  - type: PersistentVolumeClaim
    max: {storage: 1Gi}
EOF
ok "a pod without resources in a namespace with a LimitRange" k run sized --image=busybox -n apps
expect_output "gets the default requests and limits" "100m 128Mi 500m 256Mi" \
	jp pod/sized '{.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.requests.memory} {.spec.containers[0].resources.limits.cpu} {.spec.containers[0].resources.limits.memory}' -n apps
expect_output "and an annotation saying so" \
	"LimitRanger plugin set: cpu, memory request for container sized; cpu, memory limit for container sized" \
	jp pod/sized '{.metadata.annotations.kubernetes\.io/limit-ranger}' -n apps
expect_fail_with "a container over the maximum is refused with Kubernetes' words" \
	'Error from server (Forbidden): pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2' \
	k run big --image=busybox -n apps --overrides='{"spec":{"containers":[{"name":"big","image":"busybox","resources":{"limits":{"cpu":"2"}}}]}}'
claim() {
	printf 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: %s, namespace: apps}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: %s}}\n%s' "$1" "$2" "${3:-}" | k create -f -
}
expect_fail_with "a claim over the maximum is refused" \
	'persistentvolumeclaims "huge" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 5Gi' \
	claim huge 5Gi

# --- DefaultStorageClass ---------------------------------------------------------------
ok "a claim before any default StorageClass exists" claim early 100Mi
expect_output "has no class" "" jp pvc/early '{.spec.storageClassName}' -n apps
cat <<'EOF' | k create -f - >/dev/null
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: example.com/local
EOF
ok "a claim without storageClassName" claim plain 100Mi
expect_output "gets the default class" "local" jp pvc/plain '{.spec.storageClassName}' -n apps
ok "a claim asking for no class (\"\")" claim none 100Mi '  storageClassName: ""
'
expect_output "keeps none" "" jp pvc/none '{.spec.storageClassName}' -n apps

# --- dry run and the chain's options ------------------------------------------------------
expect_fail_with "admission answers dry runs too" 'namespaces "nowhere" not found' \
	k run p --image=busybox -n nowhere --dry-run=server
stop_server_cleanly

start_server --disable-admission-plugins ServiceAccount,LimitRanger || bail_out "server did not start"
like "$(cat "$E2E_TMP/server.log")" \
	"admission plugins: NamespaceLifecycle,PodSecurity,Priority,DefaultStorageClass,ResourceQuota" \
	"--disable-admission-plugins takes modules out of the chain"
ok "a pod in the namespace with the LimitRange" k run bare --image=busybox -n apps
expect_output "gets neither a token volume nor default resources" "|{}|" \
	jp pod/bare '{.spec.serviceAccountName}|{.spec.containers[0].resources}|' -n apps
stop_server_cleanly

E2E_START_TIMEOUT=5 start_server --enable-admission-plugins NoSuchThing >/dev/null 2>&1
like "$(cat "$E2E_TMP/server.log")" "plugin NoSuchThing not found" \
	"an admission plugin that cannot be found stops the server with the reason"
stop_server >/dev/null 2>&1
E2E_START_TIMEOUT=5 start_server --disable-admission-plugins NoSuchThing >/dev/null 2>&1
like "$(cat "$E2E_TMP/server.log")" \
	'--disable-admission-plugins: unknown admission plugin "NoSuchThing" (built-in: NamespaceLifecycle' \
	"disabling an unknown module is refused"
stop_server >/dev/null 2>&1
E2E_START_TIMEOUT=5 start_server --enable-admission-plugins scheduler-default >/dev/null 2>&1
like "$(cat "$E2E_TMP/server.log")" "is not an admission plugin" \
	"a plugin of another kind is refused"
stop_server >/dev/null 2>&1

# --- the worked example of docs/plugins.md -------------------------------------------------
DOC=$SKIFF_SRC_DIR/docs/plugins.md
# block_after MARKER: the fenced block following an "<!-- example: MARKER -->" line
block_after() {
	awk -v m="<!-- example: $1 -->" '
		$0 == m { found = 1; next }
		found && /^```/ { if (inside) exit; inside = 1; next }
		inside { print }' "$DOC"
}
work=$E2E_TMP/example
mkdir -p "$work"
block_after plugins/examples/admission-require-labels/require_labels.c >"$work/require_labels.c"
if cmp -s "$work/require_labels.c" "$SKIFF_SRC_DIR/plugins/examples/admission-require-labels/require_labels.c"; then
	pass "docs/plugins.md shows the example plugin exactly as it is in the tree"
else
	fail "docs/plugins.md shows the example plugin exactly as it is in the tree"
	diag "$(diff "$work/require_labels.c" "$SKIFF_SRC_DIR/plugins/examples/admission-require-labels/require_labels.c" | head -20)"
fi
block_after build >"$work/build.sh"
ok "the page's build command builds it out of the tree" \
	env SKIFF_SRC="$SKIFF_SRC_DIR" bash -c "cd '$work' && . ./build.sh"
# the page's command, in the folder it built the plugin in
cd "$work" || bail_out "cd $work"
start_server --plugin-dir plugins --enable-admission-plugins admission-require-labels \
	--admission-plugin-settings "admission-require-labels.labels=owner" ||
	bail_out "server did not start with the example plugin"
cd "$OLDPWD" || bail_out "cd back"
like "$(cat "$E2E_TMP/server.log")" \
	"admission plugins: NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,Priority,DefaultStorageClass,admission-require-labels,ResourceQuota" \
	"the plugin joins the chain before ResourceQuota"
ok "skiff plugins list" "$SKIFF_BIN" plugins list --kubeconfig "$KUBECONFIG"
like "$(printf '%s\n' "$OUT" | grep '^admission-require-labels ' | tr -s ' ')" \
	"admission-require-labels admission 1.0.0 plugin-dir started plugins/admission-require-labels.so" \
	"shows it started"
expect_fail_with "a namespace without the label is refused, naming the plugin (as the page shows)" \
	"$(grep -A1 '^\$ kubectl create namespace scratch$' "$DOC" | tail -1)" \
	k create namespace scratch
expect_output "with the label it is created (the page's second command)" "namespace/scratch created" \
	bash -c "$(grep '^\$ kubectl create namespace scratch --dry-run' "$DOC" | sed "s/^\\$ //; s|kubectl|$KUBECTL|g")"
ok "pods are not checked (resources defaults to namespaces)" k run free --image=busybox
stop_server_cleanly

start_server --plugin-dir "$work/plugins" || bail_out "server did not start with a plugin folder"
ok "an admission plugin in a folder but not enabled" k create namespace unlabelled
ok "skiff plugins list" "$SKIFF_BIN" plugins list --kubeconfig "$KUBECONFIG"
like "$(printf '%s\n' "$OUT" | grep '^admission-require-labels ' | tr -s ' ')" \
	"loaded $work/plugins/admission-require-labels.so admission plugins run when named by --enable-admission-plugins" \
	"is listed as loaded, saying how to enable it"
stop_server_cleanly

start_server --enable-admission-plugins admission-require-labels \
	--admission-plugin-settings "admission-require-labels.labels=team,owner;admission-require-labels.resources=pods" ||
	bail_out "server did not start with the in-tree example plugin"
ok "skiff plugins list" "$SKIFF_BIN" plugins list --kubeconfig "$KUBECONFIG"
like "$(printf '%s\n' "$OUT" | grep '^admission-require-labels ' | tr -s ' ')" \
	"admission-require-labels admission 1.0.0 built-in started" \
	"the plugin built with the tree is listed as started"
ok "with resources=pods namespaces go through" k create namespace lab
expect_fail_with "and pods must carry every label named" \
	'pods "p" is forbidden: admission plugin "admission-require-labels" denied the request: missing required label(s): team, owner' \
	k run p --image=busybox -n lab
ok "a pod with the labels is created" k run p --image=busybox -n lab --labels=team=a,owner=b
stop_server_cleanly

done_testing
