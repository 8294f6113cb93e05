#!/bin/bash
# tests/e2e/test_manifests.sh - real-world manifests: every file under
# ../shared/manifests/k8s-website goes through `kubectl apply -f`, one test
# line each. The few that a real API server refuses too (listed in
# ../shared/manifests/README.md) must fail with an error naming the problem.
# Skipped when ../shared is not next to the source tree (a user's clone).
E2E_SCRIPT_TIMEOUT=${E2E_SCRIPT_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"

SHARED=$(cd "$SKIFF_SRC_DIR/.." && pwd)/shared/manifests
SITE=$SHARED/k8s-website
[ -d "$SITE" ] || skip_all "../shared/manifests not present"

# Files a real API server refuses as well, and the text the error must show.
expected_error() {
	case "$1" in
	application/job/cronjob.yaml) echo "batch/v1beta1" ;;
	pods/pod-with-node-affinity.yaml) echo "requiredDuringSchedulingIgnoredDuringExecution" ;;
	service/networking/dual-stack-ipv6-svc.yaml) echo "spec.ipFamily" ;;
	*) return 1 ;;
	esac
}

mapfile -t files < <(cd "$SITE" && find . -name '*.yaml' -o -name '*.yml' | sed 's#^\./##' | LC_ALL=C sort)
[ "${#files[@]}" -gt 0 ] || bail_out "no manifests under $SITE"

start_server || bail_out "server did not start"

# Several files reuse names (nginx-deployment, frontend, web, ...) for
# different objects, so each file without its own namespace gets a fresh one
# and no file sees another's leftovers. One apply creates them all.
{
	for ns in mem-example cpu-example qos-example; do
		printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n' "$ns"
	done
	for i in "${!files[@]}"; do
		printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: site-%03d}\n---\n' "$i"
	done
} >"$E2E_TMP/namespaces.yaml"
ok "create the namespaces the manifests need" k apply -f "$E2E_TMP/namespaces.yaml"

for i in "${!files[@]}"; do
	f=${files[$i]}
	nsarg=(-n "$(printf 'site-%03d' "$i")")
	grep -qE '^[[:space:]]+namespace:' "$SITE/$f" && nsarg=()
	if want=$(expected_error "$f"); then
		expect_fail_with "$f is refused, naming $want" "$want" k apply "${nsarg[@]}" -f "$SITE/$f"
	else
		ok "$f applies" k apply "${nsarg[@]}" -f "$SITE/$f"
	fi
done

expect_output "server still ready after all manifests" ok curl -s --max-time 5 "$E2E_URL/readyz"
stop_server_cleanly
done_testing
