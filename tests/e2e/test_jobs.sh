#!/bin/bash
# tests/e2e/test_jobs.sh - Jobs and CronJobs through kubectl against a real
# server running controller-job and controller-cronjob: a Job of 5
# completions runs at most 2 pods at a time (seen from a watch) and
# `kubectl wait --for=condition=complete` returns; a failing Job stops at
# its backoffLimit with Failed/BackoffLimitExceeded; activeDeadlineSeconds
# fails a Job with DeadlineExceeded and stops its pods; an Indexed Job
# completes indexes 0..n-1; ttlSecondsAfterFinished deletes a finished Job;
# a suspended Job runs nothing until resumed; the API server generates the
# selector; a CronJob running every minute (on the controller's test clock,
# 60 times real time) creates Jobs named by their scheduled minute, keeps
# only its history limit of finished Jobs, skips runs under Forbid while
# one is active, stops when suspended, and `kubectl create job --from`
# works.
#
# Pods are scheduled by scheduler-default onto two hollow nodes, which end
# them as their annotations say (hollow.skiff.io/run-for, exit-code).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

start_server --controllers job,cronjob --scheduler scheduler-default \
	--plugin-settings "controller-job.backoff-base=100ms;controller-cronjob.time-scale=60" ||
	bail_out "server did not start"
start_hollow 2 || bail_out "hollow nodes did not start"

# mk_job NAME EXIT_CODE RUN_FOR [SPEC LINES...]: a Job whose pods end with
# that exit code after that long.
mk_job() {
	local name=$1 code=$2 run=$3 line
	shift 3
	{
		printf 'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: %s\nspec:\n' "$name"
		for line in "$@"; do printf '  %s\n' "$line"; done
		cat <<EOF
  template:
    metadata:
      annotations:
        hollow.skiff.io/exit-code: "$code"
        hollow.skiff.io/run-for: "$run"
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox:1.36
EOF
	} | k create -f -
}

