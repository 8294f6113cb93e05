/* plugins/controllers/cronjob/cronjob.c - the CronJob controller
 * (controller-cronjob): creates a Job for each scheduled time, as
 * Kubernetes' cronjob-controller does: the most recent unmet time only
 * (startingDeadlineSeconds bounds how late), Jobs named
 * <cronjob>-<minutes since the epoch> so a time is never run twice,
 * concurrencyPolicy Allow/Forbid/Replace, status.active /
 * lastScheduleTime / lastSuccessfulTime, history limits, suspend, and the
 * same Events. The clock can be shifted and sped up by plugin settings
 * for tests (clock-offset, time-scale). Schedules are parsed in cron.c. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skiff/skiff.h>

#include <skiff/cron.h>

#define SCHEDULED_KEY "batch.kubernetes.io/cronjob-scheduled-timestamp"
#define RECENT_MS (30 * 1000)
#define MAX_MISSED 100

static const skiff_resource_t cronjobs_res = {"batch", "v1", "cronjobs", NULL};
static const skiff_resource_t cronjobs_status_res = {"batch", "v1", "cronjobs", "status"};
static const skiff_resource_t jobs_res = {"batch", "v1", "jobs", NULL};

typedef struct cj_ctl {
    skiff_plugin_ctx_t *ctx;
    skiff_controller_t *c;
    skiff_controller_desc_t desc;
    skiff_controller_watch_t watch;
    skiff_event_recorder_t *rec;
    skiff_informer_t *cronjobs, *jobs;
    /* the controller's clock: real time since `epoch_ms`, times `scale`,
     * plus `offset_ms` */
    int64_t epoch_ms, scale, offset_ms;
    /* Jobs we created that the cache may not show yet: "ns/name" -> ms */
    json_t *recent;
    int refs;
    int stopping;
} cj_ctl_t;

#define record(cc, ...)                                                                          \
    do {                                                                                         \
        if (!(cc)->stopping) skiff_event_record((cc)->rec, __VA_ARGS__);                         \
    } while (0)

static void ctl_unref(cj_ctl_t *cc)
{
    if (--cc->refs > 0) return;
    json_decref(cc->recent);
    free(cc);
}

static int64_t clock_now_ms(const cj_ctl_t *cc)
{
    int64_t real = skiff_now_ms();
    return cc->epoch_ms + (real - cc->epoch_ms) * cc->scale + cc->offset_ms;
}

/* A delay on the controller's clock as real milliseconds. */
static int64_t real_delay_ms(const cj_ctl_t *cc, int64_t clock_ms)
{
    if (clock_ms < 0) clock_ms = 0;
    return (clock_ms + cc->scale - 1) / cc->scale;
}

static json_t *at(const json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    return b ? json_object_get(v, b) : v;
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    return json_string_value(at(o, a, b));
}

static int64_t time_at(const json_t *o, const char *a, const char *b)
{
    const char *s = str_at(o, a, b);
    return s ? skiff_time_parse(s) : -1;
}

/* "Complete" or "Failed" for a finished Job, else NULL. */
static const char *job_finished(const json_t *job)
{
    if (skiff_condition_status(job, "Complete") &&
        strcmp(skiff_condition_status(job, "Complete"), "True") == 0)
        return "Complete";
    if (skiff_condition_status(job, "Failed") &&
        strcmp(skiff_condition_status(job, "Failed"), "True") == 0)
        return "Failed";
    return NULL;
}

/* RFC 3339 with the zone's offset ("2026-11-26T13:00:00+01:00"), as the
 * scheduled-timestamp annotation is written. */
static void format_in_zone(int64_t s, const char *zone, char *buf, size_t len)
{
    long off = skiff_cron_zone_offset(zone, s);
    time_t t = (time_t)(s + off);
    struct tm tm;
    gmtime_r(&t, &tm);
    char sign = off < 0 ? '-' : '+';
    long a = off < 0 ? -off : off;
    if (off == 0)
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else {
        char head[32];
        strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, len, "%s%c%02ld:%02ld", head, sign, a / 3600, (a % 3600) / 60);
    }
}

