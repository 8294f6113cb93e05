/* core/object/protobuf.c - decode Kubernetes protobuf bodies into JSON objects.
 *
 * The wire format is proto2 as gogo-protobuf writes it for the Kubernetes
 * API types. Which field number is which JSON field comes from the embedded
 * table (core/object/kinds/protobuf.json); what JSON type a field has comes
 * from the schema set, so both stay generated from the same Go sources.
 * Special types follow their Kubernetes JSON forms: metav1.Time and
 * MicroTime become RFC 3339 strings, resource.Quantity its string,
 * intstr.IntOrString a number or a string, runtime.RawExtension and
 * metav1.FieldsV1 the JSON their bytes hold, metav1.Duration Go's duration
 * string. Every read is bounds-checked; malformed input is an error message,
 * never a crash. This file does not encode protobuf and does not talk HTTP. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skiff/errors.h>

#include "object/protobuf.h"
#include "object/registry.h"
#include "object/schema.h"
#include "util/strmap.h"

extern const char skiff_protobuf_json[];

/* Nesting deeper than this is rejected: the API types nest far less, and
 * the decoder recurses once a level. */
#define PB_MAX_DEPTH 100

/* ---- wire reader --------------------------------------------------------- */

void k8s_pb_reader_init(k8s_pb_reader_t *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p ? r->p + len : NULL;
}

int k8s_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 64; shift += 7) {
        if (q >= end) return SKIFF_EINVAL;
        uint8_t b = *q++;
        /* The tenth byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && (b & 0x7e)) return SKIFF_EINVAL;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *out = v;
            return 0;
        }
    }
    return SKIFF_EINVAL;
}

int k8s_pb_next(k8s_pb_reader_t *r, k8s_pb_field_t *f)
{
    if (!r->p || r->p >= r->end) return 0;
    uint64_t key;
    if (k8s_pb_varint(&r->p, r->end, &key) != 0) return SKIFF_EINVAL;
    uint64_t number = key >> 3;
    if (number == 0 || number > 0x1fffffff) return SKIFF_EINVAL;
    memset(f, 0, sizeof *f);
    f->number = (uint32_t)number;
    f->wire = (int)(key & 7);
    switch (f->wire) {
    case K8S_PB_VARINT:
        return k8s_pb_varint(&r->p, r->end, &f->value) == 0 ? 1 : SKIFF_EINVAL;
    case K8S_PB_FIXED64:
    case K8S_PB_FIXED32: {
        size_t n = f->wire == K8S_PB_FIXED64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) return SKIFF_EINVAL;
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        f->value = v;
        return 1;
    }
    case K8S_PB_BYTES: {
        uint64_t n;
        if (k8s_pb_varint(&r->p, r->end, &n) != 0) return SKIFF_EINVAL;
        if (n > (uint64_t)(r->end - r->p)) return SKIFF_EINVAL;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default: /* groups (3, 4) are not used by the Kubernetes types */
        return SKIFF_EINVAL;
    }
}

/* ---- field table ----------------------------------------------------------- */

enum {
    PBF_REPEATED = 1 << 0,
    PBF_MAP = 1 << 1,
    PBF_MAP_WRAP = 1 << 2, /* map value is a named slice: message {1: items} */
    PBF_WRAP = 1 << 3,     /* named slice: message {1: repeated items} */
    PBF_DURATION = 1 << 4,
    PBF_POINTER = 1 << 5,
    PBF_OMITEMPTY = 1 << 6,
};

typedef struct pb_type pb_type_t;

typedef struct pb_field {
    const char *json;        /* NULL for inline fields and unused numbers */
    unsigned flags;
    const pb_type_t *inline_type;
} pb_field_t;

