# tests/bench/busy_check.sh - sourced by the benchmark scripts: before a
# run, warn when something else already keeps the machine's CPUs busy
# (a stray server or agent left from an earlier run skews every figure).
#
#   busy_check   # prints a warning to stderr; never fails

# cpu_busy_pct: the share of all CPUs not idle over the next second
cpu_busy_pct() {
	local a b
	a=$(head -1 /proc/stat)
	sleep 1
	b=$(head -1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 2; i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
		printf "%d", (t > 0 ? 100 * (t - idle) / t : 0)
	}'
}

busy_check() {
	local pct
	pct=$(cpu_busy_pct)
	[ "${pct:-0}" -lt 15 ] && return 0
	{
		echo "warning: the machine was ${pct}% busy before the benchmark started; its figures will be low."
		echo "warning: the busiest processes now:"
		top -b -n 1 -w 160 2>/dev/null | awk 'NR > 7 && $9 + 0 >= 5 && n++ < 4 {printf "warning:   pid %s %s%% %s\n", $1, $9, $12}'
	} >&2
	return 0
}
