/* core/api/client_rest.c - skiff/client.h semantics over a rest_transport_t.
 *
 * Each verb becomes its Kubernetes REST call (URL, query, body,
 * Content-Type); answers come back as the SDK's callbacks with a borrowed
 * json_t. Watch answers are newline-delimited JSON events that a transport
 * may cut anywhere; they are reassembled line by line. The in-process
 * transport hands over watch events as the server's objects instead, shared
 * and read-only, as the callbacks' borrowed objects are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>
#include <skiff/objects.h>

#include "api/client_rest.h"
#include "util/strbuf.h"

typedef struct client_rest client_rest_t;

struct skiff_client_watch {
    client_rest_t *owner;
    skiff_client_watch_t *prev, *next;
    void *handle;
    skiff_client_watch_cb cb;
    void *data;
    char *line;
    size_t line_len, line_cap;
    int depth;     /* frames of ours on the stack that use this watch */
    int cancelled; /* no more callbacks; free when depth drops to 0 */
};

struct client_rest {
    skiff_client_t base; /* first: the SDK handle is this struct */
    rest_transport_t *t;
    skiff_client_watch_t *watches;
};

typedef struct call {
    skiff_client_cb cb;
    void *data;
} call_t;

/* ---- strings ---------------------------------------------------------------- */




/* Everything but RFC 3986 unreserved characters is escaped. */
static void sb_add_escaped(strbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            strbuf_addn(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            strbuf_addn(b, e, 3);
        }
    }
}

static void sb_param(strbuf_t *b, const char *key, const char *value)
{
    strbuf_add(b, strchr(b->p ? b->p : "", '?') ? "&" : "?");
    strbuf_add(b, key);
    strbuf_add(b, "=");
    sb_add_escaped(b, value);
}

static void sb_param_int(strbuf_t *b, const char *key, long long v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", v);
    sb_param(b, key, num);
}

static int build_path(strbuf_t *b, const skiff_resource_t *r, const char *ns, const char *name)
{
    if (!r || !r->version || !*r->version || !r->resource || !*r->resource)
        return SKIFF_EINVAL;
    if (!r->group || !*r->group) {
        strbuf_add(b, "/api/");
    } else {
        strbuf_add(b, "/apis/");
        sb_add_escaped(b, r->group);
        strbuf_add(b, "/");
    }
    sb_add_escaped(b, r->version);
    if (ns && *ns) {
        strbuf_add(b, "/namespaces/");
        sb_add_escaped(b, ns);
    }
    strbuf_add(b, "/");
    sb_add_escaped(b, r->resource);
    if (name && *name) {
        strbuf_add(b, "/");
        sb_add_escaped(b, name);
        if (r->subresource && *r->subresource) {
            strbuf_add(b, "/");
            sb_add_escaped(b, r->subresource);
        }
    }
    return b->failed ? SKIFF_ENOMEM : 0;
}

int client_rest_path(char *buf, size_t len, const skiff_resource_t *r, const char *ns,
                     const char *name)
{
    strbuf_t b = {0};
    int e = build_path(&b, r, ns, name);
    if (e == 0) {
        e = (int)b.len;
        if (buf && len)
            snprintf(buf, len, "%s", b.p);
    }
    free(b.p);
    return e;
}

static void add_list_opts(strbuf_t *b, const skiff_list_opts_t *o, int watch)
{
    if (watch)
        sb_param(b, "watch", "1");
    if (!o)
        return;
    if (o->label_selector && *o->label_selector)
        sb_param(b, "labelSelector", o->label_selector);
    if (o->field_selector && *o->field_selector)
        sb_param(b, "fieldSelector", o->field_selector);
    if (o->limit > 0)
        sb_param_int(b, "limit", o->limit);
    if (o->continue_token && *o->continue_token)
        sb_param(b, "continue", o->continue_token);
    if (o->resource_version && *o->resource_version)
        sb_param(b, "resourceVersion", o->resource_version);
    if (watch && o->allow_bookmarks)
        sb_param(b, "allowWatchBookmarks", "true");
    if (o->timeout_seconds > 0)
        sb_param_int(b, "timeoutSeconds", o->timeout_seconds);
}

static void add_write_opts(strbuf_t *b, const skiff_write_opts_t *o)
{
    if (!o)
        return;
    if (o->dry_run)
        sb_param(b, "dryRun", "All");
    if (o->field_manager && *o->field_manager)
        sb_param(b, "fieldManager", o->field_manager);
}

/* ---- plain requests ------------------------------------------------------------ */

static void call_done(void *data, int status, const char *body, size_t len)
{
    call_t *c = data;
    json_t *obj = NULL;
    if (len) obj = json_loadb(body, len, 0, NULL);
    if (c->cb) c->cb(c->data, status, obj);
    json_decref(obj);
    free(c);
}

