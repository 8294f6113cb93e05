/* core/object/validate.c - check an object against its kind's schema and rules.
 *
 * Two passes over a JSON object: a walk against the schema (JSON types,
 * required fields, enum values, quantities, int-or-string, times, base64,
 * unknown fields), then the semantic rules users hit most, as the
 * Kubernetes API server reports them (names, labels, containers, ports,
 * selectors against template labels, Job restart policy, replicas).
 * Field paths use Kubernetes notation: spec.containers[0].image,
 * metadata.labels[app]. Runs on every write: the path lives in a stack
 * buffer and memory is only allocated for errors. This file does not
 * default or modify objects. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <skiff/cron.h>
#include <skiff/errors.h>

#include "object/crd_schema.h"
#include "object/registry.h"

#define PATH_MAX_LEN 1024

typedef struct vctx {
    char path[PATH_MAX_LEN];
    size_t len;
    int mode;
    int in_status; /* below .status: required fields are the writer's business */
    validation_result_t *res;
    size_t cap;
} vctx_t;

/* ---- path ---------------------------------------------------------------- */

/* Appends are plain copies (no printf): the path is rebuilt for every
 * field of every object on every write. A path longer than the buffer is
 * cut, never overrun. */
static void path_append(vctx_t *c, const char *s, size_t n)
{
    if (c->len + n >= sizeof(c->path))
        n = sizeof(c->path) - 1 - c->len;
    memcpy(c->path + c->len, s, n);
    c->len += n;
    c->path[c->len] = '\0';
}

static size_t path_push_field(vctx_t *c, const char *name)
{
    size_t saved = c->len;
    if (c->len)
        path_append(c, ".", 1);
    path_append(c, name, strlen(name));
    return saved;
}

static size_t path_push_index(vctx_t *c, size_t i)
{
    size_t saved = c->len;
    char buf[24];
    size_t n = sizeof(buf);
    buf[--n] = ']';
    do {
        buf[--n] = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    buf[--n] = '[';
    path_append(c, buf + n, sizeof(buf) - n);
    return saved;
}

static size_t path_push_key(vctx_t *c, const char *key)
{
    size_t saved = c->len;
    path_append(c, "[", 1);
    path_append(c, key, strlen(key));
    path_append(c, "]", 1);
    return saved;
}

static void path_pop(vctx_t *c, size_t saved)
{
    c->len = saved;
    c->path[saved] = '\0';
}

/* ---- errors -------------------------------------------------------------- */

static void add_error(vctx_t *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(vctx_t *c, const char *reason, const char *fmt, ...)
{
    validation_result_t *r = c->res;
    if (r->count == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 4;
        validation_error_t *ne = realloc(r->errors, ncap * sizeof(*ne));
        if (!ne)
            return;
        r->errors = ne;
        c->cap = ncap;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    validation_error_t *e = &r->errors[r->count];
    e->field = strdup(c->path);
    e->reason = strdup(reason);
    e->message = strdup(msg);
    if (!e->field || !e->reason || !e->message) {
        free(e->field);
        free(e->reason);
        free(e->message);
        return;
    }
    r->count++;
    if (strcmp(reason, "FieldValueUnknown") == 0)
        r->unknown_fields++;
}

/* A value as Kubernetes quotes it in messages: strings quoted, numbers
 * and booleans bare, long values cut. */
static void show_value(const json_t *v, char *buf, size_t n)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strlen(s) > 100)
            snprintf(buf, n, "\"%.100s...\"", s);
        else
            snprintf(buf, n, "\"%s\"", s);
    } else if (json_is_integer(v)) {
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, n, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_object(v)) {
        snprintf(buf, n, "\"object\"");
    } else if (json_is_array(v)) {
        snprintf(buf, n, "\"array\"");
    } else {
        snprintf(buf, n, "null");
    }
}

const char *validation_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static void type_error(vctx_t *c, const json_t *v, const char *want)
{
    char shown[160];
    show_value(v, shown, sizeof(shown));
    add_error(c, "FieldValueTypeInvalid", "Invalid value: %s: %s in body must be of type %s: \"%s\"",
              shown, c->path, want, validation_json_type(v));
}

static void invalid(vctx_t *c, const json_t *v, const char *detail)
{
    char shown[160];
    show_value(v, shown, sizeof(shown));
    add_error(c, "FieldValueInvalid", "Invalid value: %s: %s", shown, detail);
}

/* ---- scalar formats -------------------------------------------------------- */

/* resource.Quantity: sign, decimal number, then a binary (Ki..Ei) or
 * decimal (n u m k M G T P E) suffix or an exponent (e3, E-2). */
/* Value of a quantity in base units (cores, bytes), as a double: precise
 * enough to compare requests with limits. */
static int quantity_value(const char *s, double *out)
{
    if (!registry_quantity_valid(s))
        return -1;
    char *end;
    double v = strtod(s, &end);
    static const struct { const char *suffix; double mult; } units[] = {
        { "Ki", 1024.0 }, { "Mi", 1048576.0 }, { "Gi", 1073741824.0 },
        { "Ti", 1099511627776.0 }, { "Pi", 1125899906842624.0 }, { "Ei", 1152921504606846976.0 },
        { "n", 1e-9 }, { "u", 1e-6 }, { "m", 1e-3 }, { "k", 1e3 }, { "M", 1e6 },
        { "G", 1e9 }, { "T", 1e12 }, { "P", 1e15 }, { "E", 1e18 },
    };
    /* strtod already consumed an exponent ("1e3"); what is left is a suffix. */
    for (size_t i = 0; *end && i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            v *= units[i].mult;
            break;
        }
    }
    *out = v;
    return 0;
}

int registry_quantity_parse(const json_t *q, double *out)
{
    if (!q || !out)
        return SKIFF_EINVAL;
    if (json_is_number(q)) {
        *out = json_number_value(q);
        return 0;
    }
    if (!json_is_string(q) || quantity_value(json_string_value(q), out) < 0)
        return SKIFF_EINVAL;
    return 0;
}

int registry_quantity_valid(const char *s)
{
    if (!s || !*s)
        return 0;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    int digits = 0, dot = 0;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.' && !dot)
            dot = 1;
        else
            break;
    }
    if (!digits)
        return 0;
    if (!*p)
        return 1;
    static const char *const suffixes[] = { "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m",
                                            "k", "M", "G", "T", "P", "E" };
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (strcmp(p, suffixes[i]) == 0)
            return 1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (*p < '0' || *p > '9')
                return 0;
        return 1;
    }
    return 0;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* RFC 3339 date-time: 2006-01-02T15:04:05[.frac](Z|+07:00). */
static int valid_time(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (!s[i])
            return 0;
        if (shape[i] == 'd' ? !is_digit(s[i]) : (shape[i] == 'T' ? (s[i] != 'T' && s[i] != 't')
                                                                    : s[i] != shape[i]))
            return 0;
    }
    const char *p = s + sizeof(shape) - 1;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return 0;
        while (is_digit(*p))
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && !p[1])
        return 1;
    if ((*p == '+' || *p == '-') && is_digit(p[1]) && is_digit(p[2]) && p[3] == ':' &&
        is_digit(p[4]) && is_digit(p[5]) && !p[6])
        return 1;
    return 0;
}

