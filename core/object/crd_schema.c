/* core/object/crd_schema.c - openAPIV3Schema of a custom resource applied to
 * objects: validation with Kubernetes' messages, defaulting, and the
 * unknown fields the caller prunes (or rejects under fieldValidation=Strict).
 *
 * Messages follow the API server's (kube-openapi's validator as the
 * apiextensions server reports it), e.g.
 *   spec.replicas: Invalid value: 0: spec.replicas in body should be greater
 *   than or equal to 1
 * This file only reads schemas and objects; it does not know about CRD
 * objects, the store or the registry's tables. */
#include "object/crd_schema.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#define PATH_MAX_LEN 1024

void crd_result_add(validation_result_t *res, const char *field, const char *reason,
                    const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    validation_error_t *e = realloc(res->errors, (res->count + 1) * sizeof *e);
    if (!e) return;
    res->errors = e;
    e = &res->errors[res->count];
    e->field = strdup(field);
    e->reason = strdup(reason);
    e->message = strdup(msg);
    if (!e->field || !e->reason || !e->message) {
        free(e->field);
        free(e->reason);
        free(e->message);
        return;
    }
    res->count++;
    if (strcmp(reason, "FieldValueUnknown") == 0) res->unknown_fields++;
}

/* ---- small helpers --------------------------------------------------------- */

static int flag(const json_t *s, const char *name)
{
    return json_is_true(json_object_get(s, name));
}

static const char *type_of(const json_t *s)
{
    return json_string_value(json_object_get(s, "type"));
}

/* A value as Go's %v-ish rendering in "Invalid value: X" (strings quoted). */
static void value_repr(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        snprintf(buf, size, "\"%s\"", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, size, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_null(v)) {
        snprintf(buf, size, "\"null\"");
    } else {
        snprintf(buf, size, "\"%s\"", validation_json_type(v));
    }
}

static void num_repr(const json_t *v, char *buf, size_t size)
{
    double d = json_number_value(v);
    if (json_is_integer(v) || (d == floor(d) && fabs(d) < 1e15))
        snprintf(buf, size, "%lld", (long long)d);
    else
        snprintf(buf, size, "%g", d);
}

/* ---- validation ------------------------------------------------------------ */

typedef struct vctx {
    char path[PATH_MAX_LEN];
    size_t len;
    int mode;
    validation_result_t *res;
    size_t added;
} vctx_t;

static size_t push(vctx_t *c, const char *fmt, const char *name)
{
    size_t saved = c->len;
    int n = snprintf(c->path + c->len, sizeof c->path - c->len, fmt, c->len ? "." : "", name);
    if (n > 0 && c->len + (size_t)n < sizeof c->path) c->len += (size_t)n;
    c->path[c->len] = '\0';
    return saved;
}

static size_t push_field(vctx_t *c, const char *name)
{
    return push(c, "%s%s", name);
}

static size_t push_key(vctx_t *c, const char *key)
{
    size_t saved = c->len;
    int n = snprintf(c->path + c->len, sizeof c->path - c->len, "[%s]", key);
    if (n > 0 && c->len + (size_t)n < sizeof c->path) c->len += (size_t)n;
    c->path[c->len] = '\0';
    return saved;
}

static size_t push_index(vctx_t *c, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof idx, "%zu", i);
    return push_key(c, idx);
}

static void pop(vctx_t *c, size_t saved)
{
    c->len = saved;
    c->path[saved] = '\0';
}

/* One error at the current path. */
static void __attribute__((format(printf, 3, 4))) err(vctx_t *c, const char *reason,
                                                      const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t before = c->res->count;
    crd_result_add(c->res, c->path, reason, "%s", msg);
    c->added += c->res->count - before;
}

/* JSON Schema patterns are ECMA 262; POSIX extended covers what CRDs use
 * once the Perl classes are spelled out. */
static int pattern_compile(const char *pattern, regex_t *re)
{
    char conv[2048];
    size_t o = 0;
    for (const char *p = pattern; *p && o + 16 < sizeof conv; p++) {
        if (*p == '\\' && p[1]) {
            const char *rep = NULL;
            switch (p[1]) {
            case 'd': rep = "[0-9]"; break;
            case 'D': rep = "[^0-9]"; break;
            case 's': rep = "[[:space:]]"; break;
            case 'S': rep = "[^[:space:]]"; break;
            case 'w': rep = "[[:alnum:]_]"; break;
            case 'W': rep = "[^[:alnum:]_]"; break;
            }
            if (rep) {
                size_t n = strlen(rep);
                memcpy(conv + o, rep, n);
                o += n;
                p++;
                continue;
            }
            conv[o++] = *p++;
            conv[o++] = *p;
            continue;
        }
        conv[o++] = *p;
    }
    conv[o] = '\0';
    return regcomp(re, conv, REG_EXTENDED | REG_NOSUB);
}

