#!/bin/bash
# tests/e2e/test_sdk_install.sh - the installed SDK is enough to build a
# plugin: `make install DESTDIR=` into a temporary root puts every SDK
# header, skiff-sdk.pc (whose paths are where things were installed) and
# the Lua SDK folder in place. Then the walk of docs/plugins.md "A C
# controller built out of tree" runs as written: its C pieces are exactly
# plugins/examples/pods-per-node/pods_per_node.c, its `cc $(pkg-config ...)`
# line builds them against the installed SDK alone, and a server started
# with the plugin folder runs the controller: `skiff plugins list` shows it
# started and kubectl reads its ConfigMap, per node once a node takes the pods.
. "$(dirname "$0")/lib.sh"

command -v pkg-config >/dev/null 2>&1 || skip_all "no pkg-config"
command -v cc >/dev/null 2>&1 || skip_all "no cc"
[ -f "$SKIFF_BUILD_DIR/Makefile" ] || skip_all "no configured build tree at $SKIFF_BUILD_DIR"
DOC=$SKIFF_SRC_DIR/docs/plugins.md
EXAMPLE=$SKIFF_SRC_DIR/plugins/examples/pods-per-node/pods_per_node.c

# --- make install into a temporary root ------------------------------------------
root=$E2E_TMP/root
ok "make install DESTDIR=<temporary root> succeeds" \
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s -C "$SKIFF_BUILD_DIR" \
	install DESTDIR="$root"
pc=$(find "$root" -name skiff-sdk.pc | head -1)
[ -n "$pc" ] || bail_out "make install put no skiff-sdk.pc under $root"
prefix=$(sed -n 's/^prefix=//p' "$pc")
pass "skiff-sdk.pc is installed ($pc)"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$root

