/* tests/unit/test_controller.c - the controller runner with a toy
 * controller against a real API server: each ConfigMap labelled
 * role=source gets a "<name>-copy" ConfigMap (role=copy) that it owns
 * through ownerReferences and whose data follows the source's.
 *
 * Checked: it converges after creates, updates and deletes of sources,
 * re-creates a copy deleted by hand (an event on the owned object maps to
 * its owner's key), retries failed reconciles with back-off, honours
 * requeue-after, and never runs one key twice at once nor more reconciles
 * than its workers; a secondary watch given a transform caches what the
 * transform returns, in the informer the factory shares by transform id. */
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
#include <skiff/plugin.h>
#include <skiff/store.h>
#include <uv.h>

#include "api/apiserver.h"
#include "api/client_inproc.h"
#include "object/registry.h"
#include "plugin/loader.h"

#include "api_fixture.h"

static uv_loop_t loop;
static api_fixture_t fx;
static api_server_t *api;

/* Run the loop until *flag is set (bounded). */
static void wait_for(int *flag) { assert_true(api_fixture_wait(&fx, flag)); }

static int setup(void **state)
{
    api_server_opts_t ao = {0};
    if (api_fixture_start(&fx, &loop, ao, 0) != 0) return -1;
    api = fx.api;

    return 0;
}

static int teardown(void **state) { return api_fixture_stop(&fx); }

/* ---- the toy controller ----------------------------------------------------------- */

static const skiff_resource_t configmaps = {"", "v1", "configmaps", NULL};
static const skiff_resource_t namespaces = {"", "v1", "namespaces", NULL};

typedef struct copier {
    skiff_client_t *client;
    json_t *running;  /* keys being reconciled now */
    int inflight, max_inflight;
    int overlaps;     /* one key run twice at once */
    int runs;
    int flaky_runs;   /* failed reconciles of ctl/flaky */
    int tick_runs;    /* requeued-after reconciles of ctl/tick */
    int warnings;
} copier_t;

static copier_t cp;

static void finish(skiff_reconcile_t *r, skiff_reconcile_result_t res)
{
    copier_t *c = r->data;
    json_object_del(c->running, r->key);
    c->inflight--;
    skiff_reconcile_done(r, res);
}

static void on_write(void *data, int status, json_t *obj)
{
    skiff_reconcile_t *r = data;
    skiff_reconcile_result_t res = {SKIFF_RECONCILE_DONE};
    /* 404 on delete: already gone, which is what we wanted */
    if (status != 200 && status != 201 && status != 404)
        res = (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0,
                                         status == 409 ? SKIFF_ECONFLICT : SKIFF_EIO};
    finish(r, res);
}

static void copier_reconcile(skiff_reconcile_t *r)
{
    copier_t *c = r->data;
    c->runs++;
    if (json_object_get(c->running, r->key)) c->overlaps++;
    json_object_set_new(c->running, r->key, json_true());
    if (++c->inflight > c->max_inflight) c->max_inflight = c->inflight;

    if (strcmp(r->key, "ctl/flaky") == 0 && c->flaky_runs < 2) {
        c->flaky_runs++;
        finish(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_EIO});
        return;
    }
    if (strcmp(r->key, "ctl/tick") == 0 && c->tick_runs < 2) {
        c->tick_runs++;
        finish(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, 30, 0});
        return;
    }
    json_t *src = skiff_informer_get(skiff_controller_informer(r->controller), r->key);
    char copy_key[300], copy_name[300];
    snprintf(copy_key, sizeof copy_key, "%s-copy", r->key);
    snprintf(copy_name, sizeof copy_name, "%s-copy", r->name);
    json_t *copy =
        skiff_informer_get(skiff_controller_secondary_informer(r->controller, 0), copy_key);
    int rc = 0;
    if (!src) {
        if (!copy) {
            finish(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
            return;
        }
        skiff_write_opts_t del = {.grace_period_seconds = -1};
        rc = skiff_client_delete(c->client, &configmaps, r->ns, copy_name, &del, on_write, r);
    } else if (!copy) {
        json_t *m = json_object_get(src, "metadata");
        json_t *o = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:O, s:b}]}, s:O}", "apiVersion",
            "v1", "kind", "ConfigMap", "metadata", "name", copy_name, "namespace", r->ns,
            "labels", "role", "copy", "ownerReferences", "apiVersion", "v1", "kind", "ConfigMap",
            "name", r->name, "uid", json_object_get(m, "uid"), "controller", 1, "data",
            json_object_get(src, "data") ? json_object_get(src, "data") : json_null());
        rc = skiff_client_create(c->client, &configmaps, r->ns, o, NULL, on_write, r);
        json_decref(o);
    } else if (!json_equal(json_object_get(src, "data"), json_object_get(copy, "data"))) {
        json_t *o = json_deep_copy(copy);
        json_object_set(o, "data", json_object_get(src, "data"));
        rc = skiff_client_update(c->client, &configmaps, r->ns, o, NULL, on_write, r);
        json_decref(o);
    } else {
        finish(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    if (rc < 0) finish(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, rc});
}

