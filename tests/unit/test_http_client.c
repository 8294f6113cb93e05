/* tests/unit/test_http_client.c - client_http (skiff/client.h over HTTP)
 * against a small in-test handler that plays the Kubernetes API: the URLs,
 * queries, bodies and Content-Types it sends, and how answers and watch
 * events come back. Server and client share one loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "api/client_http.h"
#include "http/server.h"

typedef struct seen {
    char method[16];
    char path[256];
    char query[512];
    char content_type[128];
    char body[1024];
} seen_t;

typedef struct fx {
    uv_loop_t loop;
    http_server_t *srv;
    int port;
    seen_t last;
    int aborts;
    api_response_t *open_watch;
    uv_timer_t timer;
    api_response_t *timed;
    int step;
} fx_t;

static const char *status_404 =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"configmaps \\\"missing\\\" not found\",\"reason\":\"NotFound\",\"code\":404}";
static const char *status_410 =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"too old resource version\",\"reason\":\"Expired\",\"code\":410}";

/* Events cut in awkward places, as chunking may do. */
static const char *watch_parts[] = {
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"MOD",
    "IFIED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}",
    "\n{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\"}}}\n",
};

static void watch_tick(uv_timer_t *t)
{
    fx_t *f = t->data;
    if (f->step < 3) {
        f->timed->ops->stream_write(f->timed, watch_parts[f->step], strlen(watch_parts[f->step]));
        f->step++;
        return;
    }
    f->timed->ops->stream_end(f->timed);
    uv_timer_stop(t);
}

static void open_watch_abort(api_response_t *r, void *data)
{
    fx_t *f = data;
    f->aborts++;
    f->open_watch = NULL;
    r->ops->stream_end(r);
}

