/* tests/unit/test_informer.c - shared informers against a real API server
 * (SQLite store plugin, in-process and HTTP clients).
 *
 * A small wrapper client counts the lists and watches the informer asks
 * for, can end the open watch as a server would, and can hold a new watch
 * back while the test writes and compacts, so that the informer resumes
 * from a revision that is gone (410 Expired). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <skiff/client.h>
#include <skiff/controller.h>
#include <skiff/store.h>
#include <uv.h>

#include "api/apiserver.h"
#include "api/client_http.h"
#include "api/client_inproc.h"
#include "http/server.h"
#include "object/registry.h"
#include "plugin/loader.h"

#include "api_fixture.h"

static uv_loop_t loop;
static api_fixture_t fx;
static api_server_t *api;
static http_server_t *http;

/* Run the loop until *flag is set (bounded). */
static void wait_for(int *flag) { assert_true(api_fixture_wait(&fx, flag)); }

static void on_tick(uv_timer_t *t) {}

/* Runs the loop for about ms milliseconds. */
static void run_for(uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + ms;
    uv_timer_start(&t, on_tick, ms, 0);
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
    /* a small replay ring, so that an old revision must come from the
     * store's history (and is gone once compacted); frequent bookmarks */
    api_server_opts_t ao = {.ring_capacity = 4, .bookmark_interval_ms = 100};
    if (api_fixture_start(&fx, &loop, ao, 1) != 0) return -1;
    api = fx.api;
    http = fx.http;
    return 0;
}

static int teardown(void **state) { return api_fixture_stop(&fx); }

/* ---- a counting, holding wrapper client ------------------------------------- */

typedef struct wwatch wwatch_t;

typedef struct wrap {
    skiff_client_t base;
    skiff_client_t *real;
    int lists, watches;
    int hold;          /* new watches wait for wrap_release */
    wwatch_t *active;
} wrap_t;

struct wwatch {
    wwatch_t *next;
    wrap_t *w;
    skiff_client_watch_t *real;
    skiff_client_watch_cb cb;
    void *data;
    /* a held watch's request */
    const skiff_resource_t *r;
    char *ns, *ls, *fs, *rv;
    skiff_list_opts_t opts;
};

static void ww_unlink(wwatch_t *ww)
{
    for (wwatch_t **p = &ww->w->active; *p; p = &(*p)->next)
        if (*p == ww) {
            *p = ww->next;
            return;
        }
}

static void ww_free(wwatch_t *ww)
{
    free(ww->ns);
    free(ww->ls);
    free(ww->fs);
    free(ww->rv);
    free(ww);
}

static void ww_event(void *data, const char *type, json_t *obj)
{
    wwatch_t *ww = data;
    if (!type) {
        ww_unlink(ww);
        skiff_client_watch_cb cb = ww->cb;
        void *d = ww->data;
        ww_free(ww);
        cb(d, NULL, NULL);
        return;
    }
    ww->cb(ww->data, type, obj); /* may cancel ww */
}

static int ww_begin(wwatch_t *ww)
{
    return skiff_client_watch(ww->w->real, ww->r, ww->ns, &ww->opts, ww_event, ww, &ww->real);
}

static char *dupn(const char *s) { return s ? strdup(s) : NULL; }

static int w_get(skiff_client_t *c, const skiff_resource_t *r, const char *ns, const char *name,
                 skiff_client_cb cb, void *data)
{
    return skiff_client_get(((wrap_t *)c)->real, r, ns, name, cb, data);
}

static int w_list(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                  const skiff_list_opts_t *o, skiff_client_cb cb, void *data)
{
    ((wrap_t *)c)->lists++;
    return skiff_client_list(((wrap_t *)c)->real, r, ns, o, cb, data);
}

static int w_watch(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                   const skiff_list_opts_t *o, skiff_client_watch_cb cb, void *data,
                   skiff_client_watch_t **out)
{
    wrap_t *w = (wrap_t *)c;
    w->watches++;
    wwatch_t *ww = calloc(1, sizeof *ww);
    if (!ww) return SKIFF_ENOMEM;
    ww->w = w;
    ww->cb = cb;
    ww->data = data;
    ww->r = r;
    ww->ns = dupn(ns);
    if (o) ww->opts = *o;
    ww->ls = dupn(ww->opts.label_selector);
    ww->fs = dupn(ww->opts.field_selector);
    ww->rv = dupn(ww->opts.resource_version);
    ww->opts.label_selector = ww->ls;
    ww->opts.field_selector = ww->fs;
    ww->opts.resource_version = ww->rv;
    if (!w->hold) {
        int e = ww_begin(ww);
        if (e < 0) {
            ww_free(ww);
            return e;
        }
    }
    ww->next = w->active;
    w->active = ww;
    *out = (skiff_client_watch_t *)ww;
    return 0;
}

