/* core/object/registry.h - the kind registry: every served kind declared once.
 *
 * Each kind has its group, version, plural resource name, scope, schema,
 * defaults, printer columns and subresources. Discovery, OpenAPI,
 * validation, defaulting, patching and the REST handlers all read this one
 * table. Built-in kinds are declared in core/object/kinds.c; CRDs will add
 * entries at run time through registry_add(). */
#ifndef SKIFF_REGISTRY_H
#define SKIFF_REGISTRY_H

#include <stdint.h>

#include <jansson.h>

#include "object/schema.h"

typedef struct kind_column {
    const char *name;        /* "READY" */
    const char *type;        /* "string", "integer", "date" */
    int priority;            /* 0: always; 1: only with -o wide */
    const char *json_path;   /* simple path like ".spec.replicas" (NULL if computed) */
    /* Computed cell for columns no path can express (e.g. "1/1" ready
     * containers); returns a new json_t or NULL. */
    json_t *(*compute)(const json_t *obj);
} kind_column_t;

/* A subresource whose body is a kind of its own (serviceaccounts/token
 * takes an authentication.k8s.io/v1 TokenRequest). status and scale have
 * their own flags in kind_def_t. */
typedef struct kind_subresource {
    const char *name;        /* "token" */
    const char *group;       /* group of the body's kind: "authentication.k8s.io" */
    const char *version;     /* "v1" */
    const char *kind;        /* "TokenRequest" */
    const char *schema_name; /* "io.k8s.api.authentication.v1.TokenRequest" */
    const char *const *verbs; /* NULL-terminated: {"create", NULL} */
} kind_subresource_t;

typedef struct kind_def {
    const char *group;       /* "" for core */
    const char *version;     /* "v1" */
    const char *kind;        /* "Deployment" */
    const char *list_kind;   /* "DeploymentList" */
    const char *resource;    /* "deployments" */
    const char *singular;    /* "deployment" */
    int namespaced;
    const char *const *short_names; /* NULL-terminated or NULL */
    const char *const *categories;  /* NULL-terminated or NULL: "all" */
    const char *schema_name; /* "io.k8s.api.apps.v1.Deployment" */
    const schema_type_t *schema; /* resolved at registry_init */
    int has_status;          /* status subresource; spec changes ignore status and vice versa */
    int has_scale;           /* scale subresource (spec.replicas, status.replicas, selector) */
    const char *scale_selector_path; /* "spec.selector" (label selector object) or NULL */
    const kind_column_t *columns;  /* printer columns after NAME (and before AGE), {NULL}-terminated */
    /* Default values, applied on create and update the way the Kubernetes
     * API defaults them. May be NULL. */
    void (*set_defaults)(json_t *obj);
    /* One resource served in several versions (autoscaling v2 and v1
     * HorizontalPodAutoscaler): every version shares group and resource,
     * so one watch cache and one store key. storage_version names the
     * version the store holds (NULL: this entry is stored as it is). The
     * hooks convert a whole object between this version and the storage
     * version, kind and apiVersion included; they return a new reference
     * (NULL on allocation failure) and never modify their argument. */
    const char *storage_version;
    json_t *(*to_storage)(const json_t *obj);
    json_t *(*from_storage)(const json_t *obj);
    /* Verbs the resource serves, NULL-terminated; NULL means the standard
     * set (create, delete, deletecollection, get, list, patch, update,
     * watch). Review kinds (SelfSubjectAccessReview, TokenReview, ...)
     * list only "create": they are answered, never stored. */
    const char *const *verbs;
    /* Extra subresources with a body kind of their own, {NULL}-terminated,
     * or NULL. */
    const kind_subresource_t *subresources;
    /* Custom resources (core/api/crd.c): the CRD version's schema, scale
     * paths and columns; validation, defaulting and conversion follow it.
     * NULL for built-in kinds. */
    const struct crd_version *crd;
} kind_def_t;

/* Load schemas and resolve every built-in kind. 0 or SKIFF_E*. */
int registry_init(void);
void registry_shutdown(void);

size_t registry_count(void);
const kind_def_t *registry_at(size_t i);

/* Lookups; version NULL matches the preferred (only) version. */
const kind_def_t *registry_find_resource(const char *group, const char *version,
                                         const char *resource);
const kind_def_t *registry_find_kind(const char *group, const char *version, const char *kind);

/* "apps/v1" or "v1" for a kind; static buffer owned by the kind. */
const char *registry_api_version(const kind_def_t *k);

