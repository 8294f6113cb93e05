/* core/object/crd_validate.c - the CustomResourceDefinition kind itself
 * (apiextensions.k8s.io/v1): its registry entry, its defaults and its
 * validation, with the messages the Kubernetes API server gives.
 *
 * What a CRD makes the server serve is core/api/crd.c's business; what its
 * schema does to custom resources is crd_schema.c's. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "object/crd_schema.h"
#include "object/registry.h"

static const char *const crd_short_names[] = {"crd", "crds", NULL};
static const char *const crd_categories[] = {"api-extensions", NULL};
static const kind_column_t crd_columns[] = {
    {"NAME", "string", 0, ".metadata.name", NULL},
    /* kubectl shows the timestamp itself, not an age */
    {"CREATED AT", "string", 0, ".metadata.creationTimestamp", NULL},
    {NULL, NULL, 0, NULL, NULL},
};

static void crd_set_defaults(json_t *obj);

/* The generated schema set has no apiextensions types: the CRD's own
 * schema is declared here (fields sorted by name, as schema_field's binary
 * search needs). It gives OpenAPI and `kubectl explain` the shape, and the
 * registry's walk finds unknown fields (pruned, or refused under Strict);
 * what the values must be is checked by crd_definition_validate, so no
 * field is marked required here (the messages would come twice). */
static const schema_type_t k_string = {.kind = SCHEMA_STRING};
static const schema_type_t k_bool = {.kind = SCHEMA_BOOLEAN};
static const schema_type_t k_int32 = {.kind = SCHEMA_INTEGER, .format = "int32"};
static const schema_type_t k_time = {.kind = SCHEMA_TIME};
static const schema_type_t k_any = {.kind = SCHEMA_ANY};
static const schema_type_t k_strings = {.kind = SCHEMA_ARRAY, .elem = &k_string};

#define FIELDS(a) .kind = SCHEMA_OBJECT, .fields = a, .nfields = sizeof a / sizeof a[0]

static const schema_field_t names_fields[] = {
    {.name = "categories", .type = &k_strings, .description = "Groups this resource belongs to, such as all."},
    {.name = "kind", .type = &k_string, .description = "The CamelCase kind of the objects."},
    {.name = "listKind", .type = &k_string, .description = "The kind of lists of them (kind + List)."},
    {.name = "plural", .type = &k_string, .description = "The plural name, the resource in URLs."},
    {.name = "shortNames", .type = &k_strings, .description = "Short names for kubectl, like ct."},
    {.name = "singular", .type = &k_string, .description = "The singular name (kind in lower case)."},
};
static const schema_type_t names_type = {FIELDS(names_fields),
                                         .description = "The names to serve the resource under."};
