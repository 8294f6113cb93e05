#!/bin/bash
# tests/e2e/test_lua_admission.sh - an admission plugin written in Lua
# (plugins/examples/require-team/require-team.lua) in the API server's
# admission chain, through the real kubectl: its mutate hook labels a
# Deployment from its namespace (with a warning kubectl prints), its
# validate hook refuses one without a team where the namespace requires it
# (403 naming the plugin), other kinds are not looked at; a hook that runs
# past its time limit stops the plugin and, with failure-policy Fail,
# requests it would see are refused while other writes go on. The
# commands are those of docs/plugins.md.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$E2E_TMP" || bail_out "no temporary directory"
ln -s "$SKIFF_SRC_DIR/plugins" plugins
mkdir myplugins
cp plugins/examples/require-team/require-team.lua myplugins/
start_server --plugin-dir myplugins --enable-admission-plugins require-team.lua ||
	bail_out "server did not start"

k create namespace blue >/dev/null
k label namespace blue example.skiff.io/team=blue >/dev/null
k create namespace strict >/dev/null
k label namespace strict example.skiff.io/team-required=true >/dev/null

_run k create deployment web --image=nginx -n blue
is "$?" 0 "a Deployment in a namespace with a team is created"
like "$ERR" "Warning: label team=blue added from namespace blue" "kubectl prints the plugin's warning"
is "$(k get deployment web -n blue -o jsonpath='{.metadata.labels.team}')" "blue" \
	"mutate gave it the namespace's team"

expect_fail_with "a Deployment without a team where one is required is refused" \
	'admission plugin "require-team" denied the request: metadata.labels.team is required in namespace strict' \
	k create deployment web --image=nginx -n strict
like "$ERR" "deployments.apps \"web\" is forbidden" "with 403 Forbidden"
ok "one with a team label is admitted" k apply -n strict -f - <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {team: red}}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, image: nginx}]}
YAML
expect_fail_with "an update removing the label is refused" "metadata.labels.team is required" \
	k label deployment api team- -n strict
ok "other kinds are not looked at" k create configmap cfg -n strict
stop_server_cleanly

# a runaway hook: the plugin is stopped; with failure-policy Fail what it
# would see is refused, everything else goes on
cat >myplugins/require-team.lua <<'LUA'
return skiff.plugin{ name = "require-team", kind = "admission", kinds = { "Deployment" },
  validate = function(req) while true do end end }
LUA
start_server --plugin-dir myplugins --enable-admission-plugins require-team.lua \
	--admission-plugin-settings "require-team.time-limit=100ms" ||
	bail_out "server did not start"
expect_fail_with "a request the runaway hook sees is refused" 'the Lua plugin require-team failed: time limit of 100ms exceeded' \
	k create deployment web --image=nginx
stopped() { grep -q "Lua plugin require-team (.*) stopped: time limit of 100ms per callback exceeded in validate" "$E2E_TMP/server.log"; }
ok "the plugin is stopped and reported" stopped
expect_fail_with "later ones are refused, saying the plugin is stopped" "the Lua plugin require-team is stopped" \
	k create deployment web2 --image=nginx
ok "other writes go on" k create configmap after
stop_server_cleanly
start_server --plugin-dir myplugins --enable-admission-plugins require-team.lua \
	--admission-plugin-settings "require-team.time-limit=100ms;require-team.failure-policy=Ignore" ||
	bail_out "server did not start"
ok "with failure-policy Ignore the request goes through" k create deployment web --image=nginx
stop_server_cleanly
done_testing