/* RFC 1123 with numeric zone, as the MissSchedule Event words the time. */
static void format_rfc1123z(int64_t s, char *buf, size_t len)
{
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* ---- one sync --------------------------------------------------------------------- */

typedef struct sync {
    cj_ctl_t *cc;
    skiff_reconcile_t *r;
    json_t *cj;        /* our copy */
    json_t *st;        /* the status being built */
    json_t *old_st;
    json_t *deletes;   /* job names to delete */
    json_t *create;    /* the Job to create, or NULL */
    int64_t scheduled; /* its time (s) */
    int pending;
    int error;
    int64_t requeue_ms;
} sync_t;

static void sync_finish(sync_t *s)
{
    skiff_reconcile_result_t res = {SKIFF_RECONCILE_DONE, 0, 0};
    if (s->error) res = (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, s->error};
    else if (s->requeue_ms >= 0)
        res = (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, s->requeue_ms, 0};
    cj_ctl_t *cc = s->cc;
    skiff_reconcile_done(s->r, res);
    json_decref(s->cj);
    json_decref(s->st);
    json_decref(s->old_st);
    json_decref(s->deletes);
    json_decref(s->create);
    free(s);
    ctl_unref(cc);
}

static void on_status_written(void *data, int status, json_t *obj)
{
    sync_t *s = data;
    if (status != 200 && status != 404) s->error = status == 409 ? SKIFF_ECONFLICT : SKIFF_EIO;
    sync_finish(s);
}

static void write_status(sync_t *s)
{
    if (s->old_st && json_equal(s->old_st, s->st)) {
        sync_finish(s);
        return;
    }
    json_object_set(s->cj, "status", s->st);
    if (skiff_client_update(s->cc->ctx->client, &cronjobs_status_res, s->r->ns, s->cj, NULL,
                            on_status_written, s) != 0) {
        s->error = SKIFF_EIO;
        sync_finish(s);
    }
}

static void op_done(sync_t *s)
{
    if (--s->pending == 0) write_status(s);
}

static json_t *job_ref(const json_t *job)
{
    json_t *ref = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", "Job", "namespace",
                            str_at(job, "metadata", "namespace"), "name",
                            str_at(job, "metadata", "name"), "uid", str_at(job, "metadata", "uid"),
                            "apiVersion", "batch/v1");
    const char *rv = str_at(job, "metadata", "resourceVersion");
    if (ref && rv) json_object_set_new(ref, "resourceVersion", json_string(rv));
    return ref;
}

static void set_last_schedule(sync_t *s)
{
    char ts[32];
    skiff_time_format(s->scheduled * 1000, ts, sizeof ts);
    json_object_set_new(s->st, "lastScheduleTime", json_string(ts));
}

static void add_active(sync_t *s, const json_t *job)
{
    json_t *active = json_object_get(s->st, "active");
    if (!json_is_array(active)) {
        active = json_array();
        json_object_set_new(s->st, "active", active);
    }
    const char *uid = str_at(job, "metadata", "uid");
    size_t i;
    json_t *a;
    json_array_foreach(active, i, a)
    {
        const char *u = str_at(a, "uid", NULL);
        if (u && uid && strcmp(u, uid) == 0) return;
    }
    json_array_append_new(active, job_ref(job));
}

static void on_job_created(void *data, int status, json_t *obj)
{
    sync_t *s = data;
    cj_ctl_t *cc = s->cc;
    const char *name = str_at(s->create, "metadata", "name");
    if (status == 201) {
        char key[512];
        snprintf(key, sizeof key, "%s/%s", s->r->ns, name);
        if (!cc->stopping)
            json_object_set_new(cc->recent, key, json_integer(skiff_now_ms() + RECENT_MS));
        record(cc, s->cj, "Normal", "SuccessfulCreate", "Created job %s", name);
        add_active(s, obj);
        set_last_schedule(s);
    } else if (status == 409) {
        /* made already (by us before a restart, or by someone else): if it
         * is ours, it is the run of this time */
        char key[512];
        snprintf(key, sizeof key, "%s/%s", s->r->ns, name);
        json_t *job = skiff_informer_get(cc->jobs, key);
        if (job && skiff_is_controlled_by(job, str_at(s->cj, "metadata", "uid"))) {
            if (!job_finished(job)) add_active(s, job);
            set_last_schedule(s);
        }
    } else {
        record(cc, s->cj, "Warning", "FailedCreate", "Error creating job: %s",
               skiff_answer_message(obj));
        s->error = SKIFF_EIO;
    }
    op_done(s);
}