static const schema_field_t scale_fields[] = {
    {.name = "labelSelectorPath", .type = &k_string, .description = "JSON path of the selector string (Scale status.selector)."},
    {.name = "specReplicasPath", .type = &k_string, .description = "JSON path of the desired replicas, under .spec."},
    {.name = "statusReplicasPath", .type = &k_string, .description = "JSON path of the observed replicas, under .status."},
};
static const schema_type_t scale_type = {FIELDS(scale_fields)};
static const schema_field_t sub_fields[] = {
    {.name = "scale", .type = &scale_type, .description = "Serve the scale subresource."},
    {.name = "status", .type = &k_any, .description = "Serve the status subresource ({})."},
};
static const schema_type_t sub_type = {FIELDS(sub_fields)};
static const schema_field_t column_fields[] = {
    {.name = "description", .type = &k_string},
    {.name = "format", .type = &k_string},
    {.name = "jsonPath", .type = &k_string, .description = "Simple JSONPath of the value shown."},
    {.name = "name", .type = &k_string, .description = "The column header."},
    {.name = "priority", .type = &k_int32, .description = "0: always shown; more: with -o wide."},
    {.name = "type", .type = &k_string, .description = "integer, number, string, boolean or date."},
};
static const schema_type_t column_type = {FIELDS(column_fields)};
static const schema_type_t columns_type = {.kind = SCHEMA_ARRAY, .elem = &column_type};
static const schema_field_t selectable_fields[] = {
    {.name = "jsonPath", .type = &k_string},
};
static const schema_type_t selectable_type = {FIELDS(selectable_fields)};
static const schema_type_t selectables_type = {.kind = SCHEMA_ARRAY, .elem = &selectable_type};
static const schema_field_t validation_fields[] = {
    {.name = "openAPIV3Schema", .type = &k_any, .description = "The structural schema of the objects."},
};
static const schema_type_t validation_type = {FIELDS(validation_fields)};
static const schema_field_t version_fields[] = {
    {.name = "additionalPrinterColumns", .type = &columns_type, .description = "Columns of kubectl get."},
    {.name = "deprecated", .type = &k_bool},
    {.name = "deprecationWarning", .type = &k_string},
    {.name = "name", .type = &k_string, .description = "The version name, such as v1."},
    {.name = "schema", .type = &validation_type},
    {.name = "selectableFields", .type = &selectables_type, .description = "Fields field selectors may name."},
    {.name = "served", .type = &k_bool, .description = "Whether the version is served."},
    {.name = "storage", .type = &k_bool, .description = "Whether objects are stored in this version (exactly one)."},
    {.name = "subresources", .type = &sub_type},
};
static const schema_type_t version_type = {FIELDS(version_fields)};
static const schema_type_t versions_type = {.kind = SCHEMA_ARRAY, .elem = &version_type};
static const schema_field_t conversion_fields[] = {
    {.name = "strategy", .type = &k_string, .description = "None (the only strategy served here)."},
    {.name = "webhook", .type = &k_any},
};
static const schema_type_t conversion_type = {FIELDS(conversion_fields)};
static const schema_field_t spec_fields[] = {
    {.name = "conversion", .type = &conversion_type},
    {.name = "group", .type = &k_string, .description = "The API group, a domain with a dot."},
    {.name = "names", .type = &names_type},
    {.name = "preserveUnknownFields", .type = &k_bool},
    {.name = "scope", .type = &k_string, .description = "Namespaced or Cluster."},
    {.name = "versions", .type = &versions_type},
};
static const schema_type_t spec_type = {FIELDS(spec_fields)};
static const schema_field_t condition_fields[] = {
    {.name = "lastTransitionTime", .type = &k_time},
    {.name = "message", .type = &k_string},
    {.name = "reason", .type = &k_string},
    {.name = "status", .type = &k_string},
    {.name = "type", .type = &k_string},
};
static const schema_type_t condition_type = {FIELDS(condition_fields)};
static const schema_type_t conditions_type = {.kind = SCHEMA_ARRAY, .elem = &condition_type};
static const schema_field_t status_fields[] = {
    {.name = "acceptedNames", .type = &names_type},
    {.name = "conditions", .type = &conditions_type},
    {.name = "storedVersions", .type = &k_strings},
};
static const schema_type_t status_type = {FIELDS(status_fields)};
static schema_field_t crd_fields[] = {
    {.name = "apiVersion", .type = &k_string},
    {.name = "kind", .type = &k_string},
    {.name = "metadata", .type = NULL}, /* ObjectMeta, set by crd_definition_kind_get */
    {.name = "spec", .type = &spec_type},
    {.name = "status", .type = &status_type},
};
#undef FIELDS
static const schema_type_t crd_schema_type = {
    .name = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    .kind = SCHEMA_OBJECT,
    .fields = crd_fields,
    .nfields = sizeof crd_fields / sizeof crd_fields[0],
    .description = "CustomResourceDefinition represents a resource that should be exposed on "
                   "the API server. Its name MUST be in the format <.spec.name>.<.spec.group>.",
};

const kind_def_t crd_definition_kind = {
    .group = "apiextensions.k8s.io",
    .version = "v1",
    .kind = "CustomResourceDefinition",
    .list_kind = "CustomResourceDefinitionList",
    .resource = "customresourcedefinitions",
    .singular = "customresourcedefinition",
    .namespaced = 0,
    .short_names = crd_short_names,
    .categories = crd_categories,
    .schema_name = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    .schema = &crd_schema_type,
    .has_status = 1,
    .columns = crd_columns,
    .set_defaults = crd_set_defaults,
};

const kind_def_t *crd_definition_kind_get(void)
{
    /* looked up each time: registry_init calls this after loading the
     * schemas, and a registry_shutdown before frees what it found */
    crd_fields[2].type = schema_lookup("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    if (!crd_fields[2].type) crd_fields[2].type = &k_any;
    return &crd_definition_kind;
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++) *p = (char)tolower((unsigned char)*p);
    return d;
}

