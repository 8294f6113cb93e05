#!/bin/bash
# tests/e2e/test_profiles.sh - cluster profiles and addons as a user meets
# them: the built-in profiles print and start, a user's JSON and Lua
# profiles change what the cluster does (seen through kubectl), the command
# line overrides a profile, a broken profile names file, line and setting
# and the server refuses to start, and addons are applied at start, applied
# again after a file changes, and a bad one is reported without stopping
# the server.
. "$(dirname "$0")/lib.sh"

[ -x "$SKIFF_BIN" ] || bail_out "no server binary at $SKIFF_BIN"
EX=$SKIFF_SRC_DIR/profiles/examples

# matches GOT REGEX DESC: GOT matches the extended regular expression.
matches() {
	if [[ $1 =~ $2 ]]; then
		pass "$3"
	else
		fail "$3"
		diag "expected to match: '$2'"
		diag "got:"
		diag "$(printf '%s\n' "$1" | head -n 20)"
		return 1
	fi
}

# --- the command line ------------------------------------------------------------------
_run timeout 10 "$SKIFF_BIN" server --help
like "$OUT" "--profile NAME|FILE" "server --help lists --profile"
like "$OUT" "--print-profile" "server --help lists --print-profile"
like "$OUT" "--service-cluster-ip-range" "server --help lists --service-cluster-ip-range"

for p in single-node edge bench; do
	_run timeout 10 "$SKIFF_BIN" server --profile "$p" --print-profile
	is "$?" 0 "--profile $p --print-profile exits 0"
	is "$(json_str profile "$OUT")" "$p" "the printed configuration names profile $p"
done
_run timeout 10 "$SKIFF_BIN" server --print-profile
is "$(json_str profile "$OUT")" single-node "without --profile the profile is single-node"
is "$(json_str service-cluster-ip-range "$OUT")" "10.43.0.0/16,fd00:43::/112" \
	"single-node declares dual-stack Service ranges"
_run timeout 10 "$SKIFF_BIN" server --profile edge --print-profile
matches "$(json_str controllers "$OUT")" "^namespace,.*deployment" "edge runs a short list of controllers"
unlike "$(json_str controllers "$OUT")" "statefulset" "edge leaves out the StatefulSet controller"
is "$(json_num max-requests-inflight "$OUT")" 50 "edge lowers max-requests-inflight"
like "$(json_str plugin-settings "$OUT")" "scheduler-default.scores=NodeResourcesFit:1,TaintToleration:3" \
	"edge's scheduler weights become scheduler-default settings"
_run timeout 10 "$SKIFF_BIN" server --profile bench --print-profile
is "$(json_num client-qps "$OUT")" 0 "bench lifts the per-client rate limit"

# precedence: built-in defaults < profile < command line
_run timeout 10 "$SKIFF_BIN" server --profile edge --max-requests-inflight 77 \
	--plugin-settings scheduler-default.max-inflight-bindings=7 --print-profile
is "$(json_num max-requests-inflight "$OUT")" 77 "the command line overrides the profile"
is "$(json_num max-watches-per-client "$OUT")" 100 "the profile's other settings stay"
matches "$(json_str plugin-settings "$OUT")" "max-inflight-bindings=100;.*max-inflight-bindings=7$" \
	"--plugin-settings add to the profile's, after them (they win)"
printf '{"server": {"anonymous-auth": true}}\n' >"$E2E_TMP/anon.json"
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/anon.json" --print-profile
like "$OUT" '"anonymous-auth": true' "a profile turns a flag on"
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/anon.json" --no-anonymous-auth --print-profile
like "$OUT" '"anonymous-auth": false' "--no-FLAG on the command line turns it off again"
_run timeout 10 "$SKIFF_BIN" server --no-port 1 --print-profile
like "$ERR" 'unknown option "--no-port"' "--no- works for flags only"
_run timeout 10 "$SKIFF_BIN" server --profile "$EX/bin-packing.json" --print-profile
is "$?" 0 "the example JSON profile loads"
like "$(json_str plugin-settings "$OUT")" "scoring-strategy=MostAllocated" \
	"the example JSON profile sets the scoring strategy"

