#!/bin/bash
# tests/e2e/test_metadata.sh - the object metadata the server owns: uid,
# creationTimestamp, resourceVersion on every write, generation on spec
# changes only, and names from generateName.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

meta() { jp "$1" "$2"; }

ok "create a deployment" mk_deploy gen default nginx:1.25
uid=$(meta deployment/gen '{.metadata.uid}')
created=$(meta deployment/gen '{.metadata.creationTimestamp}')
rv1=$(meta deployment/gen '{.metadata.resourceVersion}')
ok "uid is a UUID" grep -qE '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' <<<"$uid"
ok "creationTimestamp is RFC 3339 UTC" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' <<<"$created"
ok "resourceVersion is set" test -n "$rv1"
expect_output "generation starts at 1" 1 meta deployment/gen '{.metadata.generation}'

ok "change a label (metadata only)" k label deployment gen color=blue
rv2=$(meta deployment/gen '{.metadata.resourceVersion}')
expect_output "generation unchanged by a label change" 1 meta deployment/gen '{.metadata.generation}'
ok "resourceVersion changed on the label change" test -n "$rv2" -a "$rv2" != "$rv1"

ok "change the spec" k patch deployment gen --type=merge -p '{"spec":{"replicas":3}}'
rv3=$(meta deployment/gen '{.metadata.resourceVersion}')
expect_output "generation bumped by a spec change" 2 meta deployment/gen '{.metadata.generation}'
ok "resourceVersion changed on the spec change" test -n "$rv3" -a "$rv3" != "$rv2" -a "$rv3" != "$rv1"

ok "annotate (metadata only)" k annotate deployment gen note=x
expect_output "generation unchanged by an annotation" 2 meta deployment/gen '{.metadata.generation}'
ok "change the pod template" k set image deployment/gen main=nginx:1.26
expect_output "generation bumped by a template change" 3 meta deployment/gen '{.metadata.generation}'

expect_output "uid never changes" "$uid" meta deployment/gen '{.metadata.uid}'
expect_output "creationTimestamp never changes" "$created" meta deployment/gen '{.metadata.creationTimestamp}'

# resourceVersion changes on every write, also for kinds without a spec.
ok "create a configmap" mk_cm counter default n=0
seen=$(meta configmap/counter '{.metadata.resourceVersion}')
distinct=1
for n in 1 2 3 4 5; do
	k patch configmap counter --type=merge -p "{\"data\":{\"n\":\"$n\"}}" >/dev/null 2>&1
	rv=$(meta configmap/counter '{.metadata.resourceVersion}')
	grep -qxF -- "$rv" <<<"$seen" || distinct=$((distinct + 1))
	seen=$(printf '%s\n%s' "$seen" "$rv")
done
is "$distinct" 6 "five updates give five new resourceVersions"
expect_output "the last update is stored" 5 meta configmap/counter '{.data.n}'
numeric=yes
prev=0
for rv in $seen; do
	case "$rv" in *[!0-9]* | '') numeric=no ;; esac
	[ "$numeric" = yes ] && [ "$rv" -le "$prev" ] && numeric=decreasing
	prev=$rv
done
ok "resourceVersions increase" test "$numeric" != decreasing

rv_before=$(meta configmap/counter '{.metadata.resourceVersion}')
ok "a merge patch that changes nothing succeeds" \
	k patch configmap counter --type=merge -p '{"data":{"n":"5"}}'
expect_output "a write that changes nothing keeps the resourceVersion" "$rv_before" \
	meta configmap/counter '{.metadata.resourceVersion}'
gen_before=$(meta deployment/gen '{.metadata.generation}')
ok "a strategic patch that repeats the spec succeeds" \
	k patch deployment gen -p '{"spec":{"replicas":3}}'
expect_output "a spec write that changes nothing keeps the generation" "$gen_before" \
	meta deployment/gen '{.metadata.generation}'

# generateName: the server picks the name.
cat >"$E2E_TMP/gen.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  generateName: gen-
data: {a: b}
EOF
expect_contains "create -f with generateName" "configmap/gen-" k create -f "$E2E_TMP/gen.yaml"
name1=$(sed -E 's#^configmap/([^ ]+) created.*#\1#' <<<"$OUT")
ok "generated name is the prefix plus 5 characters" grep -qE '^gen-[a-z0-9]{5}$' <<<"$name1"
ok "create -f with generateName again" k create -f "$E2E_TMP/gen.yaml"
name2=$(sed -E 's#^configmap/([^ ]+) created.*#\1#' <<<"$OUT")
ok "the second generated name differs" test -n "$name2" -a "$name1" != "$name2"
expect_output "the generated object can be read back" "$name1" meta "configmap/$name1" '{.metadata.name}'
expect_output "generateName is kept in metadata" gen- meta "configmap/$name1" '{.metadata.generateName}'

# A pod on a node is deleted gracefully: removing its last finalizer does
# not end it while its node has not stopped it (the node's delete with grace
# period 0 does), as in Kubernetes.
cat >"$E2E_TMP/held-pod.yaml" <<'EOF2'
apiVersion: v1
kind: Pod
metadata:
  name: held
  finalizers: [example.com/hold]
spec:
  nodeName: ghost-node
  containers:
    - name: c
      image: busybox
EOF2
ok "a pod bound to a node, with a finalizer" k apply -f "$E2E_TMP/held-pod.yaml"
ok "deleting it returns at once" k delete pod held --wait=false
like "$(k get pod held -o jsonpath='{.metadata.deletionTimestamp}')" "20" "it is terminating"
ok "its finalizer is removed" k patch pod held --type=json \
	-p '[{"op":"remove","path":"/metadata/finalizers"}]'
expect_output "the pod remains while its node has not stopped it" held \
	k get pod held -o jsonpath='{.metadata.name}'
ok "the node's delete with grace period 0 ends it" k delete pod held --grace-period=0 --force
expect_fail_with "then it is gone" NotFound k get pod held
# The other order: the node's delete with grace 0 comes first, while a
# finalizer holds the pod; removing the finalizer then ends it at once.
ok "the held pod again" k apply -f "$E2E_TMP/held-pod.yaml"
ok "deleted gracefully" k delete pod held --wait=false
ok "the node's delete with grace period 0" k delete pod held --grace-period=0 --force --wait=false
expect_output "shortens its grace period to 0 while the finalizer holds it" 0 \
	k get pod held -o jsonpath='{.metadata.deletionGracePeriodSeconds}'
ok "its finalizer is removed" k patch pod held --type=json \
	-p '[{"op":"remove","path":"/metadata/finalizers"}]'
expect_fail_with "and it is gone" NotFound k get pod held

stop_server_cleanly
done_testing