job_field() { jp "job/$1" "$2"; }
is_cond() { [ "$(jp "job/$1" "{.status.conditions[?(@.type==\"$2\")].status}")" = True ]; }
events_of() {
	k get events --field-selector "involvedObject.name=$1" \
		-o jsonpath='{range .items[*]}{.reason}:{.count}{"\n"}{end}'
}

# --- completions 5, parallelism 2 -------------------------------------------------
# Every pod event goes through a watch; the awk keeps the set of pods not
# yet finished and not being deleted, and prints its largest size.
k get pods -l job-name=five -w --output-watch-events \
	-o jsonpath='{.type} {.object.metadata.name} {.object.status.phase} {.object.metadata.deletionTimestamp}{"\n"}' \
	>"$E2E_TMP/five.watch" 2>&1 &
E2E_BG_PIDS+=($!)
sleep 0.5
ok "a Job with completions 5 and parallelism 2 is created" \
	mk_job five 0 1s "completions: 5" "parallelism: 2"
ok "kubectl wait --for=condition=complete returns" \
	k wait --for=condition=complete job/five --timeout=60s
max_active=$(awk '
	$1 == "DELETED" { delete live[$2]; next }
	{ if (($3 == "Pending" || $3 == "Running") && $4 == "") live[$2] = 1; else delete live[$2] }
	{ n = 0; for (p in live) n++; if (n > max) max = n }
	END { print max + 0 }' "$E2E_TMP/five.watch")
is "$max_active" 2 "the watch saw 2 pods running at once, never more"
expect_output "status.succeeded is 5, nothing active" "5||" job_field five '{.status.succeeded}|{.status.active}|{.status.failed}'
expect_contains "kubectl get job shows Complete and 5/5" "Complete   5/5" k get job five
like "$(k get job five -o wide)" "batch.kubernetes.io/controller-uid=" "the generated selector is shown"
expect_output "the Job has the SuccessCriteriaMet condition too" True \
	job_field five '{.status.conditions[?(@.type=="SuccessCriteriaMet")].status}'
expect_output "the completion time is set" 1 \
	bash -c "[ -n \"\$(kubectl --kubeconfig=$KUBECONFIG get job five -o jsonpath='{.status.completionTime}')\" ] && echo 1"
expect_output "five pods ran, each labelled with the Job's name and uid" 5 \
	bash -c "kubectl --kubeconfig=$KUBECONFIG get pods -l batch.kubernetes.io/job-name=five,controller-uid=$(job_field five '{.metadata.uid}') -o name | wc -l"
expect_output "all five were bound to hollow nodes" 5 bash -c \
	"kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=five -o jsonpath='{range .items[*]}{.spec.nodeName}{\"\\n\"}{end}' | grep -c '^hollow-'"
expect_output "no pod keeps the job-tracking finalizer" "" \
	jp pods '{.items[*].metadata.finalizers}' -l job-name=five
ev=$(events_of five)
like "$ev" "Completed:1" "a Completed Event"
is "$(printf '%s\n' "$ev" | grep -c '^SuccessfulCreate:')" 5 "five SuccessfulCreate Events"
like "$(k describe job five)" "Created pod: five-" "kubectl describe shows the Events"

# --- backoffLimit -------------------------------------------------------------------
ok "a Job whose pods fail, backoffLimit 2" mk_job fails 1 1s "backoffLimit: 2"
ok "kubectl wait --for=condition=failed returns" k wait --for=condition=failed job/fails --timeout=60s
expect_output "its Failed condition says BackoffLimitExceeded" BackoffLimitExceeded \
	job_field fails '{.status.conditions[?(@.type=="Failed")].reason}'
expect_output "FailureTarget came first, with the same reason" BackoffLimitExceeded \
	job_field fails '{.status.conditions[?(@.type=="FailureTarget")].reason}'
expect_output "three pods failed (the limit plus one), none succeeded" "3|" \
	job_field fails '{.status.failed}|{.status.succeeded}'
expect_contains "kubectl get job shows Failed" "Failed" k get job fails
like "$(events_of fails)" "BackoffLimitExceeded:1" "a BackoffLimitExceeded Event"
like "$(k get events --field-selector involvedObject.name=fails,reason=BackoffLimitExceeded)" \
	"Job has reached the specified backoff limit" "the Event says so"

# --- activeDeadlineSeconds ----------------------------------------------------------
ok "a Job whose pod never ends, activeDeadlineSeconds 2" \
	mk_job slow 0 1h "activeDeadlineSeconds: 2"
ok "its pod starts" wait_for 20 bash -c \
	"[ -n \"\$(kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=slow -o name)\" ]"
ok "it fails at the deadline" k wait --for=condition=failed job/slow --timeout=30s
expect_output "with reason DeadlineExceeded" DeadlineExceeded \
	job_field slow '{.status.conditions[?(@.type=="Failed")].reason}'
ok "its running pod is stopped" wait_for 20 bash -c \
	"[ -z \"\$(kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=slow -o name)\" ] || \
	 [ -n \"\$(kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=slow -o jsonpath='{.items[*].metadata.deletionTimestamp}')\" ]"
expect_output "and counted as failed" 1 job_field slow '{.status.failed}'

# --- Indexed --------------------------------------------------------------------------
ok "an Indexed Job of 3 completions" \
	mk_job idx 0 1s "completions: 3" "parallelism: 3" "completionMode: Indexed"
ok "it completes" k wait --for=condition=complete job/idx --timeout=60s
expect_output "completedIndexes is 0-2" "0-2" job_field idx '{.status.completedIndexes}'
expect_output "its pods carry indexes 0, 1 and 2" "0 1 2" bash -c \
	"kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=idx -o jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{\"\n\"}{end}' | sort | xargs"
expect_output "and hostnames idx-0, idx-1, idx-2" "idx-0 idx-1 idx-2" bash -c \
	"kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=idx -o jsonpath='{range .items[*]}{.spec.hostname}{\"\n\"}{end}' | sort | xargs"
expect_output "JOB_COMPLETION_INDEX comes from the annotation" \
	"metadata.annotations['batch.kubernetes.io/job-completion-index']" \
	jp pods "{.items[0].spec.containers[0].env[?(@.name==\"JOB_COMPLETION_INDEX\")].valueFrom.fieldRef.fieldPath}" -l job-name=idx
expect_output "the index is a pod label too" 1 bash -c \
	"kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=idx,batch.kubernetes.io/job-completion-index=1 -o name | wc -l"

# --- ttlSecondsAfterFinished ------------------------------------------------------------
ok "a Job with ttlSecondsAfterFinished 1" mk_job short 0 1s "ttlSecondsAfterFinished: 1"
ok "it completes" k wait --for=condition=complete job/short --timeout=60s
ok "then it is deleted" wait_for 20 not k get job short

# --- suspend ------------------------------------------------------------------------------
ok "a suspended Job" mk_job later 0 1s "suspend: true"
sleep 1.5
expect_output "runs no pod" "" jp pods '{.items[*].metadata.name}' -l job-name=later
expect_output "and says it is suspended" "True|JobSuspended" \
	job_field later '{.status.conditions[?(@.type=="Suspended")].status}|{.status.conditions[?(@.type=="Suspended")].reason}'
ok "resuming it" k patch job later --type=merge -p '{"spec":{"suspend":false}}'
ok "it then completes" k wait --for=condition=complete job/later --timeout=60s
expect_output "the Suspended condition turned False" "False|JobResumed" \
	job_field later '{.status.conditions[?(@.type=="Suspended")].status}|{.status.conditions[?(@.type=="Suspended")].reason}'

# --- the generated selector -------------------------------------------------------------------
expect_fail_with "a selector without manualSelector is refused" "\`selector\` not auto-generated" \
	k create -f - <<'EOF'
apiVersion: batch/v1
kind: Job
metadata: {name: mine}
spec:
  selector: {matchLabels: {app: mine}}
  template:
    metadata: {labels: {app: mine}}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox:1.36}]
EOF
ok "manualSelector keeps the user's selector" k create -f - <<'EOF'
apiVersion: batch/v1
kind: Job
metadata: {name: manual}
spec:
  manualSelector: true
  suspend: true
  selector: {matchLabels: {app: manual}}
  template:
    metadata: {labels: {app: manual}}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox:1.36}]
EOF
expect_output "and adds no labels" '{"app":"manual"}' job_field manual '{.spec.template.metadata.labels}'

expect_fail_with "an Indexed Job needs completions" \
	'spec.completions: Required value: when completion mode is Indexed' \
	k create -f - <<'EOF'
apiVersion: batch/v1
kind: Job
metadata: {name: noidx}
spec:
  completionMode: Indexed
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox:1.36}]
EOF

