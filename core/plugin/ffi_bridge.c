/* core/plugin/ffi_bridge.c - the libffi bridge: signature parsing, argument
 * checks and conversion, ffi_call, and the cache of each plugin's parsed
 * exports. It knows nothing of Lua; it never guesses a type the
 * declaration does not give. */
#define _GNU_SOURCE
#include "plugin/ffi_bridge.h"

#include <ctype.h>
#include <dlfcn.h>
#include <ffi.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>

#include "plugin/loaded.h"
#include "util/log.h"

typedef struct ffib_arg {
    ffib_type_t type;
    int nullable;       /* `string?`, `json?` */
    char name[32];      /* "" when the declaration names none */
} ffib_arg_t;

struct ffib_fn {
    char *plugin, *name, *signature;
    skiff_ffi_fn_t fn;
    ffib_arg_t ret;
    ffib_arg_t args[FFIB_MAX_ARGS];
    size_t nargs;
    size_t ncargs;      /* C parameters: bytes takes two */
    ffi_cif cif;
    ffi_type *ctypes[2 * FFIB_MAX_ARGS];
};

static const struct {
    const char *word;
    ffib_type_t type;
} type_words[] = {
    {"void", FFIB_VOID},     {"bool", FFIB_BOOL},     {"int32", FFIB_INT32},
    {"int64", FFIB_INT64},   {"uint64", FFIB_UINT64}, {"double", FFIB_DOUBLE},
    {"string", FFIB_STRING}, {"json", FFIB_JSON},     {"bytes", FFIB_BYTES},
};

#define TYPE_LIST "void, bool, int32, int64, uint64, double, string, json, bytes"

const char *ffib_type_name(ffib_type_t t)
{
    for (size_t i = 0; i < sizeof type_words / sizeof *type_words; i++)
        if (type_words[i].type == t) return type_words[i].word;
    return "?";
}

/* ---- parsing ---------------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    char *err;
    size_t errlen;
    const char *plugin, *fn;
} parser_t;

static void skip_ws(parser_t *p)
{
    while (isspace((unsigned char)*p->s)) p->s++;
}

static int fail(parser_t *p, const char *fmt, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, what);
    snprintf(p->err, p->errlen, "plugin %s: function %s: %s", p->plugin, p->fn, msg);
    return -1;
}

static size_t word_len(const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_') n++;
    return n;
}

static int parse_type(parser_t *p, ffib_arg_t *a)
{
    skip_ws(p);
    size_t n = word_len(p->s);
    if (n == 0) return fail(p, "expected a type at \"%s\"", *p->s ? p->s : "the end");
    char word[32];
    snprintf(word, sizeof word, "%.*s", (int)(n < 31 ? n : 31), p->s);
    size_t i = 0;
    for (; i < sizeof type_words / sizeof *type_words; i++)
        if (strlen(type_words[i].word) == n && strncmp(type_words[i].word, p->s, n) == 0) break;
    if (i == sizeof type_words / sizeof *type_words)
        return fail(p, "unknown type \"%s\" (types: " TYPE_LIST ")", word);
    a->type = type_words[i].type;
    p->s += n;
    if (*p->s == '?') {
        if (a->type != FFIB_STRING && a->type != FFIB_JSON)
            return fail(p, "\"%s?\": only string and json may be nil", word);
        a->nullable = 1;
        p->s++;
    }
    return 0;
}

static int parse_signature(parser_t *p, ffib_fn_t *f)
{
    if (parse_type(p, &f->ret) != 0) return -1;
    if (f->ret.type == FFIB_BYTES) return fail(p, "%s is not a result type", "bytes");
    skip_ws(p);
    if (*p->s != '(') return fail(p, "expected \"(\" after the result type, at \"%s\"",
                                  *p->s ? p->s : "the end");
    p->s++;
    skip_ws(p);
    if (*p->s == ')') {
        p->s++;
    } else {
        for (;;) {
            if (f->nargs == FFIB_MAX_ARGS) return fail(p, "more than %s arguments", "16");
            ffib_arg_t *a = &f->args[f->nargs];
            if (parse_type(p, a) != 0) return -1;
            skip_ws(p);
            size_t n = word_len(p->s);
            if (n) {
                if (n >= sizeof a->name) return fail(p, "argument name too long at \"%s\"", p->s);
                memcpy(a->name, p->s, n);
                a->name[n] = '\0';
                p->s += n;
                skip_ws(p);
            }
            if (a->type == FFIB_VOID) {
                /* "int64(void)" is C's way of saying none */
                if (f->nargs == 0 && !a->name[0] && *p->s == ')') {
                    p->s++;
                    break;
                }
                return fail(p, "%s is not an argument type", "void");
            }
            f->nargs++;
            if (*p->s == ',') {
                p->s++;
                continue;
            }
            if (*p->s == ')') {
                p->s++;
                break;
            }
            return fail(p, "expected \",\" or \")\" at \"%s\"", *p->s ? p->s : "the end");
        }
    }
    skip_ws(p);
    if (*p->s) return fail(p, "unexpected \"%s\" after the argument list", p->s);
    return 0;
}

