/* plugins/controllers/endpoints/service_pods.c - Service-to-pod helpers and
 * the write batch shared by the Endpoints and EndpointSlice controllers
 * (see service_pods.h). Reads only the informers' caches. */
#include "service_pods.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


const char *jstr(const json_t *o, ...)
{
    va_list ap;
    va_start(ap, o);
    const char *k;
    while (o && (k = va_arg(ap, const char *)) != NULL) o = json_object_get(o, k);
    va_end(ap);
    return json_string_value(o);
}

static const char *meta_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(json_object_get(o, "metadata"), k));
    return s ? s : "";
}

const char *obj_name(const json_t *o) { return meta_str(o, "name"); }
const char *obj_ns(const json_t *o) { return meta_str(o, "namespace"); }
const char *obj_uid(const json_t *o) { return meta_str(o, "uid"); }

int svc_is_headless(const json_t *svc)
{
    const char *ip = jstr(svc, "spec", "clusterIP", NULL);
    return ip && strcmp(ip, "None") == 0;
}

json_t *svc_selector(const json_t *svc)
{
    /* an ExternalName Service is a DNS name: it gets no endpoints
     * (kubernetes/kubernetes#105986) */
    const char *type = jstr(svc, "spec", "type", NULL);
    if (type && strcmp(type, "ExternalName") == 0) return NULL;
    json_t *sel = json_object_get(json_object_get(svc, "spec"), "selector");
    /* an empty map is dropped on the wire in Kubernetes: it means none */
    return json_is_object(sel) && json_object_size(sel) > 0 ? sel : NULL;
}

int selector_map_matches(const json_t *selector, const json_t *obj)
{
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)selector, k, v) {
        const char *have = json_string_value(json_object_get(labels, k));
        if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)) != 0) return 0;
    }
    return 1;
}

json_t *svc_selected_pods(const json_t *svc, skiff_informer_t *pods)
{
    json_t *out = json_array();
    json_t *sel = svc_selector(svc);
    json_t *all = skiff_informer_list_namespace(pods, obj_ns(svc));
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p) {
        if (sel && selector_map_matches(sel, p)) json_array_append(out, p);
    }
    json_decref(all);
    return out;
}

void svc_enqueue_for_pod(skiff_controller_t *c, json_t *pod)
{
    json_t *svcs = skiff_informer_list_namespace(skiff_controller_informer(c), obj_ns(pod));
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s) {
        json_t *sel = svc_selector(s);
        if (!sel || !selector_map_matches(sel, pod)) continue;
        char key[512];
        int n = skiff_object_key(key, sizeof key, s);
        if (n > 0 && (size_t)n < sizeof key) skiff_controller_enqueue(c, key);
    }
    json_decref(svcs);
}

int pod_in_endpoints(const json_t *pod, int include_terminating)
{
    const char *ip = jstr(pod, "status", "podIP", NULL);
    if (!ip || !*ip) return 0;
    if (!include_terminating && json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp"))
        return 0;
    const char *policy = jstr(pod, "spec", "restartPolicy", NULL);
    const char *phase = jstr(pod, "status", "phase", NULL);
    if (!phase) phase = "";
    /* a pod that will not run again is out; one that restarts may come back */
    if (policy && strcmp(policy, "Never") == 0)
        return strcmp(phase, "Failed") != 0 && strcmp(phase, "Succeeded") != 0;
    if (policy && strcmp(policy, "OnFailure") == 0) return strcmp(phase, "Succeeded") != 0;
    return 1;
}

int pod_target_port(const json_t *pod, const json_t *svc_port)
{
    json_t *tp = json_object_get(svc_port, "targetPort");
    if (!tp) tp = json_object_get(svc_port, "port");
    if (json_is_integer(tp)) return (int)json_integer_value(tp);
    const char *name = json_string_value(tp);
    if (!name) return -1;
    /* an int-or-string given as "8080" in JSON is still a number */
    char *end;
    long n = strtol(name, &end, 10);
    if (*name && !*end && n > 0 && n < 65536) return (int)n;
    const char *proto = jstr(svc_port, "protocol", NULL);
    if (!proto) proto = "TCP";
    size_t i, j;
    json_t *c, *p;
    json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, c) {
        json_array_foreach(json_object_get(c, "ports"), j, p) {
            const char *pn = jstr(p, "name", NULL);
            const char *pp = jstr(p, "protocol", NULL);
            if (!pp) pp = "TCP";
            if (pn && strcmp(pn, name) == 0 && strcmp(pp, proto) == 0)
                return (int)json_integer_value(json_object_get(p, "containerPort"));
        }
    }
    return -1;
}

