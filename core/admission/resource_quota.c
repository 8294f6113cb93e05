/* core/admission/resource_quota.c - ResourceQuota: admission and the
 * quota's status.
 *
 * Admission (validate, on create and update): for every quota of the
 * namespace whose scopes select the new object, a pod under a cpu/memory quota must state
 * its requests or limits (`failed quota: NAME: must specify ...`), and
 * what the object uses plus what is used already must stay within
 * spec.hard (`exceeded quota: NAME, requested: pods=1, used: pods=2,
 * limited: pods=2`), both 403 as in Kubernetes.
 *
 * Usage is kept incrementally: each quota has a tracker holding what every
 * object of its namespace contributes to each of its keys and the totals.
 * The store watch names every changed key (admission_chain_store_event);
 * the changed object's contribution is recomputed from the cache, so a
 * create costs O(1) however many objects the namespace holds. Objects
 * admitted in the last moments that the cache does not show yet are
 * counted too, so that a burst of concurrent creates cannot all slip under
 * one limit. Every 10 s the trackers are rebuilt from the caches, which
 * also catches up after a restart.
 *
 * Status: status.hard (a copy of spec.hard) and status.used are written
 * shortly after usage changes; that is what `kubectl describe quota`
 * shows as Used and Hard. The accounting rules are in quota_usage.c.
 * An update is charged what it adds to what the object is already counted
 * for (a claim that grows, a Service that becomes a NodePort). */
#define _GNU_SOURCE
#include "admission/admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#include "admission/quantity.h"
#include "admission/quota_usage.h"
#include "api/apiserver_int.h"
#include "api/object_meta.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strmap.h"

#define DEBOUNCE_MS 200
#define RESYNC_MS 10000
#define PENDING_MS 5000
#define MAX_PENDING 256
#define MAX_KEYS 64

/* One quota's usage. */
typedef struct tracker {
    char *ns, *name;
    json_t *quota;    /* {"spec": spec} as built: hard keys and scopes */
    size_t nkeys;
    char **keys;      /* spec.hard's keys, sorted */
    char **kgroup;    /* the group and resource each key counts; NULL: untracked */
    char **kres;
    int64_t *total;   /* milli-units per key */
    strmap_t *contrib; /* "group/resource/name" -> int64_t[nkeys], non-zero ones only */
    int dirty;        /* the status may need writing */
} tracker_t;

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
    tracker_t **tr;
    size_t ntr;
    int known;          /* the trackers were built from the caches */
    int short_pending;  /* the timer is set for a debounced status pass */
    int inflight;       /* status writes in progress */
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

static int64_t milli_of(const json_t *v)
{
    int64_t m = 0;
    skiff_quantity_milli_json(v, &m);
    return m;
}


/* ---- trackers ------------------------------------------------------------------ */

static void tracker_free(tracker_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nkeys; i++) {
        free(t->keys[i]);
        free(t->kgroup[i]);
        free(t->kres[i]);
    }
    free(t->keys);
    free(t->kgroup);
    free(t->kres);
    free(t->total);
    strmap_free(t->contrib, free);
    json_decref(t->quota);
    free(t->ns);
    free(t->name);
    free(t);
}

static int relevant(const tracker_t *t, const char *group, const char *resource)
{
    for (size_t i = 0; i < t->nkeys; i++)
        if (t->kgroup[i] && !strcmp(t->kgroup[i], group) && !strcmp(t->kres[i], resource))
            return 1;
    return 0;
}

/* The object's contribution (obj NULL: it is gone) replaces its old one. */
static void tracker_apply(tracker_t *t, const char *group, const char *resource, const char *name,
                          const json_t *obj)
{
    char ck[700];
    snprintf(ck, sizeof ck, "%s/%s/%s", group, resource, name);
    int64_t *nv = NULL;
    int any = 0;
    if (obj && quota_scopes_match(t->quota, group, resource, obj)) {
        nv = calloc(t->nkeys ? t->nkeys : 1, sizeof *nv);
        for (size_t i = 0; nv && i < t->nkeys; i++) {
            if (!t->kgroup[i] || strcmp(t->kgroup[i], group) || strcmp(t->kres[i], resource))
                continue;
            nv[i] = quota_object_usage(t->keys[i], group, resource, obj);
            any |= nv[i] != 0;
        }
    }
    int64_t *old = strmap_get(t->contrib, ck);
    for (size_t i = 0; i < t->nkeys; i++)
        t->total[i] += (nv ? nv[i] : 0) - (old ? old[i] : 0);
    if (any) {
        free(strmap_put(t->contrib, ck, nv));
    } else {
        free(nv);
        free(strmap_remove(t->contrib, ck));
    }
    t->dirty = 1;
}