static ffi_type *c_type(ffib_type_t t)
{
    switch (t) {
    case FFIB_VOID: return &ffi_type_void;
    case FFIB_BOOL: return sizeof(bool) == 1 ? &ffi_type_uint8 : &ffi_type_uint32;
    case FFIB_INT32: return &ffi_type_sint32;
    case FFIB_INT64: return &ffi_type_sint64;
    case FFIB_UINT64: return &ffi_type_uint64;
    case FFIB_DOUBLE: return &ffi_type_double;
    case FFIB_STRING:
    case FFIB_JSON:
    case FFIB_BYTES: return &ffi_type_pointer;
    }
    return &ffi_type_void;
}

ffib_fn_t *ffib_fn_new(const char *plugin, const char *name, const char *signature,
                       skiff_ffi_fn_t fn, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    plugin = plugin ? plugin : "?";
    if (!name || !*name) {
        snprintf(err, errlen, "plugin %s: an export has no name", plugin);
        return NULL;
    }
    if (!signature || !*signature) {
        snprintf(err, errlen, "plugin %s: function %s: no signature declared", plugin, name);
        return NULL;
    }
    if (!fn) {
        snprintf(err, errlen, "plugin %s: function %s: the function pointer is NULL", plugin, name);
        return NULL;
    }
    ffib_fn_t *f = calloc(1, sizeof *f);
    if (!f) goto oom;
    f->fn = fn;
    parser_t p = {signature, err, errlen, plugin, name};
    if (parse_signature(&p, f) != 0) {
        free(f);
        return NULL;
    }
    for (size_t i = 0; i < f->nargs; i++) {
        f->ctypes[f->ncargs++] = c_type(f->args[i].type);
        if (f->args[i].type == FFIB_BYTES)
            f->ctypes[f->ncargs++] = sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32;
    }
    if (ffi_prep_cif(&f->cif, FFI_DEFAULT_ABI, (unsigned)f->ncargs, c_type(f->ret.type),
                     f->ctypes) != FFI_OK) {
        snprintf(err, errlen, "plugin %s: function %s: libffi cannot prepare a call to %s", plugin,
                 name, signature);
        free(f);
        return NULL;
    }
    f->plugin = strdup(plugin);
    f->name = strdup(name);
    f->signature = strdup(signature);
    if (f->plugin && f->name && f->signature) return f;
    ffib_fn_free(f);
oom:
    snprintf(err, errlen, "plugin %s: function %s: out of memory", plugin, name);
    return NULL;
}

void ffib_fn_free(ffib_fn_t *f)
{
    if (!f) return;
    free(f->plugin);
    free(f->name);
    free(f->signature);
    free(f);
}

const char *ffib_fn_name(const ffib_fn_t *f) { return f->name; }
const char *ffib_fn_signature(const ffib_fn_t *f) { return f->signature; }
size_t ffib_fn_nargs(const ffib_fn_t *f) { return f->nargs; }
ffib_type_t ffib_fn_arg(const ffib_fn_t *f, size_t i) { return i < f->nargs ? f->args[i].type : FFIB_VOID; }
ffib_type_t ffib_fn_result(const ffib_fn_t *f) { return f->ret.type; }

/* ---- calling ------------------------------------------------------------------------ */

typedef union cval {
    uint8_t b;
    int32_t i32;
    int64_t i64;
    uint64_t u64;
    double d;
    const void *p;
    size_t z;
} cval_t;

static const char *kind_name(const ffib_value_t *v)
{
    switch (v->kind) {
    case FFIB_V_NIL: return "nil";
    case FFIB_V_BOOL: return "boolean";
    case FFIB_V_INT: return "integer";
    case FFIB_V_NUMBER: return "number";
    case FFIB_V_STRING: return "string";
    case FFIB_V_JSON: return "json";
    case FFIB_V_OTHER: return v->u.other ? v->u.other : "value";
    }
    return "value";
}

