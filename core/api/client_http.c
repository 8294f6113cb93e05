/* core/api/client_http.c - skiff/client.h over HTTP with core/http/client.
 *
 * Turns each verb into the Kubernetes REST call (URL, query, body,
 * Content-Type), and answers back into the SDK's callbacks: status and a
 * borrowed json_t. Watch answers are newline-delimited JSON events that
 * may be cut anywhere by chunking; they are reassembled line by line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>

#include "api/client_http.h"
#include "http/client.h"

#define CLIENT_HTTP_POOL 4

typedef struct client_http client_http_t;

struct skiff_client_watch {
    client_http_t *owner;
    skiff_client_watch_t *prev, *next;
    http_client_t *http;
    http_client_req_t *req;
    skiff_client_watch_cb cb;
    void *data;
    char *line;
    size_t line_len, line_cap;
    int depth;     /* frames of ours on the stack that use this watch */
    int cancelled; /* no more callbacks; free when depth drops to 0 */
};

struct client_http {
    skiff_client_t base; /* first: the SDK handle is this struct */
    uv_loop_t *loop;
    char host[64];
    int port;
    char *auth; /* "Authorization: Bearer ...\r\n" or NULL */
    http_client_t *pool[CLIENT_HTTP_POOL];
    skiff_client_watch_t *watches;
};

typedef struct call {
    skiff_client_cb cb;
    void *data;
} call_t;

/* ---- strings ---------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf_t;

static void sb_addn(sbuf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->len + n + 1)
            c *= 2;
        char *p = realloc(b->p, c);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(sbuf_t *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

/* Everything but RFC 3986 unreserved characters is escaped. */
static void sb_add_escaped(sbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            sb_addn(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sb_addn(b, e, 3);
        }
    }
}

static void sb_param(sbuf_t *b, const char *key, const char *value)
{
    sb_add(b, strchr(b->p ? b->p : "", '?') ? "&" : "?");
    sb_add(b, key);
    sb_add(b, "=");
    sb_add_escaped(b, value);
}

static void sb_param_int(sbuf_t *b, const char *key, long long v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", v);
    sb_param(b, key, num);
}

static int build_path(sbuf_t *b, const skiff_resource_t *r, const char *ns, const char *name)
{
    if (!r || !r->version || !*r->version || !r->resource || !*r->resource)
        return SKIFF_EINVAL;
    if (!r->group || !*r->group) {
        sb_add(b, "/api/");
    } else {
        sb_add(b, "/apis/");
        sb_add_escaped(b, r->group);
        sb_add(b, "/");
    }
    sb_add_escaped(b, r->version);
    if (ns && *ns) {
        sb_add(b, "/namespaces/");
        sb_add_escaped(b, ns);
    }
    sb_add(b, "/");
    sb_add_escaped(b, r->resource);
    if (name && *name) {
        sb_add(b, "/");
        sb_add_escaped(b, name);
        if (r->subresource && *r->subresource) {
            sb_add(b, "/");
            sb_add_escaped(b, r->subresource);
        }
    }
    return b->failed ? SKIFF_ENOMEM : 0;
}

int client_http_path(char *buf, size_t len, const skiff_resource_t *r, const char *ns,
                     const char *name)
{
    sbuf_t b = {0};
    int e = build_path(&b, r, ns, name);
    if (e == 0) {
        e = (int)b.len;
        if (buf && len)
            snprintf(buf, len, "%s", b.p);
    }
    free(b.p);
    return e;
}

static void add_list_opts(sbuf_t *b, const skiff_list_opts_t *o, int watch)
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

static void add_write_opts(sbuf_t *b, const skiff_write_opts_t *o)
{
    if (!o)
        return;
    if (o->dry_run)
        sb_param(b, "dryRun", "All");
    if (o->field_manager && *o->field_manager)
        sb_param(b, "fieldManager", o->field_manager);
}

/* ---- plain requests ------------------------------------------------------------ */

static http_client_t *pick(client_http_t *h)
{
    http_client_t *best = h->pool[0];
    for (int i = 1; i < CLIENT_HTTP_POOL; i++) {
        if (http_client_pending(h->pool[i]) < http_client_pending(best))
            best = h->pool[i];
    }
    return best;
}

