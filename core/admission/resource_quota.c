/* core/admission/resource_quota.c - ResourceQuota: admission and the
 * quota's status.
 *
 * Admission (validate, on create): for every quota of the namespace whose
 * scopes select the new object, a pod under a cpu/memory quota must state
 * its requests or limits (`failed quota: NAME: must specify ...`), and
 * what the object uses plus what is used already must stay within
 * spec.hard (`exceeded quota: NAME, requested: pods=1, used: pods=2,
 * limited: pods=2`), both 403 as in Kubernetes. Usage is recounted from
 * the server's caches, plus the objects admitted in the last moments that
 * the cache does not show yet, so that a burst of creates cannot all slip
 * under one limit.
 *
 * Status: status.hard (a copy of spec.hard) and status.used are kept up
 * to date by recounting a namespace's quotas shortly after anything in it
 * changes (and every 10 s for all of them); that is what
 * `kubectl describe quota` shows as Used and Hard. The accounting rules
 * are in quota_usage.c. Updates are not charged (a pod's resources cannot
 * change; a grown claim or a service changing type is counted at the next
 * recount but not refused). */
#define _GNU_SOURCE
#include "admission/admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "admission/quota_usage.h"
#include "api/apiserver_int.h"
#include "api/object_meta.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strmap.h"

#define DEBOUNCE_MS 30
#define RESYNC_MS 10000
#define PENDING_MS 5000
#define MAX_PENDING 256

/* an object admitted but not yet in the cache */
typedef struct pending {
    char *ns, *group, *resource, *name;
    json_t *obj;
    uint64_t expires;
} pending_t;

typedef struct quota_state {
    api_server_t *srv;
    uv_loop_t *loop;
    uv_timer_t timer;
    strmap_t *dirty;     /* namespaces to recount */
    strmap_t *quota_ns;  /* namespaces that have quotas */
    int known;           /* quota_ns built from the cache */
    int short_pending;   /* the timer is set for a debounced pass */
    int inflight;        /* status writes in progress */
    int closing, timer_closed;
    pending_t pending[MAX_PENDING];
    size_t npending;
} quota_state_t;

static const kind_def_t *kind_of(const char *group, const char *resource)
{
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        if (!strcmp(k->group, group) && !strcmp(k->resource, resource))
            return registry_storage_kind(k);
    }
    return NULL;
}

static watch_cache_t *cache_of(api_server_t *s, const char *group, const char *resource)
{
    const kind_def_t *k = kind_of(group, resource);
    return k ? api_cache_for(s, k) : NULL;
}

static void pending_drop(quota_state_t *st, size_t i)
{
    pending_t *p = &st->pending[i];
    free(p->ns);
    free(p->group);
    free(p->resource);
    free(p->name);
    json_decref(p->obj);
    st->pending[i] = st->pending[--st->npending];
}

static void pending_expire(quota_state_t *st)
{
    uint64_t now = uv_now(st->loop);
    for (size_t i = 0; i < st->npending;)
        if (st->pending[i].expires <= now) pending_drop(st, i);
        else i++;
}

/* What the namespace's objects use of key (milli-units), in the cache and
 * pending, for the quota q. */
static int64_t used_of(quota_state_t *st, const json_t *q, const char *key, const char *ns)
{
    char group[128], resource[128];
    if (quota_key_resource(key, group, sizeof group, resource, sizeof resource) != 0) return 0;
    watch_cache_t *wc = cache_of(st->srv, group, resource);
    if (!wc) return 0;
    cache_obj_t **items;
    size_t n = watch_cache_list(wc, ns, NULL, NULL, &items);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = cache_obj_parsed(items[i]);
        if (o && quota_scopes_match(q, group, resource, o))
            sum += quota_object_usage(key, group, resource, o);
    }
    watch_cache_list_free(items, n);
    for (size_t i = 0; i < st->npending; i++) {
        pending_t *p = &st->pending[i];
        if (strcmp(p->ns, ns) || strcmp(p->group, group) || strcmp(p->resource, resource)) continue;
        char ck[600];
        snprintf(ck, sizeof ck, "%s/%s", p->ns, p->name);
        if (watch_cache_get(wc, ck)) continue; /* counted above */
        if (quota_scopes_match(q, group, resource, p->obj))
            sum += quota_object_usage(key, group, resource, p->obj);
    }
    return sum;
}