/* Compiled patterns, kept: the same few patterns are checked on every
 * write, and compiling costs more than matching. Starts over when full. */
#define PATTERN_CACHE 64
static struct {
    char *pattern;
    regex_t re;
    int ok;
} g_patterns[PATTERN_CACHE];
static size_t g_npatterns;

void crd_schema_cache_clear(void)
{
    for (size_t i = 0; i < g_npatterns; i++) {
        if (g_patterns[i].ok) regfree(&g_patterns[i].re);
        free(g_patterns[i].pattern);
    }
    g_npatterns = 0;
}

static int pattern_match(const char *pattern, const char *s, int *bad)
{
    size_t i;
    for (i = 0; i < g_npatterns; i++)
        if (strcmp(g_patterns[i].pattern, pattern) == 0) break;
    if (i == g_npatterns) {
        if (g_npatterns == PATTERN_CACHE) crd_schema_cache_clear();
        i = g_npatterns;
        g_patterns[i].pattern = strdup(pattern);
        if (!g_patterns[i].pattern) {
            *bad = 1;
            return 1;
        }
        g_patterns[i].ok = pattern_compile(pattern, &g_patterns[i].re) == 0;
        g_npatterns++;
    }
    if (!g_patterns[i].ok) {
        *bad = 1;
        return 1;
    }
    return regexec(&g_patterns[i].re, s, 0, NULL, 0) == 0;
}

static int type_ok(const json_t *s, const json_t *v)
{
    if (flag(s, "x-kubernetes-int-or-string")) return json_is_integer(v) || json_is_string(v);
    const char *t = type_of(s);
    if (!t || !*t) return 1;
    if (strcmp(t, "object") == 0) return json_is_object(v);
    if (strcmp(t, "array") == 0) return json_is_array(v);
    if (strcmp(t, "string") == 0) return json_is_string(v);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    if (strcmp(t, "number") == 0) return json_is_number(v);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
    return 1;
}

static void walk(vctx_t *c, const json_t *s, const json_t *v, int top);
static void check_combinators(vctx_t *c, const json_t *s, const json_t *v);

static void check_enum(vctx_t *c, const json_t *s, const json_t *v)
{
    const json_t *en = json_object_get(s, "enum");
    if (!json_is_array(en)) return;
    size_t i;
    json_t *e;
    json_array_foreach(en, i, e) if (json_equal(e, (json_t *)v)) return;
    char val[512], list[1024] = "";
    size_t off = 0;
    value_repr(v, val, sizeof val);
    json_array_foreach(en, i, e)
    {
        char one[256];
        value_repr(e, one, sizeof one);
        int n = snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", one);
        if (n > 0 && off + (size_t)n < sizeof list) off += (size_t)n;
    }
    err(c, "FieldValueNotSupported", "Unsupported value: %s: supported values: %s", val, list);
}

static void check_number(vctx_t *c, const json_t *s, const json_t *v)
{
    double d = json_number_value(v);
    char val[64], lim[64];
    num_repr(v, val, sizeof val);
    const json_t *min = json_object_get(s, "minimum"), *max = json_object_get(s, "maximum");
    if (json_is_number(min)) {
        int excl = flag(s, "exclusiveMinimum");
        double m = json_number_value(min);
        num_repr(min, lim, sizeof lim);
        if (excl ? d <= m : d < m)
            err(c, "FieldValueInvalid", "Invalid value: %s: %s in body should be greater than %s%s",
                val, c->path, excl ? "" : "or equal to ", lim);
    }
    if (json_is_number(max)) {
        int excl = flag(s, "exclusiveMaximum");
        double m = json_number_value(max);
        num_repr(max, lim, sizeof lim);
        if (excl ? d >= m : d > m)
            err(c, "FieldValueInvalid", "Invalid value: %s: %s in body should be less than %s%s",
                val, c->path, excl ? "" : "or equal to ", lim);
    }
    const json_t *mo = json_object_get(s, "multipleOf");
    if (json_is_number(mo) && json_number_value(mo) > 0) {
        double q = d / json_number_value(mo);
        if (q != floor(q)) {
            num_repr(mo, lim, sizeof lim);
            err(c, "FieldValueInvalid", "Invalid value: %s: %s in body should be a multiple of %s",
                val, c->path, lim);
        }
    }
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;
    return 1;
}