static void handler(void *data, const api_request_t *req, api_response_t *resp)
{
    fx_t *f = data;
    snprintf(f->last.method, sizeof(f->last.method), "%s", req->method);
    snprintf(f->last.path, sizeof(f->last.path), "%s", req->path);
    snprintf(f->last.query, sizeof(f->last.query), "%s", req->query ? req->query : "");
    snprintf(f->last.content_type, sizeof(f->last.content_type), "%s",
             req->content_type ? req->content_type : "");
    snprintf(f->last.body, sizeof(f->last.body), "%.*s", (int)req->body_len,
             req->body ? req->body : "");

    const char *j = "application/json";
    if (req->query && strstr(req->query, "watch=1")) {
        if (strstr(req->query, "resourceVersion=1&")) {
            resp->ops->send(resp, 410, j, status_410, strlen(status_410));
        } else if (strstr(req->path, "/pods")) {
            /* stays open until the client goes */
            resp->on_abort = open_watch_abort;
            resp->abort_data = f;
            f->open_watch = resp;
            resp->ops->stream_begin(resp, 200, j);
            resp->ops->stream_write(resp, watch_parts[0], strlen(watch_parts[0]));
            resp->ops->stream_write(resp, watch_parts[1], strlen(watch_parts[1]));
            resp->ops->stream_write(resp, watch_parts[2], strlen(watch_parts[2]));
        } else {
            f->timed = resp;
            f->step = 0;
            resp->ops->stream_begin(resp, 200, j);
            uv_timer_start(&f->timer, watch_tick, 5, 5);
        }
        return;
    }
    if (strstr(req->path, "/missing")) {
        resp->ops->send(resp, 404, j, status_404, strlen(status_404));
        return;
    }
    if (!strcmp(req->method, "GET") && strstr(req->path, "/configmaps/cm1")) {
        const char *o = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm1\"}}";
        resp->ops->send(resp, 200, j, o, strlen(o));
        return;
    }
    if (!strcmp(req->method, "GET")) {
        const char *o = "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"7\"},"
                        "\"items\":[]}";
        resp->ops->send(resp, 200, j, o, strlen(o));
        return;
    }
    /* writes echo their body */
    int code = !strcmp(req->method, "POST") ? 201 : 200;
    resp->ops->send(resp, code, j, req->body ? req->body : "{}", req->body ? req->body_len : 2);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    http_server_opts_t o = {.host = "127.0.0.1", .max_body = 1 << 20, .max_header = 1 << 16,
                            .handler = handler, .handler_data = f};
    if (http_server_start(&f->loop, &o, &f->srv) != 0)
        return -1;
    f->port = http_server_port(f->srv);
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    uv_close((uv_handle_t *)&f->timer, NULL);
    http_server_stop(f->srv, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int e = uv_loop_close(&f->loop);
    free(f);
    return e == 0 ? 0 : -1;
}

/* ---- callbacks -------------------------------------------------------------------- */

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

static void wait_answer(fx_t *f, answer_t *a)
{
    while (!a->done)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void answer_reset(answer_t *a)
{
    json_decref(a->obj);
    memset(a, 0, sizeof(*a));
}

static const skiff_resource_t configmaps = {"", "v1", "configmaps", NULL};

/* ---- tests ---------------------------------------------------------------------- */

static void test_paths(void **state)
{
    char buf[256];
    skiff_resource_t deploy = {"apps", "v1", "deployments", NULL};
    skiff_resource_t scale = {"apps", "v1", "deployments", "scale"};
    skiff_resource_t nodes = {"", "v1", "nodes", "status"};
    client_http_path(buf, sizeof(buf), &configmaps, "default", NULL);
    assert_string_equal(buf, "/api/v1/namespaces/default/configmaps");
    client_http_path(buf, sizeof(buf), &deploy, "prod", "web");
    assert_string_equal(buf, "/apis/apps/v1/namespaces/prod/deployments/web");
    client_http_path(buf, sizeof(buf), &scale, "prod", "web");
    assert_string_equal(buf, "/apis/apps/v1/namespaces/prod/deployments/web/scale");
    client_http_path(buf, sizeof(buf), &nodes, NULL, "n1");
    assert_string_equal(buf, "/api/v1/nodes/n1/status");
    client_http_path(buf, sizeof(buf), &deploy, NULL, NULL);
    assert_string_equal(buf, "/apis/apps/v1/deployments");
    skiff_resource_t bad = {"", NULL, "pods", NULL};
    assert_int_equal(client_http_path(buf, sizeof(buf), &bad, NULL, NULL), SKIFF_EINVAL);
}

static void test_get_and_list(void **state)
{
    fx_t *f = *state;
    skiff_client_t *c = client_http_new(&f->loop, "127.0.0.1", f->port, NULL);
    assert_non_null(c);
    answer_t a = {0};

    assert_int_equal(skiff_client_get(c, &configmaps, "default", "cm1", on_answer, &a), 0);
    wait_answer(f, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(f->last.method, "GET");
    assert_string_equal(f->last.path, "/api/v1/namespaces/default/configmaps/cm1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a.obj, "metadata"), "name")), "cm1");
    answer_reset(&a);

    assert_int_equal(skiff_client_get(c, &configmaps, "default", "missing", on_answer, &a), 0);
    wait_answer(f, &a);
    assert_int_equal(a.status, 404);
    assert_string_equal(json_string_value(json_object_get(a.obj, "reason")), "NotFound");
    answer_reset(&a);

    skiff_list_opts_t lo = {.label_selector = "app=web,tier!=db",
                            .field_selector = "metadata.name=x",
                            .limit = 10,
                            .continue_token = "ab/c=",
                            .resource_version = "42"};
    assert_int_equal(skiff_client_list(c, &configmaps, "default", &lo, on_answer, &a), 0);
    wait_answer(f, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(f->last.path, "/api/v1/namespaces/default/configmaps");
    assert_string_equal(f->last.query, "labelSelector=app%3Dweb%2Ctier%21%3Ddb"
                                       "&fieldSelector=metadata.name%3Dx&limit=10"
                                       "&continue=ab%2Fc%3D&resourceVersion=42");
    assert_string_equal(json_string_value(json_object_get(a.obj, "kind")), "ConfigMapList");
    answer_reset(&a);

    /* cluster-wide list, no options */
    assert_int_equal(skiff_client_list(c, &configmaps, NULL, NULL, on_answer, &a), 0);
    wait_answer(f, &a);
    assert_string_equal(f->last.path, "/api/v1/configmaps");
    assert_string_equal(f->last.query, "");
    answer_reset(&a);

    assert_int_equal(skiff_client_get(c, &configmaps, "default", NULL, on_answer, &a),
                     SKIFF_EINVAL);
    c->vt->free(c);
}

static void test_writes(void **state)
{
    fx_t *f = *state;
    skiff_client_t *c = client_http_new(&f->loop, "127.0.0.1", f->port, "tok");
    assert_non_null(c);
    answer_t a = {0};
    json_t *cm = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s}}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", "cm1", "resourceVersion", "3",
                           "data", "k", "v");
    skiff_write_opts_t wo = {.dry_run = 1, .field_manager = "me", .grace_period_seconds = -1};

    assert_int_equal(skiff_client_create(c, &configmaps, "default", cm, &wo, on_answer, &a), 0);
    wait_answer(f, &a);
    assert_int_equal(a.status, 201);
    assert_string_equal(f->last.method, "POST");
    assert_string_equal(f->last.path, "/api/v1/namespaces/default/configmaps");
    assert_string_equal(f->last.query, "dryRun=All&fieldManager=me");
    assert_string_equal(f->last.content_type, "application/json");
    json_t *sent = json_loads(f->last.body, 0, NULL);
    assert_true(json_equal(sent, cm));
    json_decref(sent);
    assert_true(json_equal(a.obj, cm));
    answer_reset(&a);

    assert_int_equal(skiff_client_update(c, &configmaps, "default", cm, NULL, on_answer, &a), 0);
    wait_answer(f, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(f->last.method, "PUT");
    assert_string_equal(f->last.path, "/api/v1/namespaces/default/configmaps/cm1");
    assert_string_equal(f->last.query, "");
    answer_reset(&a);

    static const struct {
        skiff_patch_type_t t;
        const char *ct;
    } kinds[] = {{SKIFF_PATCH_JSON, "application/json-patch+json"},
                 {SKIFF_PATCH_MERGE, "application/merge-patch+json"},
                 {SKIFF_PATCH_STRATEGIC, "application/strategic-merge-patch+json"}};
    for (int i = 0; i < 3; i++) {
        const char *p = "{\"data\":{\"k\":\"w\"}}";
        assert_int_equal(skiff_client_patch(c, &configmaps, "default", "cm1", kinds[i].t, p,
                                            NULL, on_answer, &a),
                         0);
        wait_answer(f, &a);
        assert_string_equal(f->last.method, "PATCH");
        assert_string_equal(f->last.content_type, kinds[i].ct);
        assert_string_equal(f->last.body, p);
        answer_reset(&a);
    }
    assert_int_equal(skiff_client_patch(c, &configmaps, "default", "cm1", 9, "{}", NULL,
                                        on_answer, &a),
                     SKIFF_EINVAL);

    skiff_write_opts_t del = {.propagation_policy = "Foreground", .grace_period_seconds = 5};
    assert_int_equal(skiff_client_delete(c, &configmaps, "default", "cm1", &del, on_answer, &a),
                     0);
    wait_answer(f, &a);
    assert_string_equal(f->last.method, "DELETE");
    assert_string_equal(f->last.path, "/api/v1/namespaces/default/configmaps/cm1");
    json_t *opts = json_loads(f->last.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(opts, "kind")), "DeleteOptions");
    assert_string_equal(json_string_value(json_object_get(opts, "propagationPolicy")),
                        "Foreground");
    assert_int_equal(json_integer_value(json_object_get(opts, "gracePeriodSeconds")), 5);
    json_decref(opts);
    answer_reset(&a);

    /* a subresource create is addressed through the object's name */
    skiff_resource_t binding = {"", "v1", "pods", "binding"};
    json_t *b = json_pack("{s:s,s:{s:s},s:{s:s}}", "kind", "Binding", "metadata", "name", "p1",
                          "target", "name", "node1");
    assert_int_equal(skiff_client_create(c, &binding, "default", b, NULL, on_answer, &a), 0);
    wait_answer(f, &a);
    assert_string_equal(f->last.path, "/api/v1/namespaces/default/pods/p1/binding");
    answer_reset(&a);
    skiff_resource_t deploy = {"apps", "v1", "deployments", NULL};
    assert_int_equal(skiff_client_create(c, &deploy, "prod", b, NULL, on_answer, &a), 0);
    wait_answer(f, &a);
    assert_string_equal(f->last.path, "/apis/apps/v1/namespaces/prod/deployments");
    answer_reset(&a);
    json_decref(b);

    /* update needs metadata.name */
    json_t *anon = json_object();
    assert_int_equal(skiff_client_update(c, &configmaps, "default", anon, NULL, on_answer, &a),
                     SKIFF_EINVAL);
    json_decref(anon);
    json_decref(cm);
    c->vt->free(c);
}

typedef struct events {
    int n;
    char log[512];
    int ended;
    int after_end;
    int cancel_at;
    skiff_client_watch_t *w;
    skiff_client_t *c;
    int error_code;
} events_t;

static void on_event(void *data, const char *type, json_t *obj)
{
    events_t *e = data;
    if (e->ended)
        e->after_end++;
    if (!type) {
        assert_null(obj);
        e->ended++;
        return;
    }
    e->n++;
    const char *name =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (!strcmp(type, "ERROR"))
        e->error_code = (int)json_integer_value(json_object_get(obj, "code"));
    size_t l = strlen(e->log);
    snprintf(e->log + l, sizeof(e->log) - l, "%s:%s ", type, name ? name : "-");
    if (e->cancel_at && e->n == e->cancel_at)
        e->c->vt->watch_cancel(e->w);
}

static void test_watch_events(void **state)
{
    fx_t *f = *state;
    skiff_client_t *c = client_http_new(&f->loop, "127.0.0.1", f->port, NULL);
    events_t e = {0};
    skiff_list_opts_t lo = {.resource_version = "5", .allow_bookmarks = 1, .timeout_seconds = 30};
    assert_int_equal(skiff_client_watch(c, &configmaps, "default", &lo, on_event, &e, &e.w), 0);
    while (!e.ended)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_string_equal(f->last.query,
                        "watch=1&resourceVersion=5&allowWatchBookmarks=true&timeoutSeconds=30");
    assert_string_equal(e.log, "ADDED:a MODIFIED:b DELETED:c ");
    assert_int_equal(e.ended, 1);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(e.after_end, 0);
    c->vt->free(c);
}

static void test_watch_gone(void **state)
{
    fx_t *f = *state;
    skiff_client_t *c = client_http_new(&f->loop, "127.0.0.1", f->port, NULL);
    events_t e = {0};
    skiff_list_opts_t lo = {.resource_version = "1"};
    /* "resourceVersion=1&" marks the too-old watch for the handler */
    lo.timeout_seconds = 1;
    assert_int_equal(skiff_client_watch(c, &configmaps, NULL, &lo, on_event, &e, NULL), 0);
    while (!e.ended)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.error_code, 410);
    assert_int_equal(e.ended, 1);
    c->vt->free(c);
}

static void test_watch_cancel_from_callback(void **state)
{
    fx_t *f = *state;
    skiff_client_t *c = client_http_new(&f->loop, "127.0.0.1", f->port, NULL);
    skiff_resource_t pods = {"", "v1", "pods", NULL};
    events_t e = {.cancel_at = 2, .c = c};
    assert_int_equal(skiff_client_watch(c, &pods, "default", NULL, on_event, &e, &e.w), 0);
    while (f->aborts == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    /* no event after the cancel, and no end call either */
    assert_int_equal(e.n, 2);
    assert_int_equal(e.ended, 0);
    c->vt->free(c);
}

static void test_free_ends_open_watch(void **state)
{
    fx_t *f = *state;
    skiff_client_t *c = client_http_new(&f->loop, "127.0.0.1", f->port, NULL);
    skiff_resource_t pods = {"", "v1", "pods", NULL};
    events_t e = {0};
    assert_int_equal(skiff_client_watch(c, &pods, "default", NULL, on_event, &e, &e.w), 0);
    while (e.n < 3)
        uv_run(&f->loop, UV_RUN_ONCE);
    c->vt->free(c);
    assert_int_equal(e.ended, 1);
    while (f->aborts == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_connection_failure(void **state)
{
    fx_t *f = *state;
    /* port 1 on loopback: nothing listens there */
    skiff_client_t *c = client_http_new(&f->loop, "127.0.0.1", 1, NULL);
    answer_t a = {.status = -1};
    assert_int_equal(skiff_client_get(c, &configmaps, "default", "x", on_answer, &a), 0);
    wait_answer(f, &a);
    assert_int_equal(a.status, 0);
    assert_null(a.obj);
    c->vt->free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test_setup_teardown(test_get_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_cancel_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_ends_open_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