static void call_done_object(void *data, int status, json_t *obj)
{
    call_t *c = data;
    if (c->cb) c->cb(c->data, status, obj);
    json_decref(obj);
    free(c);
}

/* body_obj (a reference handed over) replaces body for transports taking
 * objects; base_obj (borrowed) and shared_answer as in rest_request_t. */
static int request_ex(client_rest_t *h, const char *method, strbuf_t *url, const char *ct,
                      const char *body, json_t *body_obj, json_t *base_obj, int shared_answer,
                      skiff_client_cb cb, void *data)
{
    if (url->failed) {
        free(url->p);
        json_decref(body_obj);
        return SKIFF_ENOMEM;
    }
    call_t *c = malloc(sizeof(*c));
    if (!c) {
        free(url->p);
        json_decref(body_obj);
        return SKIFF_ENOMEM;
    }
    c->cb = cb;
    c->data = data;
    rest_request_t r = {
        .method = method,
        .path = url->p,
        .content_type = body || body_obj ? ct : NULL,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .body_obj = body_obj,
        .base_obj = base_obj,
        .shared_answer = shared_answer,
        .on_done = call_done,
        .on_done_object = call_done_object,
        .data = c,
    };
    void *handle;
    int e = h->t->ops->send(h->t, &r, &handle);
    free(url->p);
    if (e < 0) free(c);
    return e;
}

static int request_obj(client_rest_t *h, const char *method, strbuf_t *url, const char *ct,
                       const char *body, json_t *body_obj, skiff_client_cb cb, void *data)
{
    return request_ex(h, method, url, ct, body, body_obj, NULL, 0, cb, data);
}

static int request(client_rest_t *h, const char *method, strbuf_t *url, const char *ct,
                   const char *body, skiff_client_cb cb, void *data)
{
    return request_obj(h, method, url, ct, body, NULL, cb, data);
}

static int ch_get(skiff_client_t *cl, const skiff_resource_t *r, const char *ns, const char *name,
                  skiff_client_cb cb, void *data)
{
    client_rest_t *h = (client_rest_t *)cl;
    if (!name || !*name)
        return SKIFF_EINVAL;
    strbuf_t u = {0};
    int e = build_path(&u, r, ns, name);
    if (e < 0) {
        free(u.p);
        return e;
    }
    return request(h, "GET", &u, NULL, NULL, cb, data);
}

static int ch_list(skiff_client_t *cl, const skiff_resource_t *r, const char *ns,
                   const skiff_list_opts_t *o, skiff_client_cb cb, void *data)
{
    client_rest_t *h = (client_rest_t *)cl;
    strbuf_t u = {0};
    int e = build_path(&u, r, ns, NULL);
    if (e < 0) {
        free(u.p);
        return e;
    }
    add_list_opts(&u, o, 0);
    return request(h, "GET", &u, NULL, NULL, cb, data);
}

