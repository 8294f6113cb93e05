/* core/api/handle_read.c - get, list and watch.
 *
 * Lists and watches are served from the watch cache; single gets read the
 * store (the source of truth). Lists are assembled from the cached
 * serialized objects without re-encoding them. Watches stream newline-
 * delimited watch events; a watch from a revision older than the cache's
 * ring falls back to its own store watch, and one older than the store's
 * compaction gets a 410 Expired ERROR event, as Kubernetes answers. */
#include "api/apiserver_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/object_meta.h"
#include "api/table.h"
#include "util/log.h"
#include "util/strbuf.h"

/* ---- replies --------------------------------------------------------- */


static void reply_object_as_is(api_call_t *c, int code, const json_t *obj);

/* Objects are stored in their resource's storage version; a request made
 * through another version (autoscaling/v1) is answered in that version. */
void api_reply_object(api_call_t *c, int code, const json_t *obj)
{
    json_t *conv = api_call_is_scale(c)
                       ? json_incref((json_t *)obj)
                       : registry_convert_from_storage(c->kind, obj);
    if (!conv) {
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory converting the object");
        return;
    }
    reply_object_as_is(c, code, conv);
    json_decref(conv);
}

static void reply_object_as_is(api_call_t *c, int code, const json_t *obj)
{
    const char *ct = NULL;
    int tv = table_accept(c->req->accept, &ct);
    if (tv != TABLE_NONE && !c->sub) {
        table_opts_t o = {.include = table_include_from_query(c->req->query), .version = tv};
        json_t *t = table_new(c->kind, obj, &o);
        if (t) {
            char *body = json_dumps(t, JSON_COMPACT);
            json_decref(t);
            if (body) {
                c->resp->ops->send(c->resp, code, ct, body, strlen(body));
                free(body);
                return;
            }
        }
    }
    reply_json(c->resp, code, obj);
}

/* ---- selectors ---------------------------------------------------------- */

int api_selectors_parse(api_call_t *c, api_selectors_t *s)
{
    char err[512];
    memset(s, 0, sizeof *s);
    const char *l = api_query_get(c, "labelSelector");
    if (l && *l && label_selector_parse(l, &s->ls, err, sizeof err) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL, "unable to parse labelSelector %s: %s", l,
                     err);
        return -1;
    }
    const char *f = api_query_get(c, "fieldSelector");
    if (f && *f && field_selector_parse(f, &s->fs, err, sizeof err) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL, "unable to parse fieldSelector %s: %s", f,
                     err);
        api_selectors_free(s);
        return -1;
    }
    for (size_t i = 0; s->fs && i < field_selector_count(s->fs); i++) {
        const char *path = field_selector_path(s->fs, i);
        if (!registry_field_label_supported(registry_storage_kind(c->kind), path)) {
            status_reply(c->resp, 400, "BadRequest", NULL,
                         "field label not supported: %s (%s can be selected by metadata.name, "
                         "metadata.namespace%s)",
                         path, c->kind->resource,
                         strcmp(c->kind->kind, "Pod") == 0 ? ", spec.nodeName, status.phase, ..." : "");
            api_selectors_free(s);
            return -1;
        }
    }
    const char *lim = api_query_get(c, "limit");
    if (lim && *lim) {
        char *end;
        long long v = strtoll(lim, &end, 10);
        if (*end || v < 0) {
            status_reply(c->resp, 400, "BadRequest", NULL,
                         "limit must be a non-negative integer, not \"%s\"", lim);
            api_selectors_free(s);
            return -1;
        }
    }
    return 0;
}

void api_selectors_free(api_selectors_t *s)
{
    label_selector_free(s->ls);
    field_selector_free(s->fs);
    s->ls = NULL;
    s->fs = NULL;
}

/* ---- get -------------------------------------------------------------- */