/* The string formats Kubernetes checks for CRDs (kube-openapi's strfmt);
 * unknown formats pass. */
static int format_ok(const char *fmt, const char *s)
{
    size_t n = strlen(s);
    if (strcmp(fmt, "date") == 0) {
        int y, m, d;
        char end;
        return n == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &end) == 3 && m >= 1 && m <= 12 &&
               d >= 1 && d <= 31;
    }
    if (strcmp(fmt, "date-time") == 0) {
        int y, mo, d, h, mi, sec;
        if (n < 20 || sscanf(s, "%4d-%2d-%2d", &y, &mo, &d) != 3 || (s[10] != 'T' && s[10] != 't') ||
            sscanf(s + 11, "%2d:%2d:%2d", &h, &mi, &sec) != 3 || s[4] != '-' || s[7] != '-' ||
            s[13] != ':' || s[16] != ':')
            return 0;
        const char *p = s + 19;
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p)) return 0;
            while (isdigit((unsigned char)*p)) p++;
        }
        if (*p == 'Z' || *p == 'z') return p[1] == '\0';
        return (*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
               isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
               isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]);
    }
    if (strcmp(fmt, "uuid") == 0)
        return n == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
               all_hex(s, 8) && all_hex(s + 9, 4) && all_hex(s + 14, 4) && all_hex(s + 19, 4) &&
               all_hex(s + 24, 12);
    if (strcmp(fmt, "ipv4") == 0) {
        struct in_addr a;
        return inet_pton(AF_INET, s, &a) == 1;
    }
    if (strcmp(fmt, "ipv6") == 0) {
        struct in6_addr a;
        return inet_pton(AF_INET6, s, &a) == 1;
    }
    if (strcmp(fmt, "cidr") == 0) {
        const char *slash = strchr(s, '/');
        char ip[64];
        if (!slash || (size_t)(slash - s) >= sizeof ip) return 0;
        memcpy(ip, s, (size_t)(slash - s));
        ip[slash - s] = '\0';
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1) return 0;
        struct in6_addr a6;
        struct in_addr a4;
        if (inet_pton(AF_INET, ip, &a4) == 1) return bits >= 0 && bits <= 32;
        return inet_pton(AF_INET6, ip, &a6) == 1 && bits >= 0 && bits <= 128;
    }
    if (strcmp(fmt, "byte") == 0) {
        if (n % 4) return 0;
        for (size_t i = 0; i < n; i++) {
            char ch = s[i];
            if (!(isalnum((unsigned char)ch) || ch == '+' || ch == '/' || (ch == '=' && i >= n - 2)))
                return 0;
        }
        return 1;
    }
    if (strcmp(fmt, "email") == 0) {
        const char *at = strchr(s, '@');
        return at && at > s && at[1] && !strchr(at + 1, '@');
    }
    return 1;
}

static void check_string(vctx_t *c, const json_t *s, const json_t *v)
{
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (fmt && !format_ok(fmt, json_string_value(v)))
        err(c, "FieldValueInvalid", "Invalid value: \"%s\": %s in body must be of type %s: \"%s\"",
            json_string_value(v), c->path, fmt, json_string_value(v));
    const char *str = json_string_value(v);
    size_t len = utf8_len(str);
    const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
    if (json_is_integer(mn) && (json_int_t)len < json_integer_value(mn))
        err(c, "FieldValueInvalid", "Invalid value: \"%s\": %s in body should be at least %lld chars long",
            str, c->path, (long long)json_integer_value(mn));
    if (json_is_integer(mx) && (json_int_t)len > json_integer_value(mx))
        err(c, "FieldValueTooLong", "Too long: may not be more than %lld bytes",
            (long long)json_integer_value(mx));
    const char *pat = json_string_value(json_object_get(s, "pattern"));
    if (pat) {
        int bad = 0;
        if (!pattern_match(pat, str, &bad))
            err(c, "FieldValueInvalid", "Invalid value: \"%s\": %s in body should match '%s'", str,
                c->path, pat);
    }
}

