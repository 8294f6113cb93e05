/* core/object/kinds.c - the built-in kinds, declared once in one table.
 *
 * For each kind: group/version, names as discovery shows them (plural,
 * singular, short names, categories), scope, schema, subresources, the
 * defaulting function (defaults.c) and the printer columns `kubectl get`
 * shows for it, with the column types of the Kubernetes Table API. NAME
 * and AGE are added by the table renderer, so they are not declared here
 * (a kind that shows them elsewhere declares them itself). Columns a JSON
 * path cannot express are computed by the small functions below; they
 * only read the object. The autoscaling/v1 HorizontalPodAutoscaler is
 * the one kind served in a second version: its conversion to and from
 * the stored autoscaling/v2 form is at the end of this file. */
#define _GNU_SOURCE /* strptime, timegm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <skiff/objects.h>

#include "object/crd_schema.h"
#include "object/registry.h"

/* Defaulting functions, defined in core/object/defaults.c. */
void defaults_pod(json_t *obj);
void defaults_service(json_t *obj);
void defaults_deployment(json_t *obj);
void defaults_replicaset(json_t *obj);
void defaults_daemonset(json_t *obj);
void defaults_statefulset(json_t *obj);
void defaults_job(json_t *obj);
void defaults_cronjob(json_t *obj);
void defaults_secret(json_t *obj);
void defaults_namespace(json_t *obj);
void defaults_pv(json_t *obj);
void defaults_pvc(json_t *obj);
void defaults_hpa(json_t *obj);
void defaults_limitrange(json_t *obj);
void defaults_storageclass(json_t *obj);

/* ---- small readers --------------------------------------------------------- */

/* obj.a.b.c, NULL-terminated list of keys; NULL when any step is missing. */
static const json_t *get(const json_t *obj, const char *a, const char *b, const char *c,
                         const char *d)
{
    const char *keys[] = { a, b, c, d };
    for (size_t i = 0; i < 4 && keys[i] && obj; i++)
        obj = json_object_get(obj, keys[i]);
    return obj;
}

static const char *gets(const json_t *obj, const char *a, const char *b, const char *c)
{
    return json_string_value(get(obj, a, b, c, NULL));
}

static long long geti(const json_t *obj, const char *a, const char *b, const char *c)
{
    return json_integer_value(get(obj, a, b, c, NULL));
}

static json_t *str_or_none(const char *s)
{
    return json_string(s && *s ? s : "<none>");
}

/* Growing string for joined cells. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np)
            return;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void sb_sep(sbuf_t *b, const char *sep)
{
    if (b->len)
        sb_add(b, sep);
}

static json_t *sb_finish(sbuf_t *b)
{
    json_t *j = str_or_none(b->p);
    free(b->p);
    return j;
}

static long long parse_rfc3339(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    return (long long)timegm(&tm);
}

/* The way kubectl prints ages and durations (5s, 3m20s, 5h, 2d3h, 3y). */
static void human_duration(long long sec, char *out, size_t n)
{
    if (sec < -1) {
        snprintf(out, n, "<invalid>");
        return;
    }
    if (sec < 0)
        sec = 0;
    long long min = sec / 60, hours = sec / 3600;
    if (sec < 120)
        snprintf(out, n, "%llds", sec);
    else if (min < 10)
        (sec % 60) ? snprintf(out, n, "%lldm%llds", min, sec % 60) : snprintf(out, n, "%lldm", min);
    else if (min < 180)
        snprintf(out, n, "%lldm", min);
    else if (hours < 8)
        (min % 60) ? snprintf(out, n, "%lldh%lldm", hours, min % 60) : snprintf(out, n, "%lldh", hours);
    else if (hours < 48)
        snprintf(out, n, "%lldh", hours);
    else if (hours < 24 * 8)
        (hours % 24) ? snprintf(out, n, "%lldd%lldh", hours / 24, hours % 24)
                     : snprintf(out, n, "%lldd", hours / 24);
    else if (hours < 24 * 365 * 2)
        snprintf(out, n, "%lldd", hours / 24);
    else if (hours < 24 * 365 * 8)
        ((hours / 24) % 365) ? snprintf(out, n, "%lldy%lldd", hours / 24 / 365, (hours / 24) % 365)
                             : snprintf(out, n, "%lldy", hours / 24 / 365);
    else
        snprintf(out, n, "%lldy", hours / 24 / 365);
}

static json_t *age_of(const char *ts)
{
    long long t = parse_rfc3339(ts);
    if (t < 0)
        return json_string("<unknown>");
    char buf[32];
    human_duration((long long)time(NULL) - t, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *ratio(long long a, long long b)
{
    char buf[48];
    snprintf(buf, sizeof(buf), "%lld/%lld", a, b);
    return json_string(buf);
}

/* "k=v,k2=v2" for a string map, "<none>" when empty. */
static json_t *map_string(const json_t *m)
{
    sbuf_t b = { 0 };
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        sb_sep(&b, ",");
        sb_add(&b, k);
        sb_add(&b, "=");
        sb_add(&b, json_string_value(v) ? json_string_value(v) : "");
    }
    return sb_finish(&b);
}

json_t *kinds_selector_string(const json_t *sel)
{
    if (!json_is_object(sel))
        return json_string("<none>");
    const json_t *ml = json_object_get(sel, "matchLabels");
    const json_t *me = json_object_get(sel, "matchExpressions");
    if (!ml && !me)
        return map_string(sel); /* a plain map, as in Service.spec.selector */
    sbuf_t b = { 0 };
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ml, k, v) {
        sb_sep(&b, ",");
        sb_add(&b, k);
        sb_add(&b, "=");
        sb_add(&b, json_string_value(v) ? json_string_value(v) : "");
    }
    size_t i;
    json_array_foreach(me, i, v) {
        const char *key = gets(v, "key", NULL, NULL), *op = gets(v, "operator", NULL, NULL);
        if (!key || !op)
            continue;
        sb_sep(&b, ",");
        if (strcmp(op, "Exists") == 0) {
            sb_add(&b, key);
            continue;
        }
        if (strcmp(op, "DoesNotExist") == 0) {
            sb_add(&b, "!");
            sb_add(&b, key);
            continue;
        }
        sb_add(&b, key);
        sb_add(&b, strcmp(op, "NotIn") == 0 ? " notin (" : " in (");
        size_t j;
        json_t *val;
        json_array_foreach(json_object_get(v, "values"), j, val) {
            if (j)
                sb_add(&b, ",");
            sb_add(&b, json_string_value(val) ? json_string_value(val) : "");
        }
        sb_add(&b, ")");
    }
    return sb_finish(&b);
}

/* Comma-joined container names or images of a pod template. */
static json_t *template_join(const json_t *obj, const char *field, int cronjob)
{
    const json_t *spec = cronjob ? get(obj, "spec", "jobTemplate", "spec", "template")
                                 : get(obj, "spec", "template", NULL, NULL);
    sbuf_t b = { 0 };
    size_t i;
    json_t *c;
    json_array_foreach(get(spec, "spec", "containers", NULL, NULL), i, c) {
        sb_sep(&b, ",");
        const char *s = gets(c, field, NULL, NULL);
        sb_add(&b, s ? s : "");
    }
    return sb_finish(&b);
}

static json_t *col_containers(const json_t *o) { return template_join(o, "name", 0); }
static json_t *col_images(const json_t *o) { return template_join(o, "image", 0); }
static json_t *col_cj_containers(const json_t *o) { return template_join(o, "name", 1); }
static json_t *col_cj_images(const json_t *o) { return template_join(o, "image", 1); }
static json_t *col_selector(const json_t *o) { return kinds_selector_string(get(o, "spec", "selector", NULL, NULL)); }
static json_t *col_cj_selector(const json_t *o)
{
    return kinds_selector_string(get(o, "spec", "jobTemplate", "spec", "selector"));
}

/* ---- pods ---------------------------------------------------------------- */

static json_t *pod_ready(const json_t *o)
{
    long long ready = 0, total = (long long)json_array_size(get(o, "spec", "containers", NULL, NULL));
    size_t i;
    json_t *cs;
    json_array_foreach(get(o, "status", "containerStatuses", NULL, NULL), i, cs)
        if (json_is_true(json_object_get(cs, "ready")))
            ready++;
    return ratio(ready, total);
}

/* The STATUS column: the phase, refined by the reason of the first
 * container that is waiting or terminated, as kubectl shows it. */