static void test_log(skiff_plugin_ctx_t *ctx, int level, const char *fmt, ...)
{
    if (level <= SKIFF_LOG_WARN) cp.warnings++;
}

/* ---- API helpers ------------------------------------------------------------------------ */

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

static int call_status(int rc, answer_t *a)
{
    assert_int_equal(rc, 0);
    wait_for(&a->done);
    json_decref(a->obj);
    return a->status;
}

static void cm_put(skiff_client_t *c, const char *name, const char *value, int create)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                          "ConfigMap", "metadata", "name", name, "labels", "role", "source",
                          "data", "k", value);
    answer_t a = {0};
    if (create)
        assert_int_equal(call_status(skiff_client_create(c, &configmaps, "ctl", o, NULL,
                                                         on_answer, &a), &a), 201);
    else
        assert_int_equal(call_status(skiff_client_update(c, &configmaps, "ctl", o, NULL,
                                                         on_answer, &a), &a), 200);
    json_decref(o);
}

static void cm_delete(skiff_client_t *c, const char *name)
{
    answer_t a = {0};
    skiff_write_opts_t del = {.grace_period_seconds = -1};
    assert_int_equal(call_status(skiff_client_delete(c, &configmaps, "ctl", name, &del,
                                                     on_answer, &a), &a), 200);
}

/* The copy's data value as the server has it ("" when it does not exist),
 * with its owner's name in owner_out. */
static void server_copy(skiff_client_t *c, const char *name, char *value_out, char *owner_out)
{
    answer_t a = {0};
    assert_int_equal(skiff_client_get(c, &configmaps, "ctl", name, on_answer, &a), 0);
    wait_for(&a.done);
    value_out[0] = owner_out[0] = '\0';
    if (a.status == 200) {
        const char *v = json_string_value(json_object_get(json_object_get(a.obj, "data"), "k"));
        json_t *ref = json_array_get(
            json_object_get(json_object_get(a.obj, "metadata"), "ownerReferences"), 0);
        const char *o = json_string_value(json_object_get(ref, "name"));
        snprintf(value_out, 64, "%s", v ? v : "");
        snprintf(owner_out, 64, "%s", o ? o : "");
    }
    json_decref(a.obj);
}

/* Runs the loop until the server's copy has value (or is gone when value
 * is ""), for at most ~5 s. */
static void wait_copy(skiff_client_t *c, const char *name, const char *value)
{
    char v[64], o[64];
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + 5000;
    for (;;) {
        server_copy(c, name, v, o);
        if (strcmp(v, value) == 0 || uv_now(&loop) > end) break;
        for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
        usleep(2000);
        uv_update_time(&loop);
    }
    assert_string_equal(v, value);
}

/* Lets closes and late callbacks run (the server's timers keep the loop
 * alive, so UV_RUN_DEFAULT would not return). */
static void settle(void)
{
    for (int i = 0; i < 200; i++) uv_run(&loop, UV_RUN_NOWAIT);
}

static const char *copy_uid(skiff_controller_t *ctl, const char *key, char *buf)
{
    json_t *o = skiff_informer_get(skiff_controller_secondary_informer(ctl, 0), key);
    const char *u = json_string_value(json_object_get(json_object_get(o, "metadata"), "uid"));
    snprintf(buf, 64, "%s", u ? u : "");
    return buf;
}

