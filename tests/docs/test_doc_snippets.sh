#!/bin/bash
# tests/docs/test_doc_snippets.sh - every code block in docs/*.md preceded
# by a line `<!-- tested-by: FILE -->` must be what FILE (a source or a
# test the build runs) really contains, so the docs cannot drift from
# the code: a C or Lua block appears in FILE line for line (indentation
# aside); in a shell block,
# each line appears in FILE, where a test writes `kubectl` as `k` and
# `skiff server` as `start_server` (tests/e2e/lib.sh). One TAP line a block.
src=${SKIFF_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 is not installed"; exit 0; }
exec python3 - "$src" <<'PY'
import os, re, sys
src = sys.argv[1]
marker = re.compile(r'^<!-- tested-by: (\S+) -->$')
results = []
for doc in sorted(os.listdir(os.path.join(src, 'docs'))):
    if not doc.endswith('.md'):
        continue
    lines = open(os.path.join(src, 'docs', doc), encoding='utf-8').read().split('\n')
    i = 0
    while i < len(lines):
        m = marker.match(lines[i])
        if not m:
            i += 1
            continue
        start = i + 1
        if start >= len(lines) or not lines[start].startswith('```'):
            results.append((False, f'{doc}:{i+1}: marker not followed by a code block', None))
            i += 1
            continue
        lang = lines[start][3:].strip()
        end = start + 1
        while end < len(lines) and not lines[end].startswith('```'):
            end += 1
        block = lines[start + 1:end]
        target = os.path.join(src, m.group(1))
        what = f'docs/{doc}:{start+1} ({lang}) is in {m.group(1)}'
        try:
            text = open(target, encoding='utf-8').read()
        except OSError as e:
            results.append((False, what, str(e)))
            i = end + 1
            continue
        if lang in ('sh', 'bash', 'console'):
            missing = []
            for l in block:
                l = l.strip()
                if not l or l.startswith('#'):
                    continue
                alt = re.sub(r'^kubectl ', 'k ', l)
                alt = re.sub(r'^skiff server ', 'start_server ', alt)
                if l not in text and alt not in text:
                    missing.append(l)
            results.append((not missing, what, 'not found: ' + '; '.join(missing) if missing else None))
        else:
            # verbatim but for indentation: a doc shows a piece of a
            # function at the margin
            norm = lambda ls: '\n' + '\n'.join(l.strip() for l in ls) + '\n'
            found = norm(block) in norm(text.split('\n'))
            results.append((found, what, 'the block is not in the file as it is'))
        i = end + 1
print(f'1..{len(results)}')
for n, (ok, what, why) in enumerate(results, 1):
    print(f'{"ok" if ok else "not ok"} {n} - {what}')
    if not ok and why:
        print(f'# {why}')
PY