static json_t *pod_status(const json_t *o)
{
    const char *reason = gets(o, "status", "reason", NULL);
    if (!reason)
        reason = gets(o, "status", "phase", NULL);
    if (!reason)
        reason = "Pending";
    static __thread char buf[160];
    size_t i;
    json_t *cs;
    /* Init containers first: "Init:1/2" or the failing reason. */
    const json_t *inits = get(o, "status", "initContainerStatuses", NULL, NULL);
    size_t ninit = json_array_size(get(o, "spec", "initContainers", NULL, NULL));
    json_array_foreach(inits, i, cs) {
        const json_t *term = get(cs, "state", "terminated", NULL, NULL);
        const json_t *wait = get(cs, "state", "waiting", NULL, NULL);
        if (term && json_integer_value(json_object_get(term, "exitCode")) == 0)
            continue;
        if (term) {
            const char *r = gets(term, "reason", NULL, NULL);
            snprintf(buf, sizeof(buf), "Init:%s", r ? r : "Error");
        } else if (wait && gets(wait, "reason", NULL, NULL) &&
                   strcmp(gets(wait, "reason", NULL, NULL), "PodInitializing") != 0) {
            snprintf(buf, sizeof(buf), "Init:%s", gets(wait, "reason", NULL, NULL));
        } else {
            snprintf(buf, sizeof(buf), "Init:%zu/%zu", i, ninit);
        }
        reason = buf;
        goto done;
    }
    json_array_foreach(get(o, "status", "containerStatuses", NULL, NULL), i, cs) {
        const char *w = gets(cs, "state", "waiting", "reason");
        const char *t = gets(cs, "state", "terminated", "reason");
        if (w && *w) {
            reason = w;
        } else if (t && *t) {
            reason = t;
        } else if (get(cs, "state", "terminated", NULL, NULL)) {
            long long sig = geti(cs, "state", "terminated", "signal");
            long long code = geti(cs, "state", "terminated", "exitCode");
            if (sig)
                snprintf(buf, sizeof(buf), "Signal:%lld", sig);
            else
                snprintf(buf, sizeof(buf), "ExitCode:%lld", code);
            reason = buf;
        }
    }
done:
    if (get(o, "metadata", "deletionTimestamp", NULL, NULL) &&
        !json_is_null(get(o, "metadata", "deletionTimestamp", NULL, NULL)))
        reason = "Terminating";
    return json_string(reason);
}

/* Total restarts, or "3 (5m ago)" when the last restart's time is known.
 * Kubernetes sends the plain count as a string too; it stays a number here
 * because the table tests and clients already read it as one. */
static json_t *pod_restarts(const json_t *o)
{
    long long n = 0, last = -1;
    size_t i;
    json_t *cs;
    json_array_foreach(get(o, "status", "containerStatuses", NULL, NULL), i, cs) {
        long long r = json_integer_value(json_object_get(cs, "restartCount"));
        n += r;
        long long t = parse_rfc3339(gets(cs, "lastState", "terminated", "finishedAt"));
        if (r > 0 && t > last)
            last = t;
    }
    char buf[64];
    if (last >= 0) {
        char age[32];
        human_duration((long long)time(NULL) - last, age, sizeof(age));
        snprintf(buf, sizeof(buf), "%lld (%s ago)", n, age);
        return json_string(buf);
    }
    return json_integer(n);
}

static json_t *pod_ip(const json_t *o) { return str_or_none(gets(o, "status", "podIP", NULL)); }
static json_t *pod_node(const json_t *o) { return str_or_none(gets(o, "spec", "nodeName", NULL)); }
static json_t *pod_nominated(const json_t *o)
{
    return str_or_none(gets(o, "status", "nominatedNodeName", NULL));
}

static json_t *pod_gates(const json_t *o)
{
    const json_t *gates = get(o, "spec", "readinessGates", NULL, NULL);
    if (!json_array_size(gates))
        return json_string("<none>");
    long long ok = 0;
    size_t i, j;
    json_t *g, *c;
    json_array_foreach(gates, i, g) {
        const char *t = gets(g, "conditionType", NULL, NULL);
        json_array_foreach(get(o, "status", "conditions", NULL, NULL), j, c) {
            const char *ct = gets(c, "type", NULL, NULL), *st = gets(c, "status", NULL, NULL);
            if (t && ct && st && strcmp(t, ct) == 0 && strcmp(st, "True") == 0)
                ok++;
        }
    }
    return ratio(ok, (long long)json_array_size(gates));
}

static const kind_column_t pod_columns[] = {
    { "READY", "string", 0, NULL, pod_ready },
    { "STATUS", "string", 0, NULL, pod_status },
    { "RESTARTS", "string", 0, NULL, pod_restarts },
    { "IP", "string", 1, NULL, pod_ip },
    { "NODE", "string", 1, NULL, pod_node },
    { "NOMINATED NODE", "string", 1, NULL, pod_nominated },
    { "READINESS GATES", "string", 1, NULL, pod_gates },
    { NULL },
};

/* ---- workloads ------------------------------------------------------------- */

static long long spec_replicas(const json_t *o)
{
    const json_t *r = get(o, "spec", "replicas", NULL, NULL);
    return r ? json_integer_value(r) : 1;
}

static json_t *ready_of_replicas(const json_t *o)
{
    return ratio(geti(o, "status", "readyReplicas", NULL), spec_replicas(o));
}

static json_t *int_path(const json_t *o, const char *a, const char *b)
{
    return json_integer(geti(o, a, b, NULL));
}

static json_t *deploy_updated(const json_t *o) { return int_path(o, "status", "updatedReplicas"); }
static json_t *deploy_available(const json_t *o) { return int_path(o, "status", "availableReplicas"); }

static const kind_column_t deployment_columns[] = {
    { "READY", "string", 0, NULL, ready_of_replicas },
    { "UP-TO-DATE", "string", 0, NULL, deploy_updated },
    { "AVAILABLE", "string", 0, NULL, deploy_available },
    { "CONTAINERS", "string", 1, NULL, col_containers },
    { "IMAGES", "string", 1, NULL, col_images },
    { "SELECTOR", "string", 1, NULL, col_selector },
    { NULL },
};

static json_t *rs_desired(const json_t *o) { return json_integer(spec_replicas(o)); }
static json_t *rs_current(const json_t *o) { return int_path(o, "status", "replicas"); }
static json_t *rs_ready(const json_t *o) { return int_path(o, "status", "readyReplicas"); }

static const kind_column_t replicaset_columns[] = {
    { "DESIRED", "integer", 0, NULL, rs_desired },
    { "CURRENT", "integer", 0, NULL, rs_current },
    { "READY", "integer", 0, NULL, rs_ready },
    { "CONTAINERS", "string", 1, NULL, col_containers },
    { "IMAGES", "string", 1, NULL, col_images },
    { "SELECTOR", "string", 1, NULL, col_selector },
    { NULL },
};

static json_t *ds_desired(const json_t *o) { return int_path(o, "status", "desiredNumberScheduled"); }
static json_t *ds_current(const json_t *o) { return int_path(o, "status", "currentNumberScheduled"); }
static json_t *ds_ready(const json_t *o) { return int_path(o, "status", "numberReady"); }
static json_t *ds_updated(const json_t *o) { return int_path(o, "status", "updatedNumberScheduled"); }
static json_t *ds_available(const json_t *o) { return int_path(o, "status", "numberAvailable"); }
static json_t *ds_node_selector(const json_t *o)
{
    return map_string(get(o, "spec", "template", "spec", "nodeSelector"));
}

static const kind_column_t daemonset_columns[] = {
    { "DESIRED", "integer", 0, NULL, ds_desired },
    { "CURRENT", "integer", 0, NULL, ds_current },
    { "READY", "integer", 0, NULL, ds_ready },
    { "UP-TO-DATE", "integer", 0, NULL, ds_updated },
    { "AVAILABLE", "integer", 0, NULL, ds_available },
    { "NODE SELECTOR", "string", 0, NULL, ds_node_selector },
    { "CONTAINERS", "string", 1, NULL, col_containers },
    { "IMAGES", "string", 1, NULL, col_images },
    { "SELECTOR", "string", 1, NULL, col_selector },
    { NULL },
};

static const kind_column_t statefulset_columns[] = {
    { "READY", "string", 0, NULL, ready_of_replicas },
    { "CONTAINERS", "string", 1, NULL, col_containers },
    { "IMAGES", "string", 1, NULL, col_images },
    { NULL },
};