static void w_watch_cancel(skiff_client_watch_t *h)
{
    wwatch_t *ww = (wwatch_t *)h;
    ww_unlink(ww);
    if (ww->real) ww->w->real->vt->watch_cancel(ww->real);
    ww_free(ww);
}

static int w_create(skiff_client_t *c, const skiff_resource_t *r, const char *ns, json_t *obj,
                    const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return skiff_client_create(((wrap_t *)c)->real, r, ns, obj, o, cb, data);
}

static int w_update(skiff_client_t *c, const skiff_resource_t *r, const char *ns, json_t *obj,
                    const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return skiff_client_update(((wrap_t *)c)->real, r, ns, obj, o, cb, data);
}

static int w_patch(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                   const char *name, skiff_patch_type_t t, const char *p,
                   const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return skiff_client_patch(((wrap_t *)c)->real, r, ns, name, t, p, o, cb, data);
}

static int w_remove(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                    const char *name, const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return skiff_client_delete(((wrap_t *)c)->real, r, ns, name, o, cb, data);
}

static void w_free(skiff_client_t *c) { free(c); }

static const skiff_client_vtable_t wrap_vt = {w_get,    w_list,   w_watch,  w_watch_cancel,
                                              w_create, w_update, w_patch,  w_remove,
                                              w_free};

static wrap_t *wrap_new(skiff_client_t *real)
{
    wrap_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->base.vt = &wrap_vt;
    w->real = real;
    return w;
}

/* Ends every open watch as a server closing it would. */
static void wrap_end_watches(wrap_t *w)
{
    while (w->active) {
        wwatch_t *ww = w->active;
        if (ww->real) w->real->vt->watch_cancel(ww->real);
        ww->real = NULL;
        ww_event(ww, NULL, NULL);
    }
}

static void wrap_release(wrap_t *w)
{
    w->hold = 0;
    for (wwatch_t *ww = w->active; ww; ww = ww->next)
        if (!ww->real) assert_int_equal(ww_begin(ww), 0);
}

/* ---- writes through the API -------------------------------------------------------- */

static const skiff_resource_t configmaps = {"", "v1", "configmaps", NULL};
static const skiff_resource_t namespaces = {"", "v1", "namespaces", NULL};

typedef struct answer {
    int done;
    int status;
    json_t *obj;
} answer_t;

static void on_answer(void *data, int status, json_t *obj)
{
    answer_t *a = data;
    a->done = 1;
    a->status = status;
    a->obj = json_incref(obj);
}

/* Runs one call to its end; returns the answer object (owned) and checks the status. */
static json_t *call_ok(int rc, answer_t *a, int want)
{
    assert_int_equal(rc, 0);
    wait_for(&a->done);
    if (a->status != want) fprintf(stderr, "# status %d: %s\n", a->status,
                                   a->obj ? json_dumps(a->obj, 0) : "");
    assert_int_equal(a->status, want);
    return a->obj;
}

static skiff_client_t *writer;

static void make_ns(const char *ns)
{
    answer_t a = {0};
    json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                          "metadata", "name", ns);
    json_decref(call_ok(skiff_client_create(writer, &namespaces, NULL, o, NULL, on_answer, &a),
                        &a, 201));
    json_decref(o);
}

/* Creates a ConfigMap; returns its uid in uid_out (if given). */
static void cm_create(const char *ns, const char *name, const char *labels_json,
                      const char *owners_json, const char *value, char *uid_out)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
                          "ConfigMap", "metadata", "name", name, "namespace", ns, "data", "k",
                          value);
    json_t *m = json_object_get(o, "metadata");
    if (labels_json) json_object_set_new(m, "labels", json_loads(labels_json, 0, NULL));
    if (owners_json) json_object_set_new(m, "ownerReferences", json_loads(owners_json, 0, NULL));
    answer_t a = {0};
    json_t *r = call_ok(skiff_client_create(writer, &configmaps, ns, o, NULL, on_answer, &a), &a,
                        201);
    if (uid_out)
        snprintf(uid_out, 64, "%s",
                 json_string_value(json_object_get(json_object_get(r, "metadata"), "uid")));
    json_decref(r);
    json_decref(o);
}

static void cm_patch(const char *ns, const char *name, const char *patch)
{
    answer_t a = {0};
    json_decref(call_ok(skiff_client_patch(writer, &configmaps, ns, name, SKIFF_PATCH_MERGE, patch,
                                           NULL, on_answer, &a),
                        &a, 200));
}

static void cm_delete(const char *ns, const char *name)
{
    answer_t a = {0};
    skiff_write_opts_t del = {.grace_period_seconds = -1};
    json_decref(call_ok(skiff_client_delete(writer, &configmaps, ns, name, &del, on_answer, &a),
                        &a, 200));
}

/* ---- what handlers saw ----------------------------------------------------------------- */

typedef struct seen {
    char log[128][80]; /* "add a", "update a v1->v2", "delete b" */
    int n;
    int resyncs;
} seen_t;

static const char *name_of(json_t *o)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
}