static void test_copier_converges(void **state)
{
    skiff_client_t *client = client_inproc_new(&loop, api);
    assert_non_null(client);
    answer_t a = {0};
    json_t *nso = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                            "metadata", "name", "ctl");
    assert_int_equal(call_status(skiff_client_create(client, &namespaces, NULL, nso, NULL,
                                                     on_answer, &a), &a), 201);
    json_decref(nso);
    cm_put(client, "a", "1", 1);
    cm_put(client, "b", "1", 1);

    memset(&cp, 0, sizeof cp);
    cp.client = client;
    cp.running = json_object();
    skiff_plugin_ctx_t ctx = {.loop = &loop, .name = "copier", .client = client, .log = test_log};
    skiff_informer_factory_t *f;
    assert_int_equal(skiff_informer_factory_new(&loop, client, &f), 0);
    skiff_controller_watch_t sec[] = {{.resource = configmaps,
                                       .opts = {.namespace_ = "ctl", .label_selector = "role=copy"},
                                       .by_owner = 1,
                                       .controller_only = 1}};
    skiff_controller_desc_t d = {
        .name = "copier",
        .primary = configmaps,
        .primary_opts = {.namespace_ = "ctl", .label_selector = "role=source"},
        .primary_kind = "ConfigMap",
        .primary_api_version = "v1",
        .secondary = sec,
        .n_secondary = 1,
        .reconcile = copier_reconcile,
        .workers = 2,
        .queue = {.base_delay_ms = 5, .max_delay_ms = 200},
        .data = &cp,
    };
    skiff_controller_t *ctl;
    assert_int_equal(skiff_controller_new(&ctx, f, &d, &ctl), 0);
    assert_int_equal(skiff_controller_start(ctl), 0);

    /* sources that existed before the start */
    wait_copy(client, "a-copy", "1");
    wait_copy(client, "b-copy", "1");
    char v[64], owner[64];
    server_copy(client, "a-copy", v, owner);
    assert_string_equal(owner, "a");

    /* create and update */
    cm_put(client, "c", "1", 1);
    cm_put(client, "a", "2", 0);
    wait_copy(client, "c-copy", "1");
    wait_copy(client, "a-copy", "2");

    /* a copy deleted by hand comes back (a new object) */
    char uid0[64], uid1[64];
    copy_uid(ctl, "ctl/b-copy", uid0);
    assert_string_not_equal(uid0, "");
    cm_delete(client, "b-copy");
    wait_copy(client, "b-copy", "1");
    for (int i = 0; i < 2000 && strcmp(copy_uid(ctl, "ctl/b-copy", uid1), uid0) == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_string_not_equal(uid1, "");
    assert_string_not_equal(uid1, uid0);

    /* a deleted source takes its copy with it */
    cm_delete(client, "c");
    wait_copy(client, "c-copy", "");

    /* failures are retried with back-off, and logged */
    cm_put(client, "flaky", "9", 1);
    wait_copy(client, "flaky-copy", "9");
    assert_int_equal(cp.flaky_runs, 2);
    assert_true(cp.warnings >= 2);

    /* requeue-after runs the key again without an event */
    cm_put(client, "tick", "7", 1);
    wait_copy(client, "tick-copy", "7");
    assert_int_equal(cp.tick_runs, 2);

    assert_int_equal(cp.overlaps, 0);
    assert_true(cp.max_inflight <= 2);
    assert_true(cp.max_inflight >= 1);

    skiff_controller_free(ctl);
    skiff_informer_factory_free(f);
    client->vt->free(client);
    settle();
    /* no reconcile was left running */
    assert_int_equal(cp.inflight, 0);
    json_decref(cp.running);
}

/* Freed while a reconcile is in flight: the late skiff_reconcile_done is
 * accepted and nothing leaks. */
static skiff_reconcile_t *parked;
static void park_reconcile(skiff_reconcile_t *r) { parked = r; }

