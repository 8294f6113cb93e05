#!/bin/bash
# tests/e2e/test_plugins.sh - plugin folders and failure isolation: bad
# plugins dropped into a --plugin-dir next to a good one (wrong ABI, no
# descriptor, an unresolved SDK symbol, not a shared object, init and
# start failing, a Lua callback that never returns, a kind nothing runs
# yet, a name not found) are each
# reported with its name and reason, listed as failed by `skiff plugins
# list`, offline and from the running server, while the server starts,
# kubectl keeps working and the good plugin runs. The list endpoint is
# for cluster admins only and read-only.
. "$(dirname "$0")/lib.sh"

built=$SKIFF_BUILD_DIR/tests/unit/plugins/.libs
for f in counting_controller bad_abi no_symbol missing_sdk_symbol init_fails start_fails runtime_stub; do
	[ -f "$built/$f.so" ] || skip_all "test plugin $f.so not built (make check builds it)"
done
dir=$E2E_TMP/plugins
more=$E2E_TMP/more-plugins
mkdir -p "$dir" "$more"
for f in counting_controller bad_abi no_symbol missing_sdk_symbol init_fails start_fails; do
	cp "$built/$f.so" "$dir/"
done
cp "$built/runtime_stub.so" "$more/"
# an admission plugin in a folder runs only when named; this one is not
adm=$SKIFF_BUILD_DIR/plugins/.libs/admission-require-labels.so
[ -f "$adm" ] && cp "$adm" "$more/"
echo "not a shared object" >"$dir/garbage.so"
# a Lua controller whose timer callback never returns: stopped by its time limit
cat >"$dir/spin.lua" <<'LUA'
return skiff.plugin{ name = "spin", kind = "controller",
  start = function() skiff.timer(0.2, function() while true do end end) end }
LUA
echo "ignored: not a plugin file name" >"$dir/README.txt"

# row NAME: the plugin's line of the list in OUT; field N of it
row() { printf '%s\n' "$OUT" | awk -v n="$1" '$1 == n'; }
field() { row "$1" | awk -v f="$2" '{print $f}'; }

# --- offline: what would load -------------------------------------------------------
ok "skiff plugins list --plugin-dir (offline) succeeds" \
	"$SKIFF_BIN" plugins list --plugin-dir "$dir:$more"
is "$(field counting-controller 5)" would-load "offline: the good plugin would load"
is "$(field runtime-stub 5)" would-load "offline: a second folder given with ':' is read too"
is "$(field bad_abi 5)" failed "offline: the wrong-ABI plugin is failed"
like "$(row bad_abi)" "was built for SDK ABI 44, this skiff speaks ABI 4" "... with both ABI versions"
like "$(row missing_sdk_symbol)" "undefined symbol: skiff_function_from_the_future" \
	"offline: an unresolved SDK symbol is named"
is "$(field scheduler-default 5)" available "offline: built-in plugins are available (load when named)"
is "$(field init-fails 5)" would-load "offline: init is not run, so init-fails would load"
expect_fail_with "offline: a folder that does not exist is an error" "--plugin-dir $E2E_TMP/nope" \
	"$SKIFF_BIN" plugins list --plugin-dir "$E2E_TMP/nope"

# --- a server with the bad ones ---------------------------------------------------
start_server --plugin-dir "$dir" --plugin-dir "$more" --plugins no-such-plugin \
	--plugin-settings "counting-controller.marker=good;spin.time-limit=100ms" ||
	bail_out "the server did not start with bad plugins in its plugin folder"
pass "the server starts with bad plugins in its plugin folder"
ok "kubectl works: create a ConfigMap" k create configmap still-here --from-literal=a=b
expect_output "kubectl works: read it back" b k get configmap still-here -o 'jsonpath={.data.a}'
ok "the good plugin runs (its ConfigMap started-good-1 appears)" \
	wait_for 15 k get configmap started-good-1
ok "the built-in controllers run (a Deployment gets its ReplicaSet)" mk_deploy web default nginx 1
rs_exists() { [ -n "$(k get rs -l app=web -o name 2>/dev/null)" ]; }
ok "... the ReplicaSet appears" wait_for 15 rs_exists