# --- CronJob ------------------------------------------------------------------------------------
# mk_cronjob NAME RUN_FOR [SPEC LINES...]: every minute; the test clock
# makes that every second.
mk_cronjob() {
	local name=$1 run=$2 line
	shift 2
	{
		printf 'apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: %s\nspec:\n  schedule: "* * * * *"\n' "$name"
		for line in "$@"; do printf '  %s\n' "$line"; done
		cat <<EOF
  jobTemplate:
    metadata:
      labels: {cron: $name}
    spec:
      template:
        metadata:
          annotations:
            hollow.skiff.io/run-for: "$run"
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox:1.36
EOF
	} | k create -f -
}
jobs_of() { k get jobs -l "cron=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
complete_jobs_of() {
	k get jobs -l "cron=$1" -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Complete")].status}{"\n"}{end}' |
		grep -c ' True$'
}

ok "a CronJob every minute, keeping 2 successful Jobs" \
	mk_cronjob tick 1s "successfulJobsHistoryLimit: 2"
ok "it creates Jobs" wait_for 20 bash -c "[ \$(kubectl --kubeconfig=$KUBECONFIG get events --field-selector involvedObject.name=tick,reason=SuccessfulCreate -o name | wc -l) -ge 4 ]"
ok "and deletes the oldest finished ones" wait_for 20 bash -c \
	"kubectl --kubeconfig=$KUBECONFIG get events --field-selector involvedObject.name=tick,reason=SuccessfulDelete -o name | grep -q ."
sleep 1
n=$(complete_jobs_of tick)
ok "no more than 2 finished Jobs are kept (saw $n)" test "$n" -le 2
# one read of the newest Job (older ones may be trimmed meanwhile)
newest=$(jobs_of tick | sort | tail -n 1)
read -r name stamp owner <<<"$(jp "job/$newest" '{.metadata.name} {.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}')"
like "$name" "tick-" "Jobs are named <cronjob>-<minute>"
ok "the scheduled-timestamp annotation is that minute ($stamp)" \
	test "$(($(date -d "$stamp" +%s) / 60))" = "${name#tick-}"
is "$owner" "CronJob/tick/true" "the Job is controlled by the CronJob"
ok "status.lastScheduleTime is set" test -n "$(jp cronjob/tick '{.status.lastScheduleTime}')"
ok "status.lastSuccessfulTime is set" test -n "$(jp cronjob/tick '{.status.lastSuccessfulTime}')"
like "$(events_of tick)" "SawCompletedJob" "SawCompletedJob Events"
ok "suspending it" k patch cronjob tick --type=merge -p '{"spec":{"suspend":true}}'
sleep 1
before=$(k get events --field-selector involvedObject.name=tick,reason=SuccessfulCreate -o jsonpath='{range .items[*]}{.count}{"\n"}{end}' | awk '{s+=$1} END {print s}')
sleep 3
after=$(k get events --field-selector involvedObject.name=tick,reason=SuccessfulCreate -o jsonpath='{range .items[*]}{.count}{"\n"}{end}' | awk '{s+=$1} END {print s}')
is "$after" "$before" "a suspended CronJob creates no Job (3 s = 3 scheduled minutes)"
expect_output "kubectl get cronjob shows it suspended" "true" jp cronjob/tick '{.spec.suspend}'

expect_fail_with "a schedule Kubernetes refuses is refused" \
	'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59)' \
	k create cronjob bad --image=busybox:1.36 --schedule='61 * * * *'
expect_fail_with "so is an unknown time zone" 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus' \
	k create -f - <<'EOF'
apiVersion: batch/v1
kind: CronJob
metadata: {name: mars}
spec:
  schedule: "@hourly"
  timeZone: Mars/Olympus
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox:1.36}]
EOF
ok "a CronJob in Asia/Kolkata" mk_cronjob india 1s "timeZone: Asia/Kolkata"
ok "runs" wait_for 20 bash -c "[ -n \"\$(kubectl --kubeconfig=$KUBECONFIG get jobs -l cron=india -o name)\" ]"
like "$(jp "$(k get jobs -l cron=india -o name | head -n 1)" '{.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}')" \
	"+05:30" "its scheduled-timestamp annotation is in that zone"