static void crd_set_defaults(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *names = json_object_get(spec, "names");
    const char *kind = json_string_value(json_object_get(names, "kind"));
    if (json_is_object(names) && kind && *kind) {
        if (!json_string_length(json_object_get(names, "singular"))) {
            char *l = lower_dup(kind);
            if (l) json_object_set_new(names, "singular", json_string(l));
            free(l);
        }
        if (!json_string_length(json_object_get(names, "listKind"))) {
            char lk[256];
            snprintf(lk, sizeof lk, "%sList", kind);
            json_object_set_new(names, "listKind", json_string(lk));
        }
    }
    if (json_is_object(spec) && !json_object_get(spec, "conversion"))
        json_object_set_new(spec, "conversion", json_pack("{s:s}", "strategy", "None"));
}

/* ---- validation ------------------------------------------------------------ */

static int is_label(const char *s, int dns1035)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-')) return 0;
    }
    if (s[0] == '-' || s[n - 1] == '-') return 0;
    if (dns1035 && !islower((unsigned char)s[0])) return 0;
    return 1;
}

static int is_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) return 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ".");
        char part[254];
        memcpy(part, p, len);
        part[len] = '\0';
        if (!is_label(part, 0)) return 0;
        p += len;
        if (*p == '.') {
            p++;
            if (!*p) return 0;
        }
    }
    return 1;
}

static const char k_label_msg[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

static void check_label_name(validation_result_t *res, const json_t *names, const char *field,
                             int required)
{
    char path[128];
    snprintf(path, sizeof path, "spec.names.%s", field);
    const char *v = json_string_value(json_object_get(names, field));
    if (!v || !*v) {
        if (required) crd_result_add(res, path, "FieldValueRequired", "Required value");
        return;
    }
    if (!is_label(v, 0))
        crd_result_add(res, path, "FieldValueInvalid", "Invalid value: \"%s\": %s", v, k_label_msg);
}

static void check_kind_name(validation_result_t *res, const json_t *names, const char *field)
{
    char path[128];
    snprintf(path, sizeof path, "spec.names.%s", field);
    const char *v = json_string_value(json_object_get(names, field));
    if (!v || !*v) {
        crd_result_add(res, path, "FieldValueRequired", "Required value");
        return;
    }
    char *l = lower_dup(v);
    if (l && !is_label(l, 0))
        crd_result_add(res, path, "FieldValueInvalid",
                       "Invalid value: \"%s\": may have mixed case, but should otherwise match: "
                       "[a-z0-9]([-a-z0-9]*[a-z0-9])?",
                       v);
    free(l);
}

static void check_string_list(validation_result_t *res, const json_t *names, const char *field)
{
    const json_t *list = json_object_get(names, field);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        char path[128];
        snprintf(path, sizeof path, "spec.names.%s[%zu]", field, i);
        const char *s = json_string_value(v);
        if (!s || !is_label(s, 0))
            crd_result_add(res, path, "FieldValueInvalid", "Invalid value: \"%s\": %s",
                           s ? s : "", k_label_msg);
        for (size_t j = 0; j < i; j++)
            if (json_equal(v, json_array_get(list, j)))
                crd_result_add(res, path, "FieldValueDuplicate", "Duplicate value: \"%s\"", s ? s : "");
    }
}

static void check_column(validation_result_t *res, const json_t *col, const char *base)
{
    char path[512];
    static const char *const types[] = {"integer", "number", "string", "boolean", "date", NULL};
    const char *name = json_string_value(json_object_get(col, "name"));
    const char *type = json_string_value(json_object_get(col, "type"));
    const char *jp = json_string_value(json_object_get(col, "jsonPath"));
    if (!name || !*name) {
        snprintf(path, sizeof path, "%s.name", base);
        crd_result_add(res, path, "FieldValueRequired", "Required value");
    }
    snprintf(path, sizeof path, "%s.type", base);
    if (!type || !*type) {
        crd_result_add(res, path, "FieldValueRequired", "Required value");
    } else {
        int ok = 0;
        for (size_t i = 0; types[i]; i++) ok |= strcmp(type, types[i]) == 0;
        if (!ok)
            crd_result_add(res, path, "FieldValueNotSupported",
                           "Unsupported value: \"%s\": supported values: \"integer\", \"number\", "
                           "\"string\", \"boolean\", \"date\"",
                           type);
    }
    snprintf(path, sizeof path, "%s.jsonPath", base);
    if (!jp || !*jp) crd_result_add(res, path, "FieldValueRequired", "Required value");
    else if (jp[0] != '.')
        crd_result_add(res, path, "FieldValueInvalid",
                       "Invalid value: \"%s\": must be a simple json path starting with .", jp);
}

