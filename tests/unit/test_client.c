/* tests/unit/test_client.c - the in-process and the HTTP client behave the same.
 *
 * One real API server (SQLite store plugin, HTTP listener on a free port)
 * and one scenario, run once through client_inproc and once through
 * client_http: create, get, list with a selector, stale update, patch,
 * watch, delete, errors. Every step checks what a controller would see. */
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

static int setup(void **state)
{
    api_server_opts_t ao = {0};
    if (api_fixture_start(&fx, &loop, ao, 1) != 0) return -1;
    api = fx.api;
    http = fx.http;
    return 0;
}

static int teardown(void **state) { return api_fixture_stop(&fx); }

/* ---- one call, its answer ---------------------------------------------------- */

typedef struct answer {
    int done;
    int status;
    json_t *obj;
    int in_call; /* set while the call is on the stack: answers must come later */
    int early;   /* the callback ran inside the call */
} answer_t;

static void on_answer(void *data, int status, json_t *obj)
{
    answer_t *a = data;
    if (a->in_call) a->early = 1;
    a->done = 1;
    a->status = status;
    a->obj = json_incref(obj);
}

static const skiff_resource_t configmaps = {"", "v1", "configmaps", NULL};

#define CALL(a, expr)                                                                           \
    do {                                                                                       \
        memset(&(a), 0, sizeof(a));                                                            \
        (a).in_call = 1;                                                                       \
        assert_int_equal((expr), 0);                                                           \
        (a).in_call = 0;                                                                       \
        wait_for(&(a).done);                                                                   \
        assert_false((a).early);                                                               \
    } while (0)

typedef struct events {
    char seen[64][16];
    int n;
    int ended;
} events_t;

static void on_event(void *data, const char *type, json_t *obj)
{
    events_t *e = data;
    if (!type) {
        e->ended = 1;
        return;
    }
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (e->n < 64 && name && strcmp(name, "watched") == 0) snprintf(e->seen[e->n++], 16, "%s", type);
}