typedef struct del_op {
    sync_t *s;
    char name[256];
} del_op_t;

static void on_job_deleted(void *data, int status, json_t *obj)
{
    del_op_t *d = data;
    sync_t *s = d->s;
    if (status == 200 || status == 202 || status == 404) {
        if (status != 404)
            record(s->cc, s->cj, "Normal", "SuccessfulDelete", "Deleted job %s", d->name);
        /* a deleted Job is no longer active */
        json_t *active = json_object_get(s->st, "active");
        for (size_t i = json_array_size(active); i-- > 0;) {
            const char *n = str_at(json_array_get(active, i), "name", NULL);
            if (n && strcmp(n, d->name) == 0) json_array_remove(active, i);
        }
    } else {
        record(s->cc, s->cj, "Warning", "FailedDelete", "Deleted job: %s",
               skiff_answer_message(obj));
        s->error = SKIFF_EIO;
    }
    free(d);
    op_done(s);
}

/* Jobs finished beyond a history limit, oldest first (by startTime, then
 * name, as Kubernetes orders them). */
static int by_start_time(const void *a, const void *b)
{
    const json_t *ja = *(json_t *const *)a, *jb = *(json_t *const *)b;
    int64_t sa = time_at(at(ja, "status", NULL), "startTime", NULL);
    int64_t sb = time_at(at(jb, "status", NULL), "startTime", NULL);
    if (sa < 0 && sb >= 0) return 1;
    if (sa >= 0 && sb < 0) return -1;
    if (sa != sb) return sa < sb ? -1 : 1;
    const char *na = str_at(ja, "metadata", "name"), *nb = str_at(jb, "metadata", "name");
    return strcmp(na ? na : "", nb ? nb : "");
}

static void trim_history(sync_t *s, json_t *finished, const char *limit_field)
{
    json_t *limit = at(s->cj, "spec", limit_field);
    if (!json_is_integer(limit)) return;
    size_t n = json_array_size(finished);
    int64_t lim = (int64_t)json_integer_value(limit);
    if ((int64_t)n <= lim) return;
    json_t **v = calloc(n, sizeof *v);
    if (!v) return;
    for (size_t i = 0; i < n; i++) v[i] = json_array_get(finished, i);
    qsort(v, n, sizeof *v, by_start_time);
    for (size_t i = 0; i < n - (size_t)(lim < 0 ? 0 : lim); i++)
        json_array_append_new(s->deletes, json_string(str_at(v[i], "metadata", "name")));
    free(v);
}

static void requeue_for_next(sync_t *s, const skiff_cron_schedule_t *sched, const char *zone,
                             int64_t now_ms)
{
    int64_t next = skiff_cron_next_in_zone(sched, now_ms / 1000, zone);
    if (next < 0) return;
    s->requeue_ms = real_delay_ms(s->cc, next * 1000 - now_ms) + 100;
}

