#!/bin/bash
# tests/e2e/test_our_manifests.sh - the small manifests kept in
# tests/e2e/manifests (Deployment, Service, ConfigMap, Job, StatefulSet,
# CronJob) apply one by one, apply again as a directory without changes,
# keep their fields, and delete cleanly. Runs in any clone.
. "$(dirname "$0")/lib.sh"

MANIFESTS=$E2E_DIR/manifests
start_server || bail_out "server did not start"

for f in configmap deployment service job statefulset cronjob; do
	expect_contains "$f.yaml applies" "created" k apply -f "$MANIFESTS/$f.yaml"
done

expect_contains "applying the directory again changes nothing" "deployment.apps/hello unchanged" \
	k apply -f "$MANIFESTS"
unlike "$OUT" "created" "no object is created twice"
# volumeClaimTemplates is an atomic list that the server fills with defaults,
# so kubectl sends it again (and says "configured", as with any API server);
# the object itself must not change.
expect_output "re-applying the statefulset does not bump its generation" 1 \
	jp statefulset/store '{.metadata.generation}'
expect_output "re-applying does not bump the deployment's generation" 1 \
	jp deployment/hello '{.metadata.generation}'

expect_output "configmap keeps a multi-line value" "color=blue
retries=3" jp configmap/hello-config '{.data.app\.properties}'
expect_output "deployment keeps its configMapKeyRef" hello-config \
	jp deployment/hello '{.spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name}'
expect_output "deployment keeps its resources" "50m 64Mi" \
	jp deployment/hello '{.spec.template.spec.containers[0].resources.requests.cpu} {.spec.template.spec.containers[0].resources.limits.memory}'
expect_output "service keeps its named targetPort" http jp service/hello '{.spec.ports[0].targetPort}'
expect_output "headless service has clusterIP None" None jp service/store '{.spec.clusterIP}'
expect_output "job keeps completions and parallelism" "2 2" \
	jp job/count '{.spec.completions} {.spec.parallelism}'
expect_output "statefulset keeps its volumeClaimTemplates" "data 1Gi" \
	jp statefulset/store '{.spec.volumeClaimTemplates[0].metadata.name} {.spec.volumeClaimTemplates[0].spec.resources.requests.storage}'
expect_output "cronjob keeps its schedule" "*/5 * * * *" jp cronjob/tick '{.spec.schedule}'
expect_output "cronjob keeps its concurrencyPolicy" Forbid jp cronjob/tick '{.spec.concurrencyPolicy}'

# Defaults a Kubernetes API server fills in, as kubectl users rely on them.
expect_output "deployment strategy defaults to RollingUpdate" RollingUpdate \
	jp deployment/hello '{.spec.strategy.type}'
expect_output "service type defaults to ClusterIP" ClusterIP jp service/hello '{.spec.type}'
expect_output "service port protocol defaults to TCP" TCP jp service/hello '{.spec.ports[0].protocol}'
expect_output "cronjob suspend defaults to false" false jp cronjob/tick '{.spec.suspend}'

ok "delete -f the directory" k delete -f "$MANIFESTS" --timeout=30s
for obj in configmap/hello-config deployment/hello service/hello job/count statefulset/store cronjob/tick; do
	ok "$obj is gone" wait_for 15 not k get "$obj"
done

stop_server_cleanly
done_testing