/* Index of the first byte that is not valid standard base64, or -1. */
static long base64_error(const char *s)
{
    /* Line breaks are skipped, as Go's base64 decoder skips them. */
    size_t n = 0, pad = 0;
    for (size_t i = 0; s[i]; i++) {
        char ch = s[i];
        if (ch == '\r' || ch == '\n')
            continue;
        n++;
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || is_digit(ch) ||
                 ch == '+' || ch == '/';
        if (ch == '=') {
            pad++;
            if (pad > 2)
                return (long)i;
            continue;
        }
        if (!ok || pad)
            return (long)i;
    }
    if (n % 4)
        return (long)n; /* truncated input: the error is at its end */
    return -1;
}

/* ---- schema walk ----------------------------------------------------------- */

static void walk(vctx_t *c, const schema_type_t *t, const json_t *v);

static void check_enum(vctx_t *c, const schema_type_t *t, const json_t *v)
{
    const char *s = json_string_value(v);
    for (const char *const *e = t->enum_values; *e; e++)
        if (strcmp(*e, s) == 0)
            return;
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (const char *const *e = t->enum_values; *e && len < sizeof(list); e++) {
        if (!**e)
            continue; /* "" is accepted but not advertised */
        int n = snprintf(list + len, sizeof(list) - len, "%s\"%s\"", len ? ", " : "", *e);
        if (n > 0)
            len += (size_t)n;
    }
    char shown[160];
    show_value(v, shown, sizeof(shown));
    add_error(c, "FieldValueNotSupported", "Unsupported value: %s: supported values: %s", shown, list);
}

static void walk_object(vctx_t *c, const schema_type_t *t, const json_t *v)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        const schema_field_t *f = schema_field(t, key);
        if (!f) {
            if (c->mode != VALIDATE_IGNORE_UNKNOWN) {
                size_t saved = path_push_field(c, key);
                add_error(c, "FieldValueUnknown", "unknown field \"%s\"", c->path);
                path_pop(c, saved);
            }
            continue;
        }
        size_t saved = path_push_field(c, key);
        int was = c->in_status;
        if (c->len == 6 && strcmp(c->path, "status") == 0)
            c->in_status = 1;
        walk(c, f->type, val);
        c->in_status = was;
        path_pop(c, saved);
    }
    if (c->in_status)
        return;
    for (size_t i = 0; i < t->nfields; i++) {
        const schema_field_t *f = &t->fields[i];
        if (!f->required)
            continue;
        const json_t *fv = json_object_get(v, f->name);
        if (fv && !json_is_null(fv))
            continue;
        size_t saved = path_push_field(c, f->name);
        add_error(c, "FieldValueRequired", "Required value");
        path_pop(c, saved);
    }
}

