/* tests/unit/plugins/bad_abi.c - a plugin built for another SDK ABI; the
 * loader must refuse it before reading anything else of the descriptor. */
#include <skiff/plugin.h>

const skiff_plugin_t skiff_plugin = {
    .abi_version = 44u, /* far beyond SKIFF_ABI_VERSION; the tests and docs quote 44 */
    .name = "bad-abi",
    .version = "0.0.1",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "declares a future ABI version",
};