static void call_done(void *data, const http_client_result_t *res)
{
    call_t *c = data;
    json_t *obj = NULL;
    if (res->body_len)
        obj = json_loadb(res->body, res->body_len, 0, NULL);
    if (c->cb)
        c->cb(c->data, res->status, obj);
    json_decref(obj);
    free(c);
}

static int request(client_http_t *h, const char *method, sbuf_t *url, const char *ct,
                   const char *body, skiff_client_cb cb, void *data)
{
    if (url->failed) {
        free(url->p);
        return SKIFF_ENOMEM;
    }
    call_t *c = malloc(sizeof(*c));
    if (!c) {
        free(url->p);
        return SKIFF_ENOMEM;
    }
    c->cb = cb;
    c->data = data;
    http_client_request_t r = {
        .method = method,
        .path = url->p,
        .content_type = body ? ct : NULL,
        .accept = "application/json",
        .headers = h->auth,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .on_done = call_done,
        .data = c,
    };
    int e = http_client_send(pick(h), &r, NULL);
    free(url->p);
    if (e < 0)
        free(c);
    return e;
}

static int ch_get(skiff_client_t *cl, const skiff_resource_t *r, const char *ns, const char *name,
                  skiff_client_cb cb, void *data)
{
    client_http_t *h = (client_http_t *)cl;
    if (!name || !*name)
        return SKIFF_EINVAL;
    sbuf_t u = {0};
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
    client_http_t *h = (client_http_t *)cl;
    sbuf_t u = {0};
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

static int write_object(client_http_t *h, const char *method, const skiff_resource_t *r,
                        const char *ns, json_t *obj, const skiff_write_opts_t *o, int need_name,
                        skiff_client_cb cb, void *data)
{
    if (!obj || !r)
        return SKIFF_EINVAL;
    const char *name = object_name(obj);
    /* a subresource (pods/binding, .../status) is addressed through the object's name */
    if ((need_name || (r && r->subresource && *r->subresource)) && (!name || !*name))
        return SKIFF_EINVAL;
    sbuf_t u = {0};
    int e = build_path(&u, r, ns, need_name || (r->subresource && *r->subresource) ? name : NULL);
    if (e < 0) {
        free(u.p);
        return e;
    }
    add_write_opts(&u, o);
    char *body = json_dumps(obj, JSON_COMPACT);
    if (!body) {
        free(u.p);
        return SKIFF_ENOMEM;
    }
    e = request(h, method, &u, "application/json", body, cb, data);
    free(body);
    return e;
}

static int ch_create(skiff_client_t *cl, const skiff_resource_t *r, const char *ns, json_t *obj,
                     const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return write_object((client_http_t *)cl, "POST", r, ns, obj, o, 0, cb, data);
}

static int ch_update(skiff_client_t *cl, const skiff_resource_t *r, const char *ns, json_t *obj,
                     const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return write_object((client_http_t *)cl, "PUT", r, ns, obj, o, 1, cb, data);
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
    sbuf_t u = {0};
    int e = build_path(&u, r, ns, name);
    if (e < 0) {
        free(u.p);
        return e;
    }
    add_write_opts(&u, o);
    return request((client_http_t *)cl, "PATCH", &u, ct, patch, cb, data);
}

static int ch_remove(skiff_client_t *cl, const skiff_resource_t *r, const char *ns,
                     const char *name, const skiff_write_opts_t *o, skiff_client_cb cb,
                     void *data)
{
    if (!name || !*name)
        return SKIFF_EINVAL;
    sbuf_t u = {0};
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
    char *body = json_dumps(opts, JSON_COMPACT);
    json_decref(opts);
    if (!body) {
        free(u.p);
        return SKIFF_ENOMEM;
    }
    e = request((client_http_t *)cl, "DELETE", &u, "application/json", body, cb, data);
    free(body);
    return e;
}

/* ---- watch ------------------------------------------------------------------- */

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

static void watch_done(void *data, const http_client_result_t *res)
{
    skiff_client_watch_t *w = data;
    if (w->cancelled)
        return;
    w->depth++;
    if (res->status >= 200 && res->status < 300) {
        if (w->line_len)
            watch_event(w, w->line, w->line_len);
    } else if (res->status > 0) {
        /* the watch was refused (410 Gone, 403, ...): hand over its Status */
        json_t *st = json_loadb(res->body, res->body_len, 0, NULL);
        w->cb(w->data, "ERROR", st);
        json_decref(st);
    }
    if (!w->cancelled)
        w->cb(w->data, NULL, NULL);
    w->depth--;
    w->cancelled = 1;
    watch_unlink(w);
    http_client_free(w->http); /* from its own callback: the client defers this */
    watch_release(w);
}

static int ch_watch(skiff_client_t *cl, const skiff_resource_t *r, const char *ns,
                    const skiff_list_opts_t *o, skiff_client_watch_cb cb, void *data,
                    skiff_client_watch_t **out)
{
    client_http_t *h = (client_http_t *)cl;
    if (!cb)
        return SKIFF_EINVAL;
    sbuf_t u = {0};
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
    e = http_client_new(h->loop, h->host, h->port, &w->http);
    if (e < 0) {
        free(u.p);
        free(w);
        return e;
    }
    http_client_request_t req = {
        .method = "GET",
        .path = u.p,
        .accept = "application/json",
        .headers = h->auth,
        .on_chunk = watch_chunk,
        .on_done = watch_done,
        .data = w,
    };
    e = http_client_send(w->http, &req, &w->req);
    free(u.p);
    if (e < 0) {
        http_client_free(w->http);
        free(w);
        return e;
    }
    w->owner = h;
    w->next = h->watches;
    if (h->watches)
        h->watches->prev = w;
    h->watches = w;
    if (out)
        *out = w;
    return 0;
}

static void ch_watch_cancel(skiff_client_watch_t *w)
{
    if (!w || w->cancelled)
        return;
    w->cancelled = 1;
    watch_unlink(w);
    http_client_cancel(w->req);
    http_client_free(w->http);
    watch_release(w);
}

static void ch_free(skiff_client_t *cl)
{
    client_http_t *h = (client_http_t *)cl;
    if (!h)
        return;
    /* open watches end with (NULL, NULL) through their own completion */
    while (h->watches) {
        skiff_client_watch_t *w = h->watches;
        watch_unlink(w);
        http_client_free(w->http);
    }
    for (int i = 0; i < CLIENT_HTTP_POOL; i++)
        http_client_free(h->pool[i]);
    free(h->auth);
    free(h);
}

static const skiff_client_vtable_t client_http_vt = {
    .get = ch_get,
    .list = ch_list,
    .watch = ch_watch,
    .watch_cancel = ch_watch_cancel,
    .create = ch_create,
    .update = ch_update,
    .patch = ch_patch,
    .remove = ch_remove,
    .free = ch_free,
};

skiff_client_t *client_http_new(uv_loop_t *loop, const char *host, int port,
                                const char *bearer_token_or_NULL)
{
    if (!loop || !host || strlen(host) >= sizeof(((client_http_t *)0)->host))
        return NULL;
    client_http_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->base.vt = &client_http_vt;
    h->loop = loop;
    snprintf(h->host, sizeof(h->host), "%s", host);
    h->port = port;
    if (bearer_token_or_NULL && *bearer_token_or_NULL) {
        size_t n = strlen(bearer_token_or_NULL) + 32;
        h->auth = malloc(n);
        if (!h->auth)
            goto fail;
        snprintf(h->auth, n, "Authorization: Bearer %s\r\n", bearer_token_or_NULL);
    }
    for (int i = 0; i < CLIENT_HTTP_POOL; i++) {
        if (http_client_new(loop, host, port, &h->pool[i]) < 0)
            goto fail;
    }
    return &h->base;
fail:
    for (int i = 0; i < CLIENT_HTTP_POOL; i++)
        http_client_free(h->pool[i]);
    free(h->auth);
    free(h);
    return NULL;
}
