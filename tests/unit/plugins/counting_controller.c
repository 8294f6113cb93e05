/* tests/unit/plugins/counting_controller.c - a controller plugin that, each
 * time it is started, creates the ConfigMap "started-MARKER-N" in the
 * default namespace (MARKER is its setting, N counts starts), so a test can
 * see which server runs the controllers and how often they were started. */
#include <stdint.h>
#include <stdio.h>

#include <skiff/client.h>
#include <skiff/errors.h>
#include <skiff/plugin.h>

static void on_created(void *data, int status, json_t *obj)
{
    (void)data, (void)obj;
    if (status != 201) fprintf(stderr, "counting-controller: create answered %d\n", status);
}

static int start(skiff_plugin_ctx_t *ctx)
{
    static const skiff_resource_t cms = {"", "v1", "configmaps", NULL};
    if (!ctx->client || !ctx->informers) return SKIFF_EINVAL;
    /* counted per loaded copy: two hosts in one process share the .so */
    intptr_t starts = (intptr_t)ctx->plugin_data + 1;
    ctx->plugin_data = (void *)starts;
    char name[128];
    snprintf(name, sizeof name, "started-%s-%d", ctx->setting(ctx, "marker"), (int)starts);
    json_t *cm = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                           "metadata", "name", name);
    int rc = cm ? skiff_client_create(ctx->client, &cms, "default", cm, NULL, on_created, NULL)
                : SKIFF_ENOMEM;
    json_decref(cm);
    return rc;
}

static const skiff_setting_t settings[] = {
    {"marker", SKIFF_SETTING_STRING, "x", "names the ConfigMaps this copy creates"},
    {NULL, 0, NULL, NULL},
};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "counting-controller",
    .version = "0.0.1",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "creates a ConfigMap each time it is started",
    .settings = settings,
    .start = start,
};