static void test_free_with_reconcile_in_flight(void **state)
{
    skiff_client_t *client = client_inproc_new(&loop, api);
    skiff_plugin_ctx_t ctx = {.loop = &loop, .name = "parker", .client = client, .log = test_log};
    skiff_informer_factory_t *f;
    assert_int_equal(skiff_informer_factory_new(&loop, client, &f), 0);
    skiff_controller_desc_t d = {.name = "parker",
                                 .primary = configmaps,
                                 .primary_opts = {.namespace_ = "ctl"},
                                 .reconcile = park_reconcile};
    skiff_controller_t *ctl;
    assert_int_equal(skiff_controller_new(&ctx, f, &d, &ctl), 0);
    assert_int_equal(skiff_controller_start(ctl), 0);
    parked = NULL;
    for (int i = 0; i < 200000 && !parked; i++) uv_run(&loop, UV_RUN_ONCE);
    assert_non_null(parked);
    /* only one worker: a second key waits */
    skiff_reconcile_t *first = parked;
    for (int i = 0; i < 100; i++) uv_run(&loop, UV_RUN_NOWAIT);
    assert_ptr_equal(parked, first);
    skiff_controller_free(ctl);
    skiff_informer_factory_free(f);
    for (int i = 0; i < 100; i++) uv_run(&loop, UV_RUN_NOWAIT);
    skiff_reconcile_done(first, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
    client->vt->free(client);
    settle();
}

/* ---- a secondary watch through a transformed informer ------------------------------ */

static int strip_calls;

/* Caches ConfigMaps without their data. */
static json_t *strip_data(void *data, json_t *obj)
{
    strip_calls++;
    json_t *out = json_copy(obj);
    if (out) json_object_del(out, "data");
    return out;
}

static json_t *never_used(void *data, json_t *obj) { return json_incref(obj); }

static void map_none(void *data, skiff_controller_t *c, json_t *obj) {}
static void done_reconcile(skiff_reconcile_t *r)
{
    skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
}

static void test_secondary_transform(void **state)
{
    skiff_client_t *client = client_inproc_new(&loop, api);
    skiff_plugin_ctx_t ctx = {.loop = &loop, .name = "tr", .client = client, .log = test_log};
    skiff_informer_factory_t *f;
    assert_int_equal(skiff_informer_factory_new(&loop, client, &f), 0);
    cm_put(client, "tr-1", "v", 1);
    skiff_controller_watch_t w = {.resource = configmaps, .opts = {.namespace_ = "ctl"},
                                  .map = map_none};
    skiff_controller_desc_t d = {.name = "tr",
                                 .primary = configmaps,
                                 .primary_opts = {.namespace_ = "ctl"},
                                 .secondary = &w,
                                 .n_secondary = 1,
                                 .reconcile = done_reconcile};
    skiff_controller_transform_t t = {0, "test/strip-data", strip_data, NULL};
    skiff_controller_t *ctl, *other;
    /* a transform for a watch the descriptor does not have */
    skiff_controller_transform_t bad = {1, "test/strip-data", strip_data, NULL};
    assert_int_equal(skiff_controller_new_transformed(&ctx, f, &d, &bad, 1, &ctl), SKIFF_EINVAL);
    assert_int_equal(skiff_controller_new_transformed(&ctx, f, &d, &t, 1, &ctl), 0);
    /* the same id is the same informer, whatever function the second names */
    skiff_controller_transform_t t2 = {0, "test/strip-data", never_used, NULL};
    assert_int_equal(skiff_controller_new_transformed(&ctx, f, &d, &t2, 1, &other), 0);
    assert_ptr_equal(skiff_controller_secondary_informer(ctl, 0),
                     skiff_controller_secondary_informer(other, 0));
    assert_ptr_not_equal(skiff_controller_secondary_informer(ctl, 0),
                         skiff_controller_informer(ctl));
    assert_int_equal(skiff_controller_start(ctl), 0);
    skiff_informer_t *sec = skiff_controller_secondary_informer(ctl, 0);
    for (int i = 0; i < 200000 && !skiff_informer_has_synced(sec); i++) uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 200000 && !skiff_informer_has_synced(skiff_controller_informer(ctl)); i++)
        uv_run(&loop, UV_RUN_ONCE);
    json_t *cached = skiff_informer_get(sec, "ctl/tr-1");
    assert_non_null(cached);
    assert_null(json_object_get(cached, "data"));
    assert_true(strip_calls > 0);
    /* the primary informer keeps whole objects */
    json_t *whole = skiff_informer_get(skiff_controller_informer(ctl), "ctl/tr-1");
    assert_non_null(json_object_get(whole, "data"));
    skiff_controller_free(other);
    skiff_controller_free(ctl);
    skiff_informer_factory_free(f);
    cm_delete(client, "tr-1");
    client->vt->free(client);
    settle();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copier_converges),
        cmocka_unit_test(test_free_with_reconcile_in_flight),
        cmocka_unit_test(test_secondary_transform),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