static void walk(vctx_t *c, const schema_type_t *t, const json_t *v)
{
    if (!t || !v || json_is_null(v))
        return; /* null means absent, as in the Kubernetes decoder */
    switch (t->kind) {
    case SCHEMA_STRING:
        if (!json_is_string(v))
            type_error(c, v, "string");
        else if (t->enum_values)
            check_enum(c, t, v);
        break;
    case SCHEMA_INTEGER:
        /* 3.0 is refused as Go's decoder refuses it: readers of the stored
         * object use json_integer_value and would see 0. */
        if (!json_is_integer(v)) {
            type_error(c, v, "integer");
        } else if (t->format && strcmp(t->format, "int32") == 0) {
            json_int_t n = json_integer_value(v);
            if (n < -2147483648LL || n > 2147483647LL)
                invalid(c, v, "must fit in a 32-bit integer");
        }
        break;
    case SCHEMA_NUMBER:
        if (!json_is_number(v))
            type_error(c, v, "number");
        break;
    case SCHEMA_BOOLEAN:
        if (!json_is_boolean(v))
            type_error(c, v, "boolean");
        break;
    case SCHEMA_OBJECT:
        if (!json_is_object(v))
            type_error(c, v, "object");
        else
            walk_object(c, t, v);
        break;
    case SCHEMA_MAP:
        if (!json_is_object(v)) {
            type_error(c, v, "object");
        } else {
            const char *key;
            json_t *val;
            json_object_foreach((json_t *)v, key, val) {
                size_t saved = path_push_key(c, key);
                walk(c, t->elem, val);
                path_pop(c, saved);
            }
        }
        break;
    case SCHEMA_ARRAY:
        if (!json_is_array(v)) {
            type_error(c, v, "array");
        } else {
            size_t i;
            json_t *val;
            json_array_foreach(v, i, val) {
                size_t saved = path_push_index(c, i);
                walk(c, t->elem, val);
                path_pop(c, saved);
            }
        }
        break;
    case SCHEMA_ANY:
        break;
    case SCHEMA_INT_OR_STRING:
        if (!json_is_integer(v) && !json_is_string(v))
            type_error(c, v, "integer or string");
        break;
    case SCHEMA_QUANTITY:
        if (json_is_number(v))
            break;
        if (!json_is_string(v))
            type_error(c, v, "quantity (string or number)");
        else if (!registry_quantity_valid(json_string_value(v)))
            invalid(c, v, "quantities must match the regular expression "
                          "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
        break;
    case SCHEMA_TIME:
        if (!json_is_string(v))
            type_error(c, v, "string");
        else if (!valid_time(json_string_value(v)))
            invalid(c, v, "must be an RFC 3339 date-time (2006-01-02T15:04:05Z)");
        break;
    case SCHEMA_BYTES:
        if (!json_is_string(v)) {
            type_error(c, v, "string");
        } else {
            long at = base64_error(json_string_value(v));
            if (at >= 0) {
                char msg[64];
                snprintf(msg, sizeof(msg), "illegal base64 data at input byte %ld", at);
                invalid(c, v, msg);
            }
        }
        break;
    }
}

/* ---- names and labels ------------------------------------------------------ */

static int is_lower_alnum(char ch) { return (ch >= 'a' && ch <= 'z') || is_digit(ch); }
static int is_alnum(char ch) { return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z'); }

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? of at most 63 characters; dns1035 also
 * requires a leading letter. */
static int is_dns_label(const char *s, size_t n, int dns1035)
{
    if (n == 0 || n > 63)
        return 0;
    if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return 0;
    if (dns1035 && is_digit(s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* Kubernetes' IsDNS1123Subdomain: only the whole name is limited (253);
 * a part between dots may be longer than a label's 63, so that a
 * Deployment of a 63-character name can own "<name>-<hash>" ReplicaSets. */
static int is_subdomain_part(const char *s, size_t n)
{
    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

static int is_dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    const char *p = s;
    while (1) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!is_subdomain_part(p, len))
            return 0;
        if (!dot)
            return 1;
        p = dot + 1;
    }
}

static const char MSG_SUBDOMAIN[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char MSG_LABEL[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
static const char MSG_DNS1035[] =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/* NAME_PATH_SEGMENT: RBAC object names ("system:node-proxier") only have
 * to be usable as one URL path segment, as Kubernetes allows them. */
enum name_rule { NAME_SUBDOMAIN, NAME_LABEL, NAME_DNS1035, NAME_PATH_SEGMENT };

static void check_path_segment(vctx_t *c, const json_t *v, const char *s)
{
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        char msg[32];
        snprintf(msg, sizeof(msg), "may not be '%s'", s);
        invalid(c, v, msg);
    } else if (strchr(s, '/')) {
        invalid(c, v, "may not contain '/'");
    } else if (strchr(s, '%')) {
        invalid(c, v, "may not contain '%'");
    }
}

static void check_name(vctx_t *c, const json_t *v, enum name_rule rule)
{
    const char *s = json_string_value(v);
    if (!s)
        return; /* the schema walk reported the type */
    if (rule == NAME_PATH_SEGMENT) {
        check_path_segment(c, v, s);
        return;
    }
    size_t n = strlen(s);
    size_t max = rule == NAME_SUBDOMAIN ? 253 : 63;
    if (n > max) {
        char msg[64];
        snprintf(msg, sizeof(msg), "must be no more than %zu characters", max);
        invalid(c, v, msg);
        return;
    }
    int ok = rule == NAME_SUBDOMAIN ? is_dns_subdomain(s) : is_dns_label(s, n, rule == NAME_DNS1035);
    if (!ok)
        invalid(c, v, rule == NAME_SUBDOMAIN ? MSG_SUBDOMAIN : rule == NAME_LABEL ? MSG_LABEL : MSG_DNS1035);
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63 characters. */
static int is_qualified_part(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    if (!is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

static const char MSG_QUALIFIED[] =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/* Label and annotation keys: [prefix/]name, prefix a DNS subdomain. */
static void check_qualified_key(vctx_t *c, const char *key)
{
    json_t *kv = json_string(key);
    const char *slash = strchr(key, '/');
    const char *name = slash ? slash + 1 : key;
    if (slash) {
        size_t plen = (size_t)(slash - key);
        char prefix[256];
        if (plen == 0 || plen >= sizeof(prefix)) {
            invalid(c, kv, "prefix part must be non-empty and no more than 253 characters");
            goto out;
        }
        memcpy(prefix, key, plen);
        prefix[plen] = '\0';
        if (!is_dns_subdomain(prefix)) {
            char msg[sizeof(MSG_SUBDOMAIN) + 16];
            snprintf(msg, sizeof(msg), "prefix part %s", MSG_SUBDOMAIN);
            invalid(c, kv, msg);
            goto out;
        }
    }
    if (strlen(name) > 63)
        invalid(c, kv, "name part must be no more than 63 characters");
    else if (!is_qualified_part(name, strlen(name)))
        invalid(c, kv, MSG_QUALIFIED);
out:
    json_decref(kv);
}

/* metadata.labels / template labels: keys qualified names, values empty
 * or a qualified name part. */
static void check_labels(vctx_t *c, const json_t *labels, const char *prefix_path)
{
    if (!json_is_object(labels))
        return;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)labels, key, val) {
        size_t saved = path_push_field(c, prefix_path);
        check_qualified_key(c, key);
        path_pop(c, saved);
        const char *s = json_string_value(val);
        if (!s || !*s)
            continue;
        if (strlen(s) > 63 || !is_qualified_part(s, strlen(s))) {
            saved = path_push_field(c, prefix_path);
            path_push_key(c, key);
            invalid(c, val, strlen(s) > 63 ? "must be no more than 63 characters"
                                           : "a valid label must be an empty string or consist "
                                             "of alphanumeric characters, '-', '_' or '.', and "
                                             "must start and end with an alphanumeric "
                                             "character (e.g. 'MyValue',  or 'my_value',  or "
                                             "'12345', regex used for validation is "
                                             "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
            path_pop(c, saved);
        }
    }
}

static void check_annotations(vctx_t *c, const json_t *ann, const char *prefix_path)
{
    if (!json_is_object(ann))
        return;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)ann, key, val) {
        size_t saved = path_push_field(c, prefix_path);
        check_qualified_key(c, key);
        path_pop(c, saved);
    }
}

/* Metadata of the object itself (top == 1) or of a template. */
static void check_metadata(vctx_t *c, const json_t *meta, enum name_rule rule, int top)
{
    if (!json_is_object(meta))
        return;
    size_t saved = path_push_field(c, "metadata");
    const json_t *name = json_object_get(meta, "name");
    if (top && name && json_is_string(name) && json_string_length(name) > 0) {
        size_t s2 = path_push_field(c, "name");
        check_name(c, name, rule);
        path_pop(c, s2);
    }
    const json_t *ns = json_object_get(meta, "namespace");
    if (top && json_is_string(ns) && json_string_length(ns) > 0) {
        size_t s2 = path_push_field(c, "namespace");
        check_name(c, ns, NAME_LABEL);
        path_pop(c, s2);
    }
    check_labels(c, json_object_get(meta, "labels"), "labels");
    check_annotations(c, json_object_get(meta, "annotations"), "annotations");
    path_pop(c, saved);
}

/* ---- pods ---------------------------------------------------------------- */

static void check_port_number(vctx_t *c, const json_t *port, const char *field, int zero_ok)
{
    if (!json_is_integer(port))
        return;
    json_int_t n = json_integer_value(port);
    if (zero_ok && n == 0)
        return;
    if (n < 1 || n > 65535) {
        size_t saved = path_push_field(c, field);
        invalid(c, port, "must be between 1 and 65535, inclusive");
        path_pop(c, saved);
    }
}

/* Names a pod spec's containers refer to, collected once per pod. */
typedef struct pod_names {
    const json_t *volumes; /* spec.volumes */
    const json_t *claims;  /* StatefulSet volumeClaimTemplates: volumes too */
    const char *containers[64];
    size_t ncontainers;
} pod_names_t;

static int has_named(const json_t *list, const char *name, int in_metadata)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const json_t *holder = in_metadata ? json_object_get(v, "metadata") : v;
        const char *n = json_string_value(json_object_get(holder, "name"));
        if (n && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

static void report_duplicate(vctx_t *c, const json_t *v)
{
    char shown[160];
    show_value(v, shown, sizeof(shown));
    add_error(c, "FieldValueDuplicate", "Duplicate value: %s", shown);
}

/* IANA service names, which named container ports must be. */
static void check_port_name(vctx_t *c, const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || !*s)
        return;
    size_t n = strlen(s);
    int letter = 0;
    const char *why = NULL;
    for (size_t i = 0; i < n && !why; i++) {
        if (s[i] >= 'a' && s[i] <= 'z')
            letter = 1;
        else if (s[i] == '-' && i > 0 && s[i - 1] == '-')
            why = "must not contain consecutive hyphens";
        else if (s[i] != '-' && !is_digit(s[i]))
            why = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
    }
    if (!why && n > 15)
        why = "must be no more than 15 characters";
    if (!why && !letter)
        why = "must contain at least one letter (a-z)";
    if (!why && (s[0] == '-' || s[n - 1] == '-'))
        why = "must not begin or end with a hyphen";
    if (why)
        invalid(c, v, why);
}

/* requests[r] <= limits[r] for every resource given both. */
static void check_resources(vctx_t *c, const json_t *res)
{
    const json_t *req = json_object_get(res, "requests");
    const json_t *lim = json_object_get(res, "limits");
    if (!json_is_object(req) || !json_is_object(lim))
        return;
    const char *key;
    json_t *rv;
    json_object_foreach((json_t *)req, key, rv) {
        const json_t *lv = json_object_get(lim, key);
        double r, l;
        if (!lv || registry_quantity_parse(rv, &r) < 0 || registry_quantity_parse(lv, &l) < 0)
            continue;
        if (r <= l * (1 + 1e-12))
            continue;
        char lshown[96], msg[192];
        if (json_is_string(lv))
            snprintf(lshown, sizeof(lshown), "%s", json_string_value(lv));
        else
            show_value(lv, lshown, sizeof(lshown));
        snprintf(msg, sizeof(msg), "must be less than or equal to %s limit of %s", key, lshown);
        size_t saved = path_push_field(c, "resources");
        path_push_field(c, "requests");
        path_push_key(c, key);
        invalid(c, rv, msg);
        path_pop(c, saved);
    }
}

static void check_containers(vctx_t *c, const json_t *list, const char *field, pod_names_t *pn)
{
    size_t i;
    json_t *ct;
    json_array_foreach(list, i, ct) {
        if (!json_is_object(ct))
            continue;
        size_t s1 = path_push_field(c, field);
        path_push_index(c, i);
        const json_t *name = json_object_get(ct, "name");
        if (json_is_string(name)) {
            size_t s2 = path_push_field(c, "name");
            const char *n = json_string_value(name);
            int dup = 0;
            for (size_t k = 0; k < pn->ncontainers; k++)
                if (strcmp(pn->containers[k], n) == 0)
                    dup = 1;
            if (dup)
                report_duplicate(c, name);
            else if (*n)
                check_name(c, name, NAME_LABEL);
            if (pn->ncontainers < sizeof(pn->containers) / sizeof(pn->containers[0]))
                pn->containers[pn->ncontainers++] = n;
            path_pop(c, s2);
        }
        const json_t *image = json_object_get(ct, "image");
        if (!json_is_string(image) || json_string_length(image) == 0) {
            if (!image || json_is_null(image) || json_is_string(image)) {
                size_t s2 = path_push_field(c, "image");
                add_error(c, "FieldValueRequired", "Required value");
                path_pop(c, s2);
            }
        }
        size_t j;
        json_t *p;
        const json_t *ports = json_object_get(ct, "ports");
        json_array_foreach(ports, j, p) {
            size_t s2 = path_push_field(c, "ports");
            path_push_index(c, j);
            check_port_number(c, json_object_get(p, "containerPort"), "containerPort", 0);
            check_port_number(c, json_object_get(p, "hostPort"), "hostPort", 1);
            const json_t *pname = json_object_get(p, "name");
            if (json_is_string(pname) && json_string_length(pname)) {
                size_t s3 = path_push_field(c, "name");
                int dup = 0;
                for (size_t k = 0; k < j; k++) {
                    const char *o = json_string_value(json_object_get(json_array_get(ports, k), "name"));
                    if (o && strcmp(o, json_string_value(pname)) == 0)
                        dup = 1;
                }
                if (dup)
                    report_duplicate(c, pname);
                else
                    check_port_name(c, pname);
                path_pop(c, s3);
            }
            path_pop(c, s2);
        }
        json_t *m;
        json_array_foreach(json_object_get(ct, "volumeMounts"), j, m) {
            const json_t *vn = json_object_get(m, "name");
            const char *s = json_string_value(vn);
            if (!s || !*s || has_named(pn->volumes, s, 0) || has_named(pn->claims, s, 1))
                continue;
            size_t s2 = path_push_field(c, "volumeMounts");
            path_push_index(c, j);
            path_push_field(c, "name");
            char shown[160];
            show_value(vn, shown, sizeof(shown));
            add_error(c, "FieldValueNotFound", "Not found: %s", shown);
            path_pop(c, s2);
        }
        check_resources(c, json_object_get(ct, "resources"));
        path_pop(c, s1);
    }
}

static void check_volumes(vctx_t *c, const json_t *volumes)
{
    size_t i;
    json_t *v;
    json_array_foreach(volumes, i, v) {
        const json_t *name = json_object_get(v, "name");
        const char *n = json_string_value(name);
        if (!n || !*n)
            continue;
        size_t saved = path_push_field(c, "volumes");
        path_push_index(c, i);
        path_push_field(c, "name");
        int dup = 0;
        for (size_t k = 0; k < i; k++) {
            const char *o = json_string_value(json_object_get(json_array_get(volumes, k), "name"));
            if (o && strcmp(o, n) == 0)
                dup = 1;
        }
        if (dup)
            report_duplicate(c, name);
        else
            check_name(c, name, NAME_LABEL);
        path_pop(c, saved);
    }
}

/* Restart policies a pod template may use: Jobs run to completion, the
 * apps controllers keep pods running. */
static const char *const job_restart_policies[] = { "OnFailure", "Never", NULL };
static const char *const apps_restart_policies[] = { "Always", NULL };

static void quote_list(const char *const *values, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (const char *const *v = values; *v && len < n; v++) {
        int w = snprintf(buf + len, n - len, "%s\"%s\"", len ? ", " : "", *v);
        if (w > 0)
            len += (size_t)w;
    }
}

/* spec of a pod at the current path. restart != NULL restricts
 * restartPolicy; claims are a StatefulSet's volumeClaimTemplates. */
static void check_pod_spec(vctx_t *c, const json_t *spec, const char *const *restart,
                           const json_t *claims)
{
    if (!json_is_object(spec))
        return;
    size_t saved = path_push_field(c, "spec");
    const json_t *containers = json_object_get(spec, "containers");
    if (json_is_array(containers) && json_array_size(containers) == 0) {
        size_t s2 = path_push_field(c, "containers");
        add_error(c, "FieldValueRequired", "Required value");
        path_pop(c, s2);
    }
    pod_names_t pn;
    pn.volumes = json_object_get(spec, "volumes");
    pn.claims = claims;
    pn.ncontainers = 0;
    check_volumes(c, pn.volumes);
    check_containers(c, json_object_get(spec, "initContainers"), "initContainers", &pn);
    check_containers(c, containers, "containers", &pn);
    if (restart) {
        const json_t *rp = json_object_get(spec, "restartPolicy");
        size_t s2 = path_push_field(c, "restartPolicy");
        const char *s = json_string_value(rp);
        int ok = 0;
        for (const char *const *r = restart; s && *r; r++)
            if (strcmp(*r, s) == 0)
                ok = 1;
        char list[64];
        quote_list(restart, list, sizeof(list));
        /* Absent means Always once defaulted: fine for the apps kinds. */
        if (!s || !*s) {
            if (restart == job_restart_policies && (!rp || json_is_null(rp) || json_is_string(rp)))
                add_error(c, "FieldValueRequired", "Required value: valid values: %s", list);
        } else if (!ok) {
            char shown[160];
            show_value(rp, shown, sizeof(shown));
            add_error(c, "FieldValueNotSupported", "Unsupported value: %s: supported values: %s",
                      shown, list);
        }
        path_pop(c, s2);
    }
    path_pop(c, saved);
}

static void check_template(vctx_t *c, const json_t *tmpl, const char *const *restart,
                           const json_t *claims)
{
    if (!json_is_object(tmpl))
        return;
    size_t saved = path_push_field(c, "template");
    check_metadata(c, json_object_get(tmpl, "metadata"), NAME_SUBDOMAIN, 0);
    check_pod_spec(c, json_object_get(tmpl, "spec"), restart, claims);
    path_pop(c, saved);
}

/* ---- selectors ------------------------------------------------------------- */

static int selector_matches(const json_t *sel, const json_t *labels)
{
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(sel, "matchLabels"), key, val) {
        const json_t *have = json_object_get(labels, key);
        if (!json_is_string(have) || !json_is_string(val) ||
            strcmp(json_string_value(have), json_string_value(val)) != 0)
            return 0;
    }
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(sel, "matchExpressions"), i, req) {
        const char *k = json_string_value(json_object_get(req, "key"));
        const char *op = json_string_value(json_object_get(req, "operator"));
        if (!k || !op)
            return 0;
        const char *have = json_string_value(json_object_get(labels, k));
        int in = 0;
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(req, "values"), j, v)
            if (have && json_is_string(v) && strcmp(json_string_value(v), have) == 0)
                in = 1;
        if (strcmp(op, "In") == 0 && !in)
            return 0;
        if (strcmp(op, "NotIn") == 0 && in)
            return 0;
        if (strcmp(op, "Exists") == 0 && !have)
            return 0;
        if (strcmp(op, "DoesNotExist") == 0 && have)
            return 0;
    }
    return 1;
}

static int selector_empty(const json_t *sel)
{
    return json_object_size(json_object_get(sel, "matchLabels")) == 0 &&
           json_array_size(json_object_get(sel, "matchExpressions")) == 0;
}

/* A missing selector is reported by the schema walk where the API
 * requires one (apps kinds); Jobs generate theirs. */
static void check_selector(vctx_t *c, const json_t *spec)
{
    const json_t *sel = json_object_get(spec, "selector");
    if (!json_is_object(sel))
        return;
    if (selector_empty(sel)) {
        size_t saved = path_push_field(c, "spec");
        path_push_field(c, "selector");
        invalid(c, sel, "empty selector is invalid for this resource");
        path_pop(c, saved);
        return;
    }
    const json_t *tmpl = json_object_get(spec, "template");
    if (!json_is_object(tmpl))
        return;
    const json_t *labels = json_object_get(json_object_get(tmpl, "metadata"), "labels");
    if (!selector_matches(sel, labels)) {
        size_t saved = path_push_field(c, "spec");
        path_push_field(c, "template");
        path_push_field(c, "metadata");
        path_push_field(c, "labels");
        char *shown = labels ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        add_error(c, "FieldValueInvalid",
                  "Invalid value: %s: `selector` does not match template `labels`",
                  shown ? shown : "{}");
        free(shown);
        path_pop(c, saved);
    }
}

/* A CronJob's schedule and time zone, checked with the parser the
 * controller uses, as Kubernetes checks them on create and update. */
static void check_cron(vctx_t *c, const json_t *spec)
{
    const json_t *sched = json_object_get(spec, "schedule");
    const json_t *tz = json_object_get(spec, "timeZone");
    char err[256];
    skiff_cron_schedule_t cs;
    if (json_is_string(sched) &&
        skiff_cron_parse(json_string_value(sched), &cs, err, sizeof err) != 0) {
        size_t saved = path_push_field(c, "spec");
        path_push_field(c, "schedule");
        invalid(c, sched, err);
        path_pop(c, saved);
    }
    if (json_is_string(tz)) {
        const char *zone = json_string_value(tz);
        const char *why = NULL;
        if (strcasecmp(zone, "Local") == 0)
            why = "timeZone must be an explicit time zone as defined in "
                  "https://www.iana.org/time-zones";
        else if (!skiff_cron_zone_valid(zone)) {
            snprintf(err, sizeof err, "unknown time zone %s", zone);
            why = err;
        }
        if (why) {
            size_t saved = path_push_field(c, "spec");
            path_push_field(c, "timeZone");
            invalid(c, tz, why);
            path_pop(c, saved);
        }
    }
}

static void check_nonnegative(vctx_t *c, const json_t *spec, const char *field)
{
    const json_t *v = json_object_get(spec, field);
    if (json_is_integer(v) && json_integer_value(v) < 0) {
        size_t saved = path_push_field(c, "spec");
        path_push_field(c, field);
        invalid(c, v, "must be greater than or equal to 0");
        path_pop(c, saved);
    }
}

/* ---- per kind ------------------------------------------------------------- */

static void check_service(vctx_t *c, const json_t *spec)
{
    if (!json_is_object(spec))
        return;
    const char *type = json_string_value(json_object_get(spec, "type"));
    const json_t *ports = json_object_get(spec, "ports");
    const char *cip = json_string_value(json_object_get(spec, "clusterIP"));
    int headless = cip && strcmp(cip, "None") == 0;
    int external = type && strcmp(type, "ExternalName") == 0;
    size_t saved = path_push_field(c, "spec");
    if (!external && !headless && json_array_size(ports) == 0 && (!ports || json_is_array(ports))) {
        size_t s2 = path_push_field(c, "ports");
        add_error(c, "FieldValueRequired", "Required value");
        path_pop(c, s2);
    }
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) {
        size_t s2 = path_push_field(c, "ports");
        path_push_index(c, i);
        check_port_number(c, json_object_get(p, "port"), "port", 0);
        check_port_number(c, json_object_get(p, "targetPort"), "targetPort", 1);
        check_port_number(c, json_object_get(p, "nodePort"), "nodePort", 1);
        if (json_array_size(ports) > 1) {
            const json_t *pn = json_object_get(p, "name");
            if (!json_is_string(pn) || json_string_length(pn) == 0) {
                size_t s3 = path_push_field(c, "name");
                add_error(c, "FieldValueRequired", "Required value");
                path_pop(c, s3);
            }
        }
        path_pop(c, s2);
    }
    path_pop(c, saved);
}

