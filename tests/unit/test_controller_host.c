/* tests/unit/test_controller_host.c - the server's controller host: it loads
 * controller plugins, gives them a client and informers, applies their
 * settings, runs them only on the server holding the Lease, and hands them
 * over to another server when the leader stops. Two hosts share one real API
 * server here, as two `skiff server`s share one store. */
#define _GNU_SOURCE
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
#include <uv.h>

#include "api/client_inproc.h"
#include "controller/host.h"
#include "plugin/registry.h"

#include "api_fixture.h"

static uv_loop_t loop;
static api_fixture_t fx;
static char plugin_path[1024];

static int setup(void **state)
{
    (void)state;
    const char *build = getenv("SKIFF_BUILD_DIR");
    snprintf(plugin_path, sizeof plugin_path, "%s/tests/unit/plugins/.libs/counting_controller.so",
             build ? build : ".");
    api_server_opts_t ao = {0};
    return api_fixture_start(&fx, &loop, ao, 0);
}

static int teardown(void **state)
{
    (void)state;
    return api_fixture_stop(&fx);
}

static void run_ms(int ms)
{
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&loop);
    }
}

static int got_status;
static void on_got(void *data, int status, json_t *obj)
{
    (void)data, (void)obj;
    got_status = status;
}

/* 1 when the ConfigMap exists. */
static int cm_exists(skiff_client_t *c, const char *name)
{
    static const skiff_resource_t cms = {"", "v1", "configmaps", NULL};
    got_status = 0;
    assert_int_equal(skiff_client_get(c, &cms, "default", name, on_got, NULL), 0);
    for (int i = 0; i < 500 && !got_status; i++) run_ms(2);
    return got_status == 200;
}

static controller_host_t *host_for(const char *identity, const char *marker)
{
    char settings[128];
    snprintf(settings, sizeof settings, "counting-controller.marker=%s", marker);
    controller_host_opts_t o = {.loop = &loop,
                                .api = fx.api,
                                .data_dir = fx.dir,
                                .controllers = plugin_path,
                                .scheduler = "none",
                                .settings = settings,
                                .identity = identity,
                                .lease_duration_ms = 1000,
                                .renew_deadline_ms = 700,
                                .retry_period_ms = 100};
    controller_host_t *h = NULL;
    assert_int_equal(controller_host_start(&o, &h), 0);
    return h;
}

/* How many counting-controller entries of the plugin table are in state. */
static int count_state(const char *state)
{
    json_t *doc = plugin_registry_json(), *it;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(doc, "items"), i, it)
        n += strcmp(json_string_value(json_object_get(it, "name")), "counting-controller") == 0 &&
             strcmp(json_string_value(json_object_get(it, "state")), state) == 0;
    json_decref(doc);
    return n;
}

static int host_stopped;
static void on_host_stopped(void *data)
{
    (void)data;
    host_stopped++;
}

static void test_leader_runs_then_hands_over(void **state)
{
    (void)state;
    skiff_client_t *c = client_inproc_new(&loop, fx.api);
    controller_host_t *a = host_for("server-a", "a");
    run_ms(300);
    controller_host_t *b = host_for("server-b", "b");
    assert_string_equal(controller_host_summary(a), "counting-controller");
    run_ms(600);
    /* only the leader started its controllers */
    assert_true(cm_exists(c, "started-a-1"));
    assert_false(cm_exists(c, "started-b-1"));
    /* the plugin table says so: one copy started, the other on standby */
    assert_int_equal(count_state("started"), 1);
    assert_int_equal(count_state("standby"), 1);
    /* the leader stops: it releases the Lease and b starts its copy */
    host_stopped = 0;
    controller_host_stop(a, on_host_stopped, NULL);
    run_ms(600);
    assert_int_equal(host_stopped, 1);
    assert_true(cm_exists(c, "started-b-1"));
    controller_host_stop(b, on_host_stopped, NULL);
    run_ms(200);
    assert_int_equal(host_stopped, 2);
    controller_host_free(a);
    controller_host_free(b);
    plugin_registry_clear();
    c->vt->free(c);
    run_ms(50);
}

static void test_bad_settings_and_plugins_refused(void **state)
{
    (void)state;
    controller_host_opts_t o = {.loop = &loop, .api = fx.api, .data_dir = fx.dir,
                                .controllers = plugin_path, .scheduler = "none",
                                .settings = "counting-controller.colour=blue"};
    controller_host_t *h = NULL;
    /* an undeclared setting */
    assert_int_not_equal(controller_host_start(&o, &h), 0);
    controller_host_stop(h, NULL, NULL);
    run_ms(20);
    controller_host_free(h);
    /* a named controller that does not exist */
    o.settings = NULL;
    o.controllers = "no-such-thing";
    h = NULL;
    assert_int_not_equal(controller_host_start(&o, &h), 0);
    controller_host_stop(h, NULL, NULL);
    run_ms(20);
    controller_host_free(h);
    /* a setting for a plugin that is not loaded */
    o.controllers = plugin_path;
    o.settings = "scheduler-default.score=MostAllocated:1";
    h = NULL;
    assert_int_not_equal(controller_host_start(&o, &h), 0);
    controller_host_stop(h, NULL, NULL);
    run_ms(20);
    controller_host_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leader_runs_then_hands_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_settings_and_plugins_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