struct pb_type {
    uint32_t max;            /* highest field number */
    pb_field_t *fields;      /* indexed by field number, max + 1 entries */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *table_root;   /* owns the strings the types point to */
static strmap_t *table_types; /* type name -> pb_type_t */

static void pb_type_free(void *p)
{
    pb_type_t *t = p;
    if (!t) return;
    free(t->fields);
    free(t);
}

static int table_build_type(json_t *fields, pb_type_t **out)
{
    pb_type_t *t = calloc(1, sizeof *t);
    if (!t) return SKIFF_ENOMEM;
    const char *num;
    json_t *e;
    json_object_foreach(fields, num, e) {
        char *endp;
        unsigned long n = strtoul(num, &endp, 10);
        if (*endp || n == 0 || n > 10000 || !json_is_object(e)) goto bad;
        if (n > t->max) t->max = (uint32_t)n;
    }
    t->fields = calloc((size_t)t->max + 1, sizeof *t->fields);
    if (!t->fields) {
        pb_type_free(t);
        return SKIFF_ENOMEM;
    }
    json_object_foreach(fields, num, e) {
        pb_field_t *f = &t->fields[strtoul(num, NULL, 10)];
        f->json = json_string_value(json_object_get(e, "j"));
        if (json_is_true(json_object_get(e, "rep")) || json_integer_value(json_object_get(e, "rep")))
            f->flags |= PBF_REPEATED;
        if (json_is_string(json_object_get(e, "map"))) f->flags |= PBF_MAP;
        if (json_integer_value(json_object_get(e, "mwrap"))) f->flags |= PBF_MAP_WRAP;
        if (json_integer_value(json_object_get(e, "wrap"))) f->flags |= PBF_WRAP;
        if (json_integer_value(json_object_get(e, "dur"))) f->flags |= PBF_DURATION;
        if (json_integer_value(json_object_get(e, "ptr"))) f->flags |= PBF_POINTER;
        if (json_integer_value(json_object_get(e, "oe"))) f->flags |= PBF_OMITEMPTY;
        if (!f->json && !json_is_string(json_object_get(e, "inline"))) goto bad;
    }
    *out = t;
    return 0;
bad:
    pb_type_free(t);
    return SKIFF_EINVAL;
}

/* Second pass: point inline fields at their types. */
static int table_link(void)
{
    const char *name;
    json_t *fields;
    json_t *types = json_object_get(table_root, "types");
    json_object_foreach(types, name, fields) {
        pb_type_t *t = strmap_get(table_types, name);
        const char *num;
        json_t *e;
        json_object_foreach(fields, num, e) {
            const char *in = json_string_value(json_object_get(e, "inline"));
            if (!in) continue;
            const pb_type_t *it = strmap_get(table_types, in);
            if (!it) return SKIFF_EINVAL;
            t->fields[strtoul(num, NULL, 10)].inline_type = it;
        }
    }
    return 0;
}

static void table_free_locked(void)
{
    if (table_types) strmap_free(table_types, pb_type_free);
    table_types = NULL;
    json_decref(table_root);
    table_root = NULL;
}

int k8s_protobuf_load(void)
{
    int rc = 0;
    pthread_mutex_lock(&table_lock);
    if (table_types) goto out;
    json_error_t je;
    table_root = json_loads(skiff_protobuf_json, 0, &je);
    json_t *types = json_object_get(table_root, "types");
    if (!json_is_object(types) || json_integer_value(json_object_get(table_root, "format")) != 1) {
        rc = SKIFF_EINVAL;
        goto fail;
    }
    table_types = strmap_new();
    if (!table_types) {
        rc = SKIFF_ENOMEM;
        goto fail;
    }
    const char *name;
    json_t *fields;
    json_object_foreach(types, name, fields) {
        pb_type_t *t;
        if (!json_is_object(fields)) {
            rc = SKIFF_EINVAL;
            goto fail;
        }
        if ((rc = table_build_type(fields, &t)) != 0) goto fail;
        strmap_put(table_types, name, t);
    }
    if ((rc = table_link()) != 0) goto fail;
    goto out;
fail:
    table_free_locked();
out:
    pthread_mutex_unlock(&table_lock);
    return rc;
}

void k8s_protobuf_unload(void)
{
    pthread_mutex_lock(&table_lock);
    table_free_locked();
    pthread_mutex_unlock(&table_lock);
}

static const pb_type_t *table_type(const char *name)
{
    return name && table_types ? strmap_get(table_types, name) : NULL;
}

static const pb_field_t *table_field(const pb_type_t *t, uint32_t number)
{
    if (!t || number > t->max) return NULL;
    const pb_field_t *f = &t->fields[number];
    return f->json || f->inline_type ? f : NULL;
}

/* ---- decoding ------------------------------------------------------------- */

typedef struct dec {
    char *err;
    size_t errlen;
    int depth;
    char path[256];   /* JSON path of the field being decoded, for messages */
} dec_t;

__attribute__((format(printf, 2, 3))) static json_t *dec_fail(dec_t *d, const char *fmt, ...)
{
    if (!d->err || d->errlen == 0 || d->err[0]) return NULL; /* keep the first error */
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->path[0]) snprintf(d->err, d->errlen, "protobuf body: %s: %s", d->path, msg);
    else snprintf(d->err, d->errlen, "protobuf body: %s", msg);
    return NULL;
}