/* ---- quotas, limits, disruption budgets, storage classes, autoscalers ----- */

/* A quantity as Kubernetes quotes it in messages (without quotes). */
static void quantity_text(const json_t *q, char *buf, size_t n)
{
    if (json_is_string(q))
        snprintf(buf, n, "%s", json_string_value(q));
    else
        snprintf(buf, n, "%g", json_number_value(q));
}

/* Compare two quantities of one resource in a LimitRange item and report
 * at `field`[resource] when lo > hi. */
static void limit_order(vctx_t *c, const json_t *item, const char *res, const char *lo_field,
                        const char *hi_field, const char *at_field, int show_hi,
                        const char *lo_name, const char *hi_name)
{
    const json_t *lo = json_object_get(json_object_get(item, lo_field), res);
    const json_t *hi = json_object_get(json_object_get(item, hi_field), res);
    double l, h;
    if (!lo || !hi || registry_quantity_parse(lo, &l) < 0 || registry_quantity_parse(hi, &h) < 0 ||
        l <= h)
        return;
    char ls[64], hs[64], msg[256];
    quantity_text(lo, ls, sizeof(ls));
    quantity_text(hi, hs, sizeof(hs));
    snprintf(msg, sizeof(msg), "%s value %s is greater than %s value %s", lo_name, ls, hi_name, hs);
    size_t saved = path_push_field(c, at_field);
    path_push_key(c, res);
    invalid(c, show_hi ? hi : lo, msg);
    path_pop(c, saved);
}

