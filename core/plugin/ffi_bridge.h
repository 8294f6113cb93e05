/* core/plugin/ffi_bridge.h - calls the C functions plugins export
 * (skiff/ffi.h) through libffi: parses a declared signature once into a
 * call interface, checks each call's arguments against it, and caches
 * each plugin's parsed exports.
 *
 * Independent of Lua: a caller hands values tagged with what it has (nil,
 * boolean, integer, number, string, JSON); the bridge converts them to the
 * declared C types or refuses the call with a message naming the
 * argument. The Lua binding (core/lua/ffi_lua.c) is one such caller. */
#ifndef SKIFF_FFI_BRIDGE_H
#define SKIFF_FFI_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include <skiff/ffi.h>

/* Declared types (the words of a signature). */
typedef enum ffib_type {
    FFIB_VOID = 0,
    FFIB_BOOL,
    FFIB_INT32,
    FFIB_INT64,
    FFIB_UINT64,
    FFIB_DOUBLE,
    FFIB_STRING,
    FFIB_JSON,
    FFIB_BYTES,
} ffib_type_t;

/* What a caller has in hand. */
typedef enum ffib_vkind {
    FFIB_V_NIL = 0,
    FFIB_V_BOOL,
    FFIB_V_INT,
    FFIB_V_NUMBER,
    FFIB_V_STRING, /* s.p is NUL-ended at s.len (Lua strings are) */
    FFIB_V_JSON,
    FFIB_V_OTHER,  /* anything else; other names it for the message ("table") */
} ffib_vkind_t;

typedef struct ffib_value {
    ffib_vkind_t kind;
    union {
        int b;
        int64_t i;
        double d;
        struct {
            const char *p;
            size_t len;
        } s;
        json_t *j;
        const char *other;
    } u;
} ffib_value_t;

#define FFIB_MAX_ARGS 16

typedef struct ffib_fn ffib_fn_t;

/* Parses `signature` for function `name` of plugin `plugin` and prepares
 * its libffi call interface. NULL with a message naming the plugin, the
 * function and the fault when the declaration is bad. */
ffib_fn_t *ffib_fn_new(const char *plugin, const char *name, const char *signature,
                       skiff_ffi_fn_t fn, char *err, size_t errlen);
void ffib_fn_free(ffib_fn_t *f);

const char *ffib_fn_name(const ffib_fn_t *f);
const char *ffib_fn_signature(const ffib_fn_t *f);
size_t ffib_fn_nargs(const ffib_fn_t *f);
ffib_type_t ffib_fn_arg(const ffib_fn_t *f, size_t i);
ffib_type_t ffib_fn_result(const ffib_fn_t *f);
const char *ffib_type_name(ffib_type_t t);

/* Checks args against the declaration, then calls. 0 with *ret set, or
 * SKIFF_EINVAL with a message naming the argument (nothing called).
 * ret: NIL for void or a NULL string/json, BOOL, INT (int32, int64,
 * uint64 up to INT64_MAX), NUMBER (double; uint64 above INT64_MAX),
 * STRING (a copy: ffib_result_free it), JSON (a new reference: same). */
int ffib_call(const ffib_fn_t *f, const ffib_value_t *args, size_t nargs, ffib_value_t *ret,
              char *err, size_t errlen);
void ffib_result_free(ffib_value_t *ret);

/* ---- a plugin's exports ------------------------------------------------------------ */

typedef struct ffib_module ffib_module_t;

/* The parsed exports of plugin `plugin` (found among loaded plugins, or
 * loaded now: see plugin_loaded_require), parsed on first use and kept
 * while the plugin stays loaded. Exports with a bad declaration are left
 * out and logged. NULL with a message when the plugin cannot be loaded
 * or exports no table. */
ffib_module_t *ffib_module_get(const char *plugin, uv_loop_t *loop, const char *data_dir,
                               char *err, size_t errlen);
/* The export named `name`, or NULL with a message listing what it exports. */
const ffib_fn_t *ffib_module_fn(const ffib_module_t *m, const char *name, char *err,
                                size_t errlen);
size_t ffib_module_count(const ffib_module_t *m);
const ffib_fn_t *ffib_module_at(const ffib_module_t *m, size_t i);
const char *ffib_module_plugin(const ffib_module_t *m);

/* Drops the cached exports of plugin p (a loaded_plugin_t) before it unloads. */
void ffib_forget(const void *p);

#endif