# the user guide's example profile is one that loads
awk '/^### Writing a profile/ {on = 1} on && /^```json/ {grab = 1; next} grab && /^```/ {exit} grab' \
	"$SKIFF_SRC_DIR/docs/user-guide.md" >"$E2E_TMP/guide.json"
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/guide.json" --print-profile
is "$?" 0 "the user guide's example profile loads"
is "$(json_str controllers "$OUT")" "namespace,garbage-collector,serviceaccount,replicaset,deployment,job" \
	"the user guide's example sets the controllers"
# --- a broken profile names the file, the line and the setting ------------------------------------
_run timeout 10 "$SKIFF_BIN" server --profile ha --data-dir "$E2E_TMP/ha"
rc=$? said=$ERR
ok "--profile ha is refused" test "$rc" -ne 0
like "$said" "storage-etcd" "the refusal of ha says it needs the etcd store"

cat >"$E2E_TMP/typo.json" <<'EOF'
{
  "extends": "single-node",
  "schedular": "none"
}
EOF
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/typo.json" --plain-http --port 0 --data-dir "$E2E_TMP/typo"
is "$?" 2 "a profile with an unknown setting stops the server with status 2"
matches "$ERR" "typo.json:3: schedular: unknown setting; valid here: .*scheduler" \
	"the error names file, line and setting, and lists the valid ones"
ok "no data directory was made for a refused profile" test ! -e "$E2E_TMP/typo"

cat >"$E2E_TMP/type.lua" <<'EOF'
return {
  controllers = "all",
  server = {
    ["max-requests-inflight"] = "many",
  },
}
EOF
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/type.lua" --plain-http --port 0 --data-dir "$E2E_TMP/type"
is "$?" 2 "a Lua profile with a wrong type stops the server"
like "$ERR" "type.lua:4: server.max-requests-inflight: expected a whole number" \
	"the error names the Lua file, the line and the expected type"
cat >"$E2E_TMP/crash.lua" <<'EOF'
local t = {}
return { controllers = t.nothing.here }
EOF
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/crash.lua" --plain-http --port 0 --data-dir "$E2E_TMP/crash"
rc=$? said=$ERR
ok "a Lua profile that fails stops the server" test "$rc" -ne 0
like "$said" "crash.lua:2: attempt to index a nil value" "the Lua error names the chunk's line"
printf 'return { x = io.open("/etc/hostname") }\n' >"$E2E_TMP/io.lua"
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/io.lua" --print-profile
matches "$ERR" "io.lua:1: .*global 'io'" "a Lua profile has no io library"
printf '{\n  "server": {\n    "port": 1,\n  }\n}\n' >"$E2E_TMP/syntax.json"
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/syntax.json" --print-profile
matches "$ERR" "syntax.json:4:[0-9]+: " "a JSON syntax error names line and column"
_run timeout 10 "$SKIFF_BIN" server --profile "$E2E_TMP/missing.json" --print-profile
like "$ERR" "missing.json: cannot read the profile" "a missing profile file is named"
_run timeout 10 "$SKIFF_BIN" server --cluster-cidr 10.42.0.1/16 --print-profile
like "$ERR" "host bits" "an address range with host bits set is refused"
unlike "$ERR" "Sanitizer" "refusing profiles is clean (no sanitizer report)"

# --- the default profile: everything on, the cluster-info addon -------------------------------------
start_server || bail_out "server did not start"
matches "$(cat "$E2E_TMP/server.log")" "profile single-node \(built-in" "the server logs the profile it runs"
wait_for 10 k -n kube-system get configmap cluster-info
is "$(k -n kube-system get configmap cluster-info -o jsonpath='{.data.profile}')" single-node \
	"the cluster-info addon was applied into kube-system"
is "$(k -n kube-system get configmap cluster-info -o jsonpath='{.data.service-cluster-ip-range}')" \
	"10.43.0.0/16,fd00:43::/112" "cluster-info shows the Service ranges"
mk_deploy web default busybox >/dev/null
ok "with all controllers a Deployment gets a ReplicaSet" wait_for 10 \
	sh -c "[ -n \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG get rs -l app=web -o name)\" ]"
stop_server_cleanly

# --- bench: hollow nodes in the server, bin packing -------------------------------------------
rm -rf "$E2E_DATA"
start_server --profile bench || bail_out "server did not start with the bench profile"
ok "bench starts 10 hollow nodes in the server" wait_for 15 \
	sh -c "[ \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG get nodes --no-headers | grep -c ' Ready ')\" = 10 ]"