static int64_t milli_of(const json_t *v)
{
    int64_t m = 0;
    skiff_quantity_milli_json(v, &m);
    return m;
}

/* "k=v,k=v" over the keys in `keys` */
static void pretty(strbuf_t *b, const char *const *keys, const int64_t *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char v[64];
        quota_format(keys[i], vals[i], v, sizeof v);
        if (i) strbuf_add(b, ",");
        strbuf_add(b, keys[i]);
        strbuf_add(b, "=");
        strbuf_add(b, v);
    }
}

static size_t sorted_keys(const json_t *o, const char **keys, size_t max)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (n == max) break;
        size_t i = n++;
        while (i > 0 && strcmp(keys[i - 1], k) > 0) {
            keys[i] = keys[i - 1];
            i--;
        }
        keys[i] = k;
    }
    return n;
}

/* 0, or a denial for quota q */
static int check_quota(quota_state_t *st, const skiff_admission_request_t *req, const json_t *q)
{
    const char *qname = json_string_value(json_object_get(json_object_get(q, "metadata"), "name"));
    const json_t *hard = json_object_get(json_object_get(q, "spec"), "hard");
    if (!json_object_size(hard) || !quota_scopes_match(q, req->group, req->resource, req->object))
        return 0;
    if (!req->group[0] && !strcmp(req->resource, "pods")) {
        char *why = quota_pod_constraints(hard, req->object);
        if (why) {
            int rc = admission_forbid(req, "failed quota: %s: %s", qname ? qname : "", why);
            free(why);
            return rc;
        }
    }
    const char *keys[64], *over[64];
    int64_t want[64], used[64], limit[64];
    size_t n = sorted_keys(hard, keys, 64), nover = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t amount = quota_object_usage(keys[i], req->group, req->resource, req->object);
        if (amount <= 0) continue;
        int64_t u = used_of(st, q, keys[i], req->ns);
        int64_t h = milli_of(json_object_get(hard, keys[i]));
        if (u + amount <= h) continue;
        over[nover] = keys[i];
        want[nover] = amount;
        used[nover] = u;
        limit[nover] = h;
        nover++;
    }
    if (!nover) return 0;
    strbuf_t b = {0};
    strbuf_add(&b, "requested: ");
    pretty(&b, over, want, nover);
    strbuf_add(&b, ", used: ");
    pretty(&b, over, used, nover);
    strbuf_add(&b, ", limited: ");
    pretty(&b, over, limit, nover);
    int rc = admission_forbid(req, "exceeded quota: %s, %s", qname ? qname : "", b.p ? b.p : "");
    strbuf_free(&b);
    return rc;
}

static void remember(quota_state_t *st, const skiff_admission_request_t *req)
{
    if (st->npending == MAX_PENDING) pending_drop(st, 0);
    pending_t *p = &st->pending[st->npending];
    p->ns = strdup(req->ns);
    p->group = strdup(req->group);
    p->resource = strdup(req->resource);
    p->name = strdup(req->name);
    p->obj = json_deep_copy(req->object);
    p->expires = uv_now(st->loop) + PENDING_MS;
    st->npending++;
    if (!p->ns || !p->group || !p->resource || !p->name || !p->obj) pending_drop(st, st->npending - 1);
}

static int validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req)
{
    quota_state_t *st = ctx->plugin_data;
    if (!st || req->operation != SKIFF_ADMISSION_CREATE || req->subresource[0] || !req->ns[0] ||
        !req->object)
        return 0;
    if (st->known && !strmap_get(st->quota_ns, req->ns)) return 0;
    const kind_def_t *rqk = kind_of("", "resourcequotas");
    watch_cache_t *rqc = rqk ? api_cache_for(st->srv, rqk) : NULL;
    if (!rqc) return 0;
    pending_expire(st);
    cache_obj_t **items;
    size_t n = watch_cache_list(rqc, req->ns, NULL, NULL, &items);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *q = cache_obj_parsed(items[i]);
        if (q) rc = check_quota(st, req, q);
    }
    watch_cache_list_free(items, n);
    if (rc == 0 && n > 0 && !req->dry_run) remember(st, req);
    return rc;
}