static json_t *cr_controller(const json_t *o)
{
    size_t i;
    json_t *ref;
    json_array_foreach(get(o, "metadata", "ownerReferences", NULL, NULL), i, ref) {
        if (!json_is_true(json_object_get(ref, "controller")))
            continue;
        const char *api = gets(ref, "apiVersion", NULL, NULL), *kind = gets(ref, "kind", NULL, NULL);
        const char *name = gets(ref, "name", NULL, NULL);
        char buf[384];
        const char *slash = api ? strchr(api, '/') : NULL;
        char group[128] = "";
        if (slash && (size_t)(slash - api) < sizeof(group)) {
            memcpy(group, api, (size_t)(slash - api));
            group[slash - api] = '\0';
        }
        char lower[128];
        snprintf(lower, sizeof(lower), "%s", kind ? kind : "");
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        snprintf(buf, sizeof(buf), "%s%s%s/%s", lower, group[0] ? "." : "", group, name ? name : "");
        return json_string(buf);
    }
    return json_string("<none>");
}

static json_t *cr_revision(const json_t *o) { return json_integer(geti(o, "revision", NULL, NULL)); }

static const kind_column_t controllerrevision_columns[] = {
    { "CONTROLLER", "string", 0, NULL, cr_controller },
    { "REVISION", "string", 0, NULL, cr_revision },
    { NULL },
};

/* ---- batch ----------------------------------------------------------------- */

static int has_condition(const json_t *o, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(get(o, "status", "conditions", NULL, NULL), i, c) {
        const char *t = gets(c, "type", NULL, NULL), *s = gets(c, "status", NULL, NULL);
        if (t && s && strcmp(t, type) == 0 && strcmp(s, "True") == 0)
            return 1;
    }
    return 0;
}

/* Finished states first, then the ones on the way there. */
static json_t *job_status(const json_t *o)
{
    if (has_condition(o, "Complete"))
        return json_string("Complete");
    if (has_condition(o, "Failed"))
        return json_string("Failed");
    const json_t *dt = get(o, "metadata", "deletionTimestamp", NULL, NULL);
    if (dt && !json_is_null(dt))
        return json_string("Terminating");
    static const char *const interim[] = { "SuccessCriteriaMet", "FailureTarget", "Suspended" };
    for (size_t i = 0; i < sizeof(interim) / sizeof(interim[0]); i++)
        if (has_condition(o, interim[i]))
            return json_string(interim[i]);
    return json_string("Running");
}

static json_t *job_completions(const json_t *o)
{
    const json_t *c = get(o, "spec", "completions", NULL, NULL);
    long long succeeded = geti(o, "status", "succeeded", NULL);
    if (c && !json_is_null(c))
        return ratio(succeeded, json_integer_value(c));
    /* No completions: any success completes the job (work queue); kubectl
     * shows "n/1 of p" with the parallelism. */
    const json_t *p = get(o, "spec", "parallelism", NULL, NULL);
    long long par = p ? json_integer_value(p) : 1;
    char buf[64];
    if (par > 1)
        snprintf(buf, sizeof(buf), "%lld/1 of %lld", succeeded, par);
    else
        snprintf(buf, sizeof(buf), "%lld/1", succeeded);
    return json_string(buf);
}

static json_t *job_duration(const json_t *o)
{
    long long start = parse_rfc3339(gets(o, "status", "startTime", NULL));
    if (start < 0)
        return json_string("");
    long long end = parse_rfc3339(gets(o, "status", "completionTime", NULL));
    if (end < 0)
        end = (long long)time(NULL);
    char buf[32];
    human_duration(end - start, buf, sizeof(buf));
    return json_string(buf);
}

static const kind_column_t job_columns[] = {
    { "STATUS", "string", 0, NULL, job_status },
    { "COMPLETIONS", "string", 0, NULL, job_completions },
    { "DURATION", "string", 0, NULL, job_duration },
    { "CONTAINERS", "string", 1, NULL, col_containers },
    { "IMAGES", "string", 1, NULL, col_images },
    { "SELECTOR", "string", 1, NULL, col_selector },
    { NULL },
};

static json_t *cj_timezone(const json_t *o) { return str_or_none(gets(o, "spec", "timeZone", NULL)); }
static json_t *cj_suspend(const json_t *o)
{
    return json_boolean(json_is_true(get(o, "spec", "suspend", NULL, NULL)));
}
static json_t *cj_active(const json_t *o)
{
    return json_integer((long long)json_array_size(get(o, "status", "active", NULL, NULL)));
}
static json_t *cj_last(const json_t *o)
{
    const char *t = gets(o, "status", "lastScheduleTime", NULL);
    return t ? age_of(t) : json_string("<none>");
}

static const kind_column_t cronjob_columns[] = {
    { "SCHEDULE", "string", 0, ".spec.schedule", NULL },
    { "TIMEZONE", "string", 0, NULL, cj_timezone },
    { "SUSPEND", "boolean", 0, NULL, cj_suspend },
    { "ACTIVE", "integer", 0, NULL, cj_active },
    { "LAST SCHEDULE", "string", 0, NULL, cj_last },
    { "CONTAINERS", "string", 1, NULL, col_cj_containers },
    { "IMAGES", "string", 1, NULL, col_cj_images },
    { "SELECTOR", "string", 1, NULL, col_cj_selector },
    { NULL },
};

/* ---- core ------------------------------------------------------------------ */

static json_t *svc_external_ip(const json_t *o)
{
    const char *type = gets(o, "spec", "type", NULL);
    sbuf_t b = { 0 };
    size_t i;
    json_t *v;
    if (type && strcmp(type, "ExternalName") == 0)
        return str_or_none(gets(o, "spec", "externalName", NULL));
    if (type && strcmp(type, "LoadBalancer") == 0) {
        json_array_foreach(get(o, "status", "loadBalancer", "ingress", NULL), i, v) {
            const char *ip = gets(v, "ip", NULL, NULL);
            if (!ip)
                ip = gets(v, "hostname", NULL, NULL);
            if (ip) {
                sb_sep(&b, ",");
                sb_add(&b, ip);
            }
        }
    }
    json_array_foreach(get(o, "spec", "externalIPs", NULL, NULL), i, v) {
        if (json_string_value(v)) {
            sb_sep(&b, ",");
            sb_add(&b, json_string_value(v));
        }
    }
    if (!b.len && type && strcmp(type, "LoadBalancer") == 0) {
        free(b.p);
        return json_string("<pending>");
    }
    return sb_finish(&b);
}

static json_t *svc_ports(const json_t *o)
{
    sbuf_t b = { 0 };
    size_t i;
    json_t *p;
    json_array_foreach(get(o, "spec", "ports", NULL, NULL), i, p) {
        char buf[96];
        const char *proto = gets(p, "protocol", NULL, NULL);
        long long port = geti(p, "port", NULL, NULL), np = geti(p, "nodePort", NULL, NULL);
        if (np)
            snprintf(buf, sizeof(buf), "%lld:%lld/%s", port, np, proto ? proto : "TCP");
        else
            snprintf(buf, sizeof(buf), "%lld/%s", port, proto ? proto : "TCP");
        sb_sep(&b, ",");
        sb_add(&b, buf);
    }
    return sb_finish(&b);
}

static json_t *svc_cluster_ip(const json_t *o)
{
    return str_or_none(gets(o, "spec", "clusterIP", NULL));
}

static json_t *svc_selector(const json_t *o) { return map_string(get(o, "spec", "selector", NULL, NULL)); }

static const kind_column_t service_columns[] = {
    { "TYPE", "string", 0, ".spec.type", NULL },
    { "CLUSTER-IP", "string", 0, NULL, svc_cluster_ip },
    { "EXTERNAL-IP", "string", 0, NULL, svc_external_ip },
    { "PORT(S)", "string", 0, NULL, svc_ports },
    { "SELECTOR", "string", 1, NULL, svc_selector },
    { NULL },
};

/* "10.0.0.1:80,10.0.0.2:80 + 3 more..." as kubectl abbreviates it. */
static json_t *ep_endpoints(const json_t *o)
{
    sbuf_t b = { 0 };
    int shown = 0, more = 0;
    size_t i, j, k;
    json_t *ss, *a, *p;
    json_array_foreach(get(o, "subsets", NULL, NULL, NULL), i, ss) {
        const json_t *ports = json_object_get(ss, "ports");
        json_array_foreach(json_object_get(ss, "addresses"), j, a) {
            const char *ip = gets(a, "ip", NULL, NULL);
            size_t np = json_array_size(ports);
            for (k = 0; k < (np ? np : 1); k++) {
                if (shown >= 3) {
                    more++;
                    continue;
                }
                char buf[96];
                p = json_array_get(ports, k);
                if (p)
                    snprintf(buf, sizeof(buf), "%s:%lld", ip ? ip : "", geti(p, "port", NULL, NULL));
                else
                    snprintf(buf, sizeof(buf), "%s", ip ? ip : "");
                sb_sep(&b, ",");
                sb_add(&b, buf);
                shown++;
            }
        }
    }
    if (more) {
        char buf[48];
        snprintf(buf, sizeof(buf), " + %d more...", more);
        sb_add(&b, buf);
    }
    return sb_finish(&b);
}

