/* tests/unit/test_ffi_bridge.c - the libffi bridge: signature parsing,
 * calls with every supported type, the checks that refuse a bad call
 * before it happens (and the messages they give), a plugin's export table
 * read through the list of loaded plugins, and skiff_plugin_find. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include <skiff/errors.h>
#include <skiff/plugin.h>

#include "plugin/ffi_bridge.h"
#include "plugin/loaded.h"

static char test_plugins[1200];
static uv_loop_t loop;

static int group_setup(void **state)
{
    const char *b = getenv("SKIFF_BUILD_DIR");
    snprintf(test_plugins, sizeof test_plugins, "%s/tests/unit/plugins/.libs", b && b[0] ? b : ".");
    plugin_loader_add_dir(test_plugins);
    return uv_loop_init(&loop);
}

static int group_teardown(void **state)
{
    plugin_loaded_unload_owned();
    plugin_loader_reset_dirs();
    return uv_loop_close(&loop);
}

/* ---- values --------------------------------------------------------------------------- */

static ffib_value_t vnil(void) { return (ffib_value_t){.kind = FFIB_V_NIL}; }
static ffib_value_t vbool(int b) { return (ffib_value_t){.kind = FFIB_V_BOOL, .u.b = b}; }
static ffib_value_t vint(int64_t i) { return (ffib_value_t){.kind = FFIB_V_INT, .u.i = i}; }
static ffib_value_t vnum(double d) { return (ffib_value_t){.kind = FFIB_V_NUMBER, .u.d = d}; }
static ffib_value_t vstr(const char *s)
{
    return (ffib_value_t){.kind = FFIB_V_STRING, .u.s = {s, strlen(s)}};
}
static ffib_value_t vjson(json_t *j) { return (ffib_value_t){.kind = FFIB_V_JSON, .u.j = j}; }

/* ---- functions called in-process ------------------------------------------------------ */

static int32_t sub32(int32_t a, int32_t b) { return a - b; }
static double scale(double x, int64_t k) { return x * (double)k; }
static bool is_even(int64_t n) { return n % 2 == 0; }
static int64_t len_or_minus(const char *s) { return s ? (int64_t)strlen(s) : -1; }
static uint64_t u64_max(void) { return UINT64_MAX; }
static int64_t last_byte(const void *p, size_t n) { return n ? ((const unsigned char *)p)[n - 1] : -1; }
static int64_t json_len(const json_t *j) { return j ? (int64_t)json_object_size(j) : -1; }

static ffib_fn_t *fn(const char *sig, skiff_ffi_fn_t f)
{
    char err[512] = "";
    ffib_fn_t *r = ffib_fn_new("test", "f", sig, f, err, sizeof err);
    if (!r) fail_msg("%s: %s", sig, err);
    return r;
}

static void parse_refused(const char *sig, const char *want)
{
    char err[512] = "";
    ffib_fn_t *f = ffib_fn_new("my-plugin", "myfn", sig, SKIFF_FFI_FN(sub32), err, sizeof err);
    if (f) {
        ffib_fn_free(f);
        fail_msg("\"%s\" was accepted", sig);
    }
    if (!strstr(err, "plugin my-plugin: function myfn: ") || !strstr(err, want))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", sig, err, want);
}

