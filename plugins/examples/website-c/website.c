/* plugins/examples/website-c/website.c - the Website controller of
 * plugins/examples/website/website.lua written in C against the SDK, step
 * for step the same logic: for each Website (example.skiff.io/v1) make or
 * put back a ConfigMap with its content, a Deployment and a Service it
 * owns, then report conditions Reconciled and Ready and availableReplicas
 * in its status. It exists to measure what Lua costs (tests/bench/lua_bench);
 * run one of the two, not both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

static const skiff_resource_t res_websites = {"example.skiff.io", "v1", "websites", NULL};
static const skiff_resource_t res_website_status = {"example.skiff.io", "v1", "websites", "status"};
static const skiff_resource_t res_configmaps = {"", "v1", "configmaps", NULL};
static const skiff_resource_t res_deployments = {"apps", "v1", "deployments", NULL};
static const skiff_resource_t res_services = {"", "v1", "services", NULL};

/* Reconciles finished, read by the benchmark. */
uint64_t website_c_reconciles;

typedef struct state {
    skiff_controller_watch_t watches[3];
    skiff_controller_desc_t desc;
    skiff_controller_t *c;
    skiff_event_recorder_t *events;
} state_t;

typedef struct run {
    skiff_reconcile_t *r;
    state_t *s;
    json_t *site;
    json_t *want[3];
    int step;
    char failed[512];
} run_t;

/* every field of want is in have with the same value (lists: same length) */
static int contains(const json_t *want, const json_t *have)
{
    if (!have) return 0;
    if (json_is_number(want) && json_is_number(have))
        return json_number_value(want) == json_number_value(have);
    if (json_typeof(want) != json_typeof(have)) return 0;
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
            if (!contains(v, json_object_get(have, k))) return 0;
        return 1;
    }
    if (json_is_array(want)) {
        if (json_array_size(want) != json_array_size(have)) return 0;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!contains(json_array_get(want, i), json_array_get(have, i))) return 0;
        return 1;
    }
    return json_equal((json_t *)want, (json_t *)have);
}

static json_t *labels_of(const char *name)
{
    return json_pack("{s:s, s:s, s:s}", "app.kubernetes.io/name", "website",
                     "app.kubernetes.io/instance", name, "app.kubernetes.io/managed-by",
                     "website-controller");
}

static json_t *meta(const char *name, const char *ns, const json_t *site)
{
    return json_pack("{s:s, s:s, s:o, s:[o]}", "name", name, "namespace", ns, "labels",
                     labels_of(json_string_value(json_object_get(json_object_get(site, "metadata"), "name"))),
                     "ownerReferences", skiff_owner_ref_new(site, 1));
}

static void build(run_t *run)
{
    json_t *m = json_object_get(run->site, "metadata"), *spec = json_object_get(run->site, "spec");
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *ns = json_string_value(json_object_get(m, "namespace"));
    char cm[300];
    snprintf(cm, sizeof cm, "%s-content", name);
    json_t *port = json_object_get(spec, "port");
    run->want[0] = json_pack("{s:s, s:s, s:o, s:{s:O}}", "apiVersion", "v1", "kind", "ConfigMap",
                             "metadata", meta(cm, ns, run->site), "data", "index.html",
                             json_object_get(spec, "content"));
    run->want[1] = json_pack(
        "{s:s, s:s, s:o, s:{s:O, s:{s:o}, s:{s:{s:o}, s:{s:[{s:s, s:O, s:[{s:O}], s:[{s:s, s:s}]}], "
        "s:[{s:s, s:{s:s}}]}}}}",
        "apiVersion", "apps/v1", "kind", "Deployment", "metadata", meta(name, ns, run->site), "spec",
        "replicas", json_object_get(spec, "replicas"), "selector", "matchLabels", labels_of(name),
        "template", "metadata", "labels", labels_of(name), "spec", "containers", "name", "web",
        "image", json_object_get(spec, "image"), "ports", "containerPort", port, "volumeMounts",
        "name", "content", "mountPath", "/usr/share/nginx/html", "volumes", "name", "content",
        "configMap", "name", cm);
    run->want[2] = json_pack("{s:s, s:s, s:o, s:{s:o, s:[{s:O, s:O}]}}", "apiVersion", "v1", "kind",
                             "Service", "metadata", meta(name, ns, run->site), "spec", "selector",
                             labels_of(name), "ports", "port", port, "targetPort", port);
}