k create deployment packed --image=busybox --replicas=4 >/dev/null
ok "the Deployment's pods run on the hollow nodes" wait_for 15 \
	sh -c "[ \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG get pods -l app=packed --field-selector status.phase=Running --no-headers | wc -l)\" = 4 ]"
is "$(k get pods -l app=packed -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u | wc -l)" 1 \
	"bench's MostAllocated scoring packs the pods onto one node"
stop_server_cleanly

# --- edge: a short list of controllers ------------------------------------------------------
rm -rf "$E2E_DATA"
start_server --profile edge || bail_out "server did not start with the edge profile"
matches "$(cat "$E2E_TMP/server.log")" "controllers: controller-namespace, controller-garbage-collector, controller-serviceaccount, controller-replicaset, controller-deployment, controller-daemonset, controller-job, controller-endpoints, scheduler-default" \
	"edge starts its eight controllers and the scheduler"
mk_deploy small default busybox >/dev/null
ok "under edge a Deployment gets its ReplicaSet" wait_for 10 \
	sh -c "[ -n \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG get rs -l app=small -o name)\" ]"
cat <<'EOF' | k create -f - >/dev/null
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: main, image: busybox}]}
EOF
sleep 2
is "$(k get pods -l app=db -o name | wc -l)" 0 "under edge a StatefulSet gets no pods (its controller is left out)"
stop_server_cleanly

# --- a Lua profile: no workload controllers ------------------------------------------------
rm -rf "$E2E_DATA"
start_server --profile "$EX/no-workloads.lua" || bail_out "server did not start with the Lua profile"
matches "$(cat "$E2E_TMP/server.log")" "profile no-workloads \(.*no-workloads.lua\)" "the server logs the Lua profile"
mk_deploy web default busybox >/dev/null
sleep 3
is "$(k get rs -o name | wc -l)" 0 "with the Lua profile a Deployment gets no ReplicaSet"
wait_for 10 k -n kube-system get configmap cluster-info
is "$(k -n kube-system get configmap cluster-info -o jsonpath='{.data.profile}')" no-workloads \
	"the profile it extends brings its addon, filled in with this profile's name"
stop_server_cleanly

# the command line wins over the profile
start_server --profile "$EX/no-workloads.lua" --controllers all || bail_out "server did not restart"
ok "--controllers all over the Lua profile: the Deployment gets its ReplicaSet" wait_for 10 \
	sh -c "[ -n \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG get rs -l app=web -o name)\" ]"
stop_server_cleanly

# a Lua profile that loads a Lua controller plugin and gives it a setting
mkdir -p "$E2E_TMP/lp/plugins"
cp "$SKIFF_SRC_DIR/plugins/examples/greeter/greeter.lua" "$E2E_TMP/lp/plugins/"
cat >"$E2E_TMP/lp/greet.lua" <<'EOF'
return {
  extends = "single-node",
  plugins = {
    load = { "plugins/greeter.lua" },   -- relative to this file
    settings = { greeter = { greeting = "hi" } },
  },
}
EOF
start_server --profile "$E2E_TMP/lp/greet.lua" || bail_out "server did not start with the plugin profile"
mk_cm hello default >/dev/null
k label configmap hello greet=yes >/dev/null
ok "the profile's plugin runs with the profile's setting" wait_for 10 \
	sh -c "[ \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG get configmap hello -o jsonpath='{.data.greeting}')\" = 'hi, hello' ]"
stop_server_cleanly

# --- a JSON profile with addons -------------------------------------------------------------
rm -rf "$E2E_DATA"
P=$E2E_TMP/mine
mkdir -p "$P/addons"
cat >"$P/mine.json" <<'EOF'
{
  "description": "deployments yes, jobs no, and our own addons",
  "controllers": ["namespace", "garbage-collector", "serviceaccount", "replicaset", "deployment"],
  "network": {"service-cluster-ip-range": "10.96.0.0/12", "cluster-cidr": "10.244.0.0/16"},
  "admission": {"disable": ["ServiceAccount"]},
  "addons": ["addons"]
}
EOF
cat >"$P/addons/10-team.yaml" <<'EOF'
# a namespace, then objects in it and one in kube-system (no namespace given)
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: team-a
data:
  color: blue
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ranges
  # as exported by kubectl get -o yaml: dropped before the create
  resourceVersion: "999"
  uid: 0b4a3c9e-0000-4000-8000-000000000000