static const char *wire_name(int wire)
{
    switch (wire) {
    case K8S_PB_VARINT: return "varint";
    case K8S_PB_FIXED64: return "fixed64";
    case K8S_PB_BYTES: return "length-delimited";
    case K8S_PB_FIXED32: return "fixed32";
    default: return "unknown";
    }
}

static json_t *decode_message(dec_t *d, const schema_type_t *st, const uint8_t *buf, size_t len,
                              json_t *into);

static json_t *base64_new(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t outlen = (n + 2) / 3 * 4;
    char *s = malloc(outlen + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        s[o++] = tab[(v >> 18) & 63];
        s[o++] = tab[(v >> 12) & 63];
        s[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        s[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    s[o] = '\0';
    json_t *j = json_stringn(s, o);
    free(s);
    return j;
}

/* Go's time.Duration.String(): "1h2m3.5s", "1.5ms", "0s". */
static void duration_format(int64_t ns, char *buf, size_t len)
{
    if (ns == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    const char *sign = ns < 0 ? "-" : "";
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    char frac[16] = "";
    if (u < 1000000000ULL) {
        uint64_t unit;
        const char *suffix;
        int digits;
        if (u < 1000ULL) {
            snprintf(buf, len, "%s%" PRIu64 "ns", sign, u);
            return;
        } else if (u < 1000000ULL) {
            unit = 1000ULL, suffix = "\xc2\xb5s", digits = 3;
        } else {
            unit = 1000000ULL, suffix = "ms", digits = 6;
        }
        uint64_t rem = u % unit;
        if (rem) {
            snprintf(frac, sizeof frac, ".%0*" PRIu64, digits, rem);
            size_t fl = strlen(frac);
            while (fl > 1 && frac[fl - 1] == '0') frac[--fl] = '\0';
        }
        snprintf(buf, len, "%s%" PRIu64 "%s%s", sign, u / unit, frac, suffix);
        return;
    }
    uint64_t secs = u / 1000000000ULL, rem = u % 1000000000ULL;
    if (rem) {
        snprintf(frac, sizeof frac, ".%09" PRIu64, rem);
        size_t fl = strlen(frac);
        while (fl > 1 && frac[fl - 1] == '0') frac[--fl] = '\0';
    }
    uint64_t h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
    if (h) snprintf(buf, len, "%s%" PRIu64 "h%" PRIu64 "m%" PRIu64 "%ss", sign, h, m, s, frac);
    else if (m) snprintf(buf, len, "%s%" PRIu64 "m%" PRIu64 "%ss", sign, m, s, frac);
    else snprintf(buf, len, "%s%" PRIu64 "%ss", sign, s, frac);
}

static int need_wire(dec_t *d, const k8s_pb_field_t *f, int wire)
{
    if (f->wire == wire) return 0;
    dec_fail(d, "field %u has wire type %s, expected %s", f->number, wire_name(f->wire),
             wire_name(wire));
    return -1;
}

/* metav1.Duration {1: int64 nanoseconds}. */
static json_t *decode_duration(dec_t *d, const k8s_pb_field_t *f)
{
    if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
    int64_t ns = 0;
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1)
        if (g.number == 1 && g.wire == K8S_PB_VARINT) ns = (int64_t)g.value;
    if (rc < 0) return dec_fail(d, "truncated or malformed duration");
    char buf[64];
    duration_format(ns, buf, sizeof buf);
    return json_string(buf);
}

/* metav1.Time / MicroTime {1: seconds int64, 2: nanos int32}; an empty
 * message is the zero time, which Kubernetes writes as null. */
static json_t *decode_time(dec_t *d, const schema_type_t *st, const k8s_pb_field_t *f)
{
    if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
    if (f->len == 0) return json_null();
    int64_t secs = 0, nanos = 0;
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1) {
        if (g.number == 1 && g.wire == K8S_PB_VARINT) secs = (int64_t)g.value;
        else if (g.number == 2 && g.wire == K8S_PB_VARINT) nanos = (int32_t)(uint32_t)g.value;
    }
    if (rc < 0) return dec_fail(d, "truncated or malformed timestamp");
    if (nanos < 0 || nanos > 999999999) return dec_fail(d, "timestamp nanos out of range");
    /* Year 0..9999, the range RFC 3339 (and Go's MarshalJSON) can write. */
    if (secs < -62167219200LL || secs > 253402300799LL)
        return dec_fail(d, "timestamp out of range");
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return dec_fail(d, "timestamp out of range");
    char buf[64];
    int micro = st->name && strstr(st->name, "MicroTime") != NULL;
    if (micro)
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(nanos / 1000));
    else
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return json_string(buf);
}

/* resource.Quantity {1: string}. */
static json_t *decode_quantity(dec_t *d, const k8s_pb_field_t *f)
{
    if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
    const uint8_t *s = NULL;
    size_t n = 0;
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1)
        if (g.number == 1 && g.wire == K8S_PB_BYTES) s = g.data, n = g.len;
    if (rc < 0) return dec_fail(d, "truncated or malformed quantity");
    if (!s || n == 0) return json_string("0"); /* the zero Quantity */
    json_t *j = json_stringn((const char *)s, n);
    return j ? j : dec_fail(d, "quantity is not valid UTF-8");
}