static int arg_error(const ffib_fn_t *f, size_t i, char *err, size_t errlen, const char *fmt,
                     const char *detail)
{
    char what[64];
    if (f->args[i].name[0]) snprintf(what, sizeof what, "argument %zu (%s)", i + 1, f->args[i].name);
    else snprintf(what, sizeof what, "argument %zu", i + 1);
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail);
    snprintf(err, errlen, "%s.%s: %s %s", f->plugin, f->name, what, msg);
    return SKIFF_EINVAL;
}

static int wrong_type(const ffib_fn_t *f, size_t i, const ffib_value_t *v, char *err, size_t errlen)
{
    char msg[128];
    const char *want = ffib_type_name(f->args[i].type);
    snprintf(msg, sizeof msg, "must be %s%s, got %s", want,
             f->args[i].nullable ? " or nil" : "", kind_name(v));
    return arg_error(f, i, err, errlen, "%s", msg);
}

/* An integral value of v within [lo, hi] (as doubles for the NUMBER case). */
static int integral(const ffib_value_t *v, int64_t *out, double lo, double hi)
{
    if (v->kind == FFIB_V_INT) {
        if ((double)v->u.i < lo || (double)v->u.i > hi) return 1;
        *out = v->u.i;
        return 0;
    }
    if (v->kind != FFIB_V_NUMBER) return -1;
    double d = v->u.d;
    if (!isfinite(d) || floor(d) != d) return 2;
    if (d < lo || d >= hi + 1.0) return 1;
    *out = (int64_t)d;
    return 0;
}

static int convert(const ffib_fn_t *f, size_t i, const ffib_value_t *v, cval_t *c, size_t *k,
                   char *err, size_t errlen)
{
    const ffib_arg_t *a = &f->args[i];
    int64_t n = 0;
    int rc;
    char num[64];
    switch (a->type) {
    case FFIB_BOOL:
        if (v->kind != FFIB_V_BOOL) return wrong_type(f, i, v, err, errlen);
        c[(*k)++].b = v->u.b ? 1 : 0;
        return 0;
    case FFIB_INT32:
    case FFIB_INT64:
        rc = a->type == FFIB_INT32 ? integral(v, &n, (double)INT32_MIN, (double)INT32_MAX)
                                   : integral(v, &n, -9223372036854775808.0, 9223372036854775807.0);
        if (rc < 0) return wrong_type(f, i, v, err, errlen);
        if (rc == 2) {
            snprintf(num, sizeof num, "%g", v->u.d);
            char msg[128];
            snprintf(msg, sizeof msg, "must be %s, got the number %s", ffib_type_name(a->type), num);
            return arg_error(f, i, err, errlen, "%s", msg);
        }
        if (rc == 1) {
            if (v->kind == FFIB_V_INT) snprintf(num, sizeof num, "%lld", (long long)v->u.i);
            else snprintf(num, sizeof num, "%g", v->u.d);
            char msg[128];
            snprintf(msg, sizeof msg, "%s is out of range for %s", num, ffib_type_name(a->type));
            return arg_error(f, i, err, errlen, "%s", msg);
        }
        if (a->type == FFIB_INT32) c[(*k)++].i32 = (int32_t)n;
        else c[(*k)++].i64 = n;
        return 0;
    case FFIB_UINT64:
        if (v->kind == FFIB_V_INT) {
            if (v->u.i < 0) {
                snprintf(num, sizeof num, "%lld", (long long)v->u.i);
                return arg_error(f, i, err, errlen, "%s is out of range for uint64", num);
            }
            c[(*k)++].u64 = (uint64_t)v->u.i;
            return 0;
        }
        if (v->kind != FFIB_V_NUMBER) return wrong_type(f, i, v, err, errlen);
        if (!isfinite(v->u.d) || floor(v->u.d) != v->u.d || v->u.d < 0 ||
            v->u.d >= 18446744073709551616.0) {
            snprintf(num, sizeof num, "%g", v->u.d);
            return arg_error(f, i, err, errlen, "must be uint64, got the number %s", num);
        }
        c[(*k)++].u64 = (uint64_t)v->u.d;
        return 0;
    case FFIB_DOUBLE:
        if (v->kind == FFIB_V_INT) c[(*k)++].d = (double)v->u.i;
        else if (v->kind == FFIB_V_NUMBER) c[(*k)++].d = v->u.d;
        else return wrong_type(f, i, v, err, errlen);
        return 0;
    case FFIB_STRING:
        if (v->kind == FFIB_V_NIL && a->nullable) {
            c[(*k)++].p = NULL;
            return 0;
        }
        if (v->kind != FFIB_V_STRING) return wrong_type(f, i, v, err, errlen);
        if (memchr(v->u.s.p, '\0', v->u.s.len))
            return arg_error(f, i, err, errlen, "%s",
                             "holds a NUL byte; declare it bytes to pass binary data");
        c[(*k)++].p = v->u.s.p;
        return 0;
    case FFIB_BYTES:
        if (v->kind != FFIB_V_STRING) return wrong_type(f, i, v, err, errlen);
        c[(*k)++].p = v->u.s.p;
        c[(*k)++].z = v->u.s.len;
        return 0;
    case FFIB_JSON:
        if (v->kind == FFIB_V_NIL && a->nullable) {
            c[(*k)++].p = NULL;
            return 0;
        }
        if (v->kind != FFIB_V_JSON || !v->u.j) return wrong_type(f, i, v, err, errlen);
        c[(*k)++].p = v->u.j;
        return 0;
    case FFIB_VOID: break;
    }
    return wrong_type(f, i, v, err, errlen);
}