static const char *data_of(json_t *o)
{
    const char *v = json_string_value(json_object_get(json_object_get(o, "data"), "k"));
    return v ? v : "-";
}

static void h_add(void *d, json_t *o)
{
    seen_t *s = d;
    if (s->n < 128) snprintf(s->log[s->n++], 80, "add %s", name_of(o));
}

static void h_update(void *d, json_t *o, json_t *n)
{
    seen_t *s = d;
    if (o == n) {
        s->resyncs++;
        return;
    }
    if (s->n < 128) snprintf(s->log[s->n++], 80, "update %s %s->%s", name_of(n), data_of(o), data_of(n));
}

static void h_delete(void *d, json_t *o)
{
    seen_t *s = d;
    if (s->n < 128) snprintf(s->log[s->n++], 80, "delete %s", name_of(o));
}

static int seen_has(const seen_t *s, const char *line)
{
    int k = 0;
    for (int i = 0; i < s->n; i++) k += strcmp(s->log[i], line) == 0;
    return k;
}

static void wait_seen(seen_t *s, int n)
{
    for (int i = 0; i < 400000 && s->n < n; i++) uv_run(&loop, UV_RUN_ONCE);
    if (s->n != n)
        for (int i = 0; i < s->n; i++) fprintf(stderr, "# seen: %s\n", s->log[i]);
    assert_int_equal(s->n, n);
}

static void wait_synced(skiff_informer_t *inf)
{
    for (int i = 0; i < 200000 && !skiff_informer_has_synced(inf); i++) uv_run(&loop, UV_RUN_ONCE);
    assert_true(skiff_informer_has_synced(inf));
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void list_then_watch(skiff_client_t *real, const char *ns)
{
    writer = real;
    make_ns(ns);
    cm_create(ns, "a", NULL, NULL, "v1", NULL);
    cm_create(ns, "b", NULL, NULL, "v1", NULL);
    wrap_t *w = wrap_new(real);
    skiff_informer_opts_t o = {.namespace_ = ns};
    skiff_informer_t *inf;
    assert_int_equal(skiff_informer_new(&loop, &w->base, &configmaps, &o, &inf), 0);
    seen_t s = {0};
    skiff_informer_handler_t h = {h_add, h_update, h_delete, &s};
    assert_true(skiff_informer_add_handler(inf, &h) > 0);
    assert_false(skiff_informer_has_synced(inf));
    assert_int_equal(skiff_informer_start(inf), 0);
    wait_synced(inf);
    assert_int_equal(s.n, 2);
    assert_int_equal(seen_has(&s, "add a"), 1);
    assert_int_equal(seen_has(&s, "add b"), 1);

    cm_create(ns, "c", NULL, NULL, "v1", NULL);
    cm_patch(ns, "a", "{\"data\":{\"k\":\"v2\"}}");
    cm_delete(ns, "b");
    wait_seen(&s, 5);
    assert_string_equal(s.log[2], "add c");
    assert_string_equal(s.log[3], "update a v1->v2");
    assert_string_equal(s.log[4], "delete b");
    char key[128];
    snprintf(key, sizeof key, "%s/a", ns);
    assert_string_equal(data_of(skiff_informer_get(inf, key)), "v2");
    snprintf(key, sizeof key, "%s/b", ns);
    assert_null(skiff_informer_get(inf, key));
    json_t *all = skiff_informer_list(inf);
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);
    /* one list, one watch */
    assert_int_equal(w->lists, 1);
    assert_int_equal(w->watches, 1);

    /* a handler added late is told about what is cached */
    seen_t late = {0};
    skiff_informer_handler_t lh = {h_add, h_update, h_delete, &late};
    int id = skiff_informer_add_handler(inf, &lh);
    assert_true(id > 0);
    assert_int_equal(late.n, 2);
    skiff_informer_remove_handler(inf, id);
    cm_create(ns, "d", NULL, NULL, "v1", NULL);
    wait_seen(&s, 6);
    assert_int_equal(late.n, 2);

    skiff_informer_free(inf);
    uv_run(&loop, UV_RUN_NOWAIT);
    /* no handler runs after free */
    cm_create(ns, "e", NULL, NULL, "v1", NULL);
    run_for(50);
    assert_int_equal(s.n, 6);
    w_free(&w->base);
}