static void check_path_under(validation_result_t *res, const char *path, const char *v,
                             const char *under, int required)
{
    if (!v) {
        if (required) crd_result_add(res, path, "FieldValueRequired", "Required value");
        return;
    }
    size_t n = strlen(under);
    if (strncmp(v, under, n) != 0 || v[n] != '.' || !v[n + 1])
        crd_result_add(res, path, "FieldValueInvalid",
                       "Invalid value: \"%s\": should be a json path under %s", v, under);
}

static void check_versions(validation_result_t *res, const json_t *spec)
{
    const json_t *versions = json_object_get(spec, "versions");
    if (!json_is_array(versions) || json_array_size(versions) == 0) {
        crd_result_add(res, "spec.versions", "FieldValueInvalid",
                       "Invalid value: []apiextensions.CustomResourceDefinitionVersion(nil): must "
                       "have exactly one version marked as storage version");
        return;
    }
    size_t storage = 0, i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        char base[64], path[384];
        snprintf(base, sizeof base, "spec.versions[%zu]", i);
        const char *name = json_string_value(json_object_get(v, "name"));
        snprintf(path, sizeof path, "%s.name", base);
        if (!name || !*name) {
            crd_result_add(res, path, "FieldValueRequired", "Required value");
        } else if (!is_label(name, 1)) {
            crd_result_add(res, path, "FieldValueInvalid",
                           "Invalid value: \"%s\": a DNS-1035 label must consist of lower case "
                           "alphanumeric characters or '-', start with an alphabetic character, "
                           "and end with an alphanumeric character (e.g. 'my-name',  or "
                           "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                           name);
        } else {
            for (size_t j = 0; j < i; j++)
                if (json_equal(json_object_get(json_array_get(versions, j), "name"),
                               json_object_get(v, "name")))
                    crd_result_add(res, path, "FieldValueDuplicate", "Duplicate value: \"%s\"", name);
        }
        if (!json_is_boolean(json_object_get(v, "served"))) {
            snprintf(path, sizeof path, "%s.served", base);
            crd_result_add(res, path, "FieldValueRequired", "Required value");
        }
        if (!json_is_boolean(json_object_get(v, "storage"))) {
            snprintf(path, sizeof path, "%s.storage", base);
            crd_result_add(res, path, "FieldValueRequired", "Required value");
        }
        if (json_is_true(json_object_get(v, "storage"))) storage++;
        snprintf(path, sizeof path, "%s.schema.openAPIV3Schema", base);
        crd_schema_check(json_object_get(json_object_get(v, "schema"), "openAPIV3Schema"), path, res);
        const json_t *sub = json_object_get(v, "subresources");
        const json_t *scale = json_object_get(sub, "scale");
        if (scale) {
            snprintf(path, sizeof path, "%s.subresources.scale.specReplicasPath", base);
            check_path_under(res, path, json_string_value(json_object_get(scale, "specReplicasPath")),
                             ".spec", 1);
            snprintf(path, sizeof path, "%s.subresources.scale.statusReplicasPath", base);
            check_path_under(res, path,
                             json_string_value(json_object_get(scale, "statusReplicasPath")),
                             ".status", 1);
            snprintf(path, sizeof path, "%s.subresources.scale.labelSelectorPath", base);
            const char *lsp = json_string_value(json_object_get(scale, "labelSelectorPath"));
            if (lsp && strncmp(lsp, ".spec.", 6) != 0)
                check_path_under(res, path, lsp, ".status", 0);
        }
        size_t j;
        json_t *sf;
        const json_t *sfs = json_object_get(v, "selectableFields");
        if (json_array_size(sfs) > 8) {
            snprintf(path, sizeof path, "%s.selectableFields", base);
            crd_result_add(res, path, "FieldValueTooMany", "Too many: %zu: must have at most 8 items",
                           json_array_size(sfs));
        }
        json_array_foreach(sfs, j, sf)
        {
            const char *jp = json_string_value(json_object_get(sf, "jsonPath"));
            snprintf(path, sizeof path, "%s.selectableFields[%zu].jsonPath", base, j);
            if (!jp || !*jp) crd_result_add(res, path, "FieldValueRequired", "Required value");
            else if (jp[0] != '.' || strchr(jp, '[') || strchr(jp, '*'))
                crd_result_add(res, path, "FieldValueInvalid",
                               "Invalid value: \"%s\": must be a simple json path starting with .", jp);
        }
        json_t *col;
        json_array_foreach(json_object_get(v, "additionalPrinterColumns"), j, col)
        {
            snprintf(path, sizeof path, "%s.additionalPrinterColumns[%zu]", base, j);
            check_column(res, col, path);
        }
    }
    if (storage != 1)
        crd_result_add(res, "spec.versions", "FieldValueInvalid",
                       "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must "
                       "have exactly one version marked as storage version");
}