const char *pod_hostname_for(const json_t *pod, const json_t *svc)
{
    const char *host = jstr(pod, "spec", "hostname", NULL);
    const char *sub = jstr(pod, "spec", "subdomain", NULL);
    if (!host || !*host || !sub || strcmp(sub, obj_name(svc)) != 0) return NULL;
    return strcmp(obj_ns(pod), obj_ns(svc)) == 0 ? host : NULL;
}

int ip_is_v6(const char *ip) { return ip && strchr(ip, ':') != NULL; }

/* ---- events ------------------------------------------------------------------------ */

static int has_ip(const json_t *pod)
{
    const char *ip = jstr(pod, "status", "podIP", NULL);
    return ip && *ip;
}

/* Whether a and b, two versions of a pod, agree on what can change its
 * endpoints: labels, deletion, addresses, readiness, phase, node,
 * hostname and subdomain (container ports cannot change). Compared in
 * place: building and encoding a signature of each was 3% of the event
 * loop binding 50,000 pods. */
static int same_for_endpoints(const json_t *a, const json_t *b)
{
    static const char *const meta_keys[] = {"labels", "deletionTimestamp", NULL};
    static const char *const status_keys[] = {"podIP", "podIPs", "phase", NULL};
    static const char *const spec_keys[] = {"nodeName", "hostname", "subdomain", NULL};
    const char *const *keys[] = {meta_keys, status_keys, spec_keys};
    const char *parts[] = {"metadata", "status", "spec"};
    for (size_t p = 0; p < 3; p++) {
        const json_t *pa = json_object_get(a, parts[p]), *pb = json_object_get(b, parts[p]);
        for (const char *const *k = keys[p]; *k; k++)
            if (!skiff_json_same(json_object_get(pa, *k), json_object_get(pb, *k))) return 0;
    }
    return skiff_json_same(skiff_condition_get(a, "Ready"), skiff_condition_get(b, "Ready"));
}

static void pod_added(void *data, json_t *pod)
{
    ctl_state_t *s = data;
    if (has_ip(pod)) svc_enqueue_for_pod(s->c, pod);
}

static void pod_updated(void *data, json_t *old, json_t *pod)
{
    ctl_state_t *s = data;
    if (old != pod) {
        if (same_for_endpoints(old, pod)) return;
        svc_enqueue_for_pod(s->c, old);
    }
    svc_enqueue_for_pod(s->c, pod);
}

static void pod_deleted(void *data, json_t *pod) { pod_added(data, pod); }

static void own_enqueue(ctl_state_t *s, const json_t *obj)
{
    char key[512];
    if (s->service_key(obj, key, sizeof key) == 0) skiff_controller_enqueue(s->c, key);
}

/* 1 when obj is at the resourceVersion we wrote it with. */
static int our_write(ctl_state_t *s, const json_t *obj)
{
    char key[600];
    snprintf(key, sizeof key, "%s/%s", obj_ns(obj), obj_name(obj));
    const char *rv = jstr(obj, "metadata", "resourceVersion", NULL);
    const char *ours = json_string_value(json_object_get(s->written, key));
    return rv && ours && strcmp(rv, ours) == 0;
}

static void own_added(void *data, json_t *obj)
{
    ctl_state_t *s = data;
    if (!our_write(s, obj)) own_enqueue(s, obj);
}