/* ValidateLimitRange: min <= default request <= default <= max, ratios
 * of at least 1, no defaults on Pod limits. */
static void check_limitrange(vctx_t *c, const json_t *spec)
{
    static const char *const maps[] = { "max", "min", "default", "defaultRequest",
                                        "maxLimitRequestRatio" };
    size_t saved = path_push_field(c, "spec");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(spec, "limits"), i, item) {
        if (!json_is_object(item))
            continue;
        size_t s1 = path_push_field(c, "limits");
        path_push_index(c, i);
        const char *type = json_string_value(json_object_get(item, "type"));
        if (type && strcmp(type, "Pod") == 0) {
            static const char *const no[] = { "default", "defaultRequest" };
            for (size_t n = 0; n < 2; n++) {
                const json_t *m = json_object_get(item, no[n]);
                if (!json_object_size(m))
                    continue;
                size_t s2 = path_push_field(c, no[n]);
                invalid(c, m, "may not be specified when `type` is 'Pod'");
                path_pop(c, s2);
            }
        }
        /* Every resource named in any of the maps, once. */
        const char *seen[64];
        size_t nseen = 0;
        for (size_t m = 0; m < sizeof(maps) / sizeof(maps[0]); m++) {
            const char *res;
            json_t *q;
            json_object_foreach(json_object_get(item, maps[m]), res, q) {
                int dup = 0;
                for (size_t k = 0; k < nseen; k++)
                    dup |= strcmp(seen[k], res) == 0;
                if (!dup && nseen < sizeof(seen) / sizeof(seen[0]))
                    seen[nseen++] = res;
            }
        }
        for (size_t k = 0; k < nseen; k++) {
            const char *r = seen[k];
            limit_order(c, item, r, "min", "max", "min", 0, "min", "max");
            limit_order(c, item, r, "min", "defaultRequest", "defaultRequest", 1, "min",
                        "default request");
            limit_order(c, item, r, "defaultRequest", "max", "defaultRequest", 0,
                        "default request", "max");
            limit_order(c, item, r, "defaultRequest", "default", "defaultRequest", 0,
                        "default request", "default limit");
            limit_order(c, item, r, "min", "default", "default", 0, "min", "default");
            limit_order(c, item, r, "default", "max", "default", 1, "default", "max");
            const json_t *ratio = json_object_get(json_object_get(item, "maxLimitRequestRatio"), r);
            double v;
            if (ratio && registry_quantity_parse(ratio, &v) == 0 && v < 1) {
                char rs[64], msg[128];
                quantity_text(ratio, rs, sizeof(rs));
                snprintf(msg, sizeof(msg), "ratio %s is less than 1", rs);
                size_t s2 = path_push_field(c, "maxLimitRequestRatio");
                path_push_key(c, r);
                invalid(c, ratio, msg);
                path_pop(c, s2);
            }
        }
        path_pop(c, s1);
    }
    path_pop(c, saved);
}

