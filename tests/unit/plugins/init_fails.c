/* tests/unit/plugins/init_fails.c - a well-formed plugin whose init hook
 * fails; it also declares settings so the loader's setting lookup and its
 * start/stop bookkeeping can be observed. */
#include <string.h>

#include <skiff/errors.h>
#include <skiff/plugin.h>

static int init_fails(skiff_plugin_ctx_t *ctx)
{
    const char *mode = ctx->setting(ctx, "mode");
    /* "ok" lets a test see a successful start; anything else fails. */
    if (mode != NULL && strcmp(mode, "ok") == 0) return 0;
    ctx->log(ctx, SKIFF_LOG_ERROR, "refusing to start in mode %s", mode ? mode : "(none)");
    return SKIFF_EIO;
}

static const skiff_setting_t settings[] = {
    {"mode", SKIFF_SETTING_STRING, "fail", "ok or fail"},
    {"retries", SKIFF_SETTING_INT, "3", "unused"},
    {NULL, 0, NULL, NULL},
};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "init-fails",
    .version = "0.0.1",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "init fails unless mode=ok",
    .settings = settings,
    .init = init_fails,
};