static void own_updated(void *data, json_t *old, json_t *obj)
{
    ctl_state_t *s = data;
    if (old == obj || our_write(s, obj)) return; /* a resync, or our own write */
    own_enqueue(s, obj);
}

static void own_deleted(void *data, json_t *obj)
{
    ctl_state_t *s = data;
    char key[600];
    snprintf(key, sizeof key, "%s/%s", obj_ns(obj), obj_name(obj));
    json_object_del(s->written, key);
    own_enqueue(s, obj);
}

void map_nothing(void *data, skiff_controller_t *c, json_t *obj) {}

int ctl_watch(ctl_state_t *s, size_t pods_index, size_t own_index)
{
    s->pod_inf = skiff_controller_secondary_informer(s->c, pods_index);
    s->own_inf = skiff_controller_secondary_informer(s->c, own_index);
    skiff_informer_handler_t ph = {pod_added, pod_updated, pod_deleted, s};
    skiff_informer_handler_t oh = {own_added, own_updated, own_deleted, s};
    s->pod_hid = skiff_informer_add_handler(s->pod_inf, &ph);
    if (s->pod_hid < 0) return s->pod_hid;
    s->own_hid = skiff_informer_add_handler(s->own_inf, &oh);
    return s->own_hid < 0 ? s->own_hid : 0;
}

void ctl_unwatch(ctl_state_t *s)
{
    if (s->pod_hid > 0) skiff_informer_remove_handler(s->pod_inf, s->pod_hid);
    if (s->own_hid > 0) skiff_informer_remove_handler(s->own_inf, s->own_hid);
    s->pod_hid = s->own_hid = 0;
}

int ctl_start(ctl_state_t *s, skiff_plugin_ctx_t *ctx)
{
    /* both controllers watch pods first, in the pods view; nodes (the
     * EndpointSlice controller's zones) in the nodes view */
    skiff_controller_transform_t views[4] = {skiff_pod_view_transform(0)};
    size_t n_views = 1;
    for (size_t i = 1; i < s->desc.n_secondary && n_views < 4; i++)
        if (!*s->desc.secondary[i].resource.group &&
            strcmp(s->desc.secondary[i].resource.resource, "nodes") == 0)
            views[n_views++] = skiff_node_view_transform(i);
    int rc = skiff_controller_new_transformed(ctx, ctx->informers, &s->desc, views, n_views, &s->c);
    if (rc == 0) rc = ctl_watch(s, 0, 1);
    if (rc == 0) rc = skiff_controller_start(s->c);
    if (rc != 0) {
        ctl_unwatch(s);
        if (s->c) skiff_controller_free(s->c);
        ctl_state_unref(s);
        return rc;
    }
    ctx->plugin_data = s;
    return 0;
}

void ctl_stop(skiff_plugin_ctx_t *ctx)
{
    ctl_state_t *s = ctx->plugin_data;
    if (!s) return;
    ctx->plugin_data = NULL;
    s->stopped = 1;
    ctl_unwatch(s);
    skiff_controller_free(s->c);
    ctl_state_unref(s);
}

/* ---- change-trigger times ------------------------------------------------------ */

/* A pod's change that matters to its endpoints is its Ready transition;
 * a pod without one has not changed anything yet (-1). */
static int64_t pod_trigger_ms(const json_t *pod)
{
    json_t *c = skiff_condition_get(pod, "Ready");
    return skiff_time_parse(jstr(c, "lastTransitionTime", NULL));
}