static const kind_column_t endpoints_columns[] = {
    { "ENDPOINTS", "string", 0, NULL, ep_endpoints },
    { NULL },
};

static json_t *count_maps(const json_t *o, const char *a, const char *b)
{
    return json_integer((long long)(json_object_size(json_object_get(o, a)) +
                                    (b ? json_object_size(json_object_get(o, b)) : 0)));
}

static json_t *cm_data(const json_t *o) { return count_maps(o, "data", "binaryData"); }
static json_t *secret_data(const json_t *o) { return count_maps(o, "data", NULL); }

static const kind_column_t configmap_columns[] = {
    { "DATA", "string", 0, NULL, cm_data },
    { NULL },
};

static const kind_column_t secret_columns[] = {
    { "TYPE", "string", 0, ".type", NULL },
    { "DATA", "string", 0, NULL, secret_data },
    { NULL },
};

static const kind_column_t namespace_columns[] = {
    { "STATUS", "string", 0, ".status.phase", NULL },
    { NULL },
};

static json_t *sa_secrets(const json_t *o)
{
    return json_integer((long long)json_array_size(json_object_get(o, "secrets")));
}

static const kind_column_t serviceaccount_columns[] = {
    { "SECRETS", "string", 0, NULL, sa_secrets },
    { NULL },
};

static json_t *node_status(const json_t *o)
{
    const char *ready = "Unknown";
    size_t i;
    json_t *c;
    json_array_foreach(get(o, "status", "conditions", NULL, NULL), i, c) {
        const char *t = gets(c, "type", NULL, NULL), *s = gets(c, "status", NULL, NULL);
        if (t && s && strcmp(t, "Ready") == 0)
            ready = strcmp(s, "True") == 0 ? "Ready" : strcmp(s, "False") == 0 ? "NotReady" : "Unknown";
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%s%s", ready,
             json_is_true(get(o, "spec", "unschedulable", NULL, NULL)) ? ",SchedulingDisabled" : "");
    return json_string(buf);
}

static json_t *node_roles(const json_t *o)
{
    static const char prefix[] = "node-role.kubernetes.io/";
    sbuf_t b = { 0 };
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(o, "metadata"), "labels"), k, v) {
        const char *role = NULL;
        if (strncmp(k, prefix, sizeof(prefix) - 1) == 0)
            role = k + sizeof(prefix) - 1;
        else if (strcmp(k, "kubernetes.io/role") == 0)
            role = json_string_value(v);
        if (role && *role) {
            sb_sep(&b, ",");
            sb_add(&b, role);
        }
    }
    return sb_finish(&b);
}

static json_t *node_address(const json_t *o, const char *type)
{
    size_t i;
    json_t *a;
    json_array_foreach(get(o, "status", "addresses", NULL, NULL), i, a) {
        const char *t = gets(a, "type", NULL, NULL);
        if (t && strcmp(t, type) == 0)
            return str_or_none(gets(a, "address", NULL, NULL));
    }
    return json_string("<none>");
}

static json_t *node_internal_ip(const json_t *o) { return node_address(o, "InternalIP"); }
static json_t *node_external_ip(const json_t *o) { return node_address(o, "ExternalIP"); }

static const kind_column_t node_columns[] = {
    { "STATUS", "string", 0, NULL, node_status },
    { "ROLES", "string", 0, NULL, node_roles },
    { "VERSION", "string", 0, ".status.nodeInfo.kubeletVersion", NULL },
    { "INTERNAL-IP", "string", 1, NULL, node_internal_ip },
    { "EXTERNAL-IP", "string", 1, NULL, node_external_ip },
    { "OS-IMAGE", "string", 1, ".status.nodeInfo.osImage", NULL },
    { "KERNEL-VERSION", "string", 1, ".status.nodeInfo.kernelVersion", NULL },
    { "CONTAINER-RUNTIME", "string", 1, ".status.nodeInfo.containerRuntimeVersion", NULL },
    { NULL },
};

static json_t *event_last_seen(const json_t *o)
{
    const char *t = gets(o, "lastTimestamp", NULL, NULL);
    if (!t)
        t = gets(o, "eventTime", NULL, NULL);
    if (!t)
        t = gets(o, "metadata", "creationTimestamp", NULL);
    return t ? age_of(t) : json_string("<unknown>");
}

static json_t *event_first_seen(const json_t *o)
{
    const char *t = gets(o, "firstTimestamp", NULL, NULL);
    if (!t)
        t = gets(o, "eventTime", NULL, NULL);
    return t ? age_of(t) : json_string("<unknown>");
}

static json_t *event_object(const json_t *o)
{
    const char *kind = gets(o, "involvedObject", "kind", NULL);
    const char *name = gets(o, "involvedObject", "name", NULL);
    char buf[384], lower[128];
    snprintf(lower, sizeof(lower), "%s", kind ? kind : "");
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    snprintf(buf, sizeof(buf), "%s/%s", lower, name ? name : "");
    return json_string(buf);
}

static json_t *event_source(const json_t *o)
{
    const char *comp = gets(o, "source", "component", NULL);
    const char *host = gets(o, "source", "host", NULL);
    if (!comp)
        comp = gets(o, "reportingComponent", NULL, NULL);
    char buf[384];
    if (host && *host)
        snprintf(buf, sizeof(buf), "%s, %s", comp ? comp : "", host);
    else
        snprintf(buf, sizeof(buf), "%s", comp ? comp : "");
    return json_string(buf);
}

static json_t *event_count(const json_t *o)
{
    const json_t *c = json_object_get(o, "count");
    return json_integer(c ? json_integer_value(c) : 1);
}

static const kind_column_t event_columns[] = {
    { "LAST SEEN", "string", 0, NULL, event_last_seen },
    { "TYPE", "string", 0, ".type", NULL },
    { "REASON", "string", 0, ".reason", NULL },
    { "OBJECT", "string", 0, NULL, event_object },
    { "MESSAGE", "string", 0, ".message", NULL },
    { "SUBOBJECT", "string", 1, ".involvedObject.fieldPath", NULL },
    { "SOURCE", "string", 1, NULL, event_source },
    { "FIRST SEEN", "string", 1, NULL, event_first_seen },
    { "COUNT", "string", 1, NULL, event_count },
    { NULL },
};

/* RWO,ROX,RWX,RWOP as kubectl abbreviates access modes. */
static json_t *access_modes(const json_t *modes)
{
    static const char *const names[][2] = {
        { "ReadWriteOnce", "RWO" }, { "ReadOnlyMany", "ROX" },
        { "ReadWriteMany", "RWX" }, { "ReadWriteOncePod", "RWOP" },
    };
    sbuf_t b = { 0 };
    for (size_t n = 0; n < 4; n++) {
        size_t i;
        json_t *m;
        json_array_foreach(modes, i, m) {
            if (json_string_value(m) && strcmp(json_string_value(m), names[n][0]) == 0) {
                sb_sep(&b, ",");
                sb_add(&b, names[n][1]);
                break;
            }
        }
    }
    if (!b.len) {
        free(b.p);
        return json_string("");
    }
    json_t *j = json_string(b.p);
    free(b.p);
    return j;
}

static json_t *pv_access(const json_t *o) { return access_modes(get(o, "spec", "accessModes", NULL, NULL)); }
static json_t *pv_claim(const json_t *o)
{
    const char *ns = gets(o, "spec", "claimRef", "namespace");
    const char *name = gets(o, "spec", "claimRef", "name");
    if (!name)
        return json_string("");
    char buf[384];
    snprintf(buf, sizeof(buf), "%s/%s", ns ? ns : "", name);
    return json_string(buf);
}
static json_t *vac_name(const json_t *o)
{
    const char *s = gets(o, "spec", "volumeAttributesClassName", NULL);
    return json_string(s && *s ? s : "<unset>");
}
static json_t *pv_capacity(const json_t *o)
{
    const json_t *q = get(o, "spec", "capacity", "storage", NULL);
    return json_string(json_string_value(q) ? json_string_value(q) : "");
}