static void scenario(skiff_client_t *c, const char *ns)
{
    answer_t a;
    /* a namespace of its own */
    static const skiff_resource_t namespaces = {"", "v1", "namespaces", NULL};
    json_t *nso = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                            "metadata", "name", ns);
    CALL(a, skiff_client_create(c, &namespaces, NULL, nso, NULL, on_answer, &a));
    json_decref(nso);
    assert_int_equal(a.status, 201);
    json_decref(a.obj);

    /* create */
    json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", "watched", "labels", "app", "web",
                           "data", "k", "v1");
    CALL(a, skiff_client_create(c, &configmaps, ns, cm, NULL, on_answer, &a));
    assert_int_equal(a.status, 201);
    const char *uid = json_string_value(json_object_get(json_object_get(a.obj, "metadata"), "uid"));
    assert_non_null(uid);
    char rv0[32];
    snprintf(rv0, sizeof rv0, "%s",
             json_string_value(json_object_get(json_object_get(a.obj, "metadata"), "resourceVersion")));
    json_decref(a.obj);

    /* create again: 409 AlreadyExists with a Status */
    CALL(a, skiff_client_create(c, &configmaps, ns, cm, NULL, on_answer, &a));
    assert_int_equal(a.status, 409);
    assert_string_equal(json_string_value(json_object_get(a.obj, "reason")), "AlreadyExists");
    json_decref(a.obj);

    /* watch from the create's revision */
    events_t ev = {0};
    skiff_client_watch_t *w = NULL;
    skiff_list_opts_t wo = {.resource_version = rv0};
    assert_int_equal(skiff_client_watch(c, &configmaps, ns, &wo, on_event, &ev, &w), 0);

    /* get */
    CALL(a, skiff_client_get(c, &configmaps, ns, "watched", on_answer, &a));
    assert_int_equal(a.status, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a.obj, "data"), "k")), "v1");
    json_decref(a.obj);

    /* list with selectors */
    skiff_list_opts_t lo = {.label_selector = "app=web"};
    CALL(a, skiff_client_list(c, &configmaps, ns, &lo, on_answer, &a));
    assert_int_equal(a.status, 200);
    assert_int_equal(json_array_size(json_object_get(a.obj, "items")), 1);
    json_decref(a.obj);
    skiff_list_opts_t lo2 = {.label_selector = "app=db"};
    CALL(a, skiff_client_list(c, &configmaps, ns, &lo2, on_answer, &a));
    assert_int_equal(json_array_size(json_object_get(a.obj, "items")), 0);
    json_decref(a.obj);

    /* merge patch */
    CALL(a, skiff_client_patch(c, &configmaps, ns, "watched", SKIFF_PATCH_MERGE,
                               "{\"data\":{\"k\":\"v2\"}}", NULL, on_answer, &a));
    assert_int_equal(a.status, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a.obj, "data"), "k")), "v2");
    json_decref(a.obj);

    /* update with the stale resourceVersion: 409 Conflict */
    json_object_set_new(json_object_get(cm, "metadata"), "resourceVersion", json_string(rv0));
    CALL(a, skiff_client_update(c, &configmaps, ns, cm, NULL, on_answer, &a));
    assert_int_equal(a.status, 409);
    assert_string_equal(json_string_value(json_object_get(a.obj, "reason")), "Conflict");
    json_decref(a.obj);
    json_decref(cm);

    /* dry-run delete leaves it; delete removes it */
    skiff_write_opts_t dry = {.dry_run = 1, .grace_period_seconds = -1};
    CALL(a, skiff_client_delete(c, &configmaps, ns, "watched", &dry, on_answer, &a));
    assert_int_equal(a.status, 200);
    json_decref(a.obj);
    CALL(a, skiff_client_get(c, &configmaps, ns, "watched", on_answer, &a));
    assert_int_equal(a.status, 200);
    json_decref(a.obj);
    /* a uid precondition that does not match: 409, nothing deleted */
    skiff_write_opts_t other = {.grace_period_seconds = -1,
                                .precondition_uid = "00000000-0000-4000-8000-000000000000"};
    CALL(a, skiff_client_delete(c, &configmaps, ns, "watched", &other, on_answer, &a));
    assert_int_equal(a.status, 409);
    json_decref(a.obj);
    CALL(a, skiff_client_get(c, &configmaps, ns, "watched", on_answer, &a));
    assert_int_equal(a.status, 200);
    char cm_uid[64];
    snprintf(cm_uid, sizeof cm_uid, "%s",
             json_string_value(json_object_get(json_object_get(a.obj, "metadata"), "uid")));
    json_decref(a.obj);
    skiff_write_opts_t del = {.propagation_policy = "Background", .grace_period_seconds = -1,
                              .precondition_uid = cm_uid};
    CALL(a, skiff_client_delete(c, &configmaps, ns, "watched", &del, on_answer, &a));
    assert_int_equal(a.status, 200);
    json_decref(a.obj);
    CALL(a, skiff_client_get(c, &configmaps, ns, "watched", on_answer, &a));
    assert_int_equal(a.status, 404);
    assert_string_equal(json_string_value(json_object_get(a.obj, "reason")), "NotFound");
    json_decref(a.obj);

    /* the watch saw the patch and the delete, in order */
    for (int i = 0; i < 200000 && ev.n < 2; i++) uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.seen[0], "MODIFIED");
    assert_string_equal(ev.seen[1], "DELETED");
    c->vt->watch_cancel(w);

    /* errors come back as Status objects */
    json_t *bad = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                            "metadata", "name", "x");
    CALL(a, skiff_client_create(c, &configmaps, "no-such-namespace", bad, NULL, on_answer, &a));
    assert_int_equal(a.status, 404);
    json_decref(a.obj);
    json_decref(bad);
    static const skiff_resource_t nothing = {"", "v1", "nothings", NULL};
    CALL(a, skiff_client_get(c, &nothing, ns, "x", on_answer, &a));
    assert_int_equal(a.status, 404);
    json_decref(a.obj);
}

static void test_inproc_client(void **state)
{
    skiff_client_t *c = client_inproc_new(&loop, api);
    assert_non_null(c);
    scenario(c, "inproc");
    c->vt->free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_http_client(void **state)
{
    skiff_client_t *c = client_http_new(&loop, "127.0.0.1", http_server_port(http), NULL);
    assert_non_null(c);
    scenario(c, "http");
    c->vt->free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Freeing a client with a watch open ends the watch once, with (NULL, NULL). */
static void test_free_ends_watch(void **state)
{
    skiff_client_t *clients[2] = {client_inproc_new(&loop, api),
                                  client_http_new(&loop, "127.0.0.1", http_server_port(http), NULL)};
    for (int i = 0; i < 2; i++) {
        events_t ev = {0};
        skiff_client_watch_t *w;
        assert_int_equal(skiff_client_watch(clients[i], &configmaps, "default", NULL, on_event, &ev, &w), 0);
        for (int k = 0; k < 50; k++) uv_run(&loop, UV_RUN_NOWAIT);
        clients[i]->vt->free(clients[i]);
        for (int k = 0; k < 200000 && !ev.ended; k++) uv_run(&loop, UV_RUN_ONCE);
        assert_true(ev.ended);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inproc_client),
        cmocka_unit_test(test_http_client),
        cmocka_unit_test(test_free_ends_watch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