int64_t trigger_time(trigger_tracker_t *t, const char *key, const json_t *svc, const json_t *pods)
{
    if (!t->services) t->services = json_object();
    json_t *st = json_object_get(t->services, key);
    if (!st) {
        st = json_pack("{s:I, s:{}}", "svc", (json_int_t)-1, "pods");
        json_object_set_new(t->services, key, st);
    }
    int64_t min = -1;
    json_t *seen = json_object_get(st, "pods");
    json_t *now_pods = json_object();
    size_t i;
    json_t *p;
    json_array_foreach((json_t *)pods, i, p) {
        int64_t pt = pod_trigger_ms(p);
        json_t *old = json_object_get(seen, obj_name(p));
        if (pt >= 0 && (!old || json_integer_value(old) < pt) && (min < 0 || pt < min)) min = pt;
        json_object_set_new(now_pods, obj_name(p), json_integer(pt));
    }
    json_object_set_new(st, "pods", now_pods);
    int64_t created = skiff_time_parse(jstr(svc, "metadata", "creationTimestamp", NULL));
    if (created >= 0 && json_integer_value(json_object_get(st, "svc")) < created) {
        if (min < 0 || created < min) min = created;
        json_object_set_new(st, "svc", json_integer(created));
    }
    return min;
}

void trigger_forget(trigger_tracker_t *t, const char *key)
{
    if (t->services) json_object_del(t->services, key);
}

/* ---- batching -------------------------------------------------------------------- */

int ctl_read_batch_period(ctl_state_t *s)
{
    const char *v = s->ctx->setting ? s->ctx->setting(s->ctx, "batchPeriod") : NULL;
    if (!v) v = "0";
    char *end;
    double n = strtod(v, &end);
    double mult = strcmp(end, "ms") == 0 ? 1 : strcmp(end, "s") == 0 ? 1000
                : strcmp(end, "m") == 0 ? 60000 : (*end == '\0' && n == 0) ? 1 : -1;
    if (end == v || mult < 0 || n < 0 || n * mult > 3600000) {
        if (s->ctx->log)
            s->ctx->log(s->ctx, SKIFF_LOG_ERROR,
                        "batchPeriod must be a duration such as 100ms or 1s, not \"%s\"", v);
        return SKIFF_EINVAL;
    }
    s->batch_ms = (int64_t)(n * mult);
    return 0;
}

int64_t ctl_sync_wait(ctl_state_t *s, const char *key)
{
    int64_t now = skiff_now_ms();
    int64_t last = json_integer_value(json_object_get(s->last_sync, key));
    if (s->batch_ms > 0 && last > 0 && now - last < s->batch_ms && now >= last)
        return s->batch_ms - (now - last);
    json_object_set_new(s->last_sync, key, json_integer(now));
    return 0;
}

void ctl_sync_forget(ctl_state_t *s, const char *key) { json_object_del(s->last_sync, key); }

/* ---- plugin state and write batches -------------------------------------------- */

ctl_state_t *ctl_state_new(skiff_plugin_ctx_t *ctx)
{
    ctl_state_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->refs = 1;
    s->ctx = ctx;
    s->tracker.services = json_object();
    s->expect = json_object();
    s->written = json_object();
    s->last_sync = json_object();
    return s;
}

void ctl_state_unref(ctl_state_t *s)
{
    if (!s || --s->refs > 0) return;
    json_decref(s->tracker.services);
    json_decref(s->expect);
    json_decref(s->written);
    json_decref(s->last_sync);
    free(s->extra);
    free(s);
}

write_batch_t *batch_new(skiff_reconcile_t *r, ctl_state_t *s)
{
    write_batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->r = r;
    b->s = s;
    b->pending = 1;
    s->refs++;
    return b;
}

static void batch_release(write_batch_t *b)
{
    if (--b->pending > 0) return;
    skiff_reconcile_result_t res = {SKIFF_RECONCILE_DONE};
    if (b->error) res = (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, b->error};
    else if (b->requeue_after_ms > 0)
        res = (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, b->requeue_after_ms};
    skiff_reconcile_done(b->r, res);
    ctl_state_unref(b->s);
    free(b);
}

/* One write of a batch: the name it is about, for the expectations. */
typedef struct batch_write {
    write_batch_t *b;
    int is_delete;
    char name[256];
} batch_write_t;

static void expect(ctl_state_t *s, const char *key, const char *name, int64_t rv)
{
    if (!s->expect || !name || !*name) return;
    json_t *m = json_object_get(s->expect, key);
    if (!m) {
        m = json_object();
        json_object_set_new(s->expect, key, m);
    }
    json_object_set_new(m, name, json_pack("{s:I, s:I}", "rv", (json_int_t)rv, "at",
                                           (json_int_t)skiff_now_ms()));
}