/* Quota amounts may not be negative. */
static void check_resourcequota(vctx_t *c, const json_t *spec)
{
    const char *res;
    json_t *q;
    json_object_foreach(json_object_get(spec, "hard"), res, q) {
        double v;
        if (registry_quantity_parse(q, &v) < 0 || v >= 0)
            continue;
        size_t saved = path_push_field(c, "spec");
        path_push_field(c, "hard");
        path_push_key(c, res);
        invalid(c, q, "must be greater than or equal to 0");
        path_pop(c, saved);
    }
}

/* minAvailable / maxUnavailable: a count of at least 0 or a percentage
 * up to 100%, and not both. */
static void check_int_or_percent(vctx_t *c, const json_t *v, const char *field)
{
    if (!v || json_is_null(v))
        return;
    size_t saved = path_push_field(c, field);
    if (json_is_integer(v) && json_integer_value(v) < 0) {
        invalid(c, v, "must be greater than or equal to 0");
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s), d = 0;
        while (d < n && is_digit(s[d]))
            d++;
        if (n < 2 || d != n - 1 || s[n - 1] != '%')
            invalid(c, v, "a valid percent string must be a numeric string followed by an "
                          "ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                          "'[0-9]+%')");
        else if (atoi(s) > 100)
            invalid(c, v, "must not be greater than 100%");
    }
    path_pop(c, saved);
}

static void check_pdb(vctx_t *c, const json_t *spec)
{
    if (!json_is_object(spec))
        return;
    size_t saved = path_push_field(c, "spec");
    const json_t *min = json_object_get(spec, "minAvailable");
    const json_t *max = json_object_get(spec, "maxUnavailable");
    if (min && !json_is_null(min) && max && !json_is_null(max)) {
        size_t s2 = path_push_field(c, "minAvailable");
        invalid(c, min, "minAvailable and maxUnavailable cannot be both set");
        path_pop(c, s2);
    }
    check_int_or_percent(c, min, "minAvailable");
    check_int_or_percent(c, max, "maxUnavailable");
    path_pop(c, saved);
}