static void on_get(void *data, int status, const skiff_kv_t *kv)
{
    api_call_t *c = data;
    if (status == SKIFF_ENOENT) {
        api_not_found(c, c->name);
    } else if (status != 0) {
        status_reply(c->resp, 500, "InternalError", NULL, "reading from the store failed: %s",
                     skiff_strerror(status));
    } else {
        json_t *obj = api_object_from_kv(kv);
        if (!obj) {
            status_reply(c->resp, 500, "InternalError", NULL, "stored object is not valid JSON");
        } else if (api_call_is_scale(c)) {
            json_t *scale = api_scale_view_of(c->kind, obj);
            reply_json(c->resp, 200, scale);
            json_decref(scale);
        } else {
            api_reply_object(c, 200, obj);
        }
        json_decref(obj);
    }
    api_call_free(c);
}

void api_handle_get(api_call_t *c)
{
    api_key_for(c, c->ns, c->name);
    int rc = c->srv->store->vt->get(c->srv->store, c->key, 0, on_get, c);
    if (rc != 0) {
        status_reply(c->resp, 500, "InternalError", NULL, "reading from the store failed: %s",
                     skiff_strerror(rc));
        api_call_free(c);
    }
}

/* ---- list -------------------------------------------------------------- */

/* Continue tokens: base64 of {"rv":N,"start":"<key>"}; the next page starts
 * after that key. */
static char *continue_encode(int64_t rv, const char *last_key)
{
    json_t *j = json_pack("{s:s, s:I, s:s}", "v", "meta.k8s.io/v1", "rv", (json_int_t)rv,
                          "start", last_key);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out) EVP_EncodeBlock((unsigned char *)out, (unsigned char *)s, (int)n);
    free(s);
    return out;
}

