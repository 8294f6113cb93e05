/* tests/unit/plugins/ffi_exports.c - a plugin lending C functions through
 * skiff/ffi.h: one of every supported type, and a few bad declarations
 * the bridge must refuse one by one while keeping the rest callable. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <skiff/ffi.h>
#include <skiff/plugin.h>

static int calls;

static void touch(void) { calls++; }
static int32_t calls_made(void) { return calls; }
static bool negate(bool b) { return !b; }
static int32_t add32(int32_t a, int32_t b) { return a + b; }
static int64_t mul64(int64_t a, int64_t b) { return a * b; }
static uint64_t big(uint64_t a) { return a * 2u; }
static double mean(int64_t n, double total) { return n ? total / (double)n : 0.0; }

static const char *greet(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "hello, %s", name ? name : "nobody");
    return buf;
}

static const char *nothing(void) { return NULL; }

/* sum of a JSON object's values for the keys in a comma list */
static int64_t json_sum(const json_t *obj, const char *keys)
{
    int64_t sum = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", keys);
    for (char *save = NULL, *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save))
        sum += json_integer_value(json_object_get(obj, k));
    return sum;
}

static json_t *wrap(const json_t *v) { return json_pack("{s:O?}", "wrapped", (json_t *)v); }

static uint64_t count_zero_bytes(const void *p, size_t n)
{
    uint64_t z = 0;
    for (size_t i = 0; i < n; i++) z += ((const unsigned char *)p)[i] == 0;
    return z;
}

static double mix(int32_t a, int64_t b, uint64_t c, double d, bool e, const char *f)
{
    return a + (double)b + (double)c + d + (e ? 1000 : 0) + (double)strlen(f);
}

static const skiff_ffi_export_t exports[] = {
    {"touch", "void()", SKIFF_FFI_FN(touch), "counts a call"},
    {"calls_made", "int32(void)", SKIFF_FFI_FN(calls_made), NULL},
    {"negate", "bool(bool b)", SKIFF_FFI_FN(negate), NULL},
    {"add32", "int32(int32 a, int32 b)", SKIFF_FFI_FN(add32), NULL},
    {"mul64", "int64(int64, int64)", SKIFF_FFI_FN(mul64), NULL},
    {"big", "uint64(uint64 a)", SKIFF_FFI_FN(big), NULL},
    {"mean", "double(int64 n, double total)", SKIFF_FFI_FN(mean), NULL},
    {"greet", "string(string? name)", SKIFF_FFI_FN(greet), NULL},
    {"nothing", "string()", SKIFF_FFI_FN(nothing), NULL},
    {"json_sum", "int64(json obj, string keys)", SKIFF_FFI_FN(json_sum), NULL},
    {"wrap", "json(json? v)", SKIFF_FFI_FN(wrap), NULL},
    {"count_zero_bytes", "uint64(bytes data)", SKIFF_FFI_FN(count_zero_bytes), NULL},
    {"mix", " double ( int32 a , int64 b, uint64 c, double d, bool e, string f ) ",
     SKIFF_FFI_FN(mix), NULL},
    /* refused, each alone */
    {"bad_type", "float(int32)", SKIFF_FFI_FN(add32), NULL},
    {"bad_syntax", "int32(int32 a int32 b)", SKIFF_FFI_FN(add32), NULL},
    {"bad_void", "int32(void x)", SKIFF_FFI_FN(add32), NULL},
    {"no_fn", "int32()", NULL, NULL},
    {"add32", "int64(int64, int64)", SKIFF_FFI_FN(mul64), "a second add32"},
    {NULL},
};

const skiff_ffi_table_t skiff_ffi_exports = {SKIFF_FFI_ABI, exports};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "ffi-exports",
    .version = "0.0.1",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "lends C functions of every supported type",
};