static void check_array(vctx_t *c, const json_t *s, const json_t *v)
{
    size_t n = json_array_size(v);
    const json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
    if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
        err(c, "FieldValueInvalid", "Invalid value: %zu: %s in body should have at least %lld items",
            n, c->path, (long long)json_integer_value(mn));
    if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
        err(c, "FieldValueTooMany", "Too many: %zu: must have at most %lld items", n,
            (long long)json_integer_value(mx));
    const char *lt = json_string_value(json_object_get(s, "x-kubernetes-list-type"));
    if (lt && strcmp(lt, "set") == 0) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (json_equal(json_array_get(v, i), json_array_get(v, j))) {
                    size_t saved = push_index(c, i);
                    char val[256];
                    value_repr(json_array_get(v, i), val, sizeof val);
                    err(c, "FieldValueDuplicate", "Duplicate value: %s", val);
                    pop(c, saved);
                }
    }
    const json_t *keys = json_object_get(s, "x-kubernetes-list-map-keys");
    if (lt && strcmp(lt, "map") == 0 && json_array_size(keys)) {
        /* entries of a list map are told apart by their keys */
        for (size_t i = 0; i < n; i++) {
            const json_t *a = json_array_get(v, i);
            for (size_t j = 0; j < i; j++) {
                const json_t *b = json_array_get(v, j);
                int same = 1;
                size_t k;
                json_t *key;
                json_array_foreach(keys, k, key)
                {
                    const char *kn = json_string_value(key);
                    const json_t *x = kn ? json_object_get(a, kn) : NULL;
                    const json_t *y = kn ? json_object_get(b, kn) : NULL;
                    if (!skiff_json_same(x, y)) same = 0;
                }
                if (!same) continue;
                /* Go's rendering of the key map, as Kubernetes prints it */
                char val[512];
                size_t off = (size_t)snprintf(val, sizeof val, "map[string]interface {}{");
                json_array_foreach(keys, k, key)
                {
                    char one[256];
                    value_repr(json_object_get(a, json_string_value(key) ?: ""), one, sizeof one);
                    int m = snprintf(val + off, sizeof val - off, "%s\"%s\":%s", k ? ", " : "",
                                     json_string_value(key) ?: "", one);
                    if (m > 0 && off + (size_t)m < sizeof val) off += (size_t)m;
                }
                snprintf(val + off, sizeof val - off, "}");
                size_t saved = push_index(c, i);
                err(c, "FieldValueDuplicate", "Duplicate value: %s", val);
                pop(c, saved);
                break;
            }
        }
    }
    const json_t *items = json_object_get(s, "items");
    if (!json_is_object(items)) return;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        size_t saved = push_index(c, i);
        walk(c, items, e, 0);
        pop(c, saved);
    }
}

static int preserves(const json_t *s)
{
    return flag(s, "x-kubernetes-preserve-unknown-fields");
}

static void check_object(vctx_t *c, const json_t *s, const json_t *v, int top)
{
    const json_t *props = json_object_get(s, "properties");
    const json_t *addl = json_object_get(s, "additionalProperties");
    int embedded = flag(s, "x-kubernetes-embedded-resource");
    const json_t *req = json_object_get(s, "required");
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r)
    {
        const char *name = json_string_value(r);
        if (!name || json_object_get(v, name)) continue;
        size_t saved = push_field(c, name);
        err(c, "FieldValueRequired", "Required value");
        pop(c, saved);
    }
    if (embedded) {
        /* an embedded object says what it is */
        static const char *const need[] = {"apiVersion", "kind"};
        for (size_t n = 0; n < 2; n++) {
            if (json_string_length(json_object_get(v, need[n]))) continue;
            size_t saved = push_field(c, need[n]);
            err(c, "FieldValueRequired", "Required value: must not be empty");
            pop(c, saved);
        }
    }
    const json_t *mn = json_object_get(s, "minProperties"), *mx = json_object_get(s, "maxProperties");
    size_t np = json_object_size(v);
    if (json_is_integer(mn) && (json_int_t)np < json_integer_value(mn))
        err(c, "FieldValueInvalid", "Invalid value: %zu: %s in body should have at least %lld properties",
            np, c->path, (long long)json_integer_value(mn));
    if (json_is_integer(mx) && (json_int_t)np > json_integer_value(mx))
        err(c, "FieldValueTooMany", "Too many: %zu: must have at most %lld items", np,
            (long long)json_integer_value(mx));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        if ((top || embedded) && (!strcmp(key, "apiVersion") || !strcmp(key, "kind") ||
                                  !strcmp(key, "metadata"))) {
            if (top) continue;
            /* embedded resources: apiVersion and kind are strings, metadata an object */
            const json_t *ps = json_object_get(props, key);
            if (ps) {
                size_t saved = push_field(c, key);
                walk(c, ps, val, 0);
                pop(c, saved);
            }
            continue;
        }
        const json_t *ps = json_object_get(props, key);
        if (json_is_object(ps)) {
            size_t saved = push_field(c, key);
            walk(c, ps, val, 0);
            pop(c, saved);
        } else if (json_is_object(addl)) {
            size_t saved = push_key(c, key);
            walk(c, addl, val, 0);
            pop(c, saved);
        } else if (json_is_true(addl) || preserves(s)) {
            continue;
        } else if (c->mode != VALIDATE_IGNORE_UNKNOWN) {
            size_t saved = push_field(c, key);
            err(c, "FieldValueUnknown", "unknown field \"%s\"", c->path);
            pop(c, saved);
        }
    }
}