/* intstr.IntOrString {1: type (0 int, 1 string), 2: intVal, 3: strVal}. */
static json_t *decode_int_or_string(dec_t *d, const k8s_pb_field_t *f)
{
    if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
    int64_t type = 0, ival = 0;
    const uint8_t *s = NULL;
    size_t n = 0;
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1) {
        if (g.number == 1 && g.wire == K8S_PB_VARINT) type = (int64_t)g.value;
        else if (g.number == 2 && g.wire == K8S_PB_VARINT) ival = (int32_t)(uint32_t)g.value;
        else if (g.number == 3 && g.wire == K8S_PB_BYTES) s = g.data, n = g.len;
    }
    if (rc < 0) return dec_fail(d, "truncated or malformed int-or-string");
    if (type == 0) return json_integer(ival);
    if (type != 1) return dec_fail(d, "int-or-string has unknown type %" PRId64, type);
    json_t *j = json_stringn(s ? (const char *)s : "", n);
    return j ? j : dec_fail(d, "int-or-string is not valid UTF-8");
}

/* runtime.RawExtension / metav1.FieldsV1 {1: raw JSON bytes}. */
static json_t *decode_raw(dec_t *d, const k8s_pb_field_t *f)
{
    if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
    const uint8_t *s = NULL;
    size_t n = 0;
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1)
        if (g.number == 1 && g.wire == K8S_PB_BYTES) s = g.data, n = g.len;
    if (rc < 0) return dec_fail(d, "truncated or malformed raw extension");
    if (!s || n == 0) return json_null();
    json_error_t je;
    json_t *j = json_loadb((const char *)s, n, JSON_DECODE_ANY, &je);
    return j ? j : dec_fail(d, "embedded raw object is not JSON: %s", je.text);
}

static int is_packable(const schema_type_t *t)
{
    return t->kind == SCHEMA_INTEGER || t->kind == SCHEMA_BOOLEAN || t->kind == SCHEMA_NUMBER;
}

static json_t *scalar_from_number(dec_t *d, const schema_type_t *st, int wire, uint64_t v)
{
    switch (st->kind) {
    case SCHEMA_INTEGER:
        if (wire == K8S_PB_FIXED32 || (st->format && strcmp(st->format, "int32") == 0))
            return json_integer((int32_t)(uint32_t)v);
        return json_integer((json_int_t)(int64_t)v);
    case SCHEMA_BOOLEAN:
        return json_boolean(v != 0);
    case SCHEMA_NUMBER:
        if (wire == K8S_PB_FIXED64) {
            double x;
            memcpy(&x, &v, sizeof x);
            return json_real(x);
        }
        if (wire == K8S_PB_FIXED32) {
            float x;
            uint32_t w = (uint32_t)v;
            memcpy(&x, &w, sizeof x);
            return json_real(x);
        }
        return json_real((double)(int64_t)v);
    default:
        return dec_fail(d, "number where the schema wants another type");
    }
}