static tracker_t *tracker_build(quota_state_t *st, const char *ns, const char *name,
                                const json_t *quota)
{
    const json_t *spec = json_object_get(quota, "spec");
    const json_t *hard = json_object_get(spec, "hard");
    tracker_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    const char *keys[MAX_KEYS];
    size_t n = resource_names_sorted(hard, keys, MAX_KEYS);
    t->ns = strdup(ns);
    t->name = strdup(name);
    t->quota = json_pack("{s:O}", "spec", json_is_object(spec) ? spec : json_object());
    t->keys = calloc(n + 1, sizeof *t->keys);
    t->kgroup = calloc(n + 1, sizeof *t->kgroup);
    t->kres = calloc(n + 1, sizeof *t->kres);
    t->total = calloc(n + 1, sizeof *t->total);
    t->contrib = strmap_new();
    if (!t->ns || !t->name || !t->quota || !t->keys || !t->kgroup || !t->kres || !t->total ||
        !t->contrib) {
        tracker_free(t);
        return NULL;
    }
    t->nkeys = n;
    for (size_t i = 0; i < n; i++) {
        char g[128], r[128];
        t->keys[i] = strdup(keys[i]);
        if (quota_key_resource(keys[i], g, sizeof g, r, sizeof r) == 0) {
            t->kgroup[i] = strdup(g);
            t->kres[i] = strdup(r);
        }
    }
    /* count each resource the keys name once */
    for (size_t i = 0; i < n; i++) {
        if (!t->kgroup[i]) continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= t->kgroup[j] && !strcmp(t->kgroup[j], t->kgroup[i]) &&
                    !strcmp(t->kres[j], t->kres[i]);
        watch_cache_t *wc = seen ? NULL : cache_of(st->srv, t->kgroup[i], t->kres[i]);
        if (!wc) continue;
        cache_obj_t **items;
        size_t m = watch_cache_list(wc, ns, NULL, NULL, &items);
        for (size_t k = 0; k < m; k++) {
            const json_t *o = cache_obj_parsed(items[k]);
            if (o) tracker_apply(t, t->kgroup[i], t->kres[i], items[k]->name, o);
        }
        watch_cache_list_free(items, m);
    }
    t->dirty = 1;
    log_debug("ResourceQuota", "counted quota %s/%s from the cache", ns, name);
    return t;
}

static void trackers_clear(quota_state_t *st)
{
    for (size_t i = 0; i < st->ntr; i++) tracker_free(st->tr[i]);
    free(st->tr);
    st->tr = NULL;
    st->ntr = 0;
}

static void tracker_add(quota_state_t *st, tracker_t *t)
{
    if (!t) return;
    tracker_t **n = realloc(st->tr, (st->ntr + 1) * sizeof *n);
    if (!n) {
        tracker_free(t);
        return;
    }
    st->tr = n;
    st->tr[st->ntr++] = t;
}

static void add_from_cache(cache_obj_t *o, void *data)
{
    quota_state_t *st = data;
    const json_t *q = cache_obj_parsed(o);
    if (q) tracker_add(st, tracker_build(st, o->ns, o->name, q));
}

/* Every tracker again from the caches. */
static void rebuild_all(quota_state_t *st)
{
    trackers_clear(st);
    watch_cache_t *rqc = cache_of(st->srv, "", "resourcequotas");
    if (!rqc) return;
    watch_cache_each(rqc, add_from_cache, st);
    st->known = 1;
}

static size_t find_tracker(quota_state_t *st, const char *ns, const char *name)
{
    for (size_t i = 0; i < st->ntr; i++)
        if (!strcmp(st->tr[i]->ns, ns) && !strcmp(st->tr[i]->name, name)) return i;
    return st->ntr;
}