static void finish(run_t *run, skiff_reconcile_result_t res)
{
    website_c_reconciles++;
    skiff_reconcile_done(run->r, res);
    json_decref(run->site);
    for (int i = 0; i < 3; i++) json_decref(run->want[i]);
    free(run);
}

static void set_cond(json_t *view, const char *type, const char *status, const char *reason,
                     const char *msg, json_t *gen)
{
    skiff_condition_set(view, type, status, reason, msg, 0);
    json_t *c = skiff_condition_get(view, type);
    if (gen && !json_equal(json_object_get(c, "observedGeneration"), gen))
        json_object_set(c, "observedGeneration", gen);
}

static void on_status(void *data, int status, json_t *obj)
{
    run_t *run = data;
    if (status != 200 && status != 404) {
        run->r->ctx->log(run->r->ctx, SKIFF_LOG_WARN, "%s: status update failed (%d)", run->r->key, status);
        finish(run, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_EIO});
        return;
    }
    finish(run, (skiff_reconcile_result_t){run->failed[0] ? SKIFF_RECONCILE_ERROR : SKIFF_RECONCILE_DONE});
}

static void report(run_t *run)
{
    json_t *old = json_object_get(run->site, "status");
    json_t *status = old ? skiff_json_copy(old) : json_object();
    json_t *m = json_object_get(run->site, "metadata");
    json_t *view = json_pack("{s:O, s:o}", "metadata", m, "status", status);
    json_t *gen = json_object_get(m, "generation");
    if (run->failed[0]) set_cond(view, "Reconciled", "False", "ApplyFailed", run->failed, gen);
    else set_cond(view, "Reconciled", "True", "Applied",
                  "ConfigMap, Deployment and Service are as specified", gen);
    char key[600];
    snprintf(key, sizeof key, "%s/%s", run->r->ns, run->r->name);
    json_t *dep = skiff_informer_get(skiff_controller_secondary_informer(run->s->c, 1), key);
    json_int_t avail = json_integer_value(json_object_get(json_object_get(dep, "status"), "availableReplicas"));
    json_int_t want = json_integer_value(json_object_get(json_object_get(run->site, "spec"), "replicas"));
    json_object_set_new(status, "availableReplicas", json_integer(avail));
    char msg[128];
    snprintf(msg, sizeof msg, "%lld of %lld replicas available", (long long)avail, (long long)want);
    set_cond(view, "Ready", avail >= want ? "True" : "False", avail >= want ? "Available" : "Progressing",
             msg, gen);
    if (old && json_equal(old, status)) {
        json_decref(view);
        on_status(run, 200, NULL);
        return;
    }
    json_t *patch = json_pack("{s:O}", "status", status);
    char *body = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    json_decref(view);
    skiff_write_opts_t wo = {.field_manager = "website-c", .grace_period_seconds = -1};
    if (!body || skiff_client_patch(run->r->ctx->client, &res_website_status, run->r->ns,
                                    run->r->name, SKIFF_PATCH_MERGE, body, &wo, on_status, run) != 0)
        on_status(run, 500, NULL);
    free(body);
}

static void next_step(run_t *run);

static void on_applied(void *data, int status, json_t *obj)
{
    run_t *run = data;
    json_t *w = run->want[run->step];
    if (status == 200 && json_is_object(obj)) {
        char ev[200];
        snprintf(ev, sizeof ev, "%s %s put back as specified",
                 json_string_value(json_object_get(w, "kind")),
                 json_string_value(json_object_get(json_object_get(w, "metadata"), "name")));
        skiff_event_record(run->s->events, run->site, "Normal", "Reconciled", "%s", ev);
    } else if (status != 201) {
        const char *msg = json_string_value(json_object_get(obj, "message"));
        snprintf(run->failed, sizeof run->failed, "%s %s: %s",
                 json_string_value(json_object_get(w, "kind")),
                 json_string_value(json_object_get(json_object_get(w, "metadata"), "name")),
                 msg ? msg : "request failed");
        report(run);
        return;
    }
    run->step++;
    next_step(run);
}

