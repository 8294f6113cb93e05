#!/bin/bash
# tests/e2e/test_lua_controller.sh - Lua controllers in a real `skiff
# server`, through the real kubectl, with the commands docs/plugins.md
# shows: the greeter loaded from a plugin folder with a setting,
# reconciling ConfigMaps and recording Events; a script that fails to load
# stops the server's start when named by --controllers, and is only
# reported (`skiff plugins list`) when it is found in a plugin folder; a
# runaway script is stopped by its time limit and shown failed while the
# server and the other controllers run on; and the
# Website example: a custom resource owning a Deployment, a Service and a
# ConfigMap, drift put back, status conditions, Ready once its pods run on
# hollow nodes, and its objects collected when it is deleted.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

EXAMPLES=$SKIFF_SRC_DIR/plugins/examples
# The commands below are the ones docs/plugins.md shows (its shell blocks
# are checked against this file by tests/docs/test_doc_snippets.sh), run
# from a folder where plugins/ is the source tree's.
cd "$E2E_TMP" || bail_out "no temporary directory"
ln -s "$SKIFF_SRC_DIR/plugins" plugins

# --- a script that does not load stops the start, naming file and line -----------
mkdir broken
printf 'return skiff.plugin{ name = "broken", kind = "controller",\n  start = function( end }\n' \
	>broken/broken.lua
_run timeout 30 "$SKIFF_BIN" server --plain-http --data-dir "$E2E_TMP/broken-data" \
	--port "$(free_port)" --plugin-dir broken --controllers broken.lua --scheduler none
is "$?" 1 "a Lua controller named in --controllers that does not load fails the server's start"
like "$ERR" "broken.lua:2:" "the message names the script and the line"

# --- the greeter, a runaway script, and the Website when CRDs are served ------------
mkdir myplugins
cp plugins/examples/greeter/greeter.lua myplugins/
cp plugins/examples/website/website.lua myplugins/
cp broken/broken.lua myplugins/
cat >myplugins/spin.lua <<'LUA'
return skiff.plugin{ name = "spin", kind = "controller",
  start = function() skiff.timer(0.2, function() while true do end end) end }
LUA
start_server --plugin-dir myplugins --plugin-settings "greeter.greeting=hi" ||
	bail_out "server did not start"
ok "a broken script in a plugin folder does not stop the server" k get --raw /readyz
expect_contains "skiff plugins list shows it failed, with the reason" "broken.lua:2:" \
	"$SKIFF_BIN" plugins list --kubeconfig "$KUBECONFIG"

k create configmap tom --from-literal=x=1 >/dev/null
k label configmap tom greet=yes >/dev/null
greeting() { [ "$(k get configmap "$1" -o jsonpath='{.data.greeting}')" = "$2" ]; }
if wait_for 20 greeting tom "hi, tom"; then pass "the greeter greets a labelled ConfigMap, with its setting"
else fail "the greeter greets a labelled ConfigMap, with its setting"; fi
k get configmap tom -o jsonpath='{.data.greeting}' >/dev/null
k create configmap jerry >/dev/null
sleep 1
is "$(k get cm jerry -o 'jsonpath={.data.greeting}')" "" "a ConfigMap without the label is left alone"
k patch cm tom --type merge -p '{"data":{"greeting":"bye"}}' >/dev/null
if wait_for 20 greeting tom "hi, tom"; then pass "a changed greeting is put back"
else fail "a changed greeting is put back"; fi
expect_contains "kubectl describe shows the controller's Event" "hi, tom" k describe configmap tom

# the runaway: stopped after its time limit, reported, the server runs on
# the log line docs/plugins.md shows; PATH is the script's path
spin_msg=$(cat <<'EOF'
Lua plugin spin (PATH) stopped: time limit of 1s per callback exceeded in timer 1; the rest of the cluster keeps running
EOF
)
spin_reported() {
	grep -F "${spin_msg%%"(PATH)"*}(" "$E2E_TMP/server.log" | grep -F "spin.lua)${spin_msg#*"(PATH)"}" >/dev/null
}
if wait_for 20 spin_reported; then pass "a runaway Lua script is stopped and reported with its name and the reason"
else fail "a runaway Lua script is stopped and reported with its name and the reason"; diag_file "$E2E_TMP/server.log" 20; fi
ok "the server still answers" k get --raw /readyz
spin_listed() { "$SKIFF_BIN" plugins list --kubeconfig "$KUBECONFIG" | grep spin | grep -q "time limit of 1s"; }
if wait_for 10 spin_listed; then pass "skiff plugins list shows the stopped script as failed, with the reason"
else fail "skiff plugins list shows the stopped script as failed, with the reason"
	"$SKIFF_BIN" plugins list --kubeconfig "$KUBECONFIG" 2>&1 | while IFS= read -r l; do diag "$l"; done; fi
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: spike\n  labels: {greet: "yes"}\n' | k apply -f - >/dev/null
if wait_for 20 greeting spike "hi, spike"; then pass "the other Lua controllers keep working"
else fail "the other Lua controllers keep working"; fi