static void cronjob_sync(skiff_reconcile_t *r)
{
    cj_ctl_t *cc = r->data;
    json_t *cached = skiff_informer_get(cc->cronjobs, r->key);
    if (!cached || cc->stopping || at(cached, "metadata", "deletionTimestamp")) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE, 0, 0});
        return;
    }
    sync_t *s = calloc(1, sizeof *s);
    if (!s) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    cc->refs++;
    s->cc = cc;
    s->r = r;
    s->requeue_ms = -1;
    s->cj = skiff_json_copy(cached);
    json_t *cj = s->cj;
    json_t *spec = json_object_get(cj, "spec");
    s->old_st = json_is_object(json_object_get(cj, "status"))
                    ? skiff_json_copy(json_object_get(cj, "status"))
                    : NULL;
    s->st = s->old_st ? skiff_json_copy(s->old_st) : json_object();
    s->deletes = json_array();
    const char *uid = str_at(cj, "metadata", "uid");
    int64_t real_now = skiff_now_ms();
    int64_t now_ms = clock_now_ms(cc);

    /* forget created Jobs the cache has caught up with */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(cc->recent, tmp, k, v)
    {
        if (json_integer_value(v) < real_now || skiff_informer_get(cc->jobs, k))
            json_object_del(cc->recent, k);
    }

    /* 1. the active list against the Jobs that exist */
    json_t *owned = skiff_informer_list_owner(cc->jobs, uid);
    json_t *done_ok = json_array(), *done_failed = json_array();
    json_t *active = json_object_get(s->st, "active");
    size_t i;
    json_t *j;
    json_array_foreach(owned, i, j)
    {
        if (!skiff_is_controlled_by(j, uid)) continue;
        const char *fin = job_finished(j);
        const char *juid = str_at(j, "metadata", "uid");
        int in_active = 0;
        size_t ai;
        json_t *a;
        json_array_foreach(active, ai, a)
        {
            const char *u = str_at(a, "uid", NULL);
            if (u && juid && strcmp(u, juid) == 0) in_active = 1;
        }
        if (!fin && !in_active && !at(j, "metadata", "deletionTimestamp")) {
            add_active(s, j);
            active = json_object_get(s->st, "active");
        } else if (fin && in_active) {
            for (size_t x = json_array_size(active); x-- > 0;) {
                const char *u = str_at(json_array_get(active, x), "uid", NULL);
                if (u && strcmp(u, juid) == 0) json_array_remove(active, x);
            }
            record(cc, cj, "Normal", "SawCompletedJob", "Saw completed job: %s, status: %s",
                   str_at(j, "metadata", "name"), fin);
        }
        if (fin && strcmp(fin, "Complete") == 0) {
            int64_t ct = time_at(at(j, "status", NULL), "completionTime", NULL);
            int64_t last = time_at(s->st, "lastSuccessfulTime", NULL);
            if (ct >= 0 && ct > last)
                json_object_set(s->st, "lastSuccessfulTime", at(j, "status", "completionTime"));
        }
        if (fin) json_array_append(strcmp(fin, "Complete") == 0 ? done_ok : done_failed, j);
    }
    /* active entries whose Job is gone */
    for (size_t x = json_array_size(active); x-- > 0;) {
        json_t *a = json_array_get(active, x);
        char key[512];
        snprintf(key, sizeof key, "%s/%s", r->ns, str_at(a, "name", NULL));
        json_t *job = skiff_informer_get(cc->jobs, key);
        const char *ju = str_at(job, "metadata", "uid"), *au = str_at(a, "uid", NULL);
        if (job && ju && au && strcmp(ju, au) == 0) continue;
        if (!job && json_object_get(cc->recent, key)) continue;
        record(cc, cj, "Normal", "MissingJob", "Active job went missing: %s", str_at(a, "name", NULL));
        json_array_remove(active, x);
    }
    if (json_is_array(active) && json_array_size(active) == 0) json_object_del(s->st, "active");

    /* 2. history limits */
    trim_history(s, done_ok, "successfulJobsHistoryLimit");
    trim_history(s, done_failed, "failedJobsHistoryLimit");
    json_decref(done_ok);
    json_decref(done_failed);
    json_decref(owned);

    /* 3. the schedule */
    const char *zone = str_at(spec, "timeZone", NULL);
    skiff_cron_schedule_t sched;
    char err[256];
    int suspended = json_is_true(json_object_get(spec, "suspend"));
    if (suspended) {
        /* nothing new runs; the active list still follows the Jobs */
    } else if (zone && !skiff_cron_zone_valid(zone)) {
        record(cc, cj, "Warning", "UnknownTimeZone", "invalid timeZone: %s: unknown time zone %s",
               zone, zone);
    } else if (skiff_cron_parse(str_at(spec, "schedule", NULL), &sched, err, sizeof err) != 0) {
        record(cc, cj, "Warning", "UnparseableSchedule", "unparseable schedule: \"%s\" : %s",
               str_at(spec, "schedule", NULL) ? str_at(spec, "schedule", NULL) : "", err);
    } else {
        int64_t now_s = now_ms / 1000;
        int64_t earliest = time_at(s->st, "lastScheduleTime", NULL);
        if (earliest < 0) earliest = time_at(cj, "metadata", "creationTimestamp");
        earliest /= 1000;
        json_t *sds = json_object_get(spec, "startingDeadlineSeconds");
        if (json_is_integer(sds) && now_s - (int64_t)json_integer_value(sds) > earliest)
            earliest = now_s - (int64_t)json_integer_value(sds);
        int64_t t1 = skiff_cron_next_in_zone(&sched, earliest, zone);
        int64_t t2 = t1 >= 0 ? skiff_cron_next_in_zone(&sched, t1, zone) : -1;
        int64_t most_recent = -1;
        if (t1 < 0) {
            record(cc, cj, "Warning", "InvalidSchedule",
                   "invalid schedule: \"%s\": it never runs", str_at(spec, "schedule", NULL));
        } else if (now_s < t1) {
            /* nothing due */
        } else if (t2 < 0 || now_s < t2) {
            most_recent = t1;
        } else {
            /* several missed: start only the latest (Kubernetes' rule),
             * counted roughly from the interval as Kubernetes counts, and
             * warn when there were too many */
            int64_t gap = t2 - t1;
            int64_t missed = (now_s - t1) / gap + 1;
            int64_t t = skiff_cron_next_in_zone(&sched, t1 + (missed - 2) * gap, zone);
            for (; t >= 0 && t <= now_s; t = skiff_cron_next_in_zone(&sched, t, zone)) most_recent = t;
            if (most_recent < 0) most_recent = t1;
            if (missed > MAX_MISSED)
                record(cc, cj, "Warning", "TooManyMissedTimes",
                       "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                       "or check clock skew");
        }
        requeue_for_next(s, &sched, zone, now_ms);
        if (most_recent >= 0) {
            char name[300];
            snprintf(name, sizeof name, "%s-%lld", r->name, (long long)(most_recent / 60));
            int64_t last = time_at(s->st, "lastScheduleTime", NULL);
            int taken = last >= 0 && last / 1000 == most_recent;
            json_array_foreach(json_object_get(s->st, "active"), i, j)
            {
                const char *n = str_at(j, "name", NULL);
                if (n && strcmp(n, name) == 0) taken = 1;
            }
            const char *policy = str_at(spec, "concurrencyPolicy", NULL);
            if (!policy) policy = "Allow";
            if (json_is_integer(sds) &&
                most_recent + (int64_t)json_integer_value(sds) < now_s) {
                char when[64];
                format_rfc1123z(most_recent, when, sizeof when);
                record(cc, cj, "Warning", "MissSchedule",
                       "Missed scheduled time to start a job: %s", when);
            } else if (taken) {
                /* this time has its Job */
            } else if (strcmp(policy, "Forbid") == 0 &&
                       json_array_size(json_object_get(s->st, "active")) > 0) {
                record(cc, cj, "Normal", "JobAlreadyActive",
                       "Not starting job because prior execution is running and concurrency "
                       "policy is Forbid");
            } else {
                if (strcmp(policy, "Replace") == 0)
                    json_array_foreach(json_object_get(s->st, "active"), i, j)
                        json_array_append_new(s->deletes, json_string(str_at(j, "name", NULL)));
                /* the Job, from the template */
                json_t *jt = json_object_get(spec, "jobTemplate");
                json_t *tm = json_object_get(jt, "metadata");
                json_t *labels = json_is_object(at(tm, "labels", NULL))
                                     ? skiff_json_copy(at(tm, "labels", NULL))
                                     : json_object();
                json_t *ann = json_is_object(at(tm, "annotations", NULL))
                                  ? skiff_json_copy(at(tm, "annotations", NULL))
                                  : json_object();
                char ts[64];
                format_in_zone(most_recent, zone, ts, sizeof ts);
                json_object_set_new(ann, SCHEDULED_KEY, json_string(ts));
                json_t *ref = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion",
                                        "batch/v1", "kind", "CronJob", "name", r->name, "uid",
                                        uid, "controller", 1, "blockOwnerDeletion", 1);
                json_t *jspec = json_is_object(json_object_get(jt, "spec"))
                                    ? skiff_json_copy(json_object_get(jt, "spec"))
                                    : json_object();
                s->create = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:o, s:[o]}, s:o}",
                                      "apiVersion", "batch/v1", "kind", "Job", "metadata", "name",
                                      name, "namespace", r->ns, "labels", labels, "annotations",
                                      ann, "ownerReferences", ref, "spec", jspec);
                s->scheduled = most_recent;
            }
        }
    }

    /* 4. writes: deletes and the create, then the status */
    s->pending = 1;
    json_array_foreach(s->deletes, i, v)
    {
        del_op_t *d = calloc(1, sizeof *d);
        if (!d) continue;
        d->s = s;
        snprintf(d->name, sizeof d->name, "%s", json_string_value(v));
        skiff_write_opts_t del = {.grace_period_seconds = -1, .propagation_policy = "Background"};
        s->pending++;
        if (skiff_client_delete(cc->ctx->client, &jobs_res, r->ns, d->name, &del, on_job_deleted,
                                d) != 0) {
            s->pending--;
            free(d);
            s->error = SKIFF_EIO;
        }
    }
    if (s->create) {
        s->pending++;
        if (skiff_client_create(cc->ctx->client, &jobs_res, r->ns, s->create, NULL, on_job_created,
                                s) != 0) {
            s->pending--;
            s->error = SKIFF_EIO;
        }
    }
    op_done(s);
}