static void test_signatures(void **state)
{
    ffib_fn_t *f = fn("  double ( int64 n , double total )  ", SKIFF_FFI_FN(scale));
    assert_int_equal(ffib_fn_nargs(f), 2);
    assert_int_equal(ffib_fn_arg(f, 0), FFIB_INT64);
    assert_int_equal(ffib_fn_arg(f, 1), FFIB_DOUBLE);
    assert_int_equal(ffib_fn_result(f), FFIB_DOUBLE);
    ffib_fn_free(f);
    f = fn("int64(void)", SKIFF_FFI_FN(u64_max));
    assert_int_equal(ffib_fn_nargs(f), 0);
    ffib_fn_free(f);
    f = fn("void()", SKIFF_FFI_FN(u64_max));
    assert_int_equal(ffib_fn_result(f), FFIB_VOID);
    ffib_fn_free(f);
    f = fn("json?(string? a, json? b, bytes c, bool, int32, uint64)", SKIFF_FFI_FN(u64_max));
    assert_int_equal(ffib_fn_nargs(f), 6);
    assert_int_equal(ffib_fn_arg(f, 2), FFIB_BYTES);
    ffib_fn_free(f);

    parse_refused("float(int32)", "unknown type \"float\" (types: void, bool, int32");
    parse_refused("int32(int32, char *)", "unknown type \"char\"");
    parse_refused("bytes(int32)", "bytes is not a result type");
    parse_refused("int32(void x)", "void is not an argument type");
    parse_refused("int32(int32, void)", "void is not an argument type");
    parse_refused("int32?(int32)", "only string and json may be nil");
    parse_refused("int32 int32", "expected \"(\" after the result type");
    parse_refused("int32(int32 a int32 b)", "expected \",\" or \")\"");
    parse_refused("int32(int32", "expected \",\" or \")\" at \"the end\"");
    parse_refused("int32(int32,)", "expected a type at \")\"");
    parse_refused("int32(int32) x", "unexpected \"x\" after the argument list");
    parse_refused("", "no signature declared");
    parse_refused("int32(int32,int32,int32,int32,int32,int32,int32,int32,int32,int32,int32,"
                  "int32,int32,int32,int32,int32,int32)",
                  "more than 16 arguments");
    char err[256];
    assert_null(ffib_fn_new("p", "g", "int32()", NULL, err, sizeof err));
    assert_string_equal(err, "plugin p: function g: the function pointer is NULL");
}

static void test_every_type(void **state)
{
    char err[512] = "";
    ffib_value_t r;
    ffib_fn_t *f = fn("int32(int32 a, int32 b)", SKIFF_FFI_FN(sub32));
    ffib_value_t a[] = {vint(-5), vint(7)};
    assert_int_equal(ffib_call(f, a, 2, &r, err, sizeof err), 0);
    assert_int_equal(r.kind, FFIB_V_INT);
    assert_int_equal(r.u.i, -12);
    /* a float with an integral value is an integer */
    ffib_value_t a2[] = {vnum(10.0), vint(3)};
    assert_int_equal(ffib_call(f, a2, 2, &r, err, sizeof err), 0);
    assert_int_equal(r.u.i, 7);
    ffib_fn_free(f);

    f = fn("double(double x, int64 k)", SKIFF_FFI_FN(scale));
    ffib_value_t b[] = {vint(3), vint(INT64_C(1) << 40)};
    assert_int_equal(ffib_call(f, b, 2, &r, err, sizeof err), 0);
    assert_int_equal(r.kind, FFIB_V_NUMBER);
    assert_true(r.u.d == 3.0 * (double)(INT64_C(1) << 40));
    ffib_fn_free(f);

    f = fn("bool(int64)", SKIFF_FFI_FN(is_even));
    ffib_value_t c[] = {vint(4)};
    assert_int_equal(ffib_call(f, c, 1, &r, err, sizeof err), 0);
    assert_int_equal(r.kind, FFIB_V_BOOL);
    assert_true(r.u.b);
    c[0] = vint(5);
    assert_int_equal(ffib_call(f, c, 1, &r, err, sizeof err), 0);
    assert_false(r.u.b);
    ffib_fn_free(f);

    f = fn("int64(string? s)", SKIFF_FFI_FN(len_or_minus));
    ffib_value_t d[] = {vstr("skiff")};
    assert_int_equal(ffib_call(f, d, 1, &r, err, sizeof err), 0);
    assert_int_equal(r.u.i, 5);
    d[0] = vnil();
    assert_int_equal(ffib_call(f, d, 1, &r, err, sizeof err), 0);
    assert_int_equal(r.u.i, -1);
    ffib_fn_free(f);

    /* above INT64_MAX a uint64 result is a number, not a wrapped integer */
    f = fn("uint64()", SKIFF_FFI_FN(u64_max));
    assert_int_equal(ffib_call(f, NULL, 0, &r, err, sizeof err), 0);
    assert_int_equal(r.kind, FFIB_V_NUMBER);
    assert_true(r.u.d == 18446744073709551615.0);
    ffib_fn_free(f);

    f = fn("int64(bytes b)", SKIFF_FFI_FN(last_byte));
    ffib_value_t e[] = {{.kind = FFIB_V_STRING, .u.s = {"a\0b\xff", 4}}};
    assert_int_equal(ffib_call(f, e, 1, &r, err, sizeof err), 0);
    assert_int_equal(r.u.i, 255);
    ffib_fn_free(f);

    f = fn("int64(json? j)", SKIFF_FFI_FN(json_len));
    json_t *obj = json_pack("{s:i,s:i}", "a", 1, "b", 2);
    ffib_value_t g[] = {vjson(obj)};
    assert_int_equal(ffib_call(f, g, 1, &r, err, sizeof err), 0);
    assert_int_equal(r.u.i, 2);
    g[0] = vnil();
    assert_int_equal(ffib_call(f, g, 1, &r, err, sizeof err), 0);
    assert_int_equal(r.u.i, -1);
    json_decref(obj);
    ffib_fn_free(f);
}