int ffib_call(const ffib_fn_t *f, const ffib_value_t *args, size_t nargs, ffib_value_t *ret,
              char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    memset(ret, 0, sizeof *ret);
    if (nargs != f->nargs) {
        snprintf(err, errlen, "%s.%s takes %zu argument%s (%s), got %zu", f->plugin, f->name,
                 f->nargs, f->nargs == 1 ? "" : "s", f->signature, nargs);
        return SKIFF_EINVAL;
    }
    cval_t c[2 * FFIB_MAX_ARGS];
    void *av[2 * FFIB_MAX_ARGS];
    size_t k = 0;
    for (size_t i = 0; i < nargs; i++) {
        int rc = convert(f, i, &args[i], c, &k, err, errlen);
        if (rc != 0) return rc;
    }
    for (size_t i = 0; i < k; i++) av[i] = &c[i];
    /* libffi widens results narrower than a register to ffi_arg */
    union {
        ffi_arg a;
        ffi_sarg s;
        int64_t i64;
        uint64_t u64;
        double d;
        void *p;
    } rv;
    memset(&rv, 0, sizeof rv);
    ffi_call((ffi_cif *)&f->cif, f->fn, &rv, av);
    switch (f->ret.type) {
    case FFIB_VOID: ret->kind = FFIB_V_NIL; break;
    case FFIB_BOOL:
        ret->kind = FFIB_V_BOOL;
        ret->u.b = (uint8_t)rv.a != 0;
        break;
    case FFIB_INT32:
        ret->kind = FFIB_V_INT;
        ret->u.i = (int32_t)rv.s;
        break;
    case FFIB_INT64:
        ret->kind = FFIB_V_INT;
        ret->u.i = rv.i64;
        break;
    case FFIB_UINT64:
        if (rv.u64 > (uint64_t)INT64_MAX) {
            ret->kind = FFIB_V_NUMBER;
            ret->u.d = (double)rv.u64;
        } else {
            ret->kind = FFIB_V_INT;
            ret->u.i = (int64_t)rv.u64;
        }
        break;
    case FFIB_DOUBLE:
        ret->kind = FFIB_V_NUMBER;
        ret->u.d = rv.d;
        break;
    case FFIB_STRING:
        if (!rv.p) break;
        ret->u.s.len = strlen(rv.p);
        ret->u.s.p = strdup(rv.p);
        if (!ret->u.s.p) {
            snprintf(err, errlen, "%s.%s: out of memory copying its result", f->plugin, f->name);
            return SKIFF_ENOMEM;
        }
        ret->kind = FFIB_V_STRING;
        break;
    case FFIB_JSON:
        if (!rv.p) break;
        ret->kind = FFIB_V_JSON;
        ret->u.j = rv.p;
        break;
    case FFIB_BYTES: break;
    }
    return 0;
}

void ffib_result_free(ffib_value_t *ret)
{
    if (!ret) return;
    if (ret->kind == FFIB_V_STRING) free((char *)ret->u.s.p);
    else if (ret->kind == FFIB_V_JSON) json_decref(ret->u.j);
    memset(ret, 0, sizeof *ret);
}

/* ---- modules -------------------------------------------------------------------------- */

