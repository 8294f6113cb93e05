#!/bin/bash
# tests/sdk/test_sdk_contract.sh - the SDK is the whole contract: every
# header under sdk/include/skiff compiles alone (C, and C++ when g++ is
# there), every header is installed by `make install` and included by
# skiff/skiff.h, and no plugin includes a core header. Each checker is also shown to catch a planted
# fault, so neither can pass by checking nothing.
set -u
: "${SKIFF_SRC_DIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SKIFF_BUILD_DIR:=$SKIFF_SRC_DIR}"
src=$SKIFF_SRC_DIR
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-sdk.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
n=0
result() { # result RC DESC [OUTPUT]
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else
		echo "not ok $n - $2"
		[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/#   /'
	fi
}

out=$("$src/scripts/check-sdk-headers" 2>&1)
result $? "every header in sdk/include/skiff compiles alone" "$out"
case "$out" in *"C only"*) echo "# $out" ;; esac

# a header that leans on another one without including it must be caught
mkdir -p "$tmp/inc/skiff"
printf '#ifndef B_H\n#define B_H\nstatic inline size_t skiff_bad(json_t *j) { return json_object_size(j); }\n#endif\n' \
	>"$tmp/inc/skiff/bad.h"
out=$("$src/scripts/check-sdk-headers" "$tmp/inc" 2>&1)
rc=$?
[ $rc != 0 ] && printf '%s' "$out" | grep -q 'skiff/bad.h: does not compile alone as C'
result $? "the header check names a header that does not compile alone" "$out"

out=$("$src/scripts/check-plugin-includes" 2>&1)
result $? "no file under plugins/ includes a core header" "$out"

# a plugin including a core header, directly and by a relative path
mkdir -p "$tmp/tree/plugins/p" "$tmp/tree/core/util" "$tmp/tree/sdk/include/skiff"
: >"$tmp/tree/core/util/log.h"
: >"$tmp/tree/plugins/p/own.h"
printf '#include <skiff/x.h>\n#include "own.h"\n#include "util/log.h"\n#include "../../core/util/log.h"\n' \
	>"$tmp/tree/plugins/p/p.c"
: >"$tmp/tree/sdk/include/skiff/x.h"
out=$("$src/scripts/check-plugin-includes" "$tmp/tree" 2>&1)
rc=$?
[ $rc != 0 ] && printf '%s\n' "$out" | grep -q '^plugins/p/p.c:3: includes util/log.h, a core header' &&
	printf '%s\n' "$out" | grep -q '^plugins/p/p.c:4: includes ../../core/util/log.h' &&
	! printf '%s\n' "$out" | grep -q 'p.c:[12]:'
result $? "the include check names the file and line of each core include, and only those" "$out"

# every SDK header is installed (the list in the makefiles is not forgotten)
missing=
listed=$(cd "$SKIFF_BUILD_DIR" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s -f Makefile -f - print-sdk-headers 2>/dev/null <<'MK'
print-sdk-headers:
	@echo $(skiffsdk_HEADERS)
MK
)
for h in "$src"/sdk/include/skiff/*.h; do
	case " $listed " in *" sdk/include/skiff/$(basename "$h") "*) ;; *) missing="$missing $(basename "$h")" ;; esac
done
[ -n "$listed" ] && [ -z "$missing" ]
result $? "make install installs every header of sdk/include/skiff" "not in skiffsdk_HEADERS:$missing"
# skiff.h is "everything in one include": it includes every other header
missing=
for h in "$src"/sdk/include/skiff/*.h; do
	b=$(basename "$h")
	[ "$b" = skiff.h ] && continue
	grep -q "^#include <skiff/$b>" "$src/sdk/include/skiff/skiff.h" || missing="$missing $b"
done
[ -z "$missing" ]
result $? "skiff/skiff.h includes every other SDK header" "not included:$missing"
echo "1..$n"