void crd_definition_validate(const json_t *obj, validation_result_t *res)
{
    const json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        crd_result_add(res, "spec", "FieldValueRequired", "Required value");
        return;
    }
    const char *group = json_string_value(json_object_get(spec, "group"));
    if (!group || !*group) crd_result_add(res, "spec.group", "FieldValueRequired", "Required value");
    else if (!strchr(group, '.'))
        crd_result_add(res, "spec.group", "FieldValueInvalid",
                       "Invalid value: \"%s\": should be a domain with at least one dot", group);
    else if (!is_subdomain(group))
        crd_result_add(res, "spec.group", "FieldValueInvalid",
                       "Invalid value: \"%s\": a lowercase RFC 1123 subdomain must consist of lower "
                       "case alphanumeric characters, '-' or '.', and must start and end with an "
                       "alphanumeric character",
                       group);
    const char *scope = json_string_value(json_object_get(spec, "scope"));
    if (!scope || !*scope)
        crd_result_add(res, "spec.scope", "FieldValueRequired", "Required value");
    else if (strcmp(scope, "Namespaced") != 0 && strcmp(scope, "Cluster") != 0)
        crd_result_add(res, "spec.scope", "FieldValueNotSupported",
                       "Unsupported value: \"%s\": supported values: \"Cluster\", \"Namespaced\"",
                       scope);
    const json_t *names = json_object_get(spec, "names");
    check_label_name(res, names, "plural", 1);
    check_label_name(res, names, "singular", 0);
    check_kind_name(res, names, "kind");
    check_kind_name(res, names, "listKind");
    const char *kind = json_string_value(json_object_get(names, "kind"));
    const char *lk = json_string_value(json_object_get(names, "listKind"));
    if (kind && lk && *kind && strcmp(kind, lk) == 0)
        crd_result_add(res, "spec.names.listKind", "FieldValueInvalid",
                       "Invalid value: \"%s\": kind and listKind may not be the same or "
                       "listKind must be set",
                       lk);
    check_string_list(res, names, "shortNames");
    check_string_list(res, names, "categories");
    const char *plural = json_string_value(json_object_get(names, "plural"));
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (plural && group && name) {
        char want[512];
        snprintf(want, sizeof want, "%s.%s", plural, group);
        if (strcmp(want, name) != 0)
            crd_result_add(res, "metadata.name", "FieldValueInvalid",
                           "Invalid value: \"%s\": must be spec.names.plural+\".\"+spec.group",
                           name);
    }
    const char *strategy =
        json_string_value(json_object_get(json_object_get(spec, "conversion"), "strategy"));
    if (strategy && strcmp(strategy, "None") != 0)
        crd_result_add(res, "spec.conversion.strategy", "FieldValueNotSupported",
                       "Unsupported value: \"%s\": supported values: \"None\" (this server has "
                       "no conversion webhooks)",
                       strategy);
    check_versions(res, spec);
}

/* Immutable once created: scope, and (through metadata.name) group and plural. */
void crd_definition_validate_update(const json_t *obj, const json_t *old, validation_result_t *res)
{
    const json_t *s = json_object_get(json_object_get(obj, "spec"), "scope");
    const json_t *o = json_object_get(json_object_get(old, "spec"), "scope");
    if (o && !json_equal(s, o))
        crd_result_add(res, "spec.scope", "FieldValueInvalid",
                       "Invalid value: \"%s\": field is immutable", json_string_value(s) ? json_string_value(s) : "");
    /* a version objects may still be stored in cannot go */
    const json_t *stored = json_object_get(json_object_get(old, "status"), "storedVersions");
    const json_t *versions = json_object_get(json_object_get(obj, "spec"), "versions");
    size_t i;
    json_t *sv;
    json_array_foreach(stored, i, sv)
    {
        int found = 0;
        size_t j;
        json_t *v;
        json_array_foreach(versions, j, v) found |= json_equal(json_object_get(v, "name"), sv);
        if (found || !json_is_string(sv)) continue;
        char path[64];
        snprintf(path, sizeof path, "status.storedVersions[%zu]", i);
        crd_result_add(res, path, "FieldValueInvalid",
                       "Invalid value: \"%s\": must appear in spec.versions", json_string_value(sv));
    }
}