missing=
for h in "$SKIFF_SRC_DIR"/sdk/include/skiff/*.h; do
	cmp -s "$h" "$root$prefix/include/skiff/$(basename "$h")" || missing="$missing $(basename "$h")"
done
is "$missing" "" "every header of sdk/include/skiff is installed under \$prefix/include/skiff"
like "$(pkg-config --cflags skiff-sdk)" "-I$root$prefix/include" \
	"pkg-config --cflags skiff-sdk points at the installed headers"
plugindir=$(pkg-config --variable=plugindir skiff-sdk)
ok "the pc file's plugindir is where the built-in plugins were installed" \
	test -f "$plugindir/storage-sqlite.so"
luadir=$(pkg-config --variable=luadir skiff-sdk)
if [ -d "$SKIFF_SRC_DIR/sdk/lua" ]; then
	missing=
	for f in $(cd "$SKIFF_SRC_DIR/sdk/lua" && find . -type f); do
		cmp -s "$SKIFF_SRC_DIR/sdk/lua/$f" "$luadir/$f" || missing="$missing $f"
	done
	is "$missing" "" "every file of sdk/lua is installed under the pc file's luadir"
else
	pass "# SKIP no sdk/lua in this tree yet, nothing to install"
fi

# --- the walk of docs/plugins.md -----------------------------------------------
# doc_blocks TAG: the fenced blocks following "<!-- TAG -->" lines, in order,
# each ended by a line "@@END".
doc_blocks() {
	awk -v tag="<!-- $1 -->" '
		$0 == tag { want = 1; next }
		want && /^```/ { want = 0; inside = 1; next }
		inside && /^```/ { inside = 0; print "@@END"; next }
		inside { print }' "$DOC"
}
doc_blocks "example: pods_per_node.c" | grep -v '^@@END$' >"$E2E_TMP/doc.c"
if cmp -s "$E2E_TMP/doc.c" "$EXAMPLE"; then
	pass "the C pieces of the walk are exactly $EXAMPLE"
else
	fail "the C pieces of the walk are exactly $EXAMPLE"
	diag "$(diff "$E2E_TMP/doc.c" "$EXAMPLE" | head -20)"
fi
mapfile -t SH < <(doc_blocks "walk: sh")
EXPECTED=$(doc_blocks "walk: output" | grep -v '^@@END$')
[ ${#SH[@]} -gt 4 ] && [ -n "$EXPECTED" ] || bail_out "no walk found in $DOC"

export HOME=$E2E_TMP/home
mkdir -p "$HOME/.local/share"
# `skiff server` of the walk is the test's server (its own port and data
# directory, reachable where the walk's later commands look for it)
skiff() {
	if [ "$1" = server ]; then
		shift
		start_server "$@" || return 1
		ln -sfn "$E2E_DATA" "$HOME/.local/share/skiff"
	else
		"$SKIFF_BIN" "$@"
	fi
}
kubectl() { k "$@"; }

# run_block N: the commands of the walk's Nth shell block; the output of
# the last one in LAST
block=0
run_block() {
	local want=$1 line rc
	block=0
	for line in "${SH[@]}"; do
		if [ "$line" = "@@END" ]; then
			block=$((block + 1))
			continue
		fi
		[ $block = "$want" ] || continue
		[ -n "$WAIT_LAST" ] && [ "$line" = "$WAIT_LAST" ] && continue
		# in this shell, not a subshell: `cd` and the server must stay
		eval "$line" >"$E2E_TMP/walk.out" 2>"$E2E_TMP/walk.err"
		rc=$?
		LAST=$(cat "$E2E_TMP/walk.out")
		if [ $rc != 0 ]; then
			fail "walk: $line"
			diag "exit status $rc: $(cat "$E2E_TMP/walk.err")"
			return 1
		fi
	done
	pass "walk: block $((want + 1)) of docs/plugins.md runs"
}
WAIT_LAST=
cd "$E2E_TMP" || bail_out "cd"
run_block 0
cp "$E2E_TMP/doc.c" pods_per_node.c
run_block 1 || bail_out "the plugin did not build or the server did not start"
ok "the plugin was built from the docs' C pieces" test -s pods-per-node.so

run_block 2
listed=$(printf '%s\n' "$LAST" | awk '$1 == "pods-per-node"')
like "$(printf '%s\n' "$LAST" | head -1)" "NAME" "skiff plugins list prints its header"
is "$(echo "$listed" | awk '{print $2, $3, $4, $5, $6}')" \
	"controller 1.0.0 plugin-dir started $HOME/skiff-plugins/pods-per-node.so" \
	"skiff plugins list: pods-per-node is a started controller 1.0.0 from the plugin folder"

# the last command of block 4 is polled until it prints the expected text
mapfile -t B3 < <(printf '%s\n' "${SH[@]}" | awk '/^@@END$/ { b++; next } b == 3')
WAIT_LAST=${B3[${#B3[@]} - 1]}
run_block 3
summary() { eval "$WAIT_LAST"; }
summary_is() { [ "$(summary 2>/dev/null)" = "$1" ]; }
if wait_for 15 summary_is "$EXPECTED"; then
	pass "walk: '$WAIT_LAST' prints $EXPECTED"
else
	fail "walk: '$WAIT_LAST' prints $EXPECTED"
	diag "got: $(summary 2>&1)"
	diag_file "$E2E_TMP/server.log" 20
fi

# --- per node, once a node takes the pods ---------------------------------------
start_hollow 1 || bail_out "no hollow node"
node=$(k get nodes -o 'jsonpath={.items[0].metadata.name}')
if wait_for 15 summary_is "{\"$node\":\"2\"}"; then
	pass "the summary counts the pods on the node once they are scheduled"
else
	fail "the summary counts the pods on the node once they are scheduled"
	diag "got: $(summary 2>&1)"
fi
k delete pod web-2 --wait=false >/dev/null 2>&1
if wait_for 15 summary_is "{\"$node\":\"1\"}"; then
	pass "a deleted pod leaves the count"
else
	fail "a deleted pod leaves the count"
	diag "got: $(summary 2>&1)"
fi
is "$(jp configmap/pods-per-node '{.metadata.labels.app\.kubernetes\.io/managed-by}' -n kube-system)" \
	"pods-per-node" "the ConfigMap says which controller manages it"

stop_server_cleanly
done_testing