static void check_storageclass(vctx_t *c, const json_t *obj)
{
    const json_t *prov = json_object_get(obj, "provisioner");
    if (json_is_string(prov)) {
        size_t saved = path_push_field(c, "provisioner");
        if (json_string_length(prov) == 0)
            add_error(c, "FieldValueRequired", "Required value");
        else {
            /* Checked lower-cased, as Kubernetes checks it. */
            char low[320];
            snprintf(low, sizeof(low), "%s", json_string_value(prov));
            for (char *p = low; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            check_qualified_key(c, low);
        }
        path_pop(c, saved);
    }
    /* Recycle is a PersistentVolume policy a class cannot ask for. */
    const json_t *rp = json_object_get(obj, "reclaimPolicy");
    if (json_is_string(rp) && strcmp(json_string_value(rp), "Recycle") == 0) {
        size_t saved = path_push_field(c, "reclaimPolicy");
        char shown[160];
        show_value(rp, shown, sizeof(shown));
        add_error(c, "FieldValueNotSupported",
                  "Unsupported value: %s: supported values: \"Delete\", \"Retain\"", shown);
        path_pop(c, saved);
    }
}

static void check_at_least(vctx_t *c, const json_t *v, const char *field, long long min)
{
    if (!json_is_integer(v) || json_integer_value(v) >= min)
        return;
    char msg[64];
    snprintf(msg, sizeof(msg), "must be greater than or equal to %lld", min);
    size_t saved = path_push_field(c, field);
    invalid(c, v, msg);
    path_pop(c, saved);
}

/* HorizontalPodAutoscaler (v2 form; v1 requests are converted first). */
static void check_hpa(vctx_t *c, const json_t *spec)
{
    if (!json_is_object(spec))
        return;
    size_t saved = path_push_field(c, "spec");
    const json_t *min = json_object_get(spec, "minReplicas");
    const json_t *max = json_object_get(spec, "maxReplicas");
    check_at_least(c, min, "minReplicas", 1);
    check_at_least(c, max, "maxReplicas", 1);
    if (json_is_integer(min) && json_is_integer(max) &&
        json_integer_value(max) < json_integer_value(min)) {
        size_t s2 = path_push_field(c, "maxReplicas");
        invalid(c, max, "must be greater than or equal to `minReplicas`");
        path_pop(c, s2);
    }
    const json_t *ref = json_object_get(spec, "scaleTargetRef");
    if (json_is_object(ref)) {
        static const char *const req[] = { "kind", "name" };
        for (size_t i = 0; i < 2; i++) {
            const json_t *v = json_object_get(ref, req[i]);
            if (json_is_string(v) && json_string_length(v) == 0) {
                size_t s2 = path_push_field(c, "scaleTargetRef");
                path_push_field(c, req[i]);
                add_error(c, "FieldValueRequired", "Required value");
                path_pop(c, s2);
            }
        }
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "metrics"), i, m) {
        const json_t *u = json_object_get(json_object_get(json_object_get(m, "resource"), "target"),
                                          "averageUtilization");
        if (!json_is_integer(u) || json_integer_value(u) > 0)
            continue;
        size_t s2 = path_push_field(c, "metrics");
        path_push_index(c, i);
        path_push_field(c, "resource");
        path_push_field(c, "target");
        path_push_field(c, "averageUtilization");
        invalid(c, u, "must be greater than 0");
        path_pop(c, s2);
    }
    path_pop(c, saved);
}

/* ---- rbac.authorization.k8s.io -------------------------------------------- */

#define RBAC_GROUP "rbac.authorization.k8s.io"

static void not_supported(vctx_t *c, const json_t *v, const char *const *values)
{
    char list[128], shown[160];
    quote_list(values, list, sizeof(list));
    show_value(v, shown, sizeof(shown));
    add_error(c, "FieldValueNotSupported", "Unsupported value: %s: supported values: %s", shown,
              list);
}

static int one_of(const char *s, const char *const *values)
{
    for (; s && *values; values++)
        if (strcmp(s, *values) == 0)
            return 1;
    return 0;
}

static void check_policy_rule(vctx_t *c, const json_t *rule, int namespaced)
{
    if (!json_is_object(rule))
        return;
    const json_t *verbs = json_object_get(rule, "verbs");
    const json_t *urls = json_object_get(rule, "nonResourceURLs");
    size_t ngroups = json_array_size(json_object_get(rule, "apiGroups"));
    size_t nres = json_array_size(json_object_get(rule, "resources"));
    if (json_is_array(verbs) && json_array_size(verbs) == 0) {
        size_t s2 = path_push_field(c, "verbs");
        add_error(c, "FieldValueRequired", "Required value: verbs must contain at least one value");
        path_pop(c, s2);
    }
    if (json_array_size(urls) > 0) {
        size_t s2 = path_push_field(c, "nonResourceURLs");
        if (namespaced)
            invalid(c, urls, "namespaced rules cannot apply to non-resource URLs");
        else if (ngroups || nres)
            invalid(c, urls, "rules cannot apply to both regular resources and non-resource URLs");
        path_pop(c, s2);
        return;
    }
    if (!ngroups) {
        size_t s2 = path_push_field(c, "apiGroups");
        add_error(c, "FieldValueRequired",
                  "Required value: resource rules must supply at least one api group");
        path_pop(c, s2);
    }
    if (!nres) {
        size_t s2 = path_push_field(c, "resources");
        add_error(c, "FieldValueRequired",
                  "Required value: resource rules must supply at least one resource");
        path_pop(c, s2);
    }
}

static void check_rbac_role(vctx_t *c, const json_t *obj, int namespaced)
{
    size_t saved = path_push_field(c, "rules");
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(obj, "rules"), i, r) {
        size_t s2 = path_push_index(c, i);
        check_policy_rule(c, r, namespaced);
        path_pop(c, s2);
    }
    path_pop(c, saved);
}

static void check_rbac_binding(vctx_t *c, const json_t *obj, int namespaced)
{
    static const char *const role_kinds_ns[] = { "Role", "ClusterRole", NULL };
    static const char *const role_kinds_cluster[] = { "ClusterRole", NULL };
    static const char *const rbac_group[] = { RBAC_GROUP, NULL };
    static const char *const core_group[] = { "", NULL };
    static const char *const subject_kinds[] = { "ServiceAccount", "User", "Group", NULL };
    const json_t *ref = json_object_get(obj, "roleRef");
    if (json_is_object(ref)) {
        size_t saved = path_push_field(c, "roleRef");
        const json_t *v = json_object_get(ref, "apiGroup");
        size_t s2 = path_push_field(c, "apiGroup");
        if (json_is_string(v) && !one_of(json_string_value(v), rbac_group))
            not_supported(c, v, rbac_group);
        path_pop(c, s2);
        v = json_object_get(ref, "kind");
        s2 = path_push_field(c, "kind");
        const char *const *kinds = namespaced ? role_kinds_ns : role_kinds_cluster;
        if (json_is_string(v) && !one_of(json_string_value(v), kinds))
            not_supported(c, v, kinds);
        path_pop(c, s2);
        v = json_object_get(ref, "name");
        s2 = path_push_field(c, "name");
        if (json_is_string(v) && json_string_length(v) == 0)
            add_error(c, "FieldValueRequired", "Required value");
        else if (json_is_string(v))
            check_path_segment(c, v, json_string_value(v));
        path_pop(c, s2);
        path_pop(c, saved);
    }
    size_t saved = path_push_field(c, "subjects");
    size_t i;
    const json_t *sub;
    json_array_foreach(json_object_get(obj, "subjects"), i, sub) {
        size_t s2 = path_push_index(c, i);
        const char *kind = json_string_value(json_object_get(sub, "kind"));
        const json_t *name = json_object_get(sub, "name");
        const json_t *group = json_object_get(sub, "apiGroup");
        const char *gs = json_string_value(group);
        size_t s3 = path_push_field(c, "name");
        if (json_is_string(name) && json_string_length(name) == 0)
            add_error(c, "FieldValueRequired", "Required value");
        path_pop(c, s3);
        if (kind && !one_of(kind, subject_kinds)) {
            s3 = path_push_field(c, "kind");
            not_supported(c, json_object_get(sub, "kind"), subject_kinds);
            path_pop(c, s3);
        } else if (kind && strcmp(kind, "ServiceAccount") == 0) {
            s3 = path_push_field(c, "apiGroup");
            if (gs && *gs)
                not_supported(c, group, core_group);
            path_pop(c, s3);
            const char *ns = json_string_value(json_object_get(sub, "namespace"));
            s3 = path_push_field(c, "namespace");
            /* A RoleBinding's ServiceAccount defaults to the binding's namespace. */
            if (!namespaced && (!ns || !*ns))
                add_error(c, "FieldValueRequired", "Required value");
            path_pop(c, s3);
        } else if (kind) {
            s3 = path_push_field(c, "apiGroup");
            if (gs && !one_of(gs, rbac_group))
                not_supported(c, group, rbac_group);
            path_pop(c, s3);
        }
        path_pop(c, s2);
    }
    path_pop(c, saved);
}