static void call_refused(const char *sig, skiff_ffi_fn_t f_, const ffib_value_t *args, size_t n,
                         const char *want)
{
    char err[512] = "";
    ffib_fn_t *f = ffib_fn_new("my-plugin", "myfn", sig, f_, err, sizeof err);
    assert_non_null(f);
    ffib_value_t r;
    int rc = ffib_call(f, args, n, &r, err, sizeof err);
    ffib_fn_free(f);
    if (rc != SKIFF_EINVAL) fail_msg("%s: call was not refused", sig);
    if (strcmp(err, want) != 0) fail_msg("%s: got \"%s\", want \"%s\"", sig, err, want);
}

static void test_refused_calls(void **state)
{
    ffib_value_t one[] = {vint(1)};
    call_refused("int32(int32 a, int32 b)", SKIFF_FFI_FN(sub32), one, 1,
                 "my-plugin.myfn takes 2 arguments (int32(int32 a, int32 b)), got 1");
    ffib_value_t three[] = {vint(1), vint(2), vint(3)};
    call_refused("int32(int32 a, int32 b)", SKIFF_FFI_FN(sub32), three, 3,
                 "my-plugin.myfn takes 2 arguments (int32(int32 a, int32 b)), got 3");
    ffib_value_t s[] = {vint(1), vstr("2")};
    call_refused("int32(int32 a, int32 b)", SKIFF_FFI_FN(sub32), s, 2,
                 "my-plugin.myfn: argument 2 (b) must be int32, got string");
    ffib_value_t frac[] = {vnum(1.5), vint(2)};
    call_refused("int32(int32 a, int32 b)", SKIFF_FFI_FN(sub32), frac, 2,
                 "my-plugin.myfn: argument 1 (a) must be int32, got the number 1.5");
    ffib_value_t big[] = {vint(INT64_C(5000000000)), vint(2)};
    call_refused("int32(int32, int32)", SKIFF_FFI_FN(sub32), big, 2,
                 "my-plugin.myfn: argument 1 5000000000 is out of range for int32");
    ffib_value_t neg[] = {vint(-1)};
    call_refused("uint64(uint64 n)", SKIFF_FFI_FN(u64_max), neg, 1,
                 "my-plugin.myfn: argument 1 (n) -1 is out of range for uint64");
    ffib_value_t huge[] = {vnum(1e300)};
    call_refused("int64(int64 n)", SKIFF_FFI_FN(u64_max), huge, 1,
                 "my-plugin.myfn: argument 1 (n) 1e+300 is out of range for int64");
    ffib_value_t b[] = {vint(1)};
    call_refused("bool(bool flag)", SKIFF_FFI_FN(is_even), b, 1,
                 "my-plugin.myfn: argument 1 (flag) must be bool, got integer");
    ffib_value_t d[] = {vbool(1)};
    call_refused("double(double x)", SKIFF_FFI_FN(scale), d, 1,
                 "my-plugin.myfn: argument 1 (x) must be double, got boolean");
    ffib_value_t nil[] = {vnil()};
    call_refused("int64(string s)", SKIFF_FFI_FN(len_or_minus), nil, 1,
                 "my-plugin.myfn: argument 1 (s) must be string, got nil");
    ffib_value_t nul[] = {{.kind = FFIB_V_STRING, .u.s = {"a\0b", 3}}};
    call_refused("int64(string s)", SKIFF_FFI_FN(len_or_minus), nul, 1,
                 "my-plugin.myfn: argument 1 (s) holds a NUL byte; declare it bytes to pass "
                 "binary data");
    ffib_value_t tbl[] = {{.kind = FFIB_V_OTHER, .u.other = "table"}};
    call_refused("int64(string? s)", SKIFF_FFI_FN(len_or_minus), tbl, 1,
                 "my-plugin.myfn: argument 1 (s) must be string or nil, got table");
    call_refused("int64(json j)", SKIFF_FFI_FN(json_len), nil, 1,
                 "my-plugin.myfn: argument 1 (j) must be json, got nil");
    call_refused("int64(bytes b)", SKIFF_FFI_FN(last_byte), one, 1,
                 "my-plugin.myfn: argument 1 (b) must be bytes, got integer");
}