/* How many errors v has against a sub-schema (of anyOf, oneOf, not);
 * fields unknown to the sub-schema do not count: only the structural
 * schema decides what is pruned. */
static size_t sub_errors(vctx_t *c, const json_t *sub, const json_t *v)
{
    validation_result_t scratch;
    memset(&scratch, 0, sizeof scratch);
    vctx_t t = *c;
    t.res = &scratch;
    t.added = 0;
    t.mode = VALIDATE_IGNORE_UNKNOWN;
    walk(&t, sub, v, 0);
    size_t n = scratch.count;
    validation_result_free(&scratch);
    return n;
}

static void check_combinators(vctx_t *c, const json_t *s, const json_t *v)
{
    char val[256];
    size_t i;
    json_t *sub;
    json_array_foreach(json_object_get(s, "allOf"), i, sub)
    {
        int mode = c->mode;
        c->mode = VALIDATE_IGNORE_UNKNOWN;
        walk(c, sub, v, 0);
        c->mode = mode;
    }
    const json_t *any = json_object_get(s, "anyOf");
    if (json_array_size(any)) {
        int ok = 0;
        json_array_foreach(any, i, sub) if (!ok && sub_errors(c, sub, v) == 0) ok = 1;
        if (!ok) {
            value_repr(v, val, sizeof val);
            err(c, "FieldValueInvalid", "Invalid value: %s: %s in body must validate at least one schema (anyOf)",
                val, c->path);
        }
    }
    const json_t *one = json_object_get(s, "oneOf");
    if (json_array_size(one)) {
        size_t passing = 0;
        json_array_foreach(one, i, sub) passing += sub_errors(c, sub, v) == 0;
        if (passing != 1) {
            value_repr(v, val, sizeof val);
            err(c, "FieldValueInvalid", "Invalid value: %s: %s in body must validate one and only one schema (oneOf)",
                val, c->path);
        }
    }
    const json_t *not = json_object_get(s, "not");
    if (json_is_object(not) && sub_errors(c, not, v) == 0) {
        value_repr(v, val, sizeof val);
        err(c, "FieldValueInvalid", "Invalid value: %s: %s in body must not validate the schema (not)",
            val, c->path);
    }
}

static void walk(vctx_t *c, const json_t *s, const json_t *v, int top)
{
    if (!json_is_object(s)) return;
    if (json_is_null(v)) {
        if (flag(s, "nullable")) return;
        const char *t = type_of(s);
        if (t && *t)
            err(c, "FieldValueTypeInvalid", "Invalid value: \"null\": %s in body must be of type %s: \"null\"",
                c->path, t);
        return;
    }
    if (!type_ok(s, v)) {
        const char *t = flag(s, "x-kubernetes-int-or-string") ? "integer,string" : type_of(s);
        err(c, "FieldValueTypeInvalid", "Invalid value: \"%s\": %s in body must be of type %s: \"%s\"",
            validation_json_type(v), c->path, t, validation_json_type(v));
        return;
    }
    check_enum(c, s, v);
    if (json_is_number(v)) check_number(c, s, v);
    else if (json_is_string(v)) check_string(c, s, v);
    else if (json_is_array(v)) check_array(c, s, v);
    else if (json_is_object(v)) check_object(c, s, v, top);
    check_combinators(c, s, v);
}