static const kind_column_t pv_columns[] = {
    { "CAPACITY", "string", 0, NULL, pv_capacity },
    { "ACCESS MODES", "string", 0, NULL, pv_access },
    { "RECLAIM POLICY", "string", 0, ".spec.persistentVolumeReclaimPolicy", NULL },
    { "STATUS", "string", 0, ".status.phase", NULL },
    { "CLAIM", "string", 0, NULL, pv_claim },
    { "STORAGECLASS", "string", 0, ".spec.storageClassName", NULL },
    { "VOLUMEATTRIBUTESCLASS", "string", 0, NULL, vac_name },
    { "REASON", "string", 0, ".status.reason", NULL },
    { "VOLUMEMODE", "string", 1, ".spec.volumeMode", NULL },
    { NULL },
};

static json_t *pvc_access(const json_t *o) { return access_modes(get(o, "status", "accessModes", NULL, NULL)); }
static json_t *pvc_capacity(const json_t *o)
{
    const json_t *q = get(o, "status", "capacity", "storage", NULL);
    return json_string(json_string_value(q) ? json_string_value(q) : "");
}

static const kind_column_t pvc_columns[] = {
    { "STATUS", "string", 0, ".status.phase", NULL },
    { "VOLUME", "string", 0, ".spec.volumeName", NULL },
    { "CAPACITY", "string", 0, NULL, pvc_capacity },
    { "ACCESS MODES", "string", 0, NULL, pvc_access },
    { "STORAGECLASS", "string", 0, ".spec.storageClassName", NULL },
    { "VOLUMEATTRIBUTESCLASS", "string", 0, NULL, vac_name },
    { "VOLUMEMODE", "string", 1, ".spec.volumeMode", NULL },
    { NULL },
};

/* ---- other groups ---------------------------------------------------------- */

static const kind_column_t lease_columns[] = {
    { "HOLDER", "string", 0, ".spec.holderIdentity", NULL },
    { NULL },
};

static json_t *eps_ports(const json_t *o)
{
    sbuf_t b = { 0 };
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(o, "ports"), i, p) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", geti(p, "port", NULL, NULL));
        sb_sep(&b, ",");
        sb_add(&b, buf);
    }
    return sb_finish(&b);
}

static json_t *eps_endpoints(const json_t *o)
{
    sbuf_t b = { 0 };
    int shown = 0, more = 0;
    size_t i, j;
    json_t *e, *a;
    json_array_foreach(json_object_get(o, "endpoints"), i, e) {
        json_array_foreach(json_object_get(e, "addresses"), j, a) {
            if (shown >= 3) {
                more++;
                continue;
            }
            sb_sep(&b, ",");
            sb_add(&b, json_string_value(a) ? json_string_value(a) : "");
            shown++;
        }
    }
    if (more) {
        char buf[48];
        snprintf(buf, sizeof(buf), " + %d more...", more);
        sb_add(&b, buf);
    }
    return sb_finish(&b);
}

static const kind_column_t endpointslice_columns[] = {
    { "ADDRESSTYPE", "string", 0, ".addressType", NULL },
    { "PORTS", "string", 0, NULL, eps_ports },
    { "ENDPOINTS", "string", 0, NULL, eps_endpoints },
    { NULL },
};

static json_t *hpa_reference(const json_t *o)
{
    const char *kind = gets(o, "spec", "scaleTargetRef", "kind");
    const char *name = gets(o, "spec", "scaleTargetRef", "name");
    char buf[384];
    snprintf(buf, sizeof(buf), "%s/%s", kind ? kind : "", name ? name : "");
    return json_string(buf);
}

/* "cpu: 40%/80%" for resource utilization metrics, "<unknown>" where no
 * current value is reported yet. */
static json_t *hpa_targets(const json_t *o)
{
    sbuf_t b = { 0 };
    size_t i;
    json_t *m;
    const json_t *current = get(o, "status", "currentMetrics", NULL, NULL);
    json_array_foreach(get(o, "spec", "metrics", NULL, NULL), i, m) {
        const char *type = gets(m, "type", NULL, NULL);
        char buf[160];
        if (type && strcmp(type, "Resource") == 0) {
            const char *res = gets(m, "resource", "name", NULL);
            const json_t *util = get(m, "resource", "target", "averageUtilization", NULL);
            const json_t *cur = NULL;
            size_t j;
            json_t *c;
            json_array_foreach(current, j, c) {
                const char *cn = gets(c, "resource", "name", NULL);
                if (cn && res && strcmp(cn, res) == 0)
                    cur = get(c, "resource", "current", "averageUtilization", NULL);
            }
            char curs[32];
            if (cur)
                snprintf(curs, sizeof(curs), "%lld%%", (long long)json_integer_value(cur));
            else
                snprintf(curs, sizeof(curs), "<unknown>");
            if (util)
                snprintf(buf, sizeof(buf), "%s: %s/%lld%%", res ? res : "", curs,
                         (long long)json_integer_value(util));
            else
                snprintf(buf, sizeof(buf), "%s: %s", res ? res : "", curs);
        } else {
            snprintf(buf, sizeof(buf), "<unknown>");
        }
        sb_sep(&b, ", ");
        sb_add(&b, buf);
    }
    return sb_finish(&b);
}

static json_t *hpa_min(const json_t *o)
{
    const json_t *m = get(o, "spec", "minReplicas", NULL, NULL);
    return json_integer(m ? json_integer_value(m) : 1);
}

static const kind_column_t hpa_columns[] = {
    { "REFERENCE", "string", 0, NULL, hpa_reference },
    { "TARGETS", "string", 0, NULL, hpa_targets },
    { "MINPODS", "string", 0, NULL, hpa_min },
    { "MAXPODS", "string", 0, ".spec.maxReplicas", NULL },
    { "REPLICAS", "string", 0, ".status.currentReplicas", NULL },
    { NULL },
};

/* ---- policy, storage, quotas ------------------------------------------------- */

/* An int-or-string as kubectl prints it, "N/A" when absent. */
static json_t *int_or_string_cell(const json_t *v)
{
    if (json_is_string(v))
        return json_string(json_string_value(v));
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return json_string(buf);
    }
    return json_string("N/A");
}

static json_t *pdb_min(const json_t *o) { return int_or_string_cell(get(o, "spec", "minAvailable", NULL, NULL)); }
static json_t *pdb_max(const json_t *o) { return int_or_string_cell(get(o, "spec", "maxUnavailable", NULL, NULL)); }
static json_t *pdb_allowed(const json_t *o) { return int_path(o, "status", "disruptionsAllowed"); }

static const kind_column_t pdb_columns[] = {
    { "MIN AVAILABLE", "string", 0, NULL, pdb_min },
    { "MAX UNAVAILABLE", "string", 0, NULL, pdb_max },
    { "ALLOWED DISRUPTIONS", "integer", 0, NULL, pdb_allowed },
    { NULL },
};

/* Absent policy fields print as the values the API defaults them to. */
static json_t *sc_reclaim(const json_t *o)
{
    const char *s = gets(o, "reclaimPolicy", NULL, NULL);
    return json_string(s ? s : "Delete");
}
static json_t *sc_binding(const json_t *o)
{
    const char *s = gets(o, "volumeBindingMode", NULL, NULL);
    return json_string(s ? s : "Immediate");
}
static json_t *sc_expansion(const json_t *o)
{
    return json_boolean(json_is_true(json_object_get(o, "allowVolumeExpansion")));
}

static const kind_column_t storageclass_columns[] = {
    { "PROVISIONER", "string", 0, ".provisioner", NULL },
    { "RECLAIMPOLICY", "string", 0, NULL, sc_reclaim },
    { "VOLUMEBINDINGMODE", "string", 0, NULL, sc_binding },
    { "ALLOWVOLUMEEXPANSION", "string", 0, NULL, sc_expansion },
    { NULL },
};

/* kubectl shows LimitRanges with the creation time itself, not an age;
 * the kind lays out NAME, so no AGE is added. */
static json_t *created_at(const json_t *o)
{
    return json_string(gets(o, "metadata", "creationTimestamp", NULL) ? gets(o, "metadata", "creationTimestamp", NULL) : "");
}