/* ---- a plugin's table ------------------------------------------------------------------ */

static ffib_value_t call_export(ffib_module_t *m, const char *name, const ffib_value_t *a, size_t n)
{
    char err[512] = "";
    const ffib_fn_t *f = ffib_module_fn(m, name, err, sizeof err);
    if (!f) fail_msg("%s", err);
    ffib_value_t r;
    if (ffib_call(f, a, n, &r, err, sizeof err) != 0) fail_msg("%s: %s", name, err);
    return r;
}

static void test_plugin_exports(void **state)
{
    char err[1024] = "";
    ffib_module_t *m = ffib_module_get("ffi_exports", &loop, NULL, err, sizeof err);
    if (!m) fail_msg("%s", err);
    assert_string_equal(ffib_module_plugin(m), "ffi-exports");
    /* the five bad declarations are left out, the rest are callable */
    assert_int_equal(ffib_module_count(m), 13);
    /* found again by its descriptor name, parsed once */
    assert_ptr_equal(ffib_module_get("ffi-exports", &loop, NULL, err, sizeof err), m);

    ffib_value_t r = call_export(m, "touch", NULL, 0);
    assert_int_equal(r.kind, FFIB_V_NIL);
    call_export(m, "touch", NULL, 0);
    r = call_export(m, "calls_made", NULL, 0);
    assert_int_equal(r.u.i, 2);
    ffib_value_t b[] = {vbool(0)};
    r = call_export(m, "negate", b, 1);
    assert_int_equal(r.kind, FFIB_V_BOOL);
    assert_true(r.u.b);
    ffib_value_t i2[] = {vint(40), vint(2)};
    assert_int_equal(call_export(m, "add32", i2, 2).u.i, 42);
    ffib_value_t i64[] = {vint(INT64_C(1) << 31), vint(4)};
    assert_int_equal(call_export(m, "mul64", i64, 2).u.i, INT64_C(1) << 33);
    ffib_value_t u[] = {vint(INT64_C(1) << 62)};
    r = call_export(m, "big", u, 1);
    assert_int_equal(r.kind, FFIB_V_NUMBER);
    assert_true(r.u.d == 9223372036854775808.0);
    ffib_value_t md[] = {vint(4), vnum(10.0)};
    r = call_export(m, "mean", md, 2);
    assert_true(r.u.d == 2.5);

    ffib_value_t s[] = {vstr("world")};
    r = call_export(m, "greet", s, 1);
    assert_int_equal(r.kind, FFIB_V_STRING);
    assert_string_equal(r.u.s.p, "hello, world");
    ffib_result_free(&r);
    r = call_export(m, "nothing", NULL, 0);
    assert_int_equal(r.kind, FFIB_V_NIL);

    json_t *labels = json_pack("{s:i,s:i,s:i}", "a", 1, "b", 20, "c", 300);
    ffib_value_t js[] = {vjson(labels), vstr("a,c")};
    assert_int_equal(call_export(m, "json_sum", js, 2).u.i, 301);
    ffib_value_t w[] = {vjson(labels)};
    r = call_export(m, "wrap", w, 1);
    assert_int_equal(r.kind, FFIB_V_JSON);
    assert_true(json_equal(json_object_get(r.u.j, "wrapped"), labels));
    ffib_result_free(&r);
    json_decref(labels);
    ffib_value_t wn[] = {vnil()};
    r = call_export(m, "wrap", wn, 1);
    assert_int_equal(r.kind, FFIB_V_JSON);
    assert_true(json_is_null(json_object_get(r.u.j, "wrapped")));
    ffib_result_free(&r);

    ffib_value_t by[] = {{.kind = FFIB_V_STRING, .u.s = {"\0x\0", 3}}};
    assert_int_equal(call_export(m, "count_zero_bytes", by, 1).u.i, 2);
    ffib_value_t mx[] = {vint(1), vint(20), vint(300), vnum(0.5), vbool(1), vstr("abcd")};
    r = call_export(m, "mix", mx, 6);
    assert_true(r.u.d == 1 + 20 + 300 + 0.5 + 1000 + 4);

    /* a missing function lists what there is; a refused one is missing */
    assert_null(ffib_module_fn(m, "bad_type", err, sizeof err));
    assert_non_null(strstr(err, "plugin ffi-exports exports no function \"bad_type\" (it exports: "
                                "touch, calls_made, negate, add32,"));
    /* the duplicate was refused: add32 is still the int32 one */
    const ffib_fn_t *f = ffib_module_fn(m, "add32", err, sizeof err);
    assert_string_equal(ffib_fn_signature(f), "int32(int32 a, int32 b)");
}