/* apply one owned object: create, patch when it drifted, or nothing */
static void next_step(run_t *run)
{
    static const skiff_resource_t *res[3] = {&res_configmaps, &res_deployments, &res_services};
    for (; run->step < 3; run->step++) {
        json_t *w = run->want[run->step];
        const char *name = json_string_value(json_object_get(json_object_get(w, "metadata"), "name"));
        char key[600];
        snprintf(key, sizeof key, "%s/%s", run->r->ns, name);
        json_t *cur = skiff_informer_get(skiff_controller_secondary_informer(run->s->c, run->step), key);
        if (cur && contains(w, cur)) continue;
        skiff_write_opts_t wo = {.field_manager = "website-c", .grace_period_seconds = -1};
        int rc;
        if (!cur) rc = skiff_client_create(run->r->ctx->client, res[run->step], run->r->ns, w, &wo,
                                           on_applied, run);
        else {
            char *body = json_dumps(w, JSON_COMPACT);
            rc = body ? skiff_client_patch(run->r->ctx->client, res[run->step], run->r->ns, name,
                                           SKIFF_PATCH_MERGE, body, &wo, on_applied, run)
                      : SKIFF_ENOMEM;
            free(body);
        }
        if (rc == 0) return;
        snprintf(run->failed, sizeof run->failed, "%s: %s", name, skiff_strerror(rc));
        break;
    }
    report(run);
}

static void reconcile(skiff_reconcile_t *r)
{
    state_t *s = r->data;
    json_t *site = skiff_informer_get(skiff_controller_informer(s->c), r->key);
    if (!site || json_object_get(json_object_get(site, "metadata"), "deletionTimestamp")) {
        website_c_reconciles++;
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    run_t *run = calloc(1, sizeof *run);
    if (!run) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    run->r = r;
    run->s = s;
    run->site = json_incref(site);
    build(run);
    next_step(run);
}

static const skiff_setting_t settings[] = {
    {"workers", SKIFF_SETTING_INT, "4", "Websites reconciled at once"},
    {NULL},
};

static int start(skiff_plugin_ctx_t *ctx)
{
    state_t *s = calloc(1, sizeof *s);
    if (!s) return SKIFF_ENOMEM;
    ctx->plugin_data = s;
    s->watches[0] = (skiff_controller_watch_t){.resource = res_configmaps, .by_owner = 1};
    s->watches[1] = (skiff_controller_watch_t){.resource = res_deployments, .by_owner = 1};
    s->watches[2] = (skiff_controller_watch_t){.resource = res_services, .by_owner = 1};
    s->desc = (skiff_controller_desc_t){.name = "website-c",
                                        .primary = res_websites,
                                        .primary_kind = "Website",
                                        .primary_api_version = "example.skiff.io/v1",
                                        .secondary = s->watches,
                                        .n_secondary = 3,
                                        .reconcile = reconcile,
                                        .workers = atoi(ctx->setting(ctx, "workers")),
                                        .data = s};
    s->events = skiff_event_recorder_new(ctx->client, "website-c");
    int rc = skiff_controller_new(ctx, ctx->informers, &s->desc, &s->c);
    if (rc == 0) rc = skiff_controller_start(s->c);
    return rc;
}

static void stop(skiff_plugin_ctx_t *ctx)
{
    state_t *s = ctx->plugin_data;
    if (!s) return;
    skiff_controller_free(s->c);
    skiff_event_recorder_free(s->events);
    free(s);
    ctx->plugin_data = NULL;
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "website-c",
    .version = "1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "Websites (example.skiff.io/v1) in C: the twin of website.lua",
    .settings = settings,
    .start = start,
    .stop = stop,
};
