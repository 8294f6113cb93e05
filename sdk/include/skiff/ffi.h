/* skiff/ffi.h - C functions a plugin lends to Lua: a table of exports,
 * each a name, a declared signature and a function pointer. The core
 * calls them through libffi, so a plugin writes no Lua glue.
 *
 * A plugin (of any kind) exports, next to its descriptor, one symbol:
 *
 *     static double mean(int64_t n, double total) { return n ? total / n : 0; }
 *     static const skiff_ffi_export_t exports[] = {
 *         {"mean", "double(int64 n, double total)", SKIFF_FFI_FN(mean)},
 *         {NULL},
 *     };
 *     const skiff_ffi_table_t skiff_ffi_exports = {SKIFF_FFI_ABI, exports};
 *
 * and Lua calls it by name:
 *
 *     skiff.ffi.call("my-plugin", "mean", 4, 10.0)       --> 2.5
 *     local m = skiff.ffi.load("my-plugin"); m.mean(4, 10.0)
 *
 * A signature is `RET(TYPE [name], ...)`; `RET()` or `RET(void)` takes
 * nothing; argument names are optional and only used in error messages.
 * The core parses every declaration once, when the plugin's exports are
 * first used; a bad declaration refuses that one export (logged with the
 * plugin's and the function's name), the others stay callable.
 *
 *   type     C parameter                  Lua argument             as a result
 *   void     -                            -                        nothing
 *   bool     bool                         boolean                  boolean
 *   int32    int32_t                      integer in range         integer
 *   int64    int64_t                      integer                  integer
 *   uint64   uint64_t                     integer >= 0             integer (float above 2^63-1)
 *   double   double                       number                   number
 *   string   const char * (NUL-ended)     string without NUL       string (copied; NULL: nil)
 *   json     const json_t * (borrowed)    table/string/number/bool Lua value (a NEW reference
 *                                                                  the core releases; NULL: nil)
 *   bytes    const void *, size_t (two C parameters)  string       (not a result type)
 *
 * `string?` and `json?` also accept nil (passed as NULL). A float with an
 * integral value is accepted for the integer types. A returned string is
 * borrowed: it must stay valid until the function returns (a static or
 * thread-local buffer, or memory the plugin owns); the core copies it.
 *
 * A call with the wrong number of arguments, or an argument of the wrong
 * type or out of range, is refused before the function runs with an
 * error naming the argument ("my-plugin.mean: argument 2 (total) must be
 * double, got string"). What the function itself does is not checked: it
 * runs on the server's loop, must not block, and a crash in it is a crash
 * of the server, as for any C plugin. */
#ifndef SKIFF_FFI_H
#define SKIFF_FFI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on an incompatible change to the structs below. */
#define SKIFF_FFI_ABI 1u

/* Name of the exported table symbol. */
#define SKIFF_FFI_SYMBOL "skiff_ffi_exports"

/* A function pointer of any type, as the table stores it. */
typedef void (*skiff_ffi_fn_t)(void);
#define SKIFF_FFI_FN(f) ((skiff_ffi_fn_t)(void (*)(void))(f))

typedef struct skiff_ffi_export {
    const char *name;          /* what Lua calls it: "mean" */
    const char *signature;     /* "double(int64 n, double total)" */
    skiff_ffi_fn_t fn;
    const char *help;          /* optional one line */
} skiff_ffi_export_t;

/* What the exported symbol skiff_ffi_exports is. */
typedef struct skiff_ffi_table {
    uint32_t abi_version;      /* SKIFF_FFI_ABI */
    const skiff_ffi_export_t *exports; /* ends with an entry whose name is NULL */
} skiff_ffi_table_t;

#ifdef __cplusplus
}
#endif
#endif
