#!/bin/bash
# tests/e2e/test_sched_lua_ffi.sh - the libffi worked example end to end: a
# Lua scheduler plugin (plugins/examples/weight-score) lends a score step
# whose per-node work is node-weight's C function label_weight, called
# through skiff.ffi; on hollow nodes, kubectl shows the pods on the node
# the C function weighs highest, and the plugin list shows both plugins.
. "$(dirname "$0")/lib.sh"

ex="$SKIFF_SRC_DIR/plugins/examples/weight-score"
# (docs/plugins.md shows these commands)
start_server --plugin-dir "$ex" --plugin-settings "scheduler-default.scores=default,weight-score/LabelWeight:10" ||
	bail_out "server did not start"
# a Lua host without scheduler steps refuses the plugin: nothing to test yet
if grep -q 'Lua scheduler steps are not supported yet' "$E2E_TMP/server.log"; then
	skip_all "this skiff's Lua host has no scheduler steps (core/lua/lua_sched.c)"
fi
start_hollow 3 --node-prefix lw- --cpu 8 --ready-delay 100ms || bail_out "hollow nodes did not start"
steps_logged() { grep -q 'scheduler-default: scheduling with 8 filter(s) and 8 score(s)' "$E2E_TMP/server.log"; }
wait_for 10 steps_logged
ok "the scheduler takes the Lua plugin's step" steps_logged

k label node lw-0 skiff.dev/weight=3 >/dev/null
k label node lw-1 skiff.dev/weight=7 >/dev/null
k label node lw-2 skiff.dev/weight=60 >/dev/null
k create deployment heavy --image=busybox --replicas=4 >/dev/null
running() {
	[ "$(k get pods -l app=heavy -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' |
		grep -c '^Running$')" -eq 4 ]
}
wait_for 30 running
ok "the four pods run" running
is "$(k get pods -l app=heavy -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u | tr '\n' ' ')" \
	"lw-2 " "every pod is on the node label_weight (C, through skiff.ffi) weighs highest"

# moving the weight moves new pods
k label node lw-2 skiff.dev/weight=0 --overwrite >/dev/null
k label node lw-0 skiff.dev/weight=90 --overwrite >/dev/null
k create deployment next --image=busybox --replicas=2 >/dev/null
on_lw0() {
	[ "$(k get pods -l app=next -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u | tr '\n' ' ')" = "lw-0 " ]
}
wait_for 30 on_lw0
ok "after the labels change, new pods follow the new weights" on_lw0

list=$("$SKIFF_BIN" plugins list --data-dir "$E2E_DATA")
like "$(echo "$list" | awk '$1 == "weight-score"')" "scheduler" "plugins list: the Lua step plugin"
like "$(echo "$list" | awk '$1 == "node-weight"')" "loaded by name for another plugin" \
	"plugins list: node-weight, loaded for skiff.ffi"
unlike "$(cat "$E2E_TMP/server.log")" "step LabelWeight: score" "no step call failed"
stop_hollow
stop_server_cleanly
done_testing