/* One value of schema type st from wire field f. */
static json_t *decode_value(dec_t *d, const schema_type_t *st, unsigned flags,
                            const k8s_pb_field_t *f)
{
    if (flags & PBF_DURATION) return decode_duration(d, f);
    switch (st->kind) {
    case SCHEMA_STRING: {
        if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
        json_t *j = json_stringn((const char *)f->data, f->len);
        return j ? j : dec_fail(d, "string is not valid UTF-8");
    }
    case SCHEMA_BYTES:
        if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
        return base64_new(f->data, f->len);
    case SCHEMA_INTEGER:
    case SCHEMA_BOOLEAN:
    case SCHEMA_NUMBER:
        if (f->wire == K8S_PB_BYTES)
            return dec_fail(d, "field %u is length-delimited, expected a number", f->number);
        return scalar_from_number(d, st, f->wire, f->value);
    case SCHEMA_OBJECT:
        if (need_wire(d, f, K8S_PB_BYTES) != 0) return NULL;
        return decode_message(d, st, f->data, f->len, NULL);
    case SCHEMA_ANY:
        return decode_raw(d, f);
    case SCHEMA_INT_OR_STRING:
        return decode_int_or_string(d, f);
    case SCHEMA_QUANTITY:
        return decode_quantity(d, f);
    case SCHEMA_TIME:
        return decode_time(d, st, f);
    case SCHEMA_MAP:
    case SCHEMA_ARRAY:
    default:
        return dec_fail(d, "field %u: unexpected nested list or map", f->number);
    }
}

/* The value a map entry without field 2 holds (Go's zero value). */
static json_t *zero_value(const schema_type_t *st)
{
    switch (st->kind) {
    case SCHEMA_STRING:
    case SCHEMA_BYTES: return json_string("");
    case SCHEMA_INTEGER: return json_integer(0);
    case SCHEMA_NUMBER: return json_real(0);
    case SCHEMA_BOOLEAN: return json_false();
    case SCHEMA_OBJECT: return json_object();
    case SCHEMA_QUANTITY: return json_string("0");
    case SCHEMA_INT_OR_STRING: return json_integer(0);
    case SCHEMA_ARRAY: return json_array();
    case SCHEMA_MAP: return json_object();
    default: return json_null();
    }
}

/* Elements of a named-slice wrapper message {1: repeated items} appended to arr. */
static int append_wrapped(dec_t *d, const schema_type_t *elem, const k8s_pb_field_t *f,
                          json_t *arr);

/* Append one wire occurrence of a repeated field (packed or not) to arr. */
static int append_repeated(dec_t *d, const schema_type_t *elem, const k8s_pb_field_t *f,
                           json_t *arr)
{
    if (f->wire == K8S_PB_BYTES && is_packable(elem)) {
        const uint8_t *p = f->data, *end = f->data + f->len;
        while (p < end) {
            uint64_t v;
            int wire = K8S_PB_VARINT;
            if (elem->kind == SCHEMA_NUMBER) {
                /* Packed doubles; a float list does not exist in the API. */
                if (end - p < 8) return dec_fail(d, "truncated packed list"), -1;
                v = 0;
                for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
                p += 8;
                wire = K8S_PB_FIXED64;
            } else if (k8s_pb_varint(&p, end, &v) != 0) {
                return dec_fail(d, "truncated packed list"), -1;
            }
            json_t *j = scalar_from_number(d, elem, wire, v);
            if (!j || json_array_append_new(arr, j) != 0) return -1;
        }
        return 0;
    }
    json_t *j = decode_value(d, elem, 0, f);
    if (!j) return -1;
    return json_array_append_new(arr, j) == 0 ? 0 : -1;
}

