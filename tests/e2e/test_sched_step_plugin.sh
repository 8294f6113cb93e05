#!/bin/bash
# tests/e2e/test_sched_step_plugin.sh - the default scheduler taking steps
# from another plugin (plugins/examples/node-weight), named in its settings
# as "plugin/Step": on hollow nodes, pods go to the node whose
# skiff.dev/weight label is highest (NodeWeight score), stay off a node
# annotated skiff.dev/draining=true (NotDraining filter, whose reason
# `kubectl describe` shows when no node is left), and a step name the
# plugin does not lend is refused with a message naming what it lends.
. "$(dirname "$0")/lib.sh"

# (these commands are the ones docs/plugins.md shows)
start_server --plugin-settings "scheduler-default.filters=all,node-weight/NotDraining;scheduler-default.scores=default,node-weight/NodeWeight:10" ||
	bail_out "server did not start"
start_hollow 3 --node-prefix w- --cpu 8 --ready-delay 100ms || bail_out "hollow nodes did not start"
steps_logged() { grep -q 'scheduler-default: scheduling with 9 filter(s) and 8 score(s)' "$E2E_TMP/server.log"; }
wait_for 10 steps_logged
ok "the scheduler runs the default steps and the plugin's two" steps_logged

k label node w-0 skiff.dev/weight=1 >/dev/null
k label node w-1 skiff.dev/weight=50 >/dev/null
k label node w-2 skiff.dev/weight=5 >/dev/null
k create deployment web --image=busybox --replicas=4 >/dev/null

nodes_of() { k get pods -l "app=$1" -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}'; }
all_running() {
	[ "$(k get pods -l "app=$1" -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' |
		grep -c '^Running$')" -eq "$2" ]
}
wait_for 30 all_running web 4
ok "the four pods run" all_running web 4
is "$(nodes_of web | sort -u | tr '\n' ' ')" "w-1 " \
	"NodeWeight puts every pod on the heaviest node (weight 50), despite LeastAllocated"

# draining the heavy node: new pods go to the next heaviest
k annotate node w-1 skiff.dev/draining=true >/dev/null
k create deployment api --image=busybox --replicas=3 >/dev/null
wait_for 30 all_running api 3
ok "pods created after the drain run" all_running api 3
is "$(nodes_of api | sort -u | tr '\n' ' ')" "w-2 " \
	"NotDraining keeps them off the draining node; NodeWeight picks weight 5 over 1"
is "$(nodes_of web | sort -u | tr '\n' ' ')" "w-1 " "pods already there stay"

# no node left: the filter's reason is in the pod's events
k annotate node w-0 w-2 skiff.dev/draining=true >/dev/null
k run stuck --image=busybox >/dev/null
has_reason() { k describe pod stuck | grep -q 'node(s) were draining'; }
wait_for 20 has_reason
like "$(k describe pod stuck)" "0/3 nodes are available: 3 node(s) were draining." \
	"with every node draining, kubectl describe says why the pod is Pending"
is "$(jp pod/stuck '{.spec.nodeName}')" "" "and it is not bound"
k annotate node w-0 skiff.dev/draining- >/dev/null
bound_to() { [ "$(jp pod/stuck '{.spec.nodeName}')" = "$1" ]; }
wait_for 30 bound_to w-0
ok "once a node stops draining, the pending pod lands there" bound_to w-0
stop_hollow
stop_server_cleanly

# a step the plugin does not lend: the scheduler refuses its settings
start_server --plugin-settings "scheduler-default.scores=default,node-weight/Heaviest:1" ||
	bail_out "server did not start"
refused() { grep -q 'scores: "node-weight/Heaviest": plugin node-weight has no step Heaviest (its steps: NodeWeight, NotDraining)' "$E2E_TMP/server.log"; }
wait_for 10 refused
ok "an unknown step is refused with the steps the plugin lends" refused
stop_server_cleanly
# a plugin that lends no steps
start_server --plugin-settings "scheduler-default.filters=all,storage-sqlite/Anything" ||
	bail_out "server did not start"
refused2() { grep -q 'filters: "storage-sqlite/Anything": plugin storage-sqlite lends no scheduler steps' "$E2E_TMP/server.log"; }
wait_for 10 refused2
ok "a plugin that is not a step plugin is refused by name" refused2
stop_server_cleanly
done_testing
