#!/bin/bash
# tests/e2e/test_pod_security.sh - PodSecurity through kubectl: namespace
# labels choose the level; enforce refuses a violating pod with
# Kubernetes' message (baseline and restricted), warn prints kubectl's
# "Warning:" lines, workloads get warnings but are created, an invalid
# label is refused, tightening a namespace warns about its pods, the
# version label shows in the messages, and namespaces without labels are
# privileged.
. "$(dirname "$0")/lib.sh"

start_server || bail_out "server did not start"

psa_ns() { # psa_ns NAME LABEL=VALUE...
	local ns=$1
	shift
	mk_ns "$ns" >/dev/null && k label namespace "$ns" "$@" >/dev/null
}

cat >"$E2E_TMP/privileged.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: root}
spec:
  hostNetwork: true
  containers:
  - name: shell
    image: busybox
    securityContext: {privileged: true}
EOF
cat >"$E2E_TMP/restricted.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: tight}
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: app
    image: busybox
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
EOF

ok "a privileged pod in a namespace without labels" k create -f "$E2E_TMP/privileged.yaml" -n default
unlike "$ERR" "Warning" "without labels nothing is checked"

psa_ns base pod-security.kubernetes.io/enforce=baseline
expect_fail_with "baseline refuses a privileged pod on the host network" \
	'Error from server (Forbidden): error when creating "'"$E2E_TMP"'/privileged.yaml": pods "root" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork), privileged (container "shell" must not set securityContext.privileged=true)' \
	k create -f "$E2E_TMP/privileged.yaml" -n base
ok "baseline lets an ordinary pod in" k run plain --image=busybox -n base
expect_fail_with "hostPath volumes and host ports are refused too" \
	'violates PodSecurity "baseline:latest": hostPath volumes (volume "root"), hostPort (container "c" uses hostPort 8080)' \
	k run hp --image=busybox -n base --overrides='{"spec":{"volumes":[{"name":"root","hostPath":{"path":"/"}}],"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":80,"hostPort":8080}]}]}}'

psa_ns strict pod-security.kubernetes.io/enforce=restricted
expect_fail_with "restricted refuses an ordinary pod, saying what to set" \
	'Error from server (Forbidden): pods "plain" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "plain" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "plain" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "plain" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "plain" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")' \
	k run plain --image=busybox -n strict
ok "a pod that follows the restricted profile is created" k create -f "$E2E_TMP/restricted.yaml" -n strict
unlike "$ERR" "Warning" "without a warning"
like "$(jp pod/tight '{.spec.volumes[0].name} {.spec.volumes[0].projected.sources[0].serviceAccountToken.path}' -n strict)" \
	"kube-api-access-" "its service account token is a projected volume, which restricted allows"

psa_ns warned pod-security.kubernetes.io/warn=restricted
ok "warn only: the pod is created" k run loose --image=busybox -n warned
like "$ERR" 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "loose" must set securityContext.allowPrivilegeEscalation=false)' \
	"and kubectl prints the warning"

ok "a Deployment in the restricted namespace is created" mk_deploy web strict busybox
like "$ERR" 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "main" must set' \
	"with a warning about its pod template"

expect_fail_with "an invalid level label is refused (422)" \
	'The Namespace "strict" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strictest": must be one of privileged, baseline, restricted' \
	k label namespace strict pod-security.kubernetes.io/enforce=strictest --overwrite
expect_fail_with "so is an invalid version" 'Invalid value: "1.30"' \
	k label namespace strict pod-security.kubernetes.io/enforce-version=1.30

ok "tightening a namespace that has violating pods" \
	k label namespace base pod-security.kubernetes.io/enforce=restricted --overwrite
like "$ERR" 'Warning: existing pods in namespace "base" violate the new PodSecurity enforce level "restricted:latest"' \
	"warns about them"
like "$ERR" 'Warning: plain: allowPrivilegeEscalation != false' "naming each pod"

ok "a version label" k label namespace strict pod-security.kubernetes.io/enforce-version=v1.30
expect_fail_with "shows in the message" 'violates PodSecurity "restricted:v1.30"' \
	k run other --image=busybox -n strict
stop_server_cleanly

start_server --disable-admission-plugins PodSecurity || bail_out "server did not restart"
ok "with PodSecurity disabled the labels are not enforced" k run plain --image=busybox -n strict
stop_server_cleanly

done_testing