static void test_list_then_watch_inproc(void **state)
{
    skiff_client_t *c = client_inproc_new(&loop, api);
    list_then_watch(c, "inf-inproc");
    c->vt->free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* A large collection is listed in pages of 500 and assembled whole. */
static void test_paged_list(void **state)
{
    skiff_client_t *c = client_inproc_new(&loop, api);
    writer = c;
    make_ns("paged");
    char name[32];
    for (int i = 0; i < 1234; i++) {
        snprintf(name, sizeof name, "cm-%04d", i);
        cm_create("paged", name, NULL, NULL, "v1", NULL);
    }
    wrap_t *w = wrap_new(c);
    skiff_informer_opts_t o = {.namespace_ = "paged"};
    skiff_informer_t *inf;
    assert_int_equal(skiff_informer_new(&loop, &w->base, &configmaps, &o, &inf), 0);
    assert_int_equal(skiff_informer_start(inf), 0);
    wait_synced(inf);
    json_t *all = skiff_informer_list(inf);
    assert_int_equal(json_array_size(all), 1234);
    json_decref(all);
    assert_non_null(skiff_informer_get(inf, "paged/cm-0000"));
    assert_non_null(skiff_informer_get(inf, "paged/cm-1233"));
    /* three requests (500 + 500 + 234), one list as the informer counts */
    assert_int_equal(w->lists, 3);
    int lists = 0, watches = 0;
    skiff_informer_stats(inf, &lists, &watches);
    assert_int_equal(lists, 1);
    /* the watch starts from the list's version: a change is seen once */
    seen_t s = {0};
    skiff_informer_handler_t h = {NULL, h_update, NULL, &s};
    assert_true(skiff_informer_add_handler(inf, &h) > 0);
    cm_patch("paged", "cm-0700", "{\"data\":{\"k\":\"v2\"}}");
    wait_seen(&s, 1);
    assert_string_equal(s.log[0], "update cm-0700 v1->v2");
    skiff_informer_free(inf);
    uv_run(&loop, UV_RUN_NOWAIT);
    w_free(&w->base);
    c->vt->free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_list_then_watch_http(void **state)
{
    skiff_client_t *c = client_http_new(&loop, "127.0.0.1", http_server_port(http), NULL);
    list_then_watch(c, "inf-http");
    c->vt->free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* An informer of the ConfigMaps in ns through w, its events logged in s,
 * started and synced. */
static skiff_informer_t *synced_informer(wrap_t *w, const char *ns, seen_t *s)
{
    skiff_informer_opts_t o = {.namespace_ = ns};
    skiff_informer_t *inf;
    assert_int_equal(skiff_informer_new(&loop, &w->base, &configmaps, &o, &inf), 0);
    skiff_informer_handler_t h = {h_add, h_update, h_delete, s};
    assert_true(skiff_informer_add_handler(inf, &h) > 0);
    assert_int_equal(skiff_informer_start(inf), 0);
    wait_synced(inf);
    return inf;
}

/* A loopback port nothing listens on: connections to it are refused. */
static int dead_port(void)
{
    uv_tcp_t t;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &t);
    assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* The server goes away under a synced informer: its watches are refused
 * at once, and it retries them with back-off (100 ms, doubling), not in a
 * loop that would spin a CPU; once the server is back it goes on. */
static void test_refused_watch_backs_off(void **state)
{
    skiff_client_t *live = client_http_new(&loop, "127.0.0.1", http_server_port(http), NULL);
    skiff_client_t *dead = client_http_new(&loop, "127.0.0.1", dead_port(), NULL);
    writer = live;
    make_ns("refused");
    wrap_t *w = wrap_new(live);
    seen_t s = {0};
    skiff_informer_t *inf = synced_informer(w, "refused", &s);
    /* a watch that brought an event and ends is resumed at once */
    cm_create("refused", "before", NULL, NULL, "v1", NULL);
    wait_seen(&s, 1);
    int before = w->watches;
    wrap_end_watches(w);
    run_for(20);
    assert_int_equal(w->watches, before + 1);
    before = w->watches;
    w->real = dead;
    wrap_end_watches(w);
    run_for(1000);
    /* 0, 100, 300, 700 ms: a handful, where a spinning client makes thousands */
    int refused = w->watches - before;
    if (refused < 2 || refused > 6) {
        skiff_informer_free(inf); /* or it spins on through the teardown */
        w->real = live;
        fail_msg("%d watches in 1 s against a refusing server", refused);
    }
    w->real = live;
    cm_create("refused", "after", NULL, NULL, "v1", NULL);
    wait_seen(&s, 2);
    assert_string_equal(s.log[1], "add after");
    assert_int_equal(w->lists, 1);
    skiff_informer_free(inf);
    uv_run(&loop, UV_RUN_NOWAIT);
    w_free(&w->base);
    dead->vt->free(dead);
    live->vt->free(live);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Answers every open watch with 410 Expired, as a server whose history
 * is compacted under the watcher would (the informer cancels each). */
static void wrap_expire_watches(wrap_t *w)
{
    json_t *st = json_pack("{s:s, s:s, s:s, s:s, s:i}", "kind", "Status", "status", "Failure",
                           "reason", "Expired", "message", "too old resource version", "code", 410);
    while (w->active) {
        wwatch_t *ww = w->active;
        ww->cb(ww->data, "ERROR", st);
        if (w->active == ww) { /* not cancelled: drop it anyway */
            ww_unlink(ww);
            if (ww->real) w->real->vt->watch_cancel(ww->real);
            ww_free(ww);
        }
    }
    json_decref(st);
}

/* Every watch the informer starts expires at once (its relist's version
 * compacted away as fast as it lists): it relists with back-off, not in a
 * loop of whole lists, and goes on once watches work again. */
static void test_expiring_relists_back_off(void **state)
{
    skiff_client_t *real = client_inproc_new(&loop, api);
    writer = real;
    make_ns("expiring");
    wrap_t *w = wrap_new(real);
    seen_t s = {0};
    skiff_informer_t *inf = synced_informer(w, "expiring", &s);
    int lists = w->lists;
    w->hold = 1;
    for (int i = 0; i < 100; i++) { /* 1 s */
        wrap_expire_watches(w);
        run_for(10);
    }
    /* relists 0, 100, 300, 700 ms after the first expiry */
    int relists = w->lists - lists;
    if (relists < 2 || relists > 6) {
        skiff_informer_free(inf);
        fail_msg("%d relists in 1 s of watches expiring at once", relists);
    }
    wrap_release(w);
    w->hold = 0;
    cm_create("expiring", "after", NULL, NULL, "v1", NULL);
    wait_seen(&s, 1);
    assert_string_equal(s.log[0], "add after");
    skiff_informer_free(inf);
    uv_run(&loop, UV_RUN_NOWAIT);
    w_free(&w->base);
    real->vt->free(real);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Two controllers asking the factory for the same informer share one list
 * and one watch; both get every event. */
static void test_shared_informer(void **state)
{
    skiff_client_t *real = client_inproc_new(&loop, api);
    writer = real;
    make_ns("shared");
    wrap_t *w = wrap_new(real);
    skiff_informer_factory_t *f;
    assert_int_equal(skiff_informer_factory_new(&loop, &w->base, &f), 0);
    skiff_informer_opts_t o = {.namespace_ = "shared"};
    skiff_informer_t *i1, *i2, *i3;
    assert_int_equal(skiff_informer_factory_get(f, &configmaps, &o, &i1), 0);
    assert_int_equal(skiff_informer_factory_get(f, &configmaps, &o, &i2), 0);
    assert_ptr_equal(i1, i2);
    skiff_informer_opts_t other = {.namespace_ = "shared", .label_selector = "x=y"};
    assert_int_equal(skiff_informer_factory_get(f, &configmaps, &other, &i3), 0);
    assert_ptr_not_equal(i1, i3);
    seen_t s1 = {0}, s2 = {0};
    skiff_informer_handler_t h1 = {h_add, h_update, h_delete, &s1};
    skiff_informer_handler_t h2 = {h_add, h_update, h_delete, &s2};
    assert_true(skiff_informer_add_handler(i1, &h1) > 0);
    assert_true(skiff_informer_add_handler(i2, &h2) > 0);
    assert_int_equal(skiff_informer_factory_start(f), 0);
    for (int i = 0; i < 200000 && !skiff_informer_factory_has_synced(f); i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(skiff_informer_factory_has_synced(f));
    cm_create("shared", "one", NULL, NULL, "v1", NULL);
    cm_create("shared", "two", "{\"x\":\"y\"}", NULL, "v1", NULL);
    wait_seen(&s1, 2);
    wait_seen(&s2, 2);
    int lists, watches;
    skiff_informer_stats(i1, &lists, &watches);
    assert_int_equal(lists, 1);
    assert_int_equal(watches, 1);
    /* two informers in all: two lists, two watches through the client */
    assert_int_equal(w->lists, 2);
    assert_int_equal(w->watches, 2);
    json_t *sel = skiff_informer_list(i3);
    assert_int_equal(json_array_size(sel), 1);
    assert_string_equal(name_of(json_array_get(sel, 0)), "two");
    json_decref(sel);
    skiff_informer_factory_free(f);
    uv_run(&loop, UV_RUN_NOWAIT);
    w_free(&w->base);
    real->vt->free(real);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* What the transform of test_transformed_informer makes of a ConfigMap:
 * metadata's name, namespace, resourceVersion and labels, and data.k
 * prefixed with "T:". */
static int transform_calls;
static json_t *prefix_data(void *data, json_t *obj)
{
    transform_calls++;
    assert_ptr_equal(data, &transform_calls);
    json_t *m = json_object_get(obj, "metadata");
    json_t *out = json_pack("{s:{s:O,s:O,s:O}}", "metadata", "name", json_object_get(m, "name"),
                            "namespace", json_object_get(m, "namespace"), "resourceVersion",
                            json_object_get(m, "resourceVersion"));
    if (json_object_get(m, "labels"))
        json_object_set(json_object_get(out, "metadata"), "labels", json_object_get(m, "labels"));
    char v[64];
    snprintf(v, sizeof v, "T:%s", data_of(obj));
    json_object_set_new(out, "data", json_pack("{s:s}", "k", v));
    return out;
}

/* A transformed informer caches and hands over what the transform made of
 * list items and watch events; the factory never gives it to a caller who
 * asked for the plain one, and shares it by transform id. */
static void test_transformed_informer(void **state)
{
    skiff_client_t *real = client_inproc_new(&loop, api);
    writer = real;
    make_ns("trans");
    cm_create("trans", "a", "{\"x\":\"y\"}", NULL, "v1", NULL);
    wrap_t *w = wrap_new(real);
    skiff_informer_factory_t *f;
    assert_int_equal(skiff_informer_factory_new(&loop, &w->base, &f), 0);
    skiff_informer_opts_t o = {.namespace_ = "trans"};
    skiff_informer_t *plain, *t1, *t2, *other;
    transform_calls = 0;
    assert_int_equal(skiff_informer_factory_get_transformed(f, &configmaps, &o, "test/prefix",
                                                            prefix_data, &transform_calls, &t1),
                     0);
    assert_int_equal(skiff_informer_factory_get(f, &configmaps, &o, &plain), 0);
    assert_ptr_not_equal(plain, t1);
    assert_int_equal(skiff_informer_factory_get_transformed(f, &configmaps, &o, "test/prefix",
                                                            prefix_data, &transform_calls, &t2),
                     0);
    assert_ptr_equal(t1, t2);
    assert_int_equal(skiff_informer_factory_get_transformed(f, &configmaps, &o, "test/other",
                                                            prefix_data, &transform_calls, &other),
                     0);
    assert_ptr_not_equal(t1, other);
    assert_ptr_not_equal(plain, other);
    assert_int_equal(skiff_informer_factory_get_transformed(f, &configmaps, &o, "", prefix_data,
                                                            NULL, &other),
                     SKIFF_EINVAL);
    assert_int_equal(skiff_informer_factory_get_transformed(f, &configmaps, &o, "test/none", NULL,
                                                            NULL, &other),
                     SKIFF_EINVAL);
    /* packed, the same transform is another informer, with the same events */
    skiff_informer_opts_t op = {.namespace_ = "trans", .packed = 1};
    skiff_informer_t *packed;
    assert_int_equal(skiff_informer_factory_get_transformed(f, &configmaps, &op, "test/prefix",
                                                            prefix_data, &transform_calls, &packed),
                     0);
    assert_ptr_not_equal(packed, t1);
    seen_t sp = {0}, st = {0}, spk = {0};
    skiff_informer_handler_t hp = {h_add, h_update, h_delete, &sp};
    skiff_informer_handler_t ht = {h_add, h_update, h_delete, &st};
    skiff_informer_handler_t hpk = {h_add, h_update, h_delete, &spk};
    assert_true(skiff_informer_add_handler(plain, &hp) > 0);
    assert_true(skiff_informer_add_handler(t1, &ht) > 0);
    assert_true(skiff_informer_add_handler(packed, &hpk) > 0);
    assert_int_equal(skiff_informer_factory_start(f), 0);
    for (int i = 0; i < 200000 && !skiff_informer_factory_has_synced(f); i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(skiff_informer_factory_has_synced(f));
    /* started: the transform is fixed */
    assert_int_equal(skiff_informer_set_transform(t1, NULL, NULL), SKIFF_EINVAL);
    /* the listed item went through the transform */
    assert_string_equal(data_of(skiff_informer_get(t1, "trans/a")), "T:v1");
    assert_string_equal(data_of(skiff_informer_get(plain, "trans/a")), "v1");
    /* indexes are built from the transformed object */
    json_t *l = skiff_informer_list_label(t1, "x", "y");
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    cm_create("trans", "b", NULL, NULL, "v1", NULL);
    cm_patch("trans", "a", "{\"data\":{\"k\":\"v2\"}}");
    cm_delete("trans", "b");
    wait_seen(&st, 4);
    wait_seen(&sp, 4);
    wait_seen(&spk, 4);
    assert_string_equal(st.log[1], "add b");
    assert_string_equal(st.log[2], "update a T:v1->T:v2");
    assert_string_equal(sp.log[2], "update a v1->v2");
    assert_string_equal(st.log[3], "delete b");
    for (int i = 0; i < 4; i++) assert_string_equal(spk.log[i], st.log[i]);
    assert_string_equal(data_of(skiff_informer_get(t1, "trans/a")), "T:v2");
    assert_string_equal(data_of(skiff_informer_get(packed, "trans/a")), "T:v2");
    json_t *ref = skiff_informer_get_ref(packed, "trans/a");
    assert_string_equal(data_of(ref), "T:v2");
    json_decref(ref);
    assert_true(json_equal(skiff_informer_get(packed, "trans/a"), skiff_informer_get(t1, "trans/a")));
    l = skiff_informer_list_label(packed, "x", "y");
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    /* one call per object received by t1, packed and other: a, then b, a, b */
    for (int i = 0; i < 200000 && transform_calls < 12; i++) uv_run(&loop, UV_RUN_ONCE);
    run_for(20);
    assert_int_equal(transform_calls, 12);
    skiff_informer_factory_free(f);
    uv_run(&loop, UV_RUN_NOWAIT);
    w_free(&w->base);
    real->vt->free(real);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_indexes(void **state)
{
    skiff_client_t *real = client_inproc_new(&loop, api);
    writer = real;
    make_ns("idx1");
    make_ns("idx2");
    char owner_uid[64];
    cm_create("idx1", "owner", NULL, NULL, "v", owner_uid);
    char refs[512];
    snprintf(refs, sizeof refs,
             "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"owner\",\"uid\":\"%s\","
             "\"controller\":true}]",
             owner_uid);
    cm_create("idx1", "w1", "{\"app\":\"web\",\"tier\":\"front\"}", refs, "v", NULL);
    cm_create("idx1", "w2", "{\"app\":\"web\"}", NULL, "v", NULL);
    cm_create("idx2", "w3", "{\"app\":\"web\"}", refs, "v", NULL);
    cm_create("idx2", "d1", "{\"app\":\"db\"}", NULL, "v", NULL);
    skiff_informer_t *inf;
    assert_int_equal(skiff_informer_new(&loop, real, &configmaps, NULL, &inf), 0);
    seen_t s = {0};
    skiff_informer_handler_t h = {h_add, h_update, h_delete, &s};
    skiff_informer_add_handler(inf, &h);
    skiff_informer_start(inf);
    wait_synced(inf);
    json_t *a = skiff_informer_list_label(inf, "app", "web");
    assert_int_equal(json_array_size(a), 3);
    json_decref(a);
    a = skiff_informer_list_label(inf, "app", "db");
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(name_of(json_array_get(a, 0)), "d1");
    json_decref(a);
    a = skiff_informer_list_label(inf, "tier", "back");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    a = skiff_informer_list_namespace(inf, "idx2");
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    a = skiff_informer_list_owner(inf, owner_uid);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    a = skiff_informer_list_owner(inf, "no-such-uid");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);

    /* a relabel moves the object between label entries; a delete drops it */
    int n = s.n;
    cm_patch("idx1", "w2", "{\"metadata\":{\"labels\":{\"app\":\"db\"}}}");
    cm_delete("idx2", "w3");
    wait_seen(&s, n + 2);
    a = skiff_informer_list_label(inf, "app", "web");
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(name_of(json_array_get(a, 0)), "w1");
    json_decref(a);
    a = skiff_informer_list_label(inf, "app", "db");
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    a = skiff_informer_list_owner(inf, owner_uid);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(name_of(json_array_get(a, 0)), "w1");
    json_decref(a);
    a = skiff_informer_list_namespace(inf, "idx2");
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);
    char key[64];
    assert_int_equal(skiff_object_key(key, sizeof key, skiff_informer_get(inf, "idx1/w1")), 7);
    assert_string_equal(key, "idx1/w1");
    skiff_informer_free(inf);
    real->vt->free(real);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* The server ends each watch after one second; the informer resumes from
 * the last version it saw and misses nothing, without a new list. */
static void test_watch_timeout_resumes(void **state)
{
    skiff_client_t *real = client_inproc_new(&loop, api);
    writer = real;
    make_ns("timeout");
    wrap_t *w = wrap_new(real);
    skiff_informer_opts_t o = {.namespace_ = "timeout", .watch_timeout_s = 1};
    skiff_informer_t *inf;
    assert_int_equal(skiff_informer_new(&loop, &w->base, &configmaps, &o, &inf), 0);
    seen_t s = {0};
    skiff_informer_handler_t h = {h_add, h_update, h_delete, &s};
    skiff_informer_add_handler(inf, &h);
    skiff_informer_start(inf);
    wait_synced(inf);
    cm_create("timeout", "t1", NULL, NULL, "v1", NULL);
    wait_seen(&s, 1);
    run_for(1300);
    assert_true(w->watches >= 2);
    cm_patch("timeout", "t1", "{\"data\":{\"k\":\"v2\"}}");
    cm_create("timeout", "t2", NULL, NULL, "v1", NULL);
    run_for(1100);
    cm_delete("timeout", "t1");
    wait_seen(&s, 4);
    assert_string_equal(s.log[0], "add t1");
    assert_string_equal(s.log[1], "update t1 v1->v2");
    assert_string_equal(s.log[2], "add t2");
    assert_string_equal(s.log[3], "delete t1");
    assert_true(w->watches >= 3);
    assert_int_equal(w->lists, 1);
    skiff_informer_free(inf);
    uv_run(&loop, UV_RUN_NOWAIT);
    w_free(&w->base);
    real->vt->free(real);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int compacted;
static void on_compacted(void *data, int status)
{
    assert_int_equal(status, 0);
    compacted = 1;
}

/* The informer's watch ends while the history it would resume from is
 * compacted away: the server answers 410 Expired, the informer relists and
 * tells the handlers what changed meanwhile. */
static void test_expired_relists(void **state)
{
    skiff_client_t *real = client_inproc_new(&loop, api);
    writer = real;
    make_ns("expired");
    cm_create("expired", "gone", NULL, NULL, "v1", NULL);
    cm_create("expired", "changed", NULL, NULL, "v1", NULL);
    cm_create("expired", "same", NULL, NULL, "v1", NULL);
    wrap_t *w = wrap_new(real);
    skiff_informer_opts_t o = {.namespace_ = "expired"};
    skiff_informer_t *inf;
    assert_int_equal(skiff_informer_new(&loop, &w->base, &configmaps, &o, &inf), 0);
    seen_t s = {0};
    skiff_informer_handler_t h = {h_add, h_update, h_delete, &s};
    skiff_informer_add_handler(inf, &h);
    skiff_informer_start(inf);
    wait_synced(inf);
    assert_int_equal(s.n, 3);
    run_for(20);

    w->hold = 1;
    wrap_end_watches(w);
    /* a watch that ends at once with nothing is resumed after 100 ms */
    run_for(150);
    assert_int_equal(w->watches, 2); /* the resumed watch, held back */
    cm_delete("expired", "gone");
    cm_patch("expired", "changed", "{\"data\":{\"k\":\"v2\"}}");
    cm_create("expired", "new", NULL, NULL, "v1", NULL);
    /* more writes than the replay ring holds */
    for (int i = 0; i < 6; i++) {
        char v[48];
        snprintf(v, sizeof v, "{\"data\":{\"k\":\"f%d\"}}", i);
        cm_patch("expired", "new", v);
    }
    compacted = 0;
    assert_int_equal(fx.store->vt->compact(fx.store, fx.store->vt->revision(fx.store), on_compacted, NULL), 0);
    wait_for(&compacted);
    wrap_release(w);
    wait_seen(&s, 6);
    assert_int_equal(seen_has(&s, "delete gone"), 1);
    assert_int_equal(seen_has(&s, "update changed v1->v2"), 1);
    assert_int_equal(seen_has(&s, "add new"), 1);
    assert_int_equal(seen_has(&s, "update same v1->v1"), 0);
    assert_int_equal(w->lists, 2);
    assert_null(skiff_informer_get(inf, "expired/gone"));
    assert_string_equal(data_of(skiff_informer_get(inf, "expired/new")), "f5");
    /* and it watches again from the new list */
    cm_delete("expired", "same");
    wait_seen(&s, 7);
    assert_string_equal(s.log[6], "delete same");
    skiff_informer_free(inf);
    uv_run(&loop, UV_RUN_NOWAIT);
    w_free(&w->base);
    real->vt->free(real);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Every cached object comes again as an update (old == new) each resync
 * interval; bookmarks move the informer's resourceVersion on. */
static void test_resync_and_bookmarks(void **state)
{
    skiff_client_t *real = client_inproc_new(&loop, api);
    writer = real;
    make_ns("resync");
    make_ns("elsewhere");
    cm_create("resync", "r1", NULL, NULL, "v1", NULL);
    cm_create("resync", "r2", NULL, NULL, "v1", NULL);
    skiff_informer_opts_t o = {.namespace_ = "resync", .resync_ms = 60};
    skiff_informer_t *inf;
    assert_int_equal(skiff_informer_new(&loop, real, &configmaps, &o, &inf), 0);
    seen_t s = {0};
    skiff_informer_handler_t h = {h_add, h_update, h_delete, &s};
    skiff_informer_add_handler(inf, &h);
    skiff_informer_start(inf);
    wait_synced(inf);
    char rv0[64];
    snprintf(rv0, sizeof rv0, "%s", skiff_informer_resource_version(inf));
    /* writes the informer does not see still advance it, by bookmarks */
    cm_create("elsewhere", "x", NULL, NULL, "v1", NULL);
    run_for(400);
    assert_int_equal(s.n, 2);
    assert_true(s.resyncs >= 6);
    assert_true(s.resyncs % 2 == 0);
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)fx.store->vt->revision(fx.store));
    assert_string_not_equal(skiff_informer_resource_version(inf), rv0);
    assert_string_equal(skiff_informer_resource_version(inf), want);
    skiff_informer_free(inf);
    real->vt->free(real);
    uv_run(&loop, UV_RUN_NOWAIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_then_watch_inproc),
        cmocka_unit_test(test_list_then_watch_http),
        cmocka_unit_test(test_refused_watch_backs_off),
        cmocka_unit_test(test_shared_informer),
        cmocka_unit_test(test_transformed_informer),
        cmocka_unit_test(test_indexes),
        cmocka_unit_test(test_watch_timeout_resumes),
        cmocka_unit_test(test_expired_relists),
        cmocka_unit_test(test_expiring_relists_back_off),
        cmocka_unit_test(test_resync_and_bookmarks),
        /* last: its 1,234 objects would crowd the cluster-wide informers above */
        cmocka_unit_test(test_paged_list),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