static int append_wrapped(dec_t *d, const schema_type_t *elem, const k8s_pb_field_t *f,
                          json_t *arr)
{
    if (need_wire(d, f, K8S_PB_BYTES) != 0) return -1;
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1)
        if (g.number == 1 && append_repeated(d, elem, &g, arr) != 0) return -1;
    if (rc < 0) return dec_fail(d, "truncated or malformed list"), -1;
    return 0;
}

/* A map entry message {1: key, 2: value} into obj. */
static int add_map_entry(dec_t *d, const schema_type_t *elem, unsigned flags,
                         const k8s_pb_field_t *f, json_t *obj)
{
    if (need_wire(d, f, K8S_PB_BYTES) != 0) return -1;
    const uint8_t *key = NULL;
    size_t keylen = 0;
    json_t *val = NULL;
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1) {
        if (g.number == 1) {
            if (need_wire(d, &g, K8S_PB_BYTES) != 0) goto fail;
            key = g.data;
            keylen = g.len;
        } else if (g.number == 2) {
            json_decref(val);
            if (flags & PBF_MAP_WRAP) {
                val = json_array();
                if (!val || append_wrapped(d, elem->elem ? elem->elem : elem, &g, val) != 0)
                    goto fail;
            } else if (!(val = decode_value(d, elem, 0, &g))) {
                goto fail;
            }
        }
    }
    if (rc < 0) {
        dec_fail(d, "truncated or malformed map entry");
        goto fail;
    }
    if (!val && !(val = zero_value(elem))) goto fail;
    /* jansson keys are C strings: a key must be UTF-8 without NUL bytes. */
    char *k = strndup(key ? (const char *)key : "", keylen);
    if (!k) goto fail;
    json_t *probe = json_string(k);
    if (strlen(k) != keylen || !probe) {
        free(k);
        dec_fail(d, "map key is not a valid string");
        goto fail;
    }
    json_decref(probe);
    rc = json_object_set_new(obj, k, val);
    free(k);
    return rc == 0 ? 0 : -1;
fail:
    json_decref(val);
    return -1;
}

static int is_zero_scalar(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return json_string_length(v) == 0;
    case JSON_INTEGER: return json_integer_value(v) == 0;
    case JSON_REAL: return json_real_value(v) == 0.0;
    case JSON_FALSE: return 1;
    default: return 0;
    }
}

static int omit_zero(const schema_type_t *st, unsigned flags)
{
    /* encoding/json's omitempty drops zero scalars and empty strings, never
     * pointers that are set and never structs (Time, Quantity, IntOrString). */
    if (!(flags & PBF_OMITEMPTY) || (flags & (PBF_POINTER | PBF_DURATION))) return 0;
    return st->kind == SCHEMA_STRING || st->kind == SCHEMA_INTEGER ||
           st->kind == SCHEMA_NUMBER || st->kind == SCHEMA_BOOLEAN || st->kind == SCHEMA_BYTES;
}

/* Get obj[name] as a container of the given type, creating it. */
static json_t *container(json_t *obj, const char *name, int array)
{
    json_t *c = json_object_get(obj, name);
    if (array ? json_is_array(c) : json_is_object(c)) return c;
    c = array ? json_array() : json_object();
    if (!c || json_object_set_new(obj, name, c) != 0) return NULL;
    return c;
}

static int decode_field(dec_t *d, const schema_type_t *st, const pb_type_t *pt,
                        const k8s_pb_field_t *f, json_t *out);

/* Decode the fields of a message (type pt) into the JSON object out, whose
 * schema type is st. Inline messages decode into the same object. */
static int decode_fields(dec_t *d, const schema_type_t *st, const pb_type_t *pt,
                         const uint8_t *buf, size_t len, json_t *out)
{
    if (++d->depth > PB_MAX_DEPTH) {
        d->depth--;
        return dec_fail(d, "objects nested too deeply"), -1;
    }
    k8s_pb_reader_t r;
    k8s_pb_field_t f;
    int rc;
    k8s_pb_reader_init(&r, buf, len);
    while ((rc = k8s_pb_next(&r, &f)) == 1) {
        if (decode_field(d, st, pt, &f, out) != 0) {
            d->depth--;
            return -1;
        }
    }
    d->depth--;
    if (rc < 0) return dec_fail(d, "truncated or malformed message (%s)", st->name ? st->name : "?"), -1;
    return 0;
}

