#!/bin/bash
# tests/e2e/test_event_ttl.sh - Events expire a set time after their last
# write (skiff server --event-ttl, as kube-apiserver's): an Event left alone
# is deleted once the TTL has passed, watchers see it go, an Event written
# again later lives on, and other kinds never expire. A malformed TTL, or
# one under a millisecond, is refused at start.
. "$(dirname "$0")/lib.sh"

out=$("$SKIFF_BIN" server --data-dir "$E2E_TMP/bad" --event-ttl 10 2>&1)
rc=$?
is "$rc" 2 "--event-ttl without a unit is refused (exit 2)"
like "$out" "--event-ttl must be a duration" "with a message saying what is expected"
out=$("$SKIFF_BIN" server --data-dir "$E2E_TMP/bad" --event-ttl 500us 2>&1)
rc=$?
is "$rc" 2 "a TTL under a millisecond is refused rather than read as 0 (never)"

start_server --event-ttl 6s || bail_out "server did not start"
event() { # event NAME: a core/v1 Event about the default ServiceAccount
	cat <<EOT
apiVersion: v1
kind: Event
metadata:
  name: $1
  namespace: default
involvedObject:
  kind: ServiceAccount
  name: default
  namespace: default
reason: Testing
message: event $1
type: Normal
EOT
}
event old | k create -f - >/dev/null
event kept | k create -f - >/dev/null
mk_cm keep-me default >/dev/null
ok "the Events exist" k get event old kept
k get events --watch-only -o name >"$E2E_TMP/watch.out" 2>&1 &
WATCH=$!
# written again after 3 s: its TTL starts over
sleep 3
ok "an Event can be written again" k label event kept again=yes
ok "the Event left alone is deleted once its TTL has passed" \
	wait_for 10 not k get event old
ok "the Event written again is still there" k get event kept
ok "a ConfigMap as old as the Events does not expire" k get configmap keep-me
ok "the one written again goes too, a TTL after its last write" \
	wait_for 10 not k get event kept
kill "$WATCH" 2>/dev/null
wait "$WATCH" 2>/dev/null
like "$(cat "$E2E_TMP/watch.out")" "event/old" "a watcher saw the expired Event go"

stop_server_cleanly
done_testing