/* ---- plugin life cycle -------------------------------------------------------------- */

static const skiff_setting_t cronjob_settings[] = {
    {"time-scale", SKIFF_SETTING_INT, "1",
     "for tests only: the controller's clock runs this many times faster than real time "
     "(60: an every-minute CronJob runs every second)"},
    {"clock-offset", SKIFF_SETTING_DURATION, "0",
     "for tests only: added to the controller's clock (\"90m\", \"-1h\")"},
    {NULL, 0, NULL, NULL},
};

static int cronjob_start(skiff_plugin_ctx_t *ctx)
{
    const char *sc = ctx->setting(ctx, "time-scale");
    const char *off = ctx->setting(ctx, "clock-offset");
    char *end = NULL;
    long long scale = sc ? strtoll(sc, &end, 10) : 1;
    int neg = off && off[0] == '-';
    int64_t offset = skiff_cron_parse_duration(off ? off + neg : "0");
    if (!sc || !end || *end || scale < 1 || scale > 100000 || offset < 0) {
        ctx->log(ctx, SKIFF_LOG_ERROR,
                 "time-scale must be a whole number from 1 to 100000 and clock-offset a "
                 "duration (\"90m\", \"-1h\")");
        return SKIFF_EINVAL;
    }
    cj_ctl_t *cc = calloc(1, sizeof *cc);
    if (!cc) return SKIFF_ENOMEM;
    cc->ctx = ctx;
    cc->refs = 1;
    cc->epoch_ms = skiff_now_ms();
    cc->scale = scale;
    cc->offset_ms = neg ? -offset : offset;
    cc->recent = json_object();
    if (scale != 1 || offset)
        ctx->log(ctx, SKIFF_LOG_WARN, "test clock: %lldx real time, offset %s", scale,
                 off ? off : "0");
    cc->watch = (skiff_controller_watch_t){.resource = jobs_res, .by_owner = 1, .controller_only = 1};
    cc->desc = (skiff_controller_desc_t){
        .name = "cronjob-controller",
        .primary = cronjobs_res,
        .primary_kind = "CronJob",
        .primary_api_version = "batch/v1",
        .secondary = &cc->watch,
        .n_secondary = 1,
        .reconcile = cronjob_sync,
        .workers = 2,
        .data = cc,
    };
    cc->rec = skiff_event_recorder_new(ctx->client, "cronjob-controller");
    int rc = cc->rec ? skiff_controller_new(ctx, ctx->informers, &cc->desc, &cc->c) : SKIFF_ENOMEM;
    if (rc == 0) {
        cc->cronjobs = skiff_controller_informer(cc->c);
        cc->jobs = skiff_controller_secondary_informer(cc->c, 0);
        rc = skiff_controller_start(cc->c);
    }
    ctx->plugin_data = cc;
    if (rc != 0) {
        ctx->log(ctx, SKIFF_LOG_ERROR, "cannot start: %s", skiff_strerror(rc));
        return rc;
    }
    return 0;
}

static void cronjob_stop(skiff_plugin_ctx_t *ctx)
{
    cj_ctl_t *cc = ctx->plugin_data;
    if (!cc) return;
    ctx->plugin_data = NULL;
    cc->stopping = 1;
    if (cc->c) skiff_controller_free(cc->c);
    if (cc->rec) skiff_event_recorder_free(cc->rec);
    ctl_unref(cc);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-cronjob",
    .version = "0.1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "CronJobs: creates Jobs on a cron schedule (time zones, concurrencyPolicy, "
                   "startingDeadlineSeconds, history limits, suspend)",
    .settings = cronjob_settings,
    .start = cronjob_start,
    .stop = cronjob_stop,
};