# --- the Website example (needs CustomResourceDefinitions) -----------------------
if ! k api-resources 2>/dev/null | grep -q '^customresourcedefinitions '; then
	diag "this server does not serve CustomResourceDefinitions yet: Website example skipped"
	stop_server_cleanly
	done_testing
fi
start_hollow 2 --ready-delay 200ms || bail_out "hollow nodes did not start"
ok "the Website CRD is created" k apply -f plugins/examples/website/website-crd.yaml
wait_for 10 k get websites || diag "websites not served after 10 s"
ok "a Website is created" k apply -f plugins/examples/website/website.yaml
owned_by_hello() { [ "$(k get "$1" -o 'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" = "Website/hello" ]; }
for o in deployment/hello service/hello configmap/hello-content; do
	if wait_for 20 owned_by_hello "$o"; then pass "the Website owns $o"
	else fail "the Website owns $o"; fi
done
is "$(k get cm hello-content -o 'jsonpath={.data.index\.html}')" "<h1>Hello from skiff</h1>" "the ConfigMap holds the content"
cond() { k get website hello -o "jsonpath={.status.conditions[?(@.type==\"$1\")].status}"; }
cond_is() { [ "$(cond "$1")" = "$2" ]; }
if wait_for 20 cond_is Reconciled True; then pass "condition Reconciled is True"
else fail "condition Reconciled is True"; k get website hello -o yaml | head -40 | while IFS= read -r l; do diag "$l"; done; fi
if wait_for 30 cond_is Ready True; then pass "condition Ready turns True once its pods run"
else fail "condition Ready turns True once its pods run"; fi
expect_contains "kubectl get websites prints the printer columns" "hello   True    2 " k get websites
k get websites >/dev/null

# drift: edits to owned objects are put back
k scale deployment hello --replicas=5 >/dev/null
replicas_is() { [ "$(k get deployment hello -o 'jsonpath={.spec.replicas}')" = "$1" ]; }
if wait_for 20 replicas_is 2; then pass "a scaled Deployment is put back to the Website's replicas"
else fail "a scaled Deployment is put back to the Website's replicas"; fi
k patch cm hello-content --type merge -p '{"data":{"index.html":"defaced"}}' >/dev/null
content_back() { [ "$(k get cm hello-content -o 'jsonpath={.data.index\.html}')" = "<h1>Hello from skiff</h1>" ]; }
if wait_for 20 content_back; then pass "edited content is put back"
else fail "edited content is put back"; fi
k delete service hello >/dev/null
if wait_for 20 k get service hello; then pass "a deleted Service is made again"
else fail "a deleted Service is made again"; fi
expect_contains "the Website's Events say what was put back" "put back as specified" k describe website hello
k describe website hello >/dev/null

# a change to the Website reaches its objects
k patch website hello --type merge -p '{"spec":{"replicas":3}}' >/dev/null
if wait_for 20 replicas_is 3; then pass "a change of spec.replicas reaches the Deployment"
else fail "a change of spec.replicas reaches the Deployment"; fi
avail_is() { [ "$(k get website hello -o 'jsonpath={.status.availableReplicas}')" = "$1" ]; }
if wait_for 30 avail_is 3; then pass "status.availableReplicas follows"
else fail "status.availableReplicas follows"; fi

# deleting the Website collects what it owned
ok "the Website is deleted" k delete website hello --wait=false
gone() { ! k get "$1" >/dev/null 2>&1; }
if wait_for 30 gone deployment/hello && wait_for 10 gone service/hello && wait_for 10 gone configmap/hello-content; then
	pass "its Deployment, Service and ConfigMap are garbage-collected"
else fail "its Deployment, Service and ConfigMap are garbage-collected"; fi

stop_hollow
stop_server_cleanly
done_testing
