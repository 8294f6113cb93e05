/* tests/unit/plugins/missing_sdk_symbol.c - a plugin built against an SDK
 * function the loading skiff does not have: dlopen (every symbol resolved
 * at once) refuses it with "undefined symbol: skiff_function_from_the_future". */
#include <skiff/errors.h>
#include <skiff/plugin.h>

int skiff_function_from_the_future(skiff_plugin_ctx_t *ctx);

static int start(skiff_plugin_ctx_t *ctx) { return skiff_function_from_the_future(ctx); }

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "missing-sdk-symbol",
    .version = "0.0.1",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "calls an SDK function this skiff does not export",
    .start = start,
};