#define EXPECT_TTL_MS 3000

int expectations_met(ctl_state_t *s, const char *key, skiff_informer_t *inf, const char *ns)
{
    json_t *m = json_object_get(s->expect, key);
    if (!m) return 1;
    int64_t now = skiff_now_ms();
    const char *name;
    json_t *e, *tmp;
    json_object_foreach_safe(m, tmp, name, e) {
        char k[600];
        snprintf(k, sizeof k, "%s/%s", ns, name);
        json_t *obj = skiff_informer_get(inf, k);
        int64_t rv = json_integer_value(json_object_get(e, "rv"));
        const char *have = jstr(obj, "metadata", "resourceVersion", NULL);
        int met = rv < 0 ? obj == NULL : (have && strtoll(have, NULL, 10) >= rv);
        if (met || now - json_integer_value(json_object_get(e, "at")) > EXPECT_TTL_MS)
            json_object_del(m, name);
    }
    if (json_object_size(m) == 0) {
        json_object_del(s->expect, key);
        return 1;
    }
    return 0;
}

static void on_write(void *data, int status, json_t *obj)
{
    batch_write_t *w = data;
    write_batch_t *b = w->b;
    if (w->is_delete && status == 404) status = 200; /* already gone is as good */
    if (status < 200 || status >= 300) {
        int e = status == 409 ? SKIFF_ECONFLICT : status == 404 ? SKIFF_ENOENT : SKIFF_EIO;
        if (!b->error) b->error = e;
        if (!b->s->stopped && status != 409 && b->s->ctx->log) {
            const char *msg = jstr(obj, "message", NULL);
            b->s->ctx->log(b->s->ctx, SKIFF_LOG_WARN, "%s: write failed (%d): %s", b->r->key,
                           status, msg ? msg : "no answer");
        }
    } else if (w->is_delete) {
        expect(b->s, b->r->key, w->name, -1);
    } else {
        const char *rv = jstr(obj, "metadata", "resourceVersion", NULL);
        if (rv) {
            expect(b->s, b->r->key, obj_name(obj), strtoll(rv, NULL, 10));
            char key[600];
            snprintf(key, sizeof key, "%s/%s", obj_ns(obj), obj_name(obj));
            json_object_set_new(b->s->written, key, json_string(rv));
        }
    }
    free(w);
    batch_release(b);
}

static batch_write_t *write_new(write_batch_t *b, const char *name, int is_delete)
{
    batch_write_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->b = b;
    w->is_delete = is_delete;
    snprintf(w->name, sizeof w->name, "%s", name ? name : "");
    b->pending++;
    return w;
}

static void issued(write_batch_t *b, batch_write_t *w, int rc)
{
    if (w && rc == 0) return;
    if (!b->error) b->error = w ? rc : SKIFF_ENOMEM;
    if (w) {
        free(w);
        batch_release(b);
    }
}

void batch_create(write_batch_t *b, const skiff_resource_t *res, const char *ns, json_t *obj)
{
    batch_write_t *w = write_new(b, NULL, 0);
    issued(b, w, w ? skiff_client_create(b->s->ctx->client, res, ns, obj, NULL, on_write, w) : 0);
}

void batch_update(write_batch_t *b, const skiff_resource_t *res, const char *ns, json_t *obj)
{
    batch_write_t *w = write_new(b, NULL, 0);
    issued(b, w, w ? skiff_client_update(b->s->ctx->client, res, ns, obj, NULL, on_write, w) : 0);
}

void batch_delete(write_batch_t *b, const skiff_resource_t *res, const char *ns, const char *name)
{
    batch_write_t *w = write_new(b, name, 1);
    issued(b, w, w ? skiff_client_delete(b->s->ctx->client, res, ns, name, NULL, on_write, w) : 0);
}

void batch_finish(write_batch_t *b) { batch_release(b); }