/* One validation problem, the way Kubernetes reports it in Status causes. */
typedef struct validation_error {
    char *field;    /* "spec.template.spec.containers[0].image" */
    char *reason;   /* "FieldValueRequired", "FieldValueInvalid", "FieldValueTypeInvalid",
                       "FieldValueNotSupported", "FieldValueUnknown" (unknown field) */
    char *message;  /* "Required value", "Invalid value: \"x\": must be ..." */
} validation_error_t;

typedef struct validation_result {
    validation_error_t *errors;
    size_t count;
    int unknown_fields; /* how many of the errors are unknown fields */
} validation_result_t;

enum { VALIDATE_IGNORE_UNKNOWN = 0, VALIDATE_WARN_UNKNOWN = 1, VALIDATE_STRICT = 2 };

/* Check obj against the kind's schema: JSON types, required fields, enum
 * values, names (DNS-1123 where Kubernetes requires it), and unknown fields
 * (reported only when mode is VALIDATE_STRICT or VALIDATE_WARN_UNKNOWN).
 * Returns the number of errors; res is filled (free with validation_result_free). */
size_t registry_validate(const kind_def_t *k, const json_t *obj, int mode,
                         validation_result_t *res);
void validation_result_free(validation_result_t *res);
/* The JSON type name Kubernetes' validation messages use for a value
 * ("object", "array", "string", "integer", "number", "boolean", "null"). */
const char *validation_json_type(const json_t *v);

/* Apply the kind's defaults in place (creates and updates). */
void registry_set_defaults(const kind_def_t *k, json_t *obj);

/* The entry whose version the store holds for k's resource: k itself
 * unless k names another storage_version. */
const kind_def_t *registry_storage_kind(const kind_def_t *k);

/* Conversions at the API boundary for kinds with a storage_version. A
 * request object in k's version becomes the stored form; a stored object
 * (or a list of them: an object with an "items" array) becomes k's
 * version. Objects already in the target version, objects of other
 * kinds (Status, Scale) and kinds without hooks are returned as is. Both
 * return a new reference, NULL only when memory runs out. */
json_t *registry_convert_to_storage(const kind_def_t *k, const json_t *obj);
json_t *registry_convert_from_storage(const kind_def_t *k, const json_t *obj);
/* 1 when an object stored at revision rev (-1: unknown) is not served as
 * stored when read through k: another version, or a custom resource
 * stored before its schema's defaults were known. */
int registry_converts_on_read(const kind_def_t *k, int64_t rev);

/* Add a kind at run time (CRDs). The struct is copied; the strings, arrays
 * and functions it points to must outlive the registry. schema may be set
 * directly, otherwise schema_name is looked up. 0, SKIFF_EEXIST (same
 * group, version and resource), SKIFF_EINVAL or SKIFF_ENOMEM. Pointers
 * returned by earlier lookups stay valid. */
int registry_add(const kind_def_t *k);

/* Stop serving a kind added with registry_add (a deleted CRD version).
 * The entry's memory is kept until registry_shutdown, so pointers held by
 * requests in flight stay valid. 0 or SKIFF_ENOENT. */
int registry_remove(const kind_def_t *k);

/* The verbs k serves (k->verbs or the standard set), NULL-terminated. */
const char *const *registry_verbs(const kind_def_t *k);

/* 1 if k serves verb ("get", "create", ...), else 0. */
int registry_verb_allowed(const kind_def_t *k, const char *verb);

/* k's subresource with a body kind of its own named name, or NULL. */
const kind_subresource_t *registry_find_subresource(const kind_def_t *k, const char *name);

/* Kind named the way a user types it: plural, singular, short name or
 * kind, optionally followed by ".group" ("deploy", "pods", "jobs.batch").
 * For command-line tools; NULL when nothing matches. */
const kind_def_t *registry_find_name(const char *name);

/* 1 if s is a valid resource.Quantity string ("100m", "1Gi", "2", "1e3"),
 * else 0. */
int registry_quantity_valid(const char *s);

/* Value of a quantity (a JSON string like "250m" or a number) in base
 * units: 0.25 for "250m", 1073741824 for "1Gi". 0 or SKIFF_EINVAL. */
int registry_quantity_parse(const json_t *q, double *out);

/* The built-in kinds (core/object/kinds.c), registered by registry_init. */
extern const kind_def_t kinds_builtin[];
extern const size_t kinds_builtin_count;

/* A label selector object ({matchLabels, matchExpressions}) or a plain
 * map as the string kubectl prints ("app=web,tier in (a,b)"); "<none>"
 * when empty. Returns a new json string. */
json_t *kinds_selector_string(const json_t *sel);

/* Can objects of k be selected by this field (`--field-selector path=...`)? */
int registry_field_label_supported(const kind_def_t *k, const char *path);

#endif