static const char *object_name(json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

/* A create or update of obj: an object transport gets a copy of it, or
 * with handover obj itself (the caller's reference is taken, also on
 * failure), for the server to change. base_obj and shared_answer as in
 * rest_request_t. */
static int write_object_ex(client_rest_t *h, const char *method, const skiff_resource_t *r,
                           const char *ns, json_t *obj, const skiff_write_opts_t *o,
                           int need_name, int handover, json_t *base_obj, int shared_answer,
                           skiff_client_cb cb, void *data)
{
    int e = SKIFF_EINVAL;
    const char *name = obj ? object_name(obj) : NULL;
    int sub = r && r->subresource && *r->subresource;
    strbuf_t u = {0};
    /* a subresource (pods/binding, .../status) is addressed through the object's name */
    if (!obj || !r || ((need_name || sub) && (!name || !*name)))
        goto out;
    e = build_path(&u, r, ns, need_name || sub ? name : NULL);
    if (e < 0) {
        free(u.p);
        goto out;
    }
    add_write_opts(&u, o);
    if (h->t->ops->objects) {
        /* in process: the server gets an object, no text */
        json_t *copy = handover ? json_incref(obj) : skiff_json_copy(obj);
        if (!copy) {
            free(u.p);
            e = SKIFF_ENOMEM;
            goto out;
        }
        e = request_ex(h, method, &u, "application/json", NULL, copy, base_obj, shared_answer,
                       cb, data);
        goto out;
    }
    char *body = json_dumps(obj, JSON_COMPACT);
    if (!body) {
        free(u.p);
        e = SKIFF_ENOMEM;
        goto out;
    }
    e = request(h, method, &u, "application/json", body, cb, data);
    free(body);
out:
    if (handover) json_decref(obj);
    return e;
}

static int write_object(client_rest_t *h, const char *method, const skiff_resource_t *r,
                        const char *ns, json_t *obj, const skiff_write_opts_t *o, int need_name,
                        skiff_client_cb cb, void *data)
{
    return write_object_ex(h, method, r, ns, obj, o, need_name, 0, NULL, 0, cb, data);
}

static int ch_create(skiff_client_t *cl, const skiff_resource_t *r, const char *ns, json_t *obj,
                     const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return write_object((client_rest_t *)cl, "POST", r, ns, obj, o, 0, cb, data);
}

static int ch_update(skiff_client_t *cl, const skiff_resource_t *r, const char *ns, json_t *obj,
                     const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return write_object((client_rest_t *)cl, "PUT", r, ns, obj, o, 1, cb, data);
}

static int ch_patch(skiff_client_t *cl, const skiff_resource_t *r, const char *ns,
                    const char *name, skiff_patch_type_t type, const char *patch,
                    const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    const char *ct;
    switch (type) {
    case SKIFF_PATCH_JSON: ct = "application/json-patch+json"; break;
    case SKIFF_PATCH_MERGE: ct = "application/merge-patch+json"; break;
    case SKIFF_PATCH_STRATEGIC: ct = "application/strategic-merge-patch+json"; break;
    default: return SKIFF_EINVAL;
    }
    if (!name || !*name || !patch)
        return SKIFF_EINVAL;
    strbuf_t u = {0};
    int e = build_path(&u, r, ns, name);
    if (e < 0) {
        free(u.p);
        return e;
    }
    add_write_opts(&u, o);
    return request((client_rest_t *)cl, "PATCH", &u, ct, patch, cb, data);
}

static int ch_remove(skiff_client_t *cl, const skiff_resource_t *r, const char *ns,
                     const char *name, const skiff_write_opts_t *o, skiff_client_cb cb,
                     void *data)
{
    if (!name || !*name)
        return SKIFF_EINVAL;
    strbuf_t u = {0};
    int e = build_path(&u, r, ns, name);
    if (e < 0) {
        free(u.p);
        return e;
    }
    if (o && o->dry_run)
        sb_param(&u, "dryRun", "All");
    json_t *opts = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
    if (o && o->propagation_policy && *o->propagation_policy)
        json_object_set_new(opts, "propagationPolicy", json_string(o->propagation_policy));
    if (o && o->grace_period_seconds >= 0)
        json_object_set_new(opts, "gracePeriodSeconds", json_integer(o->grace_period_seconds));
    if (o && o->dry_run)
        json_object_set_new(opts, "dryRun", json_pack("[s]", "All"));
    if (o && o->precondition_uid && *o->precondition_uid)
        json_object_set_new(opts, "preconditions", json_pack("{s:s}", "uid", o->precondition_uid));
    char *body = json_dumps(opts, JSON_COMPACT);
    json_decref(opts);
    if (!body) {
        free(u.p);
        return SKIFF_ENOMEM;
    }
    e = request((client_rest_t *)cl, "DELETE", &u, "application/json", body, cb, data);
    free(body);
    return e;
}

static int ch_get_path(skiff_client_t *cl, const char *path, skiff_client_cb cb, void *data)
{
    if (!path || path[0] != '/')
        return SKIFF_EINVAL;
    strbuf_t u = {0};
    strbuf_add(&u, path);
    return request((client_rest_t *)cl, "GET", &u, NULL, NULL, cb, data);
}

static void watch_unlink(skiff_client_watch_t *w)
{
    if (!w->owner)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        w->owner->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->owner = NULL;
}

static void watch_release(skiff_client_watch_t *w)
{
    if (w->depth > 0)
        return;
    free(w->line);
    free(w);
}

/* One complete line: {"type": ..., "object": ...}. */
static void watch_event(skiff_client_watch_t *w, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len)
        return;
    json_t *ev = json_loadb(line, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (type)
        w->cb(w->data, type, json_object_get(ev, "object"));
    json_decref(ev);
}

static void watch_chunk(void *data, const char *chunk, size_t len)
{
    skiff_client_watch_t *w = data;
    if (w->cancelled)
        return;
    size_t old = w->line_len;
    if (old + len + 1 > w->line_cap) {
        size_t c = w->line_cap ? w->line_cap : 4096;
        while (c < old + len + 1)
            c *= 2;
        char *p = realloc(w->line, c);
        if (!p)
            return;
        w->line = p;
        w->line_cap = c;
    }
    memcpy(w->line + old, chunk, len);
    w->line_len += len;
    size_t start = 0;
    w->depth++;
    for (size_t i = old; i < w->line_len && !w->cancelled; i++) {
        if (w->line[i] != '\n')
            continue;
        watch_event(w, w->line + start, i - start);
        start = i + 1;
    }
    w->depth--;
    if (w->cancelled) {
        watch_release(w);
        return;
    }
    memmove(w->line, w->line + start, w->line_len - start);
    w->line_len -= start;
}

/* An event the transport had as an object already (in process). */
static void watch_obj_event(void *data, const char *type, json_t *obj)
{
    skiff_client_watch_t *w = data;
    if (w->cancelled)
        return;
    w->depth++;
    w->cb(w->data, type, obj);
    w->depth--;
    if (w->cancelled)
        watch_release(w);
}

static void watch_done(void *data, int status, const char *body, size_t len)
{
    skiff_client_watch_t *w = data;
    if (w->cancelled)
        return;
    w->depth++;
    if (status >= 200 && status < 300) {
        if (w->line_len)
            watch_event(w, w->line, w->line_len);
    } else if (status > 0) {
        /* the watch was refused (410 Gone, 403, ...): hand over its Status */
        json_t *st = json_loadb(body, len, 0, NULL);
        w->cb(w->data, "ERROR", st);
        json_decref(st);
    }
    if (!w->cancelled)
        w->cb(w->data, NULL, NULL);
    w->depth--;
    w->cancelled = 1;
    watch_unlink(w);
    watch_release(w);
}

static int ch_watch(skiff_client_t *cl, const skiff_resource_t *r, const char *ns,
                    const skiff_list_opts_t *o, skiff_client_watch_cb cb, void *data,
                    skiff_client_watch_t **out)
{
    client_rest_t *h = (client_rest_t *)cl;
    if (!cb)
        return SKIFF_EINVAL;
    strbuf_t u = {0};
    int e = build_path(&u, r, ns, NULL);
    if (e < 0) {
        free(u.p);
        return e;
    }
    add_list_opts(&u, o, 1);
    if (u.failed) {
        free(u.p);
        return SKIFF_ENOMEM;
    }
    skiff_client_watch_t *w = calloc(1, sizeof(*w));
    if (!w) {
        free(u.p);
        return SKIFF_ENOMEM;
    }
    w->cb = cb;
    w->data = data;
    /* linked first: the transport may answer before send returns */
    w->owner = h;
    w->next = h->watches;
    if (h->watches)
        h->watches->prev = w;
    h->watches = w;
    rest_request_t req = {
        .method = "GET",
        .path = u.p,
        .stream = 1,
        .on_chunk = watch_chunk,
        .on_done = watch_done,
        .on_event = watch_obj_event,
        .data = w,
    };
    w->depth++;
    e = h->t->ops->send(h->t, &req, &w->handle);
    w->depth--;
    free(u.p);
    if (e < 0) {
        watch_unlink(w);
        w->cancelled = 1;
        watch_release(w);
        return e;
    }
    if (out)
        *out = w;
    return 0;
}

static void ch_watch_cancel(skiff_client_watch_t *w)
{
    if (!w || w->cancelled)
        return;
    w->cancelled = 1;
    client_rest_t *h = w->owner;
    watch_unlink(w);
    if (h)
        h->t->ops->cancel(h->t, w->handle);
    watch_release(w);
}

static void ch_free(skiff_client_t *cl)
{
    client_rest_t *h = (client_rest_t *)cl;
    if (!h)
        return;
    /* the transport ends open watches (NULL, NULL) and fails pending calls */
    h->t->ops->free(h->t);
    while (h->watches)
        watch_unlink(h->watches);
    free(h);
}

static const skiff_client_vtable_t client_rest_vt = {
    .get = ch_get,
    .list = ch_list,
    .watch = ch_watch,
    .watch_cancel = ch_watch_cancel,
    .create = ch_create,
    .update = ch_update,
    .patch = ch_patch,
    .remove = ch_remove,
    .free = ch_free,
    .get_path = ch_get_path,
};

int client_rest_create_ex(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                         json_t *obj, const skiff_write_opts_t *o, int handover,
                         json_t *base_obj, int shared_answer, skiff_client_cb cb, void *data)
{
    if (c && c->vt == &client_rest_vt)
        return write_object_ex((client_rest_t *)c, "POST", r, ns, obj, o, 0, handover, base_obj,
                               shared_answer, cb, data);
    int e = c ? skiff_client_create(c, r, ns, obj, o, cb, data) : SKIFF_EINVAL;
    if (handover) json_decref(obj);
    return e;
}

int skiff_client_create_ro(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                           json_t *obj, const skiff_write_opts_t *o, skiff_client_cb cb,
                           void *data)
{
    return client_rest_create_ex(c, r, ns, obj, o, 0, NULL, 1, cb, data);
}

skiff_client_t *client_rest_new(rest_transport_t *t)
{
    if (!t)
        return NULL;
    client_rest_t *h = calloc(1, sizeof(*h));
    if (!h) {
        t->ops->free(t);
        return NULL;
    }
    h->base.vt = &client_rest_vt;
    h->t = t;
    return &h->base;
}
