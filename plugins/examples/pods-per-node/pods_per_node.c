/* pods_per_node.c - a controller plugin that keeps a ConfigMap summary of
 * how many active pods (neither Succeeded nor Failed nor being deleted)
 * each node runs: one key per node name, and "unscheduled" for pods no
 * node was chosen for yet. The ConfigMap is kube-system/pods-per-node
 * unless the settings say otherwise.
 *
 * Built out of tree against the installed SDK alone:
 *   cc $(pkg-config --cflags skiff-sdk) -shared -fPIC -o pods-per-node.so pods_per_node.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

static const skiff_resource_t pods_resource = {"", "v1", "pods", NULL};
static const skiff_resource_t configmaps = {"", "v1", "configmaps", NULL};

/* One copy of the controller runs in a server; its state lives here. */
static struct census {
    skiff_plugin_ctx_t *ctx;
    skiff_informer_t *pods;
    int handler;       /* informer handler id */
    uv_timer_t *timer; /* batches a burst of pod events into one write */
    int running;
    int writing;       /* a write is in flight */
    int dirty;         /* pods changed while it was */
    json_t *written;   /* the data last written */
} census;

static void write_summary(void);

static void on_timer(uv_timer_t *t) { write_summary(); }

static void schedule(uint64_t delay_ms)
{
    if (census.running && !uv_is_active((uv_handle_t *)census.timer))
        uv_timer_start(census.timer, on_timer, delay_ms, 0);
}

static void on_pod(void *data, json_t *pod) { schedule(100); }
static void on_pod_update(void *data, json_t *old_pod, json_t *pod) { schedule(100); }

/* {"node-1": "3", "unscheduled": "1"}: a new reference. */
static json_t *count_pods(void)
{
    json_t *counts = json_object(), *all = skiff_informer_list(census.pods);
    size_t i;
    json_t *pod;
    json_array_foreach(all, i, pod) {
        if (!skiff_pod_is_active(pod)) continue;
        const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"),
                                                             "nodeName"));
        if (!node || !*node) node = "unscheduled";
        json_int_t n = json_integer_value(json_object_get(counts, node));
        json_object_set_new(counts, node, json_integer(n + 1));
    }
    json_decref(all);
    json_t *data = json_object();
    const char *node;
    json_t *n;
    json_object_foreach(counts, node, n) {
        char text[32];
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(n));
        json_object_set_new(data, node, json_string(text));
    }
    json_decref(counts);
    return data;
}

static void written(void *data, int status, json_t *obj)
{
    json_t *sent = data;
    census.writing = 0;
    if (!census.running) {
        json_decref(sent); /* stopped meanwhile */
        return;
    }
    if (status == 200 || status == 201) {
        json_decref(census.written);
        census.written = sent;
    } else {
        census.ctx->log(census.ctx, SKIFF_LOG_WARN, "writing the summary answered %d; retrying",
                        status);
        json_decref(sent);
        census.dirty = 1;
    }
    if (census.dirty) {
        census.dirty = 0;
        schedule(status == 200 || status == 201 ? 0 : 1000);
    }
}

static void patched(void *data, int status, json_t *obj)
{
    if (status != 404 || !census.running) {
        written(data, status, obj);
        return;
    }
    /* not there yet: create it */
    skiff_plugin_ctx_t *ctx = census.ctx;
    json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:O}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", ctx->setting(ctx, "name"), "namespace",
                           ctx->setting(ctx, "namespace"), "labels",
                           "app.kubernetes.io/managed-by", "pods-per-node", "data", data);
    if (!cm || skiff_client_create(ctx->client, &configmaps, ctx->setting(ctx, "namespace"), cm,
                                   NULL, written, data) != 0)
        written(data, 0, NULL);
    json_decref(cm);
}

static void write_summary(void)
{
    if (!census.running) return;
    if (!skiff_informer_has_synced(census.pods)) {
        schedule(100);
        return;
    }
    if (census.writing) {
        census.dirty = 1;
        return;
    }
    json_t *data = count_pods();
    if (census.written && json_equal(data, census.written)) {
        json_decref(data);
        return;
    }
    /* "add" on /data replaces the whole map, so nodes gone lose their key */
    json_t *ops = json_pack("[{s:s, s:s, s:O}]", "op", "add", "path", "/data", "value", data);
    char *patch = ops ? json_dumps(ops, JSON_COMPACT) : NULL;
    json_decref(ops);
    skiff_plugin_ctx_t *ctx = census.ctx;
    census.writing = 1;
    if (!patch || skiff_client_patch(ctx->client, &configmaps, ctx->setting(ctx, "namespace"),
                                     ctx->setting(ctx, "name"), SKIFF_PATCH_JSON, patch, NULL,
                                     patched, data) != 0)
        written(data, 0, NULL);
    free(patch);
}

static int start(skiff_plugin_ctx_t *ctx)
{
    if (!ctx->client || !ctx->informers) return SKIFF_EINVAL;
    census.ctx = ctx;
    census.timer = calloc(1, sizeof *census.timer);
    if (!census.timer) return SKIFF_ENOMEM;
    uv_timer_init(ctx->loop, census.timer);
    skiff_informer_opts_t opts = {0};
    int rc = skiff_informer_factory_get(ctx->informers, &pods_resource, &opts, &census.pods);
    if (rc != 0) return rc;
    skiff_informer_handler_t h = {.on_add = on_pod, .on_update = on_pod_update,
                                  .on_delete = on_pod};
    census.running = 1;
    census.handler = skiff_informer_add_handler(census.pods, &h);
    if (census.handler < 0) return census.handler;
    schedule(0);
    ctx->log(ctx, SKIFF_LOG_INFO, "keeping %s/%s up to date", ctx->setting(ctx, "namespace"),
             ctx->setting(ctx, "name"));
    return skiff_informer_factory_start(ctx->informers);
}

static void free_handle(uv_handle_t *h) { free(h); }

static void stop(skiff_plugin_ctx_t *ctx)
{
    census.running = 0;
    if (census.pods && census.handler > 0) skiff_informer_remove_handler(census.pods, census.handler);
    census.handler = 0;
    if (census.timer) uv_close((uv_handle_t *)census.timer, free_handle);
    census.timer = NULL;
    json_decref(census.written);
    census.written = NULL;
}

static const skiff_setting_t settings[] = {
    {"namespace", SKIFF_SETTING_STRING, "kube-system", "namespace of the summary ConfigMap"},
    {"name", SKIFF_SETTING_STRING, "pods-per-node", "name of the summary ConfigMap"},
    {NULL, 0, NULL, NULL},
};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "pods-per-node",
    .version = "1.0.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "keeps a ConfigMap with the number of active pods on each node",
    .settings = settings,
    .start = start,
    .stop = stop,
};