ok "deleting it" k delete cronjob india

ok "a Forbid CronJob whose Jobs never end" \
	mk_cronjob hold 1h "concurrencyPolicy: Forbid"
ok "it starts one Job" wait_for 20 bash -c "[ -n \"\$(kubectl --kubeconfig=$KUBECONFIG get jobs -l cron=hold -o name)\" ]"
sleep 3
expect_output "and no second while the first runs" 1 bash -c "kubectl --kubeconfig=$KUBECONFIG get jobs -l cron=hold -o name | wc -l"
expect_output "it is in status.active" 1 bash -c "kubectl --kubeconfig=$KUBECONFIG get cronjob hold -o jsonpath='{range .status.active[*]}{.name}{\"\n\"}{end}' | wc -l"
like "$(events_of hold)" "JobAlreadyActive" "a JobAlreadyActive Event says why"
expect_output "kubectl get cronjob counts it as active" "1" \
	bash -c "kubectl --kubeconfig=$KUBECONFIG get cronjob hold --no-headers | awk '{print \$9}'"

ok "kubectl create job --from=cronjob works" k create job by-hand --from=cronjob/hold
expect_output "the Job is marked as made by hand and owned by the CronJob" "manual|hold" \
	job_field by-hand '{.metadata.annotations.cronjob\.kubernetes\.io/instantiate}|{.metadata.ownerReferences[0].name}'
ok "its pod is created" wait_for 20 bash -c "[ -n \"\$(kubectl --kubeconfig=$KUBECONFIG get pods -l job-name=by-hand -o name)\" ]"

stop_server_cleanly
done_testing