static const kind_column_t limitrange_columns[] = {
    { "NAME", "string", 0, ".metadata.name", NULL },
    { "CREATED AT", "date", 0, NULL, created_at },
    { NULL },
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "requests.cpu: 500m/1, pods: 2/4" for the quota's resources whose name
 * does (limits) or does not (requests) start with "limits.", sorted by
 * name, used/hard. Kubernetes reads status.hard, which its quota
 * controller copies from spec.hard; until a status is written the spec
 * is shown with nothing used. */
static json_t *quota_cells(const json_t *o, int limits)
{
    const json_t *hard = get(o, "status", "hard", NULL, NULL);
    const json_t *used = get(o, "status", "used", NULL, NULL);
    if (!json_is_object(hard) || !json_object_size(hard)) {
        hard = get(o, "spec", "hard", NULL, NULL);
        used = NULL;
    }
    size_t n = json_object_size(hard), k = 0;
    const char **names = n ? calloc(n, sizeof(*names)) : NULL;
    if (n && !names)
        return json_string("");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)hard, key, v)
        names[k++] = key;
    if (k > 1)
        qsort(names, k, sizeof(*names), cmp_str);
    sbuf_t b = { 0 };
    for (size_t i = 0; i < k; i++) {
        int is_limit = strncmp(names[i], "limits.", 7) == 0;
        if (is_limit != limits)
            continue;
        char hq[64], uq[64];
        const json_t *h = json_object_get(hard, names[i]);
        const json_t *u = json_object_get(used, names[i]);
        if (json_is_string(h))
            snprintf(hq, sizeof(hq), "%s", json_string_value(h));
        else
            snprintf(hq, sizeof(hq), "%g", json_number_value(h));
        if (json_is_string(u))
            snprintf(uq, sizeof(uq), "%s", json_string_value(u));
        else
            snprintf(uq, sizeof(uq), "%g", u ? json_number_value(u) : 0.0);
        sb_sep(&b, ", ");
        sb_add(&b, names[i]);
        sb_add(&b, ": ");
        sb_add(&b, uq);
        sb_add(&b, "/");
        sb_add(&b, hq);
    }
    free(names);
    json_t *j = json_string(b.p ? b.p : "");
    free(b.p);
    return j;
}

static json_t *quota_request(const json_t *o) { return quota_cells(o, 0); }
static json_t *quota_limit(const json_t *o) { return quota_cells(o, 1); }

/* AGE comes second for quotas, as kubectl shows them. */
static const kind_column_t resourcequota_columns[] = {
    { "AGE", "string", 0, ".metadata.creationTimestamp", NULL },
    { "REQUEST", "string", 0, NULL, quota_request },
    { "LIMIT", "string", 0, NULL, quota_limit },
    { NULL },
};

/* ---- rbac.authorization.k8s.io ------------------------------------------------ */

/* Roles and ClusterRoles show NAME and CREATED AT, like LimitRanges. */
#define role_columns limitrange_columns

/* "ClusterRole/admin", as kubectl prints roleRef. */
static json_t *binding_role(const json_t *o)
{
    const char *kind = gets(o, "roleRef", "kind", NULL), *name = gets(o, "roleRef", "name", NULL);
    char buf[384];
    snprintf(buf, sizeof(buf), "%s/%s", kind ? kind : "", name ? name : "");
    return json_string(buf);
}

/* Subjects of one kind joined by ", "; ServiceAccounts as namespace/name. */
static json_t *binding_subjects(const json_t *o, const char *want)
{
    sbuf_t b = { 0 };
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(o, "subjects"), i, s) {
        const char *kind = gets(s, "kind", NULL, NULL), *name = gets(s, "name", NULL, NULL);
        const char *ns = gets(s, "namespace", NULL, NULL);
        if (!kind || !name || strcmp(kind, want) != 0)
            continue;
        sb_sep(&b, ", ");
        if (strcmp(kind, "ServiceAccount") == 0 && ns && *ns) {
            sb_add(&b, ns);
            sb_add(&b, "/");
        }
        sb_add(&b, name);
    }
    json_t *j = json_string(b.p ? b.p : "");
    free(b.p);
    return j;
}

static json_t *binding_users(const json_t *o) { return binding_subjects(o, "User"); }
static json_t *binding_groups(const json_t *o) { return binding_subjects(o, "Group"); }
static json_t *binding_sas(const json_t *o) { return binding_subjects(o, "ServiceAccount"); }

static const kind_column_t binding_columns[] = {
    { "ROLE", "string", 0, NULL, binding_role },
    { "USERS", "string", 1, NULL, binding_users },
    { "GROUPS", "string", 1, NULL, binding_groups },
    { "SERVICEACCOUNTS", "string", 1, NULL, binding_sas },
    { NULL },
};

/* Reviews are answered, never stored: create is their one verb. Their
 * list_kind names no real type; it is set only so code that formats a
 * list never meets a NULL before the API server refuses the verb. */
static const char *const create_only[] = { "create", NULL };
static const kind_column_t no_columns[] = { { NULL } };

/* ---- certificates.k8s.io/v1 CertificateSigningRequest ---------------------------- */

/* REQUESTEDDURATION: spec.expirationSeconds as a human duration, or <none> */
static json_t *csr_requested_duration(const json_t *o)
{
    json_t *es = json_object_get(json_object_get(o, "spec"), "expirationSeconds");
    if (!json_is_integer(es)) return json_string("<none>");
    char buf[32];
    human_duration((long long)json_integer_value(es), buf, sizeof buf);
    return json_string(buf);
}

/* CONDITION as kubectl's printer words it: Denied, else Approved, else
 * Pending; then ",Failed" and ",Issued" when they apply. */
static json_t *csr_condition(const json_t *o)
{
    const json_t *st = json_object_get(o, "status");
    int approved = 0, denied = 0, failed = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(st, "conditions"), i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (!t) continue;
        if (strcmp(t, "Approved") == 0) approved = 1;
        else if (strcmp(t, "Denied") == 0) denied = 1;
        else if (strcmp(t, "Failed") == 0) failed = 1;
    }
    const char *cert = json_string_value(json_object_get(st, "certificate"));
    char buf[64];
    snprintf(buf, sizeof buf, "%s%s%s", denied ? "Denied" : approved ? "Approved" : "Pending",
             failed ? ",Failed" : "", cert && *cert ? ",Issued" : "");
    return json_string(buf);
}

/* kubectl shows AGE second for CSRs */
static const kind_column_t csr_columns[] = {
    { "AGE", "date", 0, ".metadata.creationTimestamp", NULL },
    { "SIGNERNAME", "string", 0, ".spec.signerName", NULL },
    { "REQUESTOR", "string", 0, ".spec.username", NULL },
    { "REQUESTEDDURATION", "string", 0, NULL, csr_requested_duration },
    { "CONDITION", "string", 0, NULL, csr_condition },
    { NULL },
};

/* certificatesigningrequests/approval takes the whole CSR; only its
 * Approved and Denied conditions are written through it. */
static const char *const approval_verbs[] = { "get", "patch", "update", NULL };
static const kind_subresource_t csr_subresources[] = {
    { "approval", "certificates.k8s.io", "v1", "CertificateSigningRequest",
      "io.k8s.api.certificates.v1.CertificateSigningRequest", approval_verbs },
    { NULL },
};

/* ---- scheduling.k8s.io/v1 PriorityClass ------------------------------------------ */

static json_t *priorityclass_global_default(const json_t *o)
{
    return json_boolean(json_is_true(json_object_get(o, "globalDefault")));
}

static const kind_column_t priorityclass_columns[] = {
    { "VALUE", "integer", 0, ".value", NULL },
    { "GLOBAL-DEFAULT", "boolean", 0, NULL, priorityclass_global_default },
    { NULL },
};

static void defaults_priorityclass(json_t *obj)
{
    if (!json_object_get(obj, "preemptionPolicy"))
        json_object_set_new(obj, "preemptionPolicy", json_string("PreemptLowerPriority"));
}

/* pods/binding takes a v1 Binding: how a scheduler assigns a pod to a node. */
static const kind_subresource_t pod_subresources[] = {
    { "binding", "", "v1", "Binding", "io.k8s.api.core.v1.Binding", create_only },
    { NULL },
};

/* namespaces/finalize takes the Namespace itself: only its spec.finalizers
 * is written (what the namespace controller does once it is empty). */
static const char *const update_only[] = { "update", NULL };
static const kind_subresource_t namespace_subresources[] = {
    { "finalize", "", "v1", "Namespace", "io.k8s.api.core.v1.Namespace", update_only },
    { NULL },
};

static const kind_subresource_t serviceaccount_subresources[] = {
    { "token", "authentication.k8s.io", "v1", "TokenRequest",
      "io.k8s.api.authentication.v1.TokenRequest", create_only },
    { NULL },
};

/* ---- autoscaling/v1 HorizontalPodAutoscaler ------------------------------------ */

static json_t *hpa_v1_to_v2(const json_t *obj);
static json_t *hpa_v2_to_v1(const json_t *obj);