size_t crd_schema_validate(const json_t *schema, const json_t *obj, int mode,
                           validation_result_t *res)
{
    if (!json_is_object(schema) || !res) return 0;
    vctx_t c;
    memset(&c, 0, sizeof c);
    c.mode = mode;
    c.res = res;
    walk(&c, schema, obj, 1);
    return c.added;
}

/* ---- defaulting ------------------------------------------------------------ */

static void default_walk(const json_t *s, json_t *v, int top)
{
    if (!json_is_object(s)) return;
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties");
        const char *key;
        json_t *ps;
        json_object_foreach((json_t *)props, key, ps)
        {
            if (top && (!strcmp(key, "apiVersion") || !strcmp(key, "kind") || !strcmp(key, "metadata")))
                continue;
            json_t *cur = json_object_get(v, key);
            const json_t *def = json_object_get(ps, "default");
            if (cur && json_is_null(cur) && !flag(ps, "nullable")) {
                if (def) json_object_set_new(v, key, skiff_json_copy(def));
                else json_object_del(v, key);
                cur = json_object_get(v, key);
            } else if (!cur && def) {
                json_object_set_new(v, key, skiff_json_copy(def));
                cur = json_object_get(v, key);
            }
            if (cur) default_walk(ps, cur, 0);
        }
        const json_t *addl = json_object_get(s, "additionalProperties");
        if (json_is_object(addl)) {
            json_t *val;
            void *tmp;
            json_object_foreach_safe(v, tmp, key, val)
            {
                if (json_object_get(props, key)) continue;
                default_walk(addl, val, 0);
            }
        }
    } else if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items");
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) default_walk(items, e, 0);
    }
}

void crd_schema_default(const json_t *schema, json_t *obj)
{
    default_walk(schema, obj, 1);
}

int crd_field_selectable(const crd_version_t *v, const char *path)
{
    if (strcmp(path, "metadata.name") == 0 || strcmp(path, "metadata.namespace") == 0) return 1;
    size_t i;
    json_t *f;
    json_array_foreach(v ? v->selectable_fields : NULL, i, f)
    {
        const char *jp = json_string_value(json_object_get(f, "jsonPath"));
        if (jp && jp[0] == '.' && strcmp(jp + 1, path) == 0) return 1;
    }
    return 0;
}

int crd_schema_has_defaults(const json_t *schema)
{
    if (!json_is_object(schema)) return 0;
    if (json_object_get(schema, "default")) return 1;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(schema, "properties"), key, v)
        if (crd_schema_has_defaults(v)) return 1;
    return crd_schema_has_defaults(json_object_get(schema, "items")) ||
           crd_schema_has_defaults(json_object_get(schema, "additionalProperties"));
}

/* ---- structural schema checks ---------------------------------------------- */