/* ---- status ------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

static void schedule_soon(quota_state_t *st)
{
    if (st->closing || st->short_pending) return;
    st->short_pending = 1;
    uv_timer_start(&st->timer, on_timer, DEBOUNCE_MS, RESYNC_MS);
}

typedef struct status_write {
    quota_state_t *st;
    char *ns;
} status_write_t;

static void maybe_free_state(quota_state_t *st)
{
    if (!st->closing || !st->timer_closed || st->inflight > 0) return;
    while (st->npending) pending_drop(st, 0);
    strmap_free(st->dirty, NULL);
    strmap_free(st->quota_ns, NULL);
    free(st);
}

static void on_status_written(void *data, int status, const skiff_kv_t *kv)
{
    status_write_t *w = data;
    quota_state_t *st = w->st;
    st->inflight--;
    if (!st->closing) {
        if (status == SKIFF_ECONFLICT) {
            /* the quota changed meanwhile: count again */
            strmap_put(st->dirty, w->ns, st);
            schedule_soon(st);
        } else if (status != 0 && status != SKIFF_ENOENT) {
            log_warn("ResourceQuota", "writing the status of a quota in %s failed: %s", w->ns,
                     skiff_strerror(status));
        }
        api_server_release(st->srv);
    } else {
        api_server_release(st->srv);
    }
    free(w->ns);
    free(w);
    maybe_free_state(st);
}

static void recount_quota(quota_state_t *st, cache_obj_t *o)
{
    const json_t *q = cache_obj_parsed(o);
    if (!q) return;
    const json_t *hard = json_object_get(json_object_get(q, "spec"), "hard");
    json_t *want_hard = json_is_object(hard) ? json_deep_copy(hard) : json_object();
    json_t *want_used = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(want_hard, k, v)
    {
        char buf[64];
        quota_format(k, used_of(st, q, k, o->ns), buf, sizeof buf);
        json_object_set_new(want_used, k, json_string(buf));
    }
    const json_t *status = json_object_get(q, "status");
    if (json_equal(json_object_get(status, "hard"), want_hard) &&
        json_equal(json_object_get(status, "used"), want_used)) {
        json_decref(want_hard);
        json_decref(want_used);
        return;
    }
    json_t *obj = cache_obj_decode(o);
    if (!obj) goto out;
    json_object_set_new(obj, "status", json_pack("{s:O, s:O}", "hard", want_hard, "used", want_used));
    json_t *ordered = api_canonical_order(obj);
    json_object_del(json_object_get(ordered, "metadata"), "resourceVersion");
    char *body = json_dumps(ordered, JSON_COMPACT);
    json_decref(ordered);
    json_decref(obj);
    char key[1024];
    status_write_t *w = calloc(1, sizeof *w);
    if (body && w && (w->ns = strdup(o->ns)) &&
        api_object_key(key, sizeof key, "", "resourcequotas", o->ns, o->name) == 0) {
        w->st = st;
        st->inflight++;
        api_server_hold(st->srv);
        int rc = st->srv->store->vt->update(st->srv->store, key, body, strlen(body), o->rev,
                                            on_status_written, w);
        if (rc != 0) {
            st->inflight--;
            api_server_release(st->srv);
            free(w->ns);
            free(w);
        }
    } else if (w) {
        free(w->ns);
        free(w);
    }
    free(body);
out:
    json_decref(want_hard);
    json_decref(want_used);
}

static void recount_ns(quota_state_t *st, watch_cache_t *rqc, const char *ns)
{
    cache_obj_t **items;
    size_t n = watch_cache_list(rqc, ns, NULL, NULL, &items);
    if (n) strmap_put(st->quota_ns, ns, st);
    else strmap_remove(st->quota_ns, ns);
    for (size_t i = 0; i < n; i++) recount_quota(st, items[i]);
    watch_cache_list_free(items, n);
}