/* The v1 TARGETS cell is the v2 one of the same object. */
static json_t *hpa_v1_targets(const json_t *o)
{
    json_t *v2 = hpa_v1_to_v2(o);
    json_t *cell = v2 ? hpa_targets(v2) : json_string("<unknown>");
    json_decref(v2);
    return cell;
}

static const kind_column_t hpa_v1_columns[] = {
    { "REFERENCE", "string", 0, NULL, hpa_reference },
    { "TARGETS", "string", 0, NULL, hpa_v1_targets },
    { "MINPODS", "string", 0, NULL, hpa_min },
    { "MAXPODS", "string", 0, ".spec.maxReplicas", NULL },
    { "REPLICAS", "string", 0, ".status.currentReplicas", NULL },
    { NULL },
};

/* ---- the table ------------------------------------------------------------- */

#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char *const cat_all[] = { "all", NULL };

const kind_def_t kinds_builtin[] = {
    { "", "v1", "Namespace", "NamespaceList", "namespaces", "namespace", 0, NAMES("ns"), NULL,
      "io.k8s.api.core.v1.Namespace", NULL, 1, 0, NULL, namespace_columns, defaults_namespace,
      .subresources = namespace_subresources },
    { "", "v1", "Pod", "PodList", "pods", "pod", 1, NAMES("po"), cat_all,
      "io.k8s.api.core.v1.Pod", NULL, 1, 0, NULL, pod_columns, defaults_pod,
      .subresources = pod_subresources },
    { "", "v1", "Service", "ServiceList", "services", "service", 1, NAMES("svc"), cat_all,
      "io.k8s.api.core.v1.Service", NULL, 1, 0, NULL, service_columns, defaults_service },
    { "", "v1", "Endpoints", "EndpointsList", "endpoints", "endpoints", 1, NAMES("ep"), NULL,
      "io.k8s.api.core.v1.Endpoints", NULL, 0, 0, NULL, endpoints_columns, NULL },
    { "", "v1", "ConfigMap", "ConfigMapList", "configmaps", "configmap", 1, NAMES("cm"), NULL,
      "io.k8s.api.core.v1.ConfigMap", NULL, 0, 0, NULL, configmap_columns, NULL },
    { "", "v1", "Secret", "SecretList", "secrets", "secret", 1, NULL, NULL,
      "io.k8s.api.core.v1.Secret", NULL, 0, 0, NULL, secret_columns, defaults_secret },
    { "", "v1", "Node", "NodeList", "nodes", "node", 0, NAMES("no"), NULL,
      "io.k8s.api.core.v1.Node", NULL, 1, 0, NULL, node_columns, NULL },
    { "", "v1", "Event", "EventList", "events", "event", 1, NAMES("ev"), NULL,
      "io.k8s.api.core.v1.Event", NULL, 0, 0, NULL, event_columns, NULL },
    { "", "v1", "ServiceAccount", "ServiceAccountList", "serviceaccounts", "serviceaccount", 1,
      NAMES("sa"), NULL, "io.k8s.api.core.v1.ServiceAccount", NULL, 0, 0, NULL,
      serviceaccount_columns, NULL, .subresources = serviceaccount_subresources },
    { "", "v1", "PersistentVolume", "PersistentVolumeList", "persistentvolumes",
      "persistentvolume", 0, NAMES("pv"), NULL, "io.k8s.api.core.v1.PersistentVolume", NULL, 1,
      0, NULL, pv_columns, defaults_pv },
    { "", "v1", "PersistentVolumeClaim", "PersistentVolumeClaimList", "persistentvolumeclaims",
      "persistentvolumeclaim", 1, NAMES("pvc"), NULL,
      "io.k8s.api.core.v1.PersistentVolumeClaim", NULL, 1, 0, NULL, pvc_columns, defaults_pvc },
    { "apps", "v1", "Deployment", "DeploymentList", "deployments", "deployment", 1,
      NAMES("deploy"), cat_all, "io.k8s.api.apps.v1.Deployment", NULL, 1, 1, "spec.selector",
      deployment_columns, defaults_deployment },
    { "apps", "v1", "ReplicaSet", "ReplicaSetList", "replicasets", "replicaset", 1, NAMES("rs"),
      cat_all, "io.k8s.api.apps.v1.ReplicaSet", NULL, 1, 1, "spec.selector", replicaset_columns,
      defaults_replicaset },
    { "apps", "v1", "DaemonSet", "DaemonSetList", "daemonsets", "daemonset", 1, NAMES("ds"),
      cat_all, "io.k8s.api.apps.v1.DaemonSet", NULL, 1, 0, NULL, daemonset_columns,
      defaults_daemonset },
    { "apps", "v1", "StatefulSet", "StatefulSetList", "statefulsets", "statefulset", 1,
      NAMES("sts"), cat_all, "io.k8s.api.apps.v1.StatefulSet", NULL, 1, 1, "spec.selector",
      statefulset_columns, defaults_statefulset },
    { "apps", "v1", "ControllerRevision", "ControllerRevisionList", "controllerrevisions",
      "controllerrevision", 1, NULL, NULL, "io.k8s.api.apps.v1.ControllerRevision", NULL, 0, 0,
      NULL, controllerrevision_columns, NULL },
    { "batch", "v1", "Job", "JobList", "jobs", "job", 1, NULL, cat_all,
      "io.k8s.api.batch.v1.Job", NULL, 1, 0, NULL, job_columns, defaults_job },
    { "batch", "v1", "CronJob", "CronJobList", "cronjobs", "cronjob", 1, NAMES("cj"), cat_all,
      "io.k8s.api.batch.v1.CronJob", NULL, 1, 0, NULL, cronjob_columns, defaults_cronjob },
    { "scheduling.k8s.io", "v1", "PriorityClass", "PriorityClassList", "priorityclasses",
      "priorityclass", 0, NAMES("pc"), NULL, "io.k8s.api.scheduling.v1.PriorityClass", NULL, 0, 0,
      NULL, priorityclass_columns, defaults_priorityclass },
    { "coordination.k8s.io", "v1", "Lease", "LeaseList", "leases", "lease", 1, NULL, NULL,
      "io.k8s.api.coordination.v1.Lease", NULL, 0, 0, NULL, lease_columns, NULL },
    { "discovery.k8s.io", "v1", "EndpointSlice", "EndpointSliceList", "endpointslices",
      "endpointslice", 1, NULL, NULL, "io.k8s.api.discovery.v1.EndpointSlice", NULL, 0, 0, NULL,
      endpointslice_columns, NULL },
    { "autoscaling", "v2", "HorizontalPodAutoscaler", "HorizontalPodAutoscalerList",
      "horizontalpodautoscalers", "horizontalpodautoscaler", 1, NAMES("hpa"), cat_all,
      "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", NULL, 1, 0, NULL, hpa_columns,
      defaults_hpa },
    /* After v2: the first registered version is the preferred one. */
    { "autoscaling", "v1", "HorizontalPodAutoscaler", "HorizontalPodAutoscalerList",
      "horizontalpodautoscalers", "horizontalpodautoscaler", 1, NAMES("hpa"), cat_all,
      "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler", NULL, 1, 0, NULL, hpa_v1_columns,
      defaults_hpa, "v2", hpa_v1_to_v2, hpa_v2_to_v1 },
    { "", "v1", "LimitRange", "LimitRangeList", "limitranges", "limitrange", 1, NAMES("limits"),
      NULL, "io.k8s.api.core.v1.LimitRange", NULL, 0, 0, NULL, limitrange_columns,
      defaults_limitrange },
    { "", "v1", "ResourceQuota", "ResourceQuotaList", "resourcequotas", "resourcequota", 1,
      NAMES("quota"), NULL, "io.k8s.api.core.v1.ResourceQuota", NULL, 1, 0, NULL,
      resourcequota_columns, NULL },
    { "policy", "v1", "PodDisruptionBudget", "PodDisruptionBudgetList", "poddisruptionbudgets",
      "poddisruptionbudget", 1, NAMES("pdb"), NULL, "io.k8s.api.policy.v1.PodDisruptionBudget",
      NULL, 1, 0, NULL, pdb_columns, NULL },
    { "storage.k8s.io", "v1", "StorageClass", "StorageClassList", "storageclasses",
      "storageclass", 0, NAMES("sc"), NULL, "io.k8s.api.storage.v1.StorageClass", NULL, 0, 0,
      NULL, storageclass_columns, defaults_storageclass },
    { "rbac.authorization.k8s.io", "v1", "Role", "RoleList", "roles", "role", 1, NULL, NULL,
      "io.k8s.api.rbac.v1.Role", NULL, 0, 0, NULL, role_columns, NULL },
    { "rbac.authorization.k8s.io", "v1", "ClusterRole", "ClusterRoleList", "clusterroles",
      "clusterrole", 0, NULL, NULL, "io.k8s.api.rbac.v1.ClusterRole", NULL, 0, 0, NULL,
      role_columns, NULL },
    { "rbac.authorization.k8s.io", "v1", "RoleBinding", "RoleBindingList", "rolebindings",
      "rolebinding", 1, NULL, NULL, "io.k8s.api.rbac.v1.RoleBinding", NULL, 0, 0, NULL,
      binding_columns, NULL },
    { "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "ClusterRoleBindingList",
      "clusterrolebindings", "clusterrolebinding", 0, NULL, NULL,
      "io.k8s.api.rbac.v1.ClusterRoleBinding", NULL, 0, 0, NULL, binding_columns, NULL },
    { "certificates.k8s.io", "v1", "CertificateSigningRequest", "CertificateSigningRequestList",
      "certificatesigningrequests", "certificatesigningrequest", 0, NAMES("csr"), NULL,
      "io.k8s.api.certificates.v1.CertificateSigningRequest", NULL, 1, 0, NULL, csr_columns,
      NULL, .subresources = csr_subresources },
    { "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "SelfSubjectAccessReviewList",
      "selfsubjectaccessreviews", "selfsubjectaccessreview", 0, NULL, NULL,
      "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
      .columns = no_columns, .verbs = create_only },
    { "authorization.k8s.io", "v1", "SelfSubjectRulesReview", "SelfSubjectRulesReviewList",
      "selfsubjectrulesreviews", "selfsubjectrulesreview", 0, NULL, NULL,
      "io.k8s.api.authorization.v1.SelfSubjectRulesReview",
      .columns = no_columns, .verbs = create_only },
    { "authorization.k8s.io", "v1", "SubjectAccessReview", "SubjectAccessReviewList",
      "subjectaccessreviews", "subjectaccessreview", 0, NULL, NULL,
      "io.k8s.api.authorization.v1.SubjectAccessReview",
      .columns = no_columns, .verbs = create_only },
    { "authentication.k8s.io", "v1", "SelfSubjectReview", "SelfSubjectReviewList",
      "selfsubjectreviews", "selfsubjectreview", 0, NULL, NULL,
      "io.k8s.api.authentication.v1.SelfSubjectReview",
      .columns = no_columns, .verbs = create_only },
    { "authentication.k8s.io", "v1", "TokenReview", "TokenReviewList", "tokenreviews",
      "tokenreview", 0, NULL, NULL, "io.k8s.api.authentication.v1.TokenReview",
      .columns = no_columns, .verbs = create_only },
};