static int decode_field(dec_t *d, const schema_type_t *st, const pb_type_t *pt,
                        const k8s_pb_field_t *f, json_t *out)
{
    const pb_field_t *pf = table_field(pt, f->number);
    if (!pf) return 0; /* unknown field numbers are skipped, as proto2 does */
    if (pf->inline_type) {
        if (need_wire(d, f, K8S_PB_BYTES) != 0) return -1;
        return decode_fields(d, st, pf->inline_type, f->data, f->len, out);
    }
    const schema_field_t *sf = schema_field(st, pf->json);
    if (!sf || !sf->type) return 0; /* a field our schema does not serve */
    const schema_type_t *ft = sf->type;
    size_t plen = strlen(d->path);
    snprintf(d->path + plen, sizeof d->path - plen, "%s%s", plen ? "." : "", pf->json);
    int rc = -1;
    if (pf->flags & PBF_MAP) {
        json_t *obj = container(out, pf->json, 0);
        if (ft->kind != SCHEMA_MAP || !ft->elem) {
            dec_fail(d, "map field where the schema has no map");
        } else if (obj) {
            rc = add_map_entry(d, ft->elem, pf->flags, f, obj);
        }
    } else if (pf->flags & (PBF_REPEATED | PBF_WRAP)) {
        json_t *arr = container(out, pf->json, 1);
        if (ft->kind != SCHEMA_ARRAY || !ft->elem) {
            dec_fail(d, "repeated field where the schema has no list");
        } else if (arr) {
            rc = (pf->flags & PBF_WRAP) ? append_wrapped(d, ft->elem, f, arr)
                                        : append_repeated(d, ft->elem, f, arr);
        }
    } else if (ft->kind == SCHEMA_OBJECT && !(pf->flags & PBF_DURATION)) {
        /* A message seen twice merges, as protobuf specifies. */
        json_t *obj = json_object_get(out, pf->json);
        if (need_wire(d, f, K8S_PB_BYTES) != 0) {
        } else if (json_is_object(obj)) {
            rc = decode_message(d, ft, f->data, f->len, obj) ? 0 : -1;
        } else {
            json_t *v = decode_message(d, ft, f->data, f->len, NULL);
            rc = v ? json_object_set_new(out, pf->json, v) : -1;
        }
    } else {
        json_t *v = decode_value(d, ft, pf->flags, f);
        if (v && omit_zero(ft, pf->flags) && is_zero_scalar(v)) {
            json_decref(v);
            json_object_del(out, pf->json);
            rc = 0;
        } else if (v) {
            rc = json_object_set_new(out, pf->json, v);
        }
    }
    d->path[plen] = '\0';
    if (rc != 0) dec_fail(d, "cannot decode field %u", f->number);
    return rc;
}

/* Decode a message of object type st; into (borrowed) or a new object. */
static json_t *decode_message(dec_t *d, const schema_type_t *st, const uint8_t *buf, size_t len,
                              json_t *into)
{
    const pb_type_t *pt = table_type(st->name);
    if (!pt) return dec_fail(d, "no protobuf field table for %s", st->name ? st->name : "an anonymous type");
    json_t *out = into ? into : json_object();
    if (!out) return dec_fail(d, "out of memory");
    if (decode_fields(d, st, pt, buf, len, out) != 0) {
        if (!into) json_decref(out);
        return NULL;
    }
    return out;
}

static void err_init(char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
}

json_t *k8s_protobuf_decode_type(const char *type_name, const void *msg, size_t len, char *err,
                                 size_t errlen)
{
    dec_t d = {.err = err, .errlen = errlen};
    err_init(err, errlen);
    if (k8s_protobuf_load() != 0) return dec_fail(&d, "the protobuf field table failed to load");
    const schema_type_t *st = schema_lookup(type_name);
    if (!st || st->kind != SCHEMA_OBJECT)
        return dec_fail(&d, "no object type %s", type_name ? type_name : "(null)");
    if (!msg && len) return dec_fail(&d, "no data");
    return decode_message(&d, st, msg, len, NULL);
}

