#!/bin/bash
# tests/bench/admission_bench.sh - what the admission chain costs: pods
# created per second over plain HTTP (16 requests in flight, one curl
# process) with no admission, with the default chain, and with the default
# chain plus a ResourceQuota (and a LimitRange) in the namespace. Not a
# test: prints one line per case.
#   tests/bench/admission_bench.sh [SKIFF_BINARY] [PODS]
set -u
skiff=${1:-./skiff}
n=${2:-2000}
port=$((20000 + RANDOM % 10000))
work=$(mktemp -d "${TMPDIR:-/tmp}/skiff-admission-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
url=http://127.0.0.1:$port
for i in $(seq "$n"); do
	printf 'url = "%s/api/v1/namespaces/bench/pods"\nrequest = "POST"\nheader = "Content-Type: application/json"\n' "$url"
	printf 'data = "{\\"metadata\\":{\\"name\\":\\"p%d\\"},\\"spec\\":{\\"containers\\":[{\\"name\\":\\"c\\",\\"image\\":\\"busybox\\",' "$i"
	printf '\\"resources\\":{\\"requests\\":{\\"cpu\\":\\"1m\\",\\"memory\\":\\"1Mi\\"},\\"limits\\":{\\"cpu\\":\\"1m\\",\\"memory\\":\\"1Mi\\"}}}]}}"\n'
	printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'
	[ "$i" -lt "$n" ] && printf 'next\n'
done >"$work/requests"
post() { curl -s -X POST -H 'Content-Type: application/json' "$url$1" -d "$2" >/dev/null; }
run() { # run LABEL SETUP [server args...]
	local label=$1 setup=$2 pid start end ok
	shift 2
	rm -rf "$work/data"
	"$skiff" server --plain-http --port "$port" --data-dir "$work/data" --controllers none \
		--scheduler none "$@" >"$work/log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do curl -s "$url/readyz" | grep -q ok && break; sleep 0.1; done
	post /api/v1/namespaces '{"metadata":{"name":"bench"}}'
	case $setup in *quota*)
		post /api/v1/namespaces/bench/resourcequotas '{"metadata":{"name":"q"},"spec":{"hard":{"pods":"100000","requests.cpu":"1000","limits.memory":"1000Gi"}}}' ;;
	esac
	case $setup in *limits*)
		post /api/v1/namespaces/bench/limitranges '{"metadata":{"name":"l"},"spec":{"limits":[{"type":"Container","default":{"cpu":"10m"},"defaultRequest":{"cpu":"1m"},"max":{"cpu":"1"}}]}}' ;;
	esac
	sleep 0.5
	start=$(date +%s.%N)
	curl -s --parallel --parallel-max 16 -K "$work/requests" >"$work/codes" 2>/dev/null
	end=$(date +%s.%N)
	ok=$(grep -c '^201' "$work/codes")
	printf '%-45s %5d/%d created, %6.0f pods/s\n' "$label" "$ok" "$n" "$(echo "$ok / ($end - $start)" | bc -l)"
	kill "$pid"
	wait "$pid" 2>/dev/null
}
all=NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,Priority,DefaultStorageClass,ResourceQuota
run "no admission" none --disable-admission-plugins "$all"
run "default chain" none
run "default chain, a ResourceQuota" quota
run "default chain, a ResourceQuota and a LimitRange" quota,limits
