#!/bin/bash
# tests/e2e/test_lua_sched_step.sh - scheduler steps written in Lua
# (plugins/examples/team-nodes/team-nodes.lua) taken by the default
# scheduler from a plugin folder, named "team-nodes/Step" in its settings:
# on hollow nodes, a team's pods prefer its nodes (TeamFirst score), a
# node dedicated to a team refuses other pods with the filter's reason in
# `kubectl describe`, and a step that runs past its time limit stops the
# plugin without stopping scheduling; a step sees nodes as the nodes view
# keeps them (whole with trim-nodes=false). The commands are those of
# docs/plugins.md.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$E2E_TMP" || bail_out "no temporary directory"
ln -s "$SKIFF_SRC_DIR/plugins" plugins
mkdir myplugins
cp plugins/examples/team-nodes/team-nodes.lua myplugins/
start_server --plugin-dir myplugins --plugin-settings "scheduler-default.filters=all,team-nodes/TeamOnly;scheduler-default.scores=default,team-nodes/TeamFirst:10" ||
	bail_out "server did not start"
start_hollow 3 --node-prefix t- --cpu 8 --ready-delay 100ms || bail_out "hollow nodes did not start"
steps_logged() { grep -q 'scheduler-default: scheduling with 9 filter(s) and 8 score(s)' "$E2E_TMP/server.log"; }
wait_for 10 steps_logged
ok "the scheduler runs the default steps and the two Lua ones" steps_logged

k label node t-1 example.skiff.io/team=blue >/dev/null
k label node t-2 example.skiff.io/dedicated=red >/dev/null
k create deployment blue --image=busybox --replicas=3 >/dev/null
k patch deployment blue -p '{"spec":{"template":{"metadata":{"labels":{"team":"blue"}}}}}' >/dev/null

nodes_of() { k get pods -l "$1" -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}'; }
running() {
	[ "$(k get pods -l "$1" -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' |
		grep -c '^Running$')" -eq "$2" ]
}
wait_for 30 running team=blue 3
ok "the blue pods run" running team=blue 3
is "$(nodes_of team=blue | sort -u | tr '\n' ' ')" "t-1 " "TeamFirst puts the team's pods on its node"

k create deployment other --image=busybox --replicas=6 >/dev/null
wait_for 30 running app=other 6
ok "pods of no team run" running app=other 6
unlike "$(nodes_of app=other | sort -u | tr '\n' ' ')" "t-2" "TeamOnly keeps them off the node dedicated to red"

# no node left for a pod: the Lua filter's reason is in its events
k label node t-0 t-1 example.skiff.io/dedicated=red >/dev/null
k run stuck --image=busybox >/dev/null
has_reason() { k describe pod stuck | grep -q 'node(s) dedicated to another team'; }
wait_for 20 has_reason
like "$(k describe pod stuck)" "0/3 nodes are available: 3 node(s) dedicated to another team." \
	"kubectl describe shows the Lua filter's reason"
stop_hollow
stop_server_cleanly

# a runaway step: the plugin is stopped, pods are still scheduled
cat >myplugins/team-nodes.lua <<'LUA'
return skiff.plugin{ name = "team-nodes", kind = "scheduler",
  steps = { { name = "TeamFirst", score = function() while true do end end } } }
LUA
start_server --plugin-dir myplugins --plugin-settings "scheduler-default.scores=default,team-nodes/TeamFirst:10;team-nodes.time-limit=100ms" ||
	bail_out "server did not start"
start_hollow 2 --node-prefix r- --ready-delay 100ms || bail_out "hollow nodes did not start"
k run one --image=busybox >/dev/null
bound() { [ -n "$(jp pod/one '{.spec.nodeName}')" ]; }
wait_for 30 bound
ok "a pod is scheduled although the Lua step ran away" bound
like "$(cat "$E2E_TMP/server.log")" "Lua plugin team-nodes" "the log names the plugin"
like "$(grep 'Lua plugin team-nodes' "$E2E_TMP/server.log")" "time limit of 100ms per callback exceeded in the score of step TeamFirst" \
	"and the reason"
stop_hollow
stop_server_cleanly

# what a step sees of a node: the nodes view (no conditions) by default,
# the whole Node with the scheduler's trim-nodes=false
cat >myplugins/ready-nodes.lua <<'LUA'
return skiff.plugin{ name = "ready-nodes", kind = "scheduler",
  steps = { { name = "ReadyOnly", filter = function(pod, node)
    for _, c in ipairs((node.object.status or {}).conditions or {}) do
      if c.type == "Ready" and c.status == "True" then return true end
    end
    return false, "node(s) without a Ready condition in view"
  end } } }
LUA
rm -f myplugins/team-nodes.lua
for trim in true false; do
	start_server --plugin-dir myplugins --plugin-settings "scheduler-default.filters=all,ready-nodes/ReadyOnly;scheduler-default.trim-nodes=$trim" ||
		bail_out "server did not start"
	# only this section's nodes (the agents before left theirs behind)
	k delete nodes --all >/dev/null
	start_hollow 2 --node-prefix v- --ready-delay 100ms || bail_out "hollow nodes did not start"
	k delete pod seen --ignore-not-found --wait=false >/dev/null
	k run seen --image=busybox >/dev/null
	if [ $trim = true ]; then
		why_pending() {
			k get events --field-selector involvedObject.name=seen,reason=FailedScheduling \
				-o 'jsonpath={.items[-1:].message}'
		}
		no_conditions() { why_pending | grep -q 'without a Ready condition in view'; }
		wait_for 30 no_conditions
		like "$(why_pending)" "0/2 nodes are available: 2 node(s) without a Ready condition in view." \
			"a step sees the nodes view: no status.conditions"
	else
		seen_bound() { [ -n "$(jp pod/seen '{.spec.nodeName}')" ]; }
		wait_for 30 seen_bound
		ok "with trim-nodes=false it sees whole Nodes, conditions too" seen_bound
	fi
	stop_hollow
	stop_server_cleanly
done
done_testing
