/* tests/unit/test_api_resources.c - skiff_discover_resources and the client's
 * get_path against a real API server: every resource with its kind, scope,
 * verbs and preferred version, no subresources; a group version that
 * cannot be read is named in the error while the rest is still returned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <skiff/client.h>
#include <skiff/discovery.h>
#include <uv.h>

#include "api/apiserver.h"
#include "api/client_inproc.h"

#include "api_fixture.h"

static uv_loop_t loop;
static api_fixture_t fx;

static int setup(void **state)
{
    api_server_opts_t ao = {0};
    return api_fixture_start(&fx, &loop, ao, 0);
}

static int teardown(void **state) { return api_fixture_stop(&fx); }

typedef struct result {
    int done;
    json_t *resources;
    char *error;
} result_t;

static void on_discovered(void *data, json_t *resources, const char *error)
{
    result_t *r = data;
    r->resources = json_incref(resources);
    r->error = error ? strdup(error) : NULL;
    r->done = 1;
}

static json_t *find(json_t *resources, const char *group, const char *version,
                    const char *resource)
{
    size_t i;
    json_t *e;
    json_array_foreach(resources, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "group")), group) == 0 &&
            strcmp(json_string_value(json_object_get(e, "version")), version) == 0 &&
            strcmp(json_string_value(json_object_get(e, "resource")), resource) == 0)
            return e;
    }
    return NULL;
}

static void result_free(result_t *r)
{
    json_decref(r->resources);
    free(r->error);
}

static void test_every_resource(void **state)
{
    skiff_client_t *c = client_inproc_new(&loop, fx.api);
    assert_non_null(c);
    result_t r = {0};
    assert_int_equal(skiff_discover_resources(c, on_discovered, &r), 0);
    assert_false(r.done); /* never inside the call */
    assert_true(api_fixture_wait(&fx, &r.done));
    assert_null(r.error);

    json_t *pods = find(r.resources, "", "v1", "pods");
    assert_non_null(pods);
    assert_string_equal(json_string_value(json_object_get(pods, "kind")), "Pod");
    assert_true(json_is_true(json_object_get(pods, "namespaced")));
    assert_true(json_is_true(json_object_get(pods, "preferred")));
    assert_true(skiff_resource_has_verb(pods, "delete"));
    assert_true(skiff_resource_has_verb(pods, "watch"));
    assert_false(skiff_resource_has_verb(pods, "escalate"));

    json_t *ns = find(r.resources, "", "v1", "namespaces");
    assert_non_null(ns);
    assert_true(json_is_false(json_object_get(ns, "namespaced")));

    json_t *deploy = find(r.resources, "apps", "v1", "deployments");
    assert_non_null(deploy);
    assert_string_equal(json_string_value(json_object_get(deploy, "kind")), "Deployment");

    /* a resource served in two versions: the group's preferred one is marked */
    json_t *v2 = find(r.resources, "autoscaling", "v2", "horizontalpodautoscalers");
    json_t *v1 = find(r.resources, "autoscaling", "v1", "horizontalpodautoscalers");
    assert_non_null(v2);
    assert_non_null(v1);
    assert_true(json_is_true(json_object_get(v2, "preferred")));
    assert_true(json_is_false(json_object_get(v1, "preferred")));

    /* subresources are left out */
    assert_null(find(r.resources, "", "v1", "pods/status"));
    assert_null(find(r.resources, "", "v1", "namespaces/finalize"));
    result_free(&r);

    /* get_path takes absolute paths only */
    assert_int_equal(skiff_client_get_path(c, "apis", on_discovered, &r), SKIFF_EINVAL);
    c->vt->free(c);
}

/* A client that answers /apis/apps/v1 as a server that lost that group
 * version would (404), and everything else as the real one. */
typedef struct lossy {
    skiff_client_t base;
    skiff_client_t *real;
} lossy_t;

static int lossy_get_path(skiff_client_t *c, const char *path, skiff_client_cb cb, void *data)
{
    lossy_t *l = (lossy_t *)c;
    if (strcmp(path, "/apis/apps/v1") == 0) path = "/apis/apps/v0";
    return skiff_client_get_path(l->real, path, cb, data);
}

static const skiff_client_vtable_t lossy_vt = {.get_path = lossy_get_path};

static void test_failed_group_version(void **state)
{
    lossy_t l = {.base = {&lossy_vt}, .real = client_inproc_new(&loop, fx.api)};
    assert_non_null(l.real);
    result_t r = {0};
    assert_int_equal(skiff_discover_resources(&l.base, on_discovered, &r), 0);
    assert_true(api_fixture_wait(&fx, &r.done));
    assert_non_null(r.error);
    assert_string_equal(r.error, "apps/v1: status 404");
    assert_null(find(r.resources, "apps", "v1", "deployments"));
    assert_non_null(find(r.resources, "", "v1", "pods"));
    assert_non_null(find(r.resources, "batch", "v1", "jobs"));
    result_free(&r);
    l.real->vt->free(l.real);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_resource),
        cmocka_unit_test(test_failed_group_version),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