static void check_kind_rules(vctx_t *c, const kind_def_t *k, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    const char *kind = k->kind;
    int core = k->group[0] == '\0', apps = strcmp(k->group, "apps") == 0,
        batch = strcmp(k->group, "batch") == 0;

    enum name_rule rule = NAME_SUBDOMAIN;
    if (core && strcmp(kind, "Namespace") == 0)
        rule = NAME_LABEL;
    else if (core && strcmp(kind, "Service") == 0)
        rule = NAME_DNS1035;
    int rbac = strcmp(k->group, RBAC_GROUP) == 0;
    if (rbac)
        rule = NAME_PATH_SEGMENT;
    check_metadata(c, json_object_get(obj, "metadata"), rule, 1);

    if (rbac) {
        if (strcmp(kind, "Role") == 0 || strcmp(kind, "ClusterRole") == 0)
            check_rbac_role(c, obj, k->namespaced);
        else
            check_rbac_binding(c, obj, k->namespaced);
        return;
    }

    if (core && strcmp(kind, "Pod") == 0) {
        check_pod_spec(c, spec, NULL, NULL);
    } else if (core && strcmp(kind, "LimitRange") == 0) {
        check_limitrange(c, spec);
    } else if (core && strcmp(kind, "ResourceQuota") == 0) {
        check_resourcequota(c, spec);
    } else if (strcmp(k->group, "policy") == 0 && strcmp(kind, "PodDisruptionBudget") == 0) {
        check_pdb(c, spec);
    } else if (strcmp(k->group, "storage.k8s.io") == 0 && strcmp(kind, "StorageClass") == 0) {
        check_storageclass(c, obj);
    } else if (strcmp(k->group, "autoscaling") == 0 && strcmp(kind, "HorizontalPodAutoscaler") == 0) {
        check_hpa(c, spec);
    } else if (core && strcmp(kind, "Service") == 0) {
        check_service(c, spec);
    } else if (apps && json_is_object(spec)) {
        if (strcmp(kind, "ControllerRevision") == 0)
            return;
        check_nonnegative(c, spec, "replicas");
        check_nonnegative(c, spec, "minReadySeconds");
        check_nonnegative(c, spec, "revisionHistoryLimit");
        check_selector(c, spec);
        size_t saved = path_push_field(c, "spec");
        check_template(c, json_object_get(spec, "template"), apps_restart_policies,
                       json_object_get(spec, "volumeClaimTemplates"));
        path_pop(c, saved);
    } else if (batch && strcmp(kind, "Job") == 0 && json_is_object(spec)) {
        check_nonnegative(c, spec, "parallelism");
        check_nonnegative(c, spec, "completions");
        check_nonnegative(c, spec, "backoffLimit");
        check_nonnegative(c, spec, "activeDeadlineSeconds");
        check_nonnegative(c, spec, "ttlSecondsAfterFinished");
        const char *mode = json_string_value(json_object_get(spec, "completionMode"));
        if (mode && strcmp(mode, "Indexed") == 0 &&
            !json_is_integer(json_object_get(spec, "completions"))) {
            size_t saved = path_push_field(c, "spec");
            path_push_field(c, "completions");
            add_error(c, "FieldValueRequired", "Required value: when completion mode is Indexed");
            path_pop(c, saved);
        }
        check_selector(c, spec);
        size_t saved = path_push_field(c, "spec");
        check_template(c, json_object_get(spec, "template"), job_restart_policies, NULL);
        path_pop(c, saved);
    } else if (batch && strcmp(kind, "CronJob") == 0 && json_is_object(spec)) {
        const json_t *jt = json_object_get(spec, "jobTemplate");
        const json_t *jspec = json_object_get(jt, "spec");
        if (json_is_object(jspec)) {
            size_t saved = path_push_field(c, "spec");
            path_push_field(c, "jobTemplate");
            path_push_field(c, "spec");
            check_template(c, json_object_get(jspec, "template"), job_restart_policies, NULL);
            path_pop(c, saved);
        }
        check_nonnegative(c, spec, "successfulJobsHistoryLimit");
        check_nonnegative(c, spec, "failedJobsHistoryLimit");
        check_nonnegative(c, spec, "startingDeadlineSeconds");
        check_cron(c, spec);
    }
}

size_t registry_validate(const kind_def_t *k, const json_t *obj, int mode,
                         validation_result_t *res)
{
    if (!res)
        return 0;
    memset(res, 0, sizeof(*res));
    if (!k)
        return 0;
    vctx_t c;
    c.len = 0;
    c.path[0] = '\0';
    c.mode = mode;
    c.in_status = 0;
    c.res = res;
    c.cap = 0;
    if (!json_is_object(obj)) {
        type_error(&c, obj, "object");
        return res->count;
    }
    if (k->schema)
        walk(&c, k->schema, obj);
    check_kind_rules(&c, k, obj);
    if (k->crd)
        crd_schema_validate(k->crd->schema, obj, mode, res);
    else if (strcmp(k->kind, crd_definition_kind.kind) == 0 &&
             strcmp(k->group, crd_definition_kind.group) == 0)
        crd_definition_validate(obj, res);
    return res->count;
}

void validation_result_free(validation_result_t *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->count; i++) {
        free(res->errors[i].field);
        free(res->errors[i].reason);
        free(res->errors[i].message);
    }
    free(res->errors);
    res->errors = NULL;
    res->count = 0;
    res->unknown_fields = 0;
}