/* A quota was written or deleted: a new spec means a new tracker. */
static void quota_changed(quota_state_t *st, const char *ns, const char *name)
{
    watch_cache_t *rqc = cache_of(st->srv, "", "resourcequotas");
    char ck[600];
    snprintf(ck, sizeof ck, "%s/%s", ns, name);
    cache_obj_t *o = rqc ? watch_cache_get(rqc, ck) : NULL;
    const json_t *q = o ? cache_obj_parsed(o) : NULL;
    size_t i = find_tracker(st, ns, name);
    if (i < st->ntr) {
        if (q && json_equal(json_object_get(st->tr[i]->quota, "spec"), json_object_get(q, "spec"))) {
            st->tr[i]->dirty = 1; /* its status may have been overwritten */
            return;
        }
        tracker_free(st->tr[i]);
        st->tr[i] = st->tr[--st->ntr];
    }
    if (q) tracker_add(st, tracker_build(st, ns, name, q));
}

/* ---- pending ------------------------------------------------------------------- */

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

/* What objects admitted but not in the cache yet add to key i of t. */
static int64_t pending_usage(quota_state_t *st, const tracker_t *t, size_t i)
{
    int64_t sum = 0;
    if (!t->kgroup[i]) return 0;
    for (size_t k = 0; k < st->npending; k++) {
        pending_t *p = &st->pending[k];
        if (strcmp(p->ns, t->ns) || strcmp(p->group, t->kgroup[i]) || strcmp(p->resource, t->kres[i]))
            continue;
        char ck[700];
        snprintf(ck, sizeof ck, "%s/%s/%s", p->group, p->resource, p->name);
        if (strmap_get(t->contrib, ck)) continue; /* counted already */
        if (quota_scopes_match(t->quota, p->group, p->resource, p->obj))
            sum += quota_object_usage(t->keys[i], p->group, p->resource, p->obj);
    }
    return sum;
}

static void remember(quota_state_t *st, const skiff_admission_request_t *req)
{
    if (st->npending == MAX_PENDING) pending_drop(st, 0);
    pending_t *p = &st->pending[st->npending];
    p->ns = strdup(req->ns);
    p->group = strdup(req->group);
    p->resource = strdup(req->resource);
    p->name = strdup(req->name);
    p->obj = skiff_json_copy(req->object);
    p->expires = uv_now(st->loop) + PENDING_MS;
    st->npending++;
    if (!p->ns || !p->group || !p->resource || !p->name || !p->obj) pending_drop(st, st->npending - 1);
}

/* ---- admission ----------------------------------------------------------------- */

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

/* 0, or a denial for the quota tracked by t */
static int check_quota(quota_state_t *st, const skiff_admission_request_t *req, tracker_t *t)
{
    const json_t *hard = json_object_get(json_object_get(t->quota, "spec"), "hard");
    if (!t->nkeys || !quota_scopes_match(t->quota, req->group, req->resource, req->object))
        return 0;
    int update = req->operation == SKIFF_ADMISSION_UPDATE;
    /* an update is charged what it adds to what the object is counted for */
    const int64_t *counted = NULL;
    if (update) {
        char ck[700];
        snprintf(ck, sizeof ck, "%s/%s/%s", req->group, req->resource, req->name);
        counted = strmap_get(t->contrib, ck);
    }
    if (!update && !req->group[0] && !strcmp(req->resource, "pods")) {
        char *why = quota_pod_constraints(hard, req->object);
        if (why) {
            int rc = admission_forbid(req, "failed quota: %s: %s", t->name, why);
            free(why);
            return rc;
        }
    }
    const char *over[MAX_KEYS];
    int64_t want[MAX_KEYS], used[MAX_KEYS], limit[MAX_KEYS];
    size_t nover = 0;
    for (size_t i = 0; i < t->nkeys; i++) {
        int64_t amount = quota_object_usage(t->keys[i], req->group, req->resource, req->object);
        if (counted) amount -= counted[i];
        if (amount <= 0) continue;
        int64_t u = t->total[i] + pending_usage(st, t, i);
        int64_t h = milli_of(json_object_get(hard, t->keys[i]));
        if (u + amount <= h) continue;
        over[nover] = t->keys[i];
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
    int rc = admission_forbid(req, "exceeded quota: %s, %s", t->name, b.p ? b.p : "");
    strbuf_free(&b);
    return rc;
}

static int validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req)
{
    quota_state_t *st = ctx->plugin_data;
    if (!st || req->subresource[0] || !req->ns[0] || !req->object) return 0;
    if (req->operation != SKIFF_ADMISSION_CREATE && req->operation != SKIFF_ADMISSION_UPDATE)
        return 0;
    if (!st->known) rebuild_all(st);
    /* this namespace's quotas, by name as Kubernetes evaluates them */
    tracker_t *mine[64];
    size_t n = 0;
    for (size_t i = 0; i < st->ntr && n < 64; i++) {
        if (strcmp(st->tr[i]->ns, req->ns) != 0) continue;
        size_t j = n++;
        while (j > 0 && strcmp(mine[j - 1]->name, st->tr[i]->name) > 0) {
            mine[j] = mine[j - 1];
            j--;
        }
        mine[j] = st->tr[i];
    }
    if (!n) return 0;
    pending_expire(st);
    int rc = 0, counted = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = check_quota(st, req, mine[i]);
        counted |= relevant(mine[i], req->group, req->resource);
    }
    if (rc == 0 && counted && !req->dry_run && req->operation == SKIFF_ADMISSION_CREATE)
        remember(st, req);
    return rc;
}