static void test_plugin_errors(void **state)
{
    char err[1024] = "";
    assert_null(ffib_module_get("counting_controller", &loop, NULL, err, sizeof err));
    assert_non_null(strstr(err, "plugin counting-controller exports no C functions: it has no "
                                "skiff_ffi_exports table (see skiff/ffi.h)"));
    assert_null(ffib_module_get("no-such-plugin", &loop, NULL, err, sizeof err));
    assert_non_null(strstr(err, "plugin no-such-plugin not found (looked for "));
}

/* Unloading a plugin drops its parsed exports: a later use loads it again
 * (its static counter starts over). */
static void test_unload_forgets(void **state)
{
    char err[1024] = "";
    ffib_module_t *m = ffib_module_get("ffi-exports", &loop, NULL, err, sizeof err);
    assert_non_null(m);
    call_export(m, "touch", NULL, 0);
    assert_true(call_export(m, "calls_made", NULL, 0).u.i >= 1);
    plugin_loaded_unload_owned();
    assert_null(plugin_loaded_find("ffi-exports"));
    /* by the descriptor name it is no longer known; by its file it loads */
    assert_null(ffib_module_get("ffi-exports", &loop, NULL, err, sizeof err));
    m = ffib_module_get("ffi_exports", &loop, NULL, err, sizeof err);
    if (!m) fail_msg("%s", err);
    assert_int_equal(call_export(m, "calls_made", NULL, 0).u.i, 0);
}

static void test_plugin_find(void **state)
{
    char err[1024] = "";
    char path[1400];
    snprintf(path, sizeof path, "%s/init_fails.so", test_plugins);
    /* loaded by someone else: found by descriptor name and by file name */
    loaded_plugin_t *p = plugin_load(path, &loop, NULL, err, sizeof err);
    assert_non_null(p);
    assert_ptr_equal(skiff_plugin_find(NULL, "init-fails", err, sizeof err), p->desc);
    assert_ptr_equal(skiff_plugin_find(NULL, "init_fails", err, sizeof err), p->desc);
    plugin_unload(p);
    /* not loaded: loaded now, init run; a failing init is the error */
    assert_null(skiff_plugin_find(NULL, "init_fails", err, sizeof err));
    assert_non_null(strstr(err, "plugin init-fails ("));
    assert_non_null(strstr(err, "): init failed: "));
    assert_null(plugin_loaded_find("init-fails"));
    skiff_plugin_ctx_t ctx = {.loop = &loop};
    const skiff_plugin_t *d = skiff_plugin_find(&ctx, "counting_controller", err, sizeof err);
    assert_non_null(d);
    assert_string_equal(d->name, "counting-controller");
    assert_ptr_equal(skiff_plugin_find(&ctx, "counting-controller", NULL, 0), d);
    assert_null(skiff_plugin_find(&ctx, "", err, sizeof err));
    assert_string_equal(err, "no plugin name given");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signatures),     cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_refused_calls),  cmocka_unit_test(test_plugin_exports),
        cmocka_unit_test(test_plugin_errors),  cmocka_unit_test(test_unload_forgets),
        cmocka_unit_test(test_plugin_find),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