/* runtime.Unknown's TypeMeta {1: apiVersion, 2: kind}. */
static int decode_type_meta(dec_t *d, const k8s_pb_field_t *f, char *av, size_t avlen, char *kind,
                            size_t kindlen)
{
    k8s_pb_reader_t r;
    k8s_pb_field_t g;
    int rc;
    k8s_pb_reader_init(&r, f->data, f->len);
    while ((rc = k8s_pb_next(&r, &g)) == 1) {
        if (g.wire != K8S_PB_BYTES || (g.number != 1 && g.number != 2)) continue;
        char *dst = g.number == 1 ? av : kind;
        size_t cap = g.number == 1 ? avlen : kindlen;
        if (g.len >= cap || memchr(g.data, '\0', g.len))
            return dec_fail(d, "envelope: %s is not a valid name",
                            g.number == 1 ? "apiVersion" : "kind"), -1;
        memcpy(dst, g.data, g.len);
        dst[g.len] = '\0';
    }
    if (rc < 0) return dec_fail(d, "envelope: malformed TypeMeta"), -1;
    return 0;
}

json_t *k8s_protobuf_decode(const char *body, size_t len, char *err, size_t errlen)
{
    dec_t d = {.err = err, .errlen = errlen};
    err_init(err, errlen);
    static const char magic[4] = {'k', '8', 's', '\0'};
    if (!body || len < sizeof magic || memcmp(body, magic, sizeof magic) != 0)
        return dec_fail(&d, "not a Kubernetes protobuf message (the body must start with "
                            "the bytes \"k8s\\x00\")");
    if (k8s_protobuf_load() != 0) return dec_fail(&d, "the protobuf field table failed to load");
    char av[128] = "", kind[128] = "";
    const uint8_t *raw = NULL;
    size_t rawlen = 0;
    k8s_pb_reader_t r;
    k8s_pb_field_t f;
    int rc;
    k8s_pb_reader_init(&r, body + sizeof magic, len - sizeof magic);
    while ((rc = k8s_pb_next(&r, &f)) == 1) {
        if (f.number == 1 && f.wire == K8S_PB_BYTES) {
            if (decode_type_meta(&d, &f, av, sizeof av, kind, sizeof kind) != 0) return NULL;
        } else if (f.number == 2 && f.wire == K8S_PB_BYTES) {
            raw = f.data;
            rawlen = f.len;
        } else if (f.number == 3 && f.wire == K8S_PB_BYTES && f.len > 0) {
            return dec_fail(&d, "envelope: content encoding \"%.*s\" is not supported",
                            (int)(f.len > 32 ? 32 : f.len), (const char *)f.data);
        }
    }
    if (rc < 0) return dec_fail(&d, "envelope: truncated or malformed runtime.Unknown");
    if (!kind[0] || !av[0]) return dec_fail(&d, "envelope: apiVersion and kind are required");
    char group[128] = "";
    const char *version = av;
    const char *slash = strchr(av, '/');
    if (slash) {
        memcpy(group, av, (size_t)(slash - av));
        group[slash - av] = '\0';
        version = slash + 1;
    }
    const kind_def_t *k = registry_find_kind(group, version, kind);
    const schema_type_t *type = k ? k->schema : NULL;
    if (!type) {
        /* bodies of subresources (a TokenRequest for serviceaccounts/token)
         * are types without a resource of their own: find them by name,
         * io.k8s.api.<first label of the group, or core>.<version>.<kind> */
        char name[400];
        size_t gl = strcspn(group, ".");
        snprintf(name, sizeof name, "io.k8s.api.%.*s.%s.%s", (int)(gl ? gl : 4),
                 gl ? group : "core", version, kind);
        type = schema_lookup(name);
    }
    if (!type)
        return dec_fail(&d, "no kind %s in %s is served here", kind, av);
    json_t *out = json_object();
    if (!out) return dec_fail(&d, "out of memory");
    json_object_set_new(out, "kind", json_string(kind));
    json_object_set_new(out, "apiVersion", json_string(av));
    if (!decode_message(&d, type, raw, rawlen, out)) {
        json_decref(out);
        return NULL;
    }
    /* The object's own bytes never carry TypeMeta; keep the envelope's. */
    json_object_set_new(out, "kind", json_string(kind));
    json_object_set_new(out, "apiVersion", json_string(av));
    return out;
}