/* ---- status -------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void schedule_soon(quota_state_t *st)
{
    if (st->closing || st->short_pending) return;
    st->short_pending = 1;
    uv_timer_start(&st->timer, on_timer, DEBOUNCE_MS, RESYNC_MS);
}

typedef struct status_write {
    quota_state_t *st;
    char *ns, *name;
} status_write_t;

static void maybe_free_state(quota_state_t *st)
{
    if (!st->closing || !st->timer_closed || st->inflight > 0) return;
    while (st->npending) pending_drop(st, 0);
    trackers_clear(st);
    free(st);
}

static void on_status_written(void *data, int status, const skiff_kv_t *kv)
{
    status_write_t *w = data;
    quota_state_t *st = w->st;
    st->inflight--;
    if (!st->closing && status == SKIFF_ECONFLICT) {
        /* the quota changed meanwhile: write again from what is there now */
        size_t i = find_tracker(st, w->ns, w->name);
        if (i < st->ntr) st->tr[i]->dirty = 1;
        schedule_soon(st);
    } else if (!st->closing && status != 0 && status != SKIFF_ENOENT) {
        log_warn("ResourceQuota", "writing the status of quota %s/%s failed: %s", w->ns, w->name,
                 skiff_strerror(status));
    }
    api_server_release(st->srv);
    free(w->ns);
    free(w->name);
    free(w);
    maybe_free_state(st);
}

static void write_status(quota_state_t *st, tracker_t *t)
{
    t->dirty = 0;
    watch_cache_t *rqc = cache_of(st->srv, "", "resourcequotas");
    char ck[600];
    snprintf(ck, sizeof ck, "%s/%s", t->ns, t->name);
    cache_obj_t *o = rqc ? watch_cache_get(rqc, ck) : NULL;
    const json_t *q = o ? cache_obj_parsed(o) : NULL;
    if (!q) return;
    const json_t *hard = json_object_get(json_object_get(q, "spec"), "hard");
    json_t *want_hard = json_is_object(hard) ? skiff_json_copy(hard) : json_object();
    json_t *want_used = json_object();
    for (size_t i = 0; i < t->nkeys; i++) {
        char buf[64];
        quota_format(t->keys[i], t->total[i], buf, sizeof buf);
        json_object_set_new(want_used, t->keys[i], json_string(buf));
    }
    const json_t *status = json_object_get(q, "status");
    if (json_equal(json_object_get(status, "hard"), want_hard) &&
        json_equal(json_object_get(status, "used"), want_used))
        goto out;
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
    if (body && w && (w->ns = strdup(t->ns)) && (w->name = strdup(t->name)) &&
        api_object_key(key, sizeof key, "", "resourcequotas", t->ns, t->name) == 0) {
        w->st = st;
        st->inflight++;
        api_server_hold(st->srv);
        int rc = st->srv->store->vt->update(st->srv->store, key, body, strlen(body), o->rev,
                                            on_status_written, w);
        if (rc == 0) w = NULL;
        else {
            st->inflight--;
            api_server_release(st->srv);
        }
    }
    if (w) {
        free(w->ns);
        free(w->name);
        free(w);
    }
    free(body);
out:
    json_decref(want_hard);
    json_decref(want_used);
}

