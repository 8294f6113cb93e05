/* core/object/schema.h - field types of every kind, as the registry holds them.
 *
 * A schema_type_t describes one JSON value: a scalar, an object with named
 * fields (a Kubernetes struct), a map or a list. Built-in types are loaded
 * from the generated compact schema (core/object/kinds/schemas.json, made by
 * scripts/gen-schemas from the public Kubernetes API types); CRDs will build
 * the same structures from openAPIV3Schema at run time. Validation, defaulting,
 * strategic merge patch and OpenAPI all read these structures. */
#ifndef SKIFF_SCHEMA_H
#define SKIFF_SCHEMA_H

#include <stddef.h>

typedef enum schema_kind {
    SCHEMA_STRING = 1,
    SCHEMA_INTEGER,       /* int32 or int64, see format */
    SCHEMA_NUMBER,        /* float64 */
    SCHEMA_BOOLEAN,
    SCHEMA_OBJECT,        /* struct: named fields, unknown fields rejected in strict mode */
    SCHEMA_MAP,           /* map[string]elem */
    SCHEMA_ARRAY,         /* []elem */
    SCHEMA_ANY,           /* any JSON (RawExtension, preserve-unknown-fields) */
    SCHEMA_INT_OR_STRING, /* intstr.IntOrString */
    SCHEMA_QUANTITY,      /* resource.Quantity: "100m", "1Gi" or a number */
    SCHEMA_TIME,          /* RFC 3339 date-time string (metav1.Time), may be null */
    SCHEMA_BYTES,         /* []byte: base64 string */
} schema_kind_t;

typedef struct schema_type schema_type_t;

typedef struct schema_field {
    const char *name;               /* JSON name */
    const schema_type_t *type;
    int required;                   /* required by the API (validation error when absent) */
    const char *patch_strategy;     /* NULL, "merge", "replace", "retainKeys", "merge,retainKeys" */
    const char *patch_merge_key;    /* for lists of objects merged by key, e.g. "name" */
    const char *list_type;          /* NULL, "atomic", "set", "map" */
    const char *const *list_map_keys; /* NULL-terminated, for list_type "map" */
    const char *description;        /* short, ours; may be NULL */
} schema_field_t;

struct schema_type {
    const char *name;               /* "io.k8s.api.core.v1.PodSpec"; NULL for anonymous types */
    schema_kind_t kind;
    const char *format;             /* "int32", "int64", "double", "date-time", "byte" or NULL */
    const schema_type_t *elem;      /* SCHEMA_MAP, SCHEMA_ARRAY */
    const schema_field_t *fields;   /* SCHEMA_OBJECT */
    size_t nfields;
    const char *const *enum_values; /* NULL-terminated allowed string values, or NULL */
    const char *description;
};

/* Field of an object type by JSON name, or NULL. */
const schema_field_t *schema_field(const schema_type_t *t, const char *name);

/* Named type from the loaded schema set, or NULL. */
const schema_type_t *schema_lookup(const char *name);

/* Number of named types, and the i-th (for OpenAPI generation). */
size_t schema_count(void);
const schema_type_t *schema_at(size_t i);

/* Load the built-in schema set (embedded at build time). 0 or SKIFF_E*.
 * Idempotent; called once at start before anything else uses schemas. */
int schema_load_builtin(void);
void schema_unload(void);

#endif