static int continue_decode(const char *tok, char *key, size_t keylen, int64_t *rev)
{
    size_t n = strlen(tok);
    if (n == 0 || n % 4 != 0 || n > 4096) return -1;
    unsigned char *raw = malloc(n);
    if (!raw) return -1;
    int len = EVP_DecodeBlock(raw, (const unsigned char *)tok, (int)n);
    if (len < 0) {
        free(raw);
        return -1;
    }
    while (len > 0 && raw[len - 1] == '\0') len--;
    json_t *j = json_loadb((const char *)raw, (size_t)len, 0, NULL);
    free(raw);
    const char *start = json_string_value(json_object_get(j, "start"));
    json_t *rv = json_object_get(j, "rv");
    int rc = -1;
    if (start && strlen(start) < keylen && json_is_integer(rv) && json_integer_value(rv) > 0) {
        *rev = json_integer_value(rv);
        strcpy(key, start);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

static void list_table_reply(api_call_t *c, cache_obj_t **items, size_t first, size_t count,
                             const char *rv, const char *cont, long long remaining)
{
    json_t *list = json_object();
    json_t *arr = json_array();
    for (size_t i = first; i < first + count; i++) {
        json_t *p = cache_obj_decode(items[i]);
        if (p) json_array_append_new(arr, p);
    }
    json_t *meta = json_pack("{s:s}", "resourceVersion", rv);
    if (cont) json_object_set_new(meta, "continue", json_string(cont));
    if (remaining > 0) json_object_set_new(meta, "remainingItemCount", json_integer(remaining));
    json_object_set_new(list, "metadata", meta);
    json_object_set_new(list, "items", arr);
    api_reply_object(c, 200, list);
    json_decref(list);
}

void api_handle_list(api_call_t *c)
{
    api_selectors_t sel;
    if (api_selectors_parse(c, &sel) != 0) {
        api_call_free(c);
        return;
    }
    long long limit = 0;
    const char *ls = api_query_get(c, "limit");
    if (ls && *ls) limit = atoll(ls);
    char start[1024] = "";
    const char *cont = api_query_get(c, "continue");
    int64_t list_rev = watch_cache_revision(c->cache);
    if (cont && *cont) {
        int64_t token_rev = 0;
        if (continue_decode(cont, start, sizeof start, &token_rev) != 0) {
            status_reply(c->resp, 400, "BadRequest", NULL,
                         "continue key is not valid: use the continue token a previous list "
                         "returned");
            api_selectors_free(&sel);
            api_call_free(c);
            return;
        }
        /* Pages after the first come from the cache as it is now, but the
         * list keeps the first page's resourceVersion; once that revision
         * is compacted the token is too old, as in Kubernetes. */
        if (token_rev <= c->srv->store->vt->compacted_revision(c->srv->store)) {
            status_reply(c->resp, 410, "Expired", NULL,
                         "The provided continue parameter is too old to display a consistent "
                         "list result. You can start a new list without the continue "
                         "parameter.");
            api_selectors_free(&sel);
            api_call_free(c);
            return;
        }
        list_rev = token_rev;
    }
    cache_obj_t **items;
    size_t n = watch_cache_list(c->cache, c->ns, sel.ls, sel.fs, &items);
    size_t first = 0;
    if (start[0]) {
        while (first < n && strcmp(items[first]->key, start) <= 0) first++;
    }
    size_t count = n - first;
    char *next = NULL;
    long long remaining = 0;
    if (limit > 0 && (long long)count > limit) {
        count = (size_t)limit;
        remaining = (long long)(n - first - count);
        next = continue_encode(list_rev, items[first + count - 1]->key);
    }
    char rv[32];
    snprintf(rv, sizeof rv, "%lld", (long long)list_rev);
    if (c->table) {
        list_table_reply(c, items, first, count, rv, next, remaining);
    } else {
        strbuf_t b = {0};
        strbuf_add(&b, "{\"kind\":\"");
        strbuf_add(&b, c->kind->list_kind);
        strbuf_add(&b, "\",\"apiVersion\":\"");
        strbuf_add(&b, registry_api_version(c->kind));
        strbuf_add(&b, "\",\"metadata\":{\"resourceVersion\":\"");
        strbuf_add(&b, rv);
        strbuf_add(&b, "\"");
        if (next) {
            char tail[64];
            strbuf_add(&b, ",\"continue\":\"");
            strbuf_add(&b, next);
            snprintf(tail, sizeof tail, "\",\"remainingItemCount\":%lld", remaining);
            strbuf_add(&b, tail);
        }
        strbuf_add(&b, "},\"items\":[");
        for (size_t i = first; i < first + count; i++) {
            if (i > first) strbuf_addn(&b, ",", 1);
            if (!registry_converts_on_read(c->kind, items[i]->rev)) {
                size_t len;
                char *tmp;
                const char *text = cache_obj_text(items[i], &len, &tmp);
                if (text) strbuf_addn(&b, text, len);
                else b.failed = 1;
                free(tmp);
                continue;
            }
            json_t *stored = cache_obj_decode(items[i]);
            json_t *v = stored ? registry_convert_from_storage(c->kind, stored) : NULL;
            json_decref(stored);
            char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
            if (s) strbuf_add(&b, s);
            else b.failed = 1;
            free(s);
            json_decref(v);
        }
        strbuf_add(&b, "]}");
        if (b.failed)
            status_reply(c->resp, 500, "InternalError", NULL, "out of memory building the list");
        else
            c->resp->ops->send(c->resp, 200, "application/json", b.p, b.len);
        free(b.p);
    }
    free(next);
    watch_cache_list_free(items, n);
    api_selectors_free(&sel);
    api_call_free(c);
}

/* ---- watch ------------------------------------------------------------- */

typedef struct api_stream {
    api_call_t *call;
    api_server_t *srv;
    struct api_stream *prev, *next;
    cache_watcher_t *watcher;
    skiff_store_watch_t *store_watch; /* fallback for revisions older than the cache ring */
    api_selectors_t sel;
    uv_timer_t timer;
    int table;
    const char *table_ct;
    int ended;
    int sent_headers_row;
    int objects; /* the sink takes events as objects (in-process client) */
} api_stream_t;

static void stream_unlink(api_stream_t *st)
{
    api_server_t *s = st->srv;
    if (st->prev) st->prev->next = st->next;
    else if (s->streams == st) s->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    st->prev = st->next = NULL;
}

static void on_stream_timer_closed(uv_handle_t *h)
{
    api_stream_t *st = h->data;
    api_selectors_free(&st->sel);
    api_call_free(st->call);
    free(st);
}

/* End the stream: stop the sources, finish the response, free later. */
static void stream_end(api_stream_t *st)
{
    if (st->ended) return;
    st->ended = 1;
    if (st->watcher) watch_cache_unwatch(st->watcher);
    st->watcher = NULL;
    if (st->store_watch) st->srv->store->vt->watch_cancel(st->store_watch);
    st->store_watch = NULL;
    stream_unlink(st);
    st->call->resp->on_abort = NULL;
    st->call->resp->ops->stream_end(st->call->resp);
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, on_stream_timer_closed);
}

void api_streams_close_all(api_server_t *s)
{
    while (s->streams) stream_end(s->streams);
}

void api_streams_close_resource(api_server_t *s, const char *group, const char *resource)
{
    for (api_stream_t *st = s->streams, *next; st; st = next) {
        next = st->next;
        const kind_def_t *k = st->call->kind;
        if (strcmp(k->group, group) == 0 && strcmp(k->resource, resource) == 0) stream_end(st);
    }
}

static void stream_write_line(api_stream_t *st, const char *type, const char *obj, size_t len)
{
    if (st->ended) return;
    strbuf_t b = {0};
    strbuf_add(&b, "{\"type\":\"");
    strbuf_add(&b, type);
    strbuf_add(&b, "\",\"object\":");
    strbuf_addn(&b, obj, len);
    strbuf_add(&b, "}\n");
    int rc = b.failed ? -1 : st->call->resp->ops->stream_write(st->call->resp, b.p, b.len);
    free(b.p);
    if (rc < 0) stream_end(st);
}

/* An event as an object to a sink in the same process: no text to build
 * and parse again. */
static void stream_write_event(api_stream_t *st, const char *type, json_t *obj)
{
    if (st->ended) return;
    int rc = st->call->resp->ops->stream_write_event(st->call->resp, type, obj);
    if (rc < 0) stream_end(st);
}

static void stream_send_json(api_stream_t *st, const char *type, const json_t *obj)
{
    if (st->objects) {
        stream_write_event(st, type, (json_t *)obj);
        return;
    }
    char *s = json_dumps(obj, JSON_COMPACT);
    if (s) stream_write_line(st, type, s, strlen(s));
    free(s);
}

static void stream_send_obj(api_stream_t *st, int type, cache_obj_t *o, int64_t rev)
{
    if (type == CACHE_BOOKMARK) {
        char buf[256];
        int n = snprintf(buf, sizeof buf,
                         "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":"
                         "{\"resourceVersion\":\"%lld\"}}",
                         st->call->kind->kind, registry_api_version(st->call->kind), (long long)rev);
        if (st->objects) {
            json_t *j = json_loadb(buf, (size_t)n, 0, NULL);
            if (j) stream_write_event(st, "BOOKMARK", j);
            json_decref(j);
            return;
        }
        stream_write_line(st, "BOOKMARK", buf, (size_t)n);
        return;
    }
    const kind_def_t *k = st->call->kind;
    int convert = registry_converts_on_read(k, o->rev);
    if (st->table || convert) {
        json_t *p = cache_obj_decode(o);
        json_t *v = p ? registry_convert_from_storage(k, p) : NULL;
        json_decref(p);
        if (!v) return;
        if (!st->table) {
            stream_send_json(st, cache_event_names[type], v);
            json_decref(v);
            return;
        }
        table_opts_t opts = {.include = table_include_from_query(st->call->req->query),
                             .version = st->table,
                             .no_headers = st->sent_headers_row};
        json_t *t = table_new(k, v, &opts);
        json_decref(v);
        st->sent_headers_row = 1;
        if (t) stream_send_json(st, cache_event_names[type], t);
        json_decref(t);
        return;
    }
    if (st->objects) {
        /* the tree is shared with the cache while it dispatches (a field
         * selector may have decoded it already) and with other watchers;
         * the cache keeps it no longer than it did before */
        int had = o->parsed != NULL;
        json_t *j = (json_t *)cache_obj_parsed(o);
        if (j) stream_write_event(st, cache_event_names[type], j);
        if (!had) cache_obj_drop_parsed(o);
        return;
    }
    size_t len;
    char *tmp;
    const char *text = cache_obj_text(o, &len, &tmp);
    if (text) {
        stream_write_line(st, cache_event_names[type], text, len);
        free(tmp);
        return;
    }
    /* a snapshot that cannot be unpacked (out of memory): the watcher must
     * not miss it silently; it is told, and lists again */
    json_t *err = status_new(500, "InternalError", NULL, "out of memory sending a watch event");
    if (err) stream_send_json(st, "ERROR", err);
    json_decref(err);
    stream_end(st);
}

static void on_cache_event(void *data, int type, cache_obj_t *obj, int64_t rev)
{
    stream_send_obj(data, type, obj, rev);
}

static void stream_send_error(api_stream_t *st, json_t *status)
{
    stream_send_json(st, "ERROR", status);
    json_decref(status);
}

static void on_store_watch(void *data, int status, const skiff_store_event_t *ev, size_t n)
{
    api_stream_t *st = data;
    if (status != 0) {
        st->store_watch = NULL;
        if (status == SKIFF_ECOMPACTED)
            stream_send_error(st, status_new(410, "Expired", NULL,
                                             "too old resource version: %s",
                                             api_query_get(st->call, "resourceVersion")));
        stream_end(st);
        return;
    }
    for (size_t i = 0; i < n && !st->ended; i++) {
        const char *key = ev[i].kv.key;
        /* key: /registry/<g>/<r>/<rest> */
        const char *rest = key;
        for (int slashes = 0; *rest && slashes < 4; rest++)
            if (*rest == '/') slashes++;
        int del = ev[i].type == SKIFF_EVENT_DELETE;
        const skiff_kv_t *src = del ? &ev[i].prev : &ev[i].kv;
        if (!src->value) continue;
        cache_obj_t *o = cache_obj_from_store(rest, st->call->kind->namespaced, src->value,
                                              src->value_len, ev[i].kv.mod_revision);
        cache_obj_t *prev = ev[i].prev.value && !del
                                ? cache_obj_from_store(rest, st->call->kind->namespaced,
                                                       ev[i].prev.value, ev[i].prev.value_len,
                                                       ev[i].prev.mod_revision)
                                : NULL;
        if (o) {
            const char *ns = st->call->ns;
            int now = !del && watch_cache_match(o, ns, st->sel.ls, st->sel.fs);
            cache_obj_t *b = del ? o : prev;
            int before = b && watch_cache_match(b, ns, st->sel.ls, st->sel.fs);
            if (now && before) stream_send_obj(st, CACHE_MODIFIED, o, 0);
            else if (now) stream_send_obj(st, CACHE_ADDED, o, 0);
            else if (before) stream_send_obj(st, CACHE_DELETED, o, 0);
        }
        cache_obj_unref(o);
        cache_obj_unref(prev);
    }
}

static void on_stream_abort(api_response_t *r, void *data) { stream_end(data); }

static void on_stream_timeout(uv_timer_t *t) { stream_end(t->data); }

void api_handle_watch(api_call_t *c)
{
    api_stream_t *st = calloc(1, sizeof *st);
    if (!st) {
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
        api_call_free(c);
        return;
    }
    if (api_selectors_parse(c, &st->sel) != 0) {
        free(st);
        api_call_free(c);
        return;
    }
    if (c->name) {
        /* watching one object: the collection's watch narrowed to its name */
        const char *f = api_query_get(c, "fieldSelector");
        char sel[1400], err[256];
        snprintf(sel, sizeof sel, "%s%smetadata.name=%s", f && *f ? f : "", f && *f ? "," : "",
                 c->name);
        field_selector_free(st->sel.fs);
        st->sel.fs = NULL;
        if (strpbrk(c->name, ",=\\!") ||
            field_selector_parse(sel, &st->sel.fs, err, sizeof err) != 0) {
            status_reply(c->resp, 400, "BadRequest", NULL, "cannot watch %s: not a valid name",
                         c->name);
            api_selectors_free(&st->sel);
            free(st);
            api_call_free(c);
            return;
        }
    }
    st->call = c;
    st->srv = c->srv;
    st->table = table_accept(c->req->accept, &st->table_ct);
    const char *rvs = api_query_get(c, "resourceVersion");
    int64_t after = -1;
    if (rvs && *rvs && strcmp(rvs, "0") != 0) {
        char *end;
        after = strtoll(rvs, &end, 10);
        if (*end || after < 0) {
            status_reply(c->resp, 400, "BadRequest", NULL,
                         "invalid resourceVersion %s: it must be a resourceVersion a previous "
                         "list or watch returned",
                         rvs);
            api_selectors_free(&st->sel);
            free(st);
            api_call_free(c);
            return;
        }
    }
    int timeout = c->srv->watch_timeout_max_s;
    const char *ts = api_query_get(c, "timeoutSeconds");
    if (ts && atoi(ts) > 0 && atoi(ts) < timeout) timeout = atoi(ts);
    uv_timer_init(c->srv->loop, &st->timer);
    st->timer.data = st;
    st->next = c->srv->streams;
    if (st->next) st->next->prev = st;
    c->srv->streams = st;
    c->resp->on_abort = on_stream_abort;
    c->resp->abort_data = st;
    c->resp->ops->stream_begin(c->resp, 200, st->table ? st->table_ct : "application/json");
    st->objects = !st->table && c->resp->ops->stream_write_event &&
                  c->resp->ops->stream_write_event(c->resp, NULL, NULL) == 0;
    uv_timer_start(&st->timer, on_stream_timeout, (uint64_t)timeout * 1000, 0);

    const char *bm = api_query_get(c, "allowWatchBookmarks");
    int want_bookmarks = bm && (strcmp(bm, "true") == 0 || strcmp(bm, "1") == 0);
    int too_old = 0;
    st->watcher = watch_cache_watch(c->cache, c->ns, st->sel.ls, st->sel.fs, after,
                                    on_cache_event, st, &too_old);
    if (st->ended) {
        /* the stream ended during the replay, before it knew its watcher */
        if (st->watcher) watch_cache_unwatch(st->watcher);
        st->watcher = NULL;
        return;
    }
    if (st->watcher) {
        watch_cache_watcher_want_bookmarks(st->watcher, want_bookmarks);
        if (st->objects) watch_cache_watcher_want_objects(st->watcher);
        return;
    }
    if (!too_old) {
        stream_end(st);
        return;
    }
    /* Older than the ring: replay from the store's history. */
    char prefix[1024];
    if (c->ns && c->kind->namespaced)
        snprintf(prefix, sizeof prefix, "/registry/%s/%s/%s/",
                 c->kind->group[0] ? c->kind->group : "core", c->kind->resource, c->ns);
    else
        snprintf(prefix, sizeof prefix, "/registry/%s/%s/",
                 c->kind->group[0] ? c->kind->group : "core", c->kind->resource);
    int rc = c->srv->store->vt->watch(c->srv->store, prefix, after, on_store_watch, st,
                                      &st->store_watch);
    if (rc == 0 && st->ended && st->store_watch) {
        /* ended during the replay */
        c->srv->store->vt->watch_cancel(st->store_watch);
        st->store_watch = NULL;
    }
    if (rc == SKIFF_ECOMPACTED) {
        stream_send_error(st, status_new(410, "Expired", NULL, "too old resource version: %s",
                                         rvs));
        stream_end(st);
    } else if (rc != 0) {
        stream_send_error(st, status_new(500, "InternalError", NULL,
                                         "watching the store failed: %s", skiff_strerror(rc)));
        stream_end(st);
    }
}