typedef struct ns_list {
    char **v;
    size_t n, cap;
} ns_list_t;

static void collect(const char *key, void *value, void *data)
{
    ns_list_t *l = data;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) return;
        l->v = nv;
        l->cap = cap;
    }
    char *k = strdup(key);
    if (k) l->v[l->n++] = k;
}

static void collect_quota_ns(cache_obj_t *o, void *data)
{
    collect(o->ns, NULL, data);
}

static void on_timer(uv_timer_t *t)
{
    quota_state_t *st = t->data;
    int full = !st->short_pending;
    st->short_pending = 0;
    if (st->closing || !api_server_is_ready(st->srv)) return;
    const kind_def_t *rqk = kind_of("", "resourcequotas");
    watch_cache_t *rqc = rqk ? api_cache_for(st->srv, rqk) : NULL;
    if (!rqc) return;
    pending_expire(st);
    ns_list_t l = {0};
    if (full || !st->known) {
        /* every namespace with a quota, and forget those without */
        strmap_free(st->quota_ns, NULL);
        st->quota_ns = strmap_new();
        watch_cache_each(rqc, collect_quota_ns, &l);
        st->known = st->quota_ns != NULL;
    }
    strmap_each(st->dirty, collect, &l);
    strmap_free(st->dirty, NULL);
    st->dirty = strmap_new();
    for (size_t i = 0; i < l.n; i++) {
        recount_ns(st, rqc, l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
}

static void store_event(skiff_plugin_ctx_t *ctx, const char *key)
{
    quota_state_t *st = ctx->plugin_data;
    if (!st || st->closing || !st->dirty) return;
    /* "/registry/<group>/<resource>/<ns>/<name>": four parts when namespaced */
    char group[128], resource[128], ns[256], name[256];
    if (sscanf(key, "/registry/%127[^/]/%127[^/]/%255[^/]/%255[^/]", group, resource, ns, name) != 4)
        return;
    int is_quota = !strcmp(group, "core") && !strcmp(resource, "resourcequotas");
    if (!is_quota && st->known && !strmap_get(st->quota_ns, ns)) return;
    for (size_t i = 0; i < st->npending;) {
        pending_t *p = &st->pending[i];
        if (!strcmp(p->ns, ns) && !strcmp(p->name, name) && !strcmp(p->resource, resource))
            pending_drop(st, i); /* the cache has it now */
        else
            i++;
    }
    strmap_put(st->dirty, ns, st);
    schedule_soon(st);
}

static int attach(skiff_plugin_ctx_t *ctx, api_server_t *s)
{
    quota_state_t *st = calloc(1, sizeof *st);
    if (!st) return SKIFF_ENOMEM;
    st->srv = s;
    st->loop = ctx->loop;
    st->dirty = strmap_new();
    st->quota_ns = strmap_new();
    if (!st->dirty || !st->quota_ns) {
        strmap_free(st->dirty, NULL);
        strmap_free(st->quota_ns, NULL);
        free(st);
        return SKIFF_ENOMEM;
    }
    uv_timer_init(ctx->loop, &st->timer);
    st->timer.data = st;
    uv_timer_start(&st->timer, on_timer, RESYNC_MS, RESYNC_MS);
    ctx->plugin_data = st;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    quota_state_t *st = h->data;
    st->timer_closed = 1;
    maybe_free_state(st);
}

static void detach(skiff_plugin_ctx_t *ctx)
{
    quota_state_t *st = ctx->plugin_data;
    if (!st) return;
    ctx->plugin_data = NULL;
    st->closing = 1;
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, on_timer_closed);
}

static const skiff_admission_vtable_t vt = {.validate = validate};

const admission_builtin_t admission_resource_quota = {
    .name = "ResourceQuota",
    .default_on = 1,
    .vt = &vt,
    .attach = attach,
    .store_event = store_event,
    .detach = detach,
};
