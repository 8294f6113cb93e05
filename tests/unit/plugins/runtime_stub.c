/* tests/unit/plugins/runtime_stub.c - a runtime plugin (skiff/runtime.h)
 * that implements nothing: the loader accepts it and the server lists it
 * as loaded with nothing to run it, since no core code calls runtimes yet. */
#include <skiff/plugin.h>
#include <skiff/runtime.h>

static const skiff_runtime_vtable_t vtable = {
    .abi_version = SKIFF_RUNTIME_ABI,
    .runtime_name = "stub",
};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "runtime-stub",
    .version = "0.0.3",
    .kind = SKIFF_PLUGIN_RUNTIME,
    .description = "a runtime with no calls",
    .vtable = &vtable,
};