data:
  services: "%{SERVICE_CLUSTER_IP_RANGE}%"
EOF
cat >"$P/addons/20-bad.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: fine
---
apiVersion: v1
kind: NoSuchKind
metadata:
  name: broken
EOF
start_server --profile "$P/mine.json" || bail_out "server did not start with the JSON profile"
ok "team-a's ConfigMap was applied at start" wait_for 10 k -n team-a get configmap settings
is "$(k -n team-a get configmap settings -o jsonpath='{.data.color}')" blue "the addon's data is there"
is "$(k -n kube-system get configmap ranges -o jsonpath='{.data.services}')" 10.96.0.0/12 \
	"an object without a namespace goes into kube-system, %{VARIABLES}% filled in"
ok "a good document of a bad file is applied" wait_for 5 k -n kube-system get configmap fine
like "$(cat "$E2E_TMP/server.log")" "20-bad.yaml: document 2: no kind NoSuchKind in v1" \
	"the bad document is logged with its file and number"
wait_for 5 sh -c "timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG -n kube-system get configmap skiff-addons -o yaml | grep -q NoSuchKind"
matches "$(k -n kube-system get configmap skiff-addons -o json)" '"20-bad.yaml": "[^"]*: 1 applied, 1 failed; first error: [^"]*document 2: no kind NoSuchKind' \
	"kube-system/skiff-addons shows the file's failure"
like "$(k -n kube-system get events --field-selector reason=AddonFailed -o jsonpath='{.items[*].message}')" \
	"document 2: no kind NoSuchKind" "a Warning Event AddonFailed says what failed"
is "$(curl -s --max-time 5 "$E2E_URL/readyz")" ok "the server keeps serving after a bad addon"

# the JSON profile's admission chain: no ServiceAccount module
unlike "$(grep 'admission plugins:' "$E2E_TMP/server.log" | tail -1)" ServiceAccount \
	"the profile took ServiceAccount out of the admission chain"
k run bare --image=busybox >/dev/null
is "$(k get pod bare -o jsonpath='{.spec.serviceAccountName}')" "" \
	"so a pod gets no service account filled in"

# the JSON profile's controllers: Deployments yes, Jobs no
mk_deploy web default busybox >/dev/null
ok "the JSON profile keeps the Deployment controller" wait_for 10 \
	sh -c "[ -n \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG get rs -l app=web -o name)\" ]"
k create job once --image=busybox -- true >/dev/null
sleep 2
is "$(k get job once -o jsonpath='{.status.startTime}')" "" "the JSON profile turned the Job controller off (the Job never starts)"

# a change to a file is applied again; what others changed and the file
# does not say stays (merge), the file's own fields win
k -n team-a label configmap settings owner=ops >/dev/null
sed -i 's/color: blue/color: green/' "$P/addons/10-team.yaml"
ok "an edited addon file is applied again" wait_for 10 \
	sh -c "[ \"\$(timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG -n team-a get configmap settings -o jsonpath='{.data.color}')\" = green ]"
is "$(k -n team-a get configmap settings -o jsonpath='{.metadata.labels.owner}')" ops \
	"a label set with kubectl survives the re-apply"
# a new file in the folder
printf '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-json"}, "data": {"a": "1"}}\n' \
	>"$P/addons/30-new.json"
ok "a new JSON file in the addons folder is applied" wait_for 10 k -n kube-system get configmap from-json
# fixing the bad file clears its failure
sed -i 's/NoSuchKind/ConfigMap/' "$P/addons/20-bad.yaml"
ok "the fixed file is applied" wait_for 10 k -n kube-system get configmap broken
ok "skiff-addons no longer reports a failure" wait_for 10 \
	sh -c "! timeout 20 $KUBECTL --kubeconfig=$KUBECONFIG -n kube-system get configmap skiff-addons -o yaml | grep -q failed"
# an object removed from its file stays in the cluster
rm "$P/addons/30-new.json"
sleep 1
ok "an object whose file was removed stays" k -n kube-system get configmap from-json
unlike "$(cat "$E2E_TMP/server.log")" "Sanitizer" "no sanitizer report in the server log"
stop_server_cleanly

done_testing
