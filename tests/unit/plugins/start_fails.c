/* tests/unit/plugins/start_fails.c - a controller plugin whose init works
 * and whose start hook fails with SKIFF_ENOTSUP. */
#include <skiff/errors.h>
#include <skiff/plugin.h>

static int start(skiff_plugin_ctx_t *ctx)
{
    ctx->log(ctx, SKIFF_LOG_ERROR, "this plugin never starts");
    return SKIFF_ENOTSUP;
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "start-fails",
    .version = "0.0.2",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "its start hook fails",
    .start = start,
};