const size_t kinds_builtin_count = sizeof(kinds_builtin) / sizeof(kinds_builtin[0]);

/* ---- autoscaling/v1 <-> v2 ------------------------------------------------------ */

/* v1 has one target, spec.targetCPUUtilizationPercentage; v2 writes it as
 * a Resource metric on cpu with a Utilization target, and the current
 * value (status.currentCPUUtilizationPercentage) as the matching
 * currentMetrics entry. Every other field is the same in both versions.
 * What v2 alone can say (other metrics, behavior, conditions) is not
 * visible through v1; Kubernetes keeps it in autoscaling.alpha.kubernetes.io
 * annotations of the v1 form, this conversion drops it (an update through
 * v1 therefore removes it). */

static json_t *cpu_metric(const char *which, const json_t *value)
{
    json_t *inner = json_object();
    if (strcmp(which, "target") == 0)
        json_object_set_new(inner, "type", json_string("Utilization"));
    json_object_set(inner, "averageUtilization", (json_t *)value);
    return json_pack("{s:s, s:{s:s, s:o}}", "type", "Resource", "resource", "name", "cpu",
                     which, inner);
}

static json_t *with_version(const json_t *obj, const char *api_version)
{
    json_t *out = skiff_json_copy(obj);
    if (!out)
        return NULL;
    json_object_set_new(out, "kind", json_string("HorizontalPodAutoscaler"));
    json_object_set_new(out, "apiVersion", json_string(api_version));
    return out;
}

/* Move v1 field `from` of part into a one-entry v2 metrics list `to`. */
static void v1_to_list(json_t *part, const char *from, const char *to, const char *which)
{
    if (!json_is_object(part))
        return;
    json_t *v = json_object_get(part, from);
    if (v && !json_is_null(v))
        json_object_set_new(part, to, json_pack("[o]", cpu_metric(which, v)));
    json_object_del(part, from);
}

static json_t *hpa_v1_to_v2(const json_t *obj)
{
    json_t *out = with_version(obj, "autoscaling/v2");
    if (!out)
        return NULL;
    v1_to_list(json_object_get(out, "spec"), "targetCPUUtilizationPercentage", "metrics",
               "target");
    v1_to_list(json_object_get(out, "status"), "currentCPUUtilizationPercentage",
               "currentMetrics", "current");
    return out;
}

/* The averageUtilization of the first cpu Resource metric of list whose
 * `which` (target or current) has one; a target must be a Utilization. */
static const json_t *cpu_utilization(const json_t *list, const char *which)
{
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        const char *type = gets(m, "type", NULL, NULL);
        const char *name = gets(m, "resource", "name", NULL);
        if (!type || !name || strcmp(type, "Resource") != 0 || strcmp(name, "cpu") != 0)
            continue;
        const json_t *t = get(m, "resource", which, NULL, NULL);
        const char *tt = gets(t, "type", NULL, NULL);
        if (strcmp(which, "target") == 0 && (!tt || strcmp(tt, "Utilization") != 0))
            continue;
        const json_t *u = json_object_get(t, "averageUtilization");
        if (u && !json_is_null(u))
            return u;
    }
    return NULL;
}

static void v2_to_field(json_t *part, const char *from, const char *to, const char *which)
{
    if (!json_is_object(part))
        return;
    const json_t *u = cpu_utilization(json_object_get(part, from), which);
    if (u)
        json_object_set(part, to, (json_t *)u);
    json_object_del(part, from);
}

static json_t *hpa_v2_to_v1(const json_t *obj)
{
    json_t *out = with_version(obj, "autoscaling/v1");
    if (!out)
        return NULL;
    json_t *spec = json_object_get(out, "spec");
    v2_to_field(spec, "metrics", "targetCPUUtilizationPercentage", "target");
    if (json_is_object(spec))
        json_object_del(spec, "behavior");
    json_t *status = json_object_get(out, "status");
    v2_to_field(status, "currentMetrics", "currentCPUUtilizationPercentage", "current");
    if (json_is_object(status))
        json_object_del(status, "conditions");
    return out;
}

/* ---- field selectors ---------------------------------------------------------
 * Which fields each kind can be selected by (`--field-selector`), as the
 * Kubernetes API server allows them; every kind takes metadata.name and
 * metadata.namespace. */
static const struct {
    const char *group, *kind;
    const char *const fields[12];
} field_labels[] = {
    {"", "Pod", {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                 "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                 "status.podIPs", "status.nominatedNodeName", NULL}},
    {"", "Event", {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                   "involvedObject.uid", "involvedObject.apiVersion",
                   "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                   "reportingComponent", "source", "type", NULL}},
    {"", "Secret", {"type", NULL}},
    {"", "Node", {"spec.unschedulable", NULL}},
    {"", "Namespace", {"status.phase", NULL}},
    {"", "Service", {"spec.clusterIP", "spec.type", NULL}},
    {"", "PersistentVolumeClaim", {"spec.volumeName", NULL}},
    {"", "ReplicationController", {"status.replicas", NULL}},
    {"apps", "ReplicaSet", {"status.replicas", NULL}},
    {"batch", "Job", {"status.successful", NULL}},
    {"certificates.k8s.io", "CertificateSigningRequest", {"spec.signerName", NULL}},
};

int registry_field_label_supported(const kind_def_t *k, const char *path)
{
    if (strcmp(path, "metadata.name") == 0 || strcmp(path, "metadata.namespace") == 0) return 1;
    if (k->crd) return crd_field_selectable(k->crd, path);
    for (size_t i = 0; i < sizeof field_labels / sizeof *field_labels; i++) {
        if (strcmp(field_labels[i].group, k->group) != 0 ||
            strcmp(field_labels[i].kind, k->kind) != 0)
            continue;
        for (size_t j = 0; field_labels[i].fields[j]; j++)
            if (strcmp(field_labels[i].fields[j], path) == 0) return 1;
    }
    return 0;
}