struct ffib_module {
    const void *owner;  /* the loaded_plugin_t */
    char *plugin;
    ffib_fn_t **fns;
    size_t n;
    struct ffib_module *next;
};

static ffib_module_t *modules;

static void module_free(ffib_module_t *m)
{
    for (size_t i = 0; i < m->n; i++) ffib_fn_free(m->fns[i]);
    free(m->fns);
    free(m->plugin);
    free(m);
}

void ffib_forget(const void *p)
{
    for (ffib_module_t **m = &modules; *m; m = &(*m)->next) {
        if ((*m)->owner != p) continue;
        ffib_module_t *dead = *m;
        *m = dead->next;
        module_free(dead);
        return;
    }
}

static int is_script(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && strcmp(path + n - 4, ".lua") == 0;
}

static ffib_module_t *module_parse(loaded_plugin_t *p, char *err, size_t errlen)
{
    /* a script's handle is no shared object: nothing to look up in it */
    if (is_script(p->path)) {
        snprintf(err, errlen, "plugin %s is a Lua plugin: only C plugins export functions to call "
                 "through skiff.ffi", p->name);
        return NULL;
    }
    dlerror();
    const skiff_ffi_table_t *t = dlsym(p->handle, SKIFF_FFI_SYMBOL);
    if (!t) {
        snprintf(err, errlen,
                 "plugin %s exports no C functions: it has no %s table (see skiff/ffi.h)", p->name,
                 SKIFF_FFI_SYMBOL);
        return NULL;
    }
    if (t->abi_version != SKIFF_FFI_ABI) {
        snprintf(err, errlen,
                 "plugin %s (%s): its %s table was built for FFI ABI %u, this skiff speaks %u; "
                 "rebuild it against this SDK",
                 p->name, p->path, SKIFF_FFI_SYMBOL, (unsigned)t->abi_version,
                 (unsigned)SKIFF_FFI_ABI);
        return NULL;
    }
    ffib_module_t *m = calloc(1, sizeof *m);
    if (!m || !(m->plugin = strdup(p->name))) {
        free(m);
        snprintf(err, errlen, "out of memory reading the exports of plugin %s", p->name);
        return NULL;
    }
    m->owner = p;
    size_t cap = 0;
    for (const skiff_ffi_export_t *e = t->exports; e && e->name; e++) {
        char why[512];
        int dup = 0;
        for (size_t i = 0; i < m->n; i++) dup |= strcmp(m->fns[i]->name, e->name) == 0;
        ffib_fn_t *f = NULL;
        if (dup) snprintf(why, sizeof why, "plugin %s: function %s: exported twice", p->name, e->name);
        else f = ffib_fn_new(p->name, e->name, e->signature, e->fn, why, sizeof why);
        if (!f) {
            log_error("ffi", "%s; that function is not callable", why);
            continue;
        }
        if (m->n == cap) {
            cap = cap ? 2 * cap : 8;
            ffib_fn_t **n = realloc(m->fns, cap * sizeof *n);
            if (!n) {
                ffib_fn_free(f);
                break;
            }
            m->fns = n;
        }
        m->fns[m->n++] = f;
    }
    return m;
}

ffib_module_t *ffib_module_get(const char *plugin, uv_loop_t *loop, const char *data_dir,
                               char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    loaded_plugin_t *p = plugin_loaded_require(plugin, loop, data_dir, err, errlen);
    if (!p) return NULL;
    for (ffib_module_t *m = modules; m; m = m->next)
        if (m->owner == p) return m;
    ffib_module_t *m = module_parse(p, err, errlen);
    if (!m) return NULL;
    m->next = modules;
    modules = m;
    return m;
}

const ffib_fn_t *ffib_module_fn(const ffib_module_t *m, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->fns[i]->name, name ? name : "") == 0) return m->fns[i];
    if (err && errlen) {
        size_t used = (size_t)snprintf(err, errlen, "plugin %s exports no function \"%s\" (it exports: ",
                                       m->plugin, name ? name : "");
        for (size_t i = 0; i < m->n && used < errlen; i++)
            used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? ", " : "", m->fns[i]->name);
        if (used < errlen) snprintf(err + used, errlen - used, "%s)", m->n ? "" : "none");
    }
    return NULL;
}

size_t ffib_module_count(const ffib_module_t *m) { return m->n; }
const ffib_fn_t *ffib_module_at(const ffib_module_t *m, size_t i) { return i < m->n ? m->fns[i] : NULL; }
const char *ffib_module_plugin(const ffib_module_t *m) { return m->plugin; }