static void on_timer(uv_timer_t *t)
{
    quota_state_t *st = t->data;
    int full = !st->short_pending;
    st->short_pending = 0;
    if (st->closing || !api_server_is_ready(st->srv)) return;
    /* the periodic pass rebuilds from the caches: nothing drifts for long */
    if (full || !st->known) rebuild_all(st);
    pending_expire(st);
    for (size_t i = 0; i < st->ntr; i++)
        if (st->tr[i]->dirty) write_status(st, st->tr[i]);
}


/* One part of a key: 1 to cap - 1 bytes up to the next '/' (the last part
 * may go on and is cut), as sscanf's "%N[^/]" reads it. The rest, or NULL. */
static const char *key_part(const char *p, char *out, size_t cap, int last)
{
    size_t n = strcspn(p, "/");
    if (n == 0 || (!last && n > cap - 1)) return NULL;
    size_t take = n > cap - 1 ? cap - 1 : n;
    memcpy(out, p, take);
    out[take] = '\0';
    if (last) return p + n;
    return p[n] == '/' ? p + n + 1 : NULL;
}

/* "/registry/<group>/<resource>/<ns>/<name>" into its parts (sscanf with
 * "/registry/%127[^/]/%127[^/]/%255[^/]/%255[^/]", without its cost on
 * every store event). 0, or -1 when the key has fewer parts. */
static int split_key(const char *key, char group[128], char resource[128], char ns[256],
                     char name[256])
{
    if (strncmp(key, "/registry/", 10) != 0) return -1;
    const char *p = key + 10;
    if (!(p = key_part(p, group, 128, 0)) || !(p = key_part(p, resource, 128, 0)) ||
        !(p = key_part(p, ns, 256, 0)) || !key_part(p, name, 256, 1))
        return -1;
    return 0;
}

static void store_event(skiff_plugin_ctx_t *ctx, const char *key)
{
    quota_state_t *st = ctx->plugin_data;
    if (!st || st->closing) return;
    if (!st->known) {
        /* the first change after start: build from the caches, which
         * already hold this one */
        if (!api_server_is_ready(st->srv)) return;
        rebuild_all(st);
        schedule_soon(st);
        return;
    }
    /* "/registry/<group>/<resource>/<ns>/<name>": four parts when namespaced */
    char group[128], resource[128], ns[256], name[256];
    if (split_key(key, group, resource, ns, name) != 0)
        return;
    if (!strcmp(group, "core")) group[0] = '\0';
    if (!group[0] && !strcmp(resource, "resourcequotas")) quota_changed(st, ns, name);
    for (size_t i = 0; i < st->npending;) {
        pending_t *p = &st->pending[i];
        if (!strcmp(p->ns, ns) && !strcmp(p->name, name) && !strcmp(p->resource, resource) &&
            !strcmp(p->group, group))
            pending_drop(st, i); /* the cache has it now */
        else
            i++;
    }
    const json_t *obj = NULL;
    int looked = 0, changed = 0;
    for (size_t i = 0; i < st->ntr; i++) {
        tracker_t *t = st->tr[i];
        if (strcmp(t->ns, ns) || !relevant(t, group, resource)) continue;
        if (!looked) {
            watch_cache_t *wc = cache_of(st->srv, group, resource);
            char ck[600];
            snprintf(ck, sizeof ck, "%s/%s", ns, name);
            cache_obj_t *o = wc ? watch_cache_get(wc, ck) : NULL;
            obj = o ? cache_obj_parsed(o) : NULL;
            looked = 1;
        }
        tracker_apply(t, group, resource, name, obj);
        changed = 1;
    }
    if (changed) schedule_soon(st);
    else if (!group[0] && !strcmp(resource, "resourcequotas")) schedule_soon(st);
}

static int attach(skiff_plugin_ctx_t *ctx, api_server_t *s)
{
    quota_state_t *st = calloc(1, sizeof *st);
    if (!st) return SKIFF_ENOMEM;
    st->srv = s;
    st->loop = ctx->loop;
    uv_timer_init(ctx->loop, &st->timer);
    st->timer.data = st;
    /* the first pass soon after start builds the trackers */
    uv_timer_start(&st->timer, on_timer, 100, RESYNC_MS);
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