static void check_walk(const json_t *s, char *path, size_t len, size_t cap, validation_result_t *res,
                       int top, int under_preserve)
{
    if (!json_is_object(s)) {
        crd_result_add(res, path, "FieldValueInvalid", "Invalid value: \"%s\": must be a schema object",
                       validation_json_type(s));
        return;
    }
    const char *t = type_of(s);
    int ios = flag(s, "x-kubernetes-int-or-string");
    int pres = preserves(s);
    static const char *const known_types[] = {"object", "array", "string", "integer", "number",
                                              "boolean", NULL};
    if (t && *t) {
        int ok = 0;
        for (size_t i = 0; known_types[i]; i++) ok |= strcmp(t, known_types[i]) == 0;
        if (!ok) {
            size_t l = len;
            snprintf(path + len, cap - len, ".type");
            crd_result_add(res, path, "FieldValueNotSupported",
                           "Unsupported value: \"%s\": supported values: \"array\", \"boolean\", "
                           "\"integer\", \"number\", \"object\", \"string\"",
                           t);
            path[l] = '\0';
        }
    } else if (!ios && !pres && !under_preserve) {
        size_t l = len;
        snprintf(path + len, cap - len, ".type");
        crd_result_add(res, path, "FieldValueRequired",
                       top ? "Required value: must not be empty at the root"
                           : "Required value: must not be empty for specified object fields");
        path[l] = '\0';
    }
    if (top && t && strcmp(t, "object") != 0) {
        size_t l = len;
        snprintf(path + len, cap - len, ".type");
        crd_result_add(res, path, "FieldValueInvalid", "Invalid value: \"%s\": must be object at the root", t);
        path[l] = '\0';
    }
    const json_t *props = json_object_get(s, "properties");
    const json_t *addl = json_object_get(s, "additionalProperties");
    if (json_object_size(props) && json_is_object(addl)) {
        size_t l = len;
        snprintf(path + len, cap - len, ".additionalProperties");
        crd_result_add(res, path, "Forbidden",
                       "Forbidden: additionalProperties and properties are mutual exclusive");
        path[l] = '\0';
    }
    const char *key;
    json_t *ps;
    json_object_foreach((json_t *)props, key, ps)
    {
        size_t l = len;
        int n = snprintf(path + len, cap - len, ".properties[%s]", key);
        if (n > 0 && len + (size_t)n < cap)
            check_walk(ps, path, len + (size_t)n, cap, res, 0, pres);
        path[l] = '\0';
    }
    if (json_is_object(addl)) {
        size_t l = len;
        int n = snprintf(path + len, cap - len, ".additionalProperties");
        if (n > 0 && len + (size_t)n < cap)
            check_walk(addl, path, len + (size_t)n, cap, res, 0, pres);
        path[l] = '\0';
    }
    const json_t *items = json_object_get(s, "items");
    if (t && strcmp(t, "array") == 0 && !json_is_object(items)) {
        size_t l = len;
        snprintf(path + len, cap - len, ".items");
        crd_result_add(res, path, "FieldValueRequired",
                       "Required value: must be specified");
        path[l] = '\0';
    } else if (json_is_object(items)) {
        size_t l = len;
        int n = snprintf(path + len, cap - len, ".items");
        if (n > 0 && len + (size_t)n < cap)
            check_walk(items, path, len + (size_t)n, cap, res, 0, pres);
        path[l] = '\0';
    }
    const char *pat = json_string_value(json_object_get(s, "pattern"));
    if (pat) {
        int bad = 0;
        pattern_match(pat, "", &bad);
        if (bad) {
            size_t l = len;
            snprintf(path + len, cap - len, ".pattern");
            crd_result_add(res, path, "FieldValueInvalid",
                           "Invalid value: \"%s\": must be a valid regular expression", pat);
            path[l] = '\0';
        }
    }
}

void crd_schema_check(const json_t *schema, const char *path, validation_result_t *res)
{
    char buf[PATH_MAX_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    if (!json_is_object(schema)) {
        crd_result_add(res, buf, "FieldValueRequired",
                       "Required value: schemas are required");
        return;
    }
    check_walk(schema, buf, strlen(buf), sizeof buf, res, 1, 0);
}

/* ---- simple paths ------------------------------------------------------------ */

json_t *crd_path_get(const json_t *obj, const char *path)
{
    const json_t *cur = obj;
    const char *p = path;
    char key[256];
    while (cur && p && *p) {
        if (*p == '.') {
            p++;
            size_t n = strcspn(p, ".[");
            if (n == 0 || n >= sizeof key) return NULL;
            memcpy(key, p, n);
            key[n] = '\0';
            cur = json_object_get(cur, key);
            p += n;
        } else if (*p == '[') {
            char *end;
            long idx = strtol(p + 1, &end, 10);
            if (*end != ']' || idx < 0) return NULL;
            cur = json_array_get(cur, (size_t)idx);
            p = end + 1;
        } else {
            return NULL;
        }
    }
    return (json_t *)cur;
}

int crd_path_set(json_t *obj, const char *path, json_t *value)
{
    json_t *cur = obj;
    const char *p = path;
    char key[256];
    if (!p || *p != '.') goto fail;
    for (;;) {
        p++;
        size_t n = strcspn(p, ".");
        if (n == 0 || n >= sizeof key || !json_is_object(cur)) goto fail;
        memcpy(key, p, n);
        key[n] = '\0';
        p += n;
        if (!*p) return json_object_set_new(cur, key, value) == 0 ? 0 : -1;
        json_t *next = json_object_get(cur, key);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(cur, key, next);
        }
        cur = next;
    }
fail:
    json_decref(value);
    return -1;
}
