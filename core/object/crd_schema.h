/* core/object/crd_schema.h - custom resources: one served version of a
 * CustomResourceDefinition as the kind registry sees it, and what its
 * openAPIV3Schema does to an object (validation, defaulting, pruning of
 * unknown fields), the way the Kubernetes API server treats structural
 * schemas.
 *
 * The schema stays the JSON the user wrote (a subset of OpenAPI v3 with the
 * x-kubernetes-* extensions); nothing is compiled ahead. The registry's
 * validation and defaulting call in here for kinds whose kind_def_t has a
 * crd pointer (core/api/crd.c adds those kinds). */
#ifndef SKIFF_CRD_SCHEMA_H
#define SKIFF_CRD_SCHEMA_H

#include <jansson.h>

#include "object/registry.h"

/* One served version of a CRD. Owned by core/api/crd.c; never freed while
 * the server runs (a request may still hold its kind), only at shutdown. */
typedef struct crd_version {
    char *crd_name;             /* "crontabs.stable.example.com" */
    json_t *schema;             /* openAPIV3Schema (owned), or NULL: anything goes */
    /* scale subresource paths (".spec.replicas"), NULL without scale */
    char *spec_replicas_path;
    char *status_replicas_path;
    char *label_selector_path;  /* may be NULL with scale */
    int has_columns;            /* additionalPrinterColumns were given */
    int has_defaults;           /* the schema has a `default:` somewhere */
    const char *warning;        /* a deprecated version's Warning header line, or NULL */
    int64_t schema_rev;         /* store revision of the CRD this version was served from */
    const json_t *selectable_fields; /* selectableFields: [{"jsonPath": ".spec.x"}] or NULL */
} crd_version_t;

/* Check obj (a whole custom resource) against schema: types, required,
 * enum, pattern, minimum/maximum (exclusive too), minLength/maxLength,
 * minItems/maxItems, nullable, x-kubernetes-int-or-string,
 * x-kubernetes-preserve-unknown-fields, x-kubernetes-embedded-resource.
 * apiVersion, kind and metadata at the top are left to the caller. Fields
 * the schema does not know are reported as FieldValueUnknown when mode is
 * not VALIDATE_IGNORE_UNKNOWN (the caller prunes them or rejects the
 * request). Errors are appended to res; returns how many were added. */
size_t crd_schema_validate(const json_t *schema, const json_t *obj, int mode,
                           validation_result_t *res);

/* Apply `default:` values in place: absent fields, and null fields that are
 * not nullable, take their default; other nulls of non-nullable fields are
 * dropped (Kubernetes prunes them before defaulting). */
void crd_schema_default(const json_t *schema, json_t *obj);

/* 1 if a field selector may name path ("spec.color"): metadata.name,
 * metadata.namespace and the version's selectableFields. */
int crd_field_selectable(const crd_version_t *v, const char *path);

/* Forget the compiled patterns (at shutdown). */
void crd_schema_cache_clear(void);

/* 1 if the schema has a `default:` anywhere. */
int crd_schema_has_defaults(const json_t *schema);

/* Structural-schema checks of an openAPIV3Schema written in a CRD, errors
 * under the field path `path` ("spec.versions[0].schema.openAPIV3Schema"). */
void crd_schema_check(const json_t *schema, const char *path, validation_result_t *res);

/* The CustomResourceDefinition kind (crd_validate.c), registered with the
 * built-in kinds, and its validation (errors appended to res); the update
 * form adds what may not change. */
extern const kind_def_t crd_definition_kind;
/* The kind with its schema resolved (after the schema set is loaded). */
const kind_def_t *crd_definition_kind_get(void);
void crd_definition_validate(const json_t *obj, validation_result_t *res);
void crd_definition_validate_update(const json_t *obj, const json_t *old, validation_result_t *res);

/* Append one error (strings copied). */
void crd_result_add(validation_result_t *res, const char *field, const char *reason,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Follow a simple JSONPath (".spec.replicas", ".a.b[2].c") in obj:
 * borrowed value or NULL. */
json_t *crd_path_get(const json_t *obj, const char *path);
/* Set the value at a simple dotted path, creating objects on the way;
 * takes the reference. 0 or -1. */
int crd_path_set(json_t *obj, const char *path, json_t *value);

#endif