spin_failed() {
	_run "$SKIFF_BIN" plugins list --data-dir "$E2E_DATA"
	[ "$(field spin 5)" = failed ]
}
wait_for 15 spin_failed
_run "$SKIFF_BIN" plugins list --data-dir "$E2E_DATA"
like "$(row spin)" "stopped: time limit of 100ms per callback exceeded in timer" \
	"list: a Lua controller stopped by its time limit is failed with the reason"
is "$(field counting-controller 5)" started "list: the good plugin is started"
is "$(field counting-controller 4)" plugin-dir "list: ... from the plugin folder"
is "$(field counting-controller 6)" "$dir/counting_controller.so" "list: ... with its path"
is "$(field bad_abi 5)" failed "list: the wrong-ABI plugin is failed"
like "$(row bad_abi)" "was built for SDK ABI 44, this skiff speaks ABI 4; rebuild it against this SDK" \
	"list: ... with the reason"
like "$(row no_symbol)" "does not export the descriptor symbol \"skiff_plugin\"" \
	"list: a .so without the descriptor is failed with the reason"
like "$(row missing_sdk_symbol)" "undefined symbol: skiff_function_from_the_future" \
	"list: a plugin needing a missing SDK symbol is failed with the reason"
like "$(row garbage)" "cannot load plugin garbage.so" "list: a file that is not a shared object is failed"
is "$(field init-fails 5)" failed "list: a plugin whose init fails is failed"
like "$(row init-fails)" "init failed: input/output error" "list: ... with the reason"
is "$(field start-fails 5)" failed "list: a plugin whose start fails is failed"
like "$(row start-fails)" "start failed: not supported" "list: ... with the reason"
is "$(field runtime-stub 5)" loaded "list: a runtime plugin is loaded"
like "$(row runtime-stub)" "nothing in this server runs runtime plugins yet" "list: ... and says nothing runs it"
like "$(row no-such-plugin)" "plugin no-such-plugin not found" "list: a --plugins name not found is failed"
is "$(field storage-sqlite 5)" started "list: the store plugin is started"
is "$(field scheduler-default 4)" built-in "list: the scheduler is built-in"
unlike "$OUT" "README" "list: files that are not .so or .lua are ignored"
is "$(field NamespaceLifecycle 2) $(field NamespaceLifecycle 4) $(field NamespaceLifecycle 5)" \
	"admission built-in started" "list: the admission chain's built-in modules are listed"
if [ -f "$adm" ]; then
	like "$(row admission-require-labels)" "admission plugins run when named by --enable-admission-plugins" \
		"list: an admission plugin only in a folder is loaded, out of the chain, and says why"
fi
log=$(cat "$E2E_TMP/server.log")
# the message docs/plugins.md shows, with NAME and PATH filled in
abi_msg=$(cat <<'EOF'
plugin NAME (PATH) was built for SDK ABI 44, this skiff speaks ABI 4; rebuild it against this SDK
EOF
)
abi_msg=${abi_msg/PATH/$dir/bad_abi.so}
abi_msg=${abi_msg/NAME/bad_abi.so}
like "$log" "$abi_msg" "the server's log names the bad plugin and the reason"

expect_contains "--output json is the server's document" '"kind": "PluginList"' \
	"$SKIFF_BIN" plugins list --data-dir "$E2E_DATA" --output json
expect_contains "the admin reads /skiff/v1/plugins through kubectl" '"name":"counting-controller"' \
	k get --raw /skiff/v1/plugins
expect_fail_with "a user without nonResourceURLs get on it is refused" "Forbidden" \
	k get --raw /skiff/v1/plugins --as alice
echo '{}' >"$E2E_TMP/empty.json"
expect_fail_with "the list is read-only (POST is refused)" "MethodNotAllowed" \
	k create --raw /skiff/v1/plugins -f "$E2E_TMP/empty.json"

stop_server_cleanly
done_testing
