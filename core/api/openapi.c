/* core/api/openapi.c - OpenAPI v2 and v3 documents from the kind registry and
 * the schema set, cached and addressed by content hash (v3).
 *
 * Names, operation ids, x-kubernetes-* extensions and query parameters
 * follow the documents a Kubernetes 1.32 API server publishes, because
 * kubectl looks for them: x-kubernetes-group-version-kind on path
 * operations (explain, the fieldValidation check) and as a list on
 * definitions, the patch extensions on fields (apply). This file renders
 * documents only; the REST handlers implement what they describe. */
#include "api/openapi.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <skiff/objects.h>

#include "api/crd.h"
#include "object/crd_schema.h"
#include "object/registry.h"
#include "object/schema.h"
#include "skiff/errors.h"

#define META "io.k8s.apimachinery.pkg.apis.meta.v1."
#define PATCH_DEF META "Patch"
#define STATUS_DEF META "Status"
#define DELETE_OPTIONS_DEF META "DeleteOptions"
#define WATCH_EVENT_DEF META "WatchEvent"
#define SCALE_DEF "io.k8s.api.autoscaling.v1.Scale"

static const char k_status_404[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"the server could not find the requested resource\",\"reason\":\"NotFound\","
    "\"details\":{},\"code\":404}";
static const char k_status_405[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"the server does not allow this method on the requested resource\","
    "\"reason\":\"MethodNotAllowed\",\"details\":{},\"code\":405}";
static const char k_status_500[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"the OpenAPI document could not be built\",\"reason\":\"InternalError\","
    "\"details\":{},\"code\":500}";
static const char k_status_406[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"only application/json is served for OpenAPI documents\","
    "\"reason\":\"NotAcceptable\",\"details\":{},\"code\":406}";

/* A document generator: v2 or v3 differ in where refs point and how
 * parameters, bodies and responses are written. */
typedef struct gen {
    int v3;
    const char *ref_prefix; /* "#/definitions/" or "#/components/schemas/" */
    json_t *defs;           /* name -> schema (the document's own object) */
    json_t *paths;
} gen_t;

/* ---- schema types to JSON schema ---------------------------------------- */

static int is_ref_type(const schema_type_t *t)
{
    /* Named types get a definition; anonymous ones (lists, maps, scalars,
     * enum strings) are written inline, as Kubernetes does. */
    return t && t->name != NULL;
}

static json_t *ref_to(const gen_t *g, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", g->ref_prefix, name);
    return json_pack("{s:s}", "$ref", buf);
}

static json_t *str_list(const char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void add_definition(gen_t *g, const schema_type_t *t, const char *name);

/* Inline schema of a type (a $ref for named types; their definition is
 * added to the document too). */
static json_t *type_schema(gen_t *g, const schema_type_t *t)
{
    if (!t)
        return json_object();
    if (is_ref_type(t)) {
        add_definition(g, t, t->name);
        return ref_to(g, t->name);
    }
    json_t *s = json_object();
    switch (t->kind) {
    case SCHEMA_STRING:
        json_object_set_new(s, "type", json_string("string"));
        if (t->enum_values)
            json_object_set_new(s, "enum", str_list(t->enum_values));
        break;
    case SCHEMA_INTEGER:
        json_object_set_new(s, "type", json_string("integer"));
        json_object_set_new(s, "format", json_string(t->format ? t->format : "int64"));
        break;
    case SCHEMA_NUMBER:
        json_object_set_new(s, "type", json_string("number"));
        json_object_set_new(s, "format", json_string(t->format ? t->format : "double"));
        break;
    case SCHEMA_BOOLEAN:
        json_object_set_new(s, "type", json_string("boolean"));
        break;
    case SCHEMA_BYTES:
        json_object_set_new(s, "type", json_string("string"));
        json_object_set_new(s, "format", json_string("byte"));
        break;
    case SCHEMA_ARRAY:
        json_object_set_new(s, "type", json_string("array"));
        json_object_set_new(s, "items", type_schema(g, t->elem));
        break;
    case SCHEMA_MAP:
        json_object_set_new(s, "type", json_string("object"));
        json_object_set_new(s, "additionalProperties", type_schema(g, t->elem));
        break;
    case SCHEMA_INT_OR_STRING:
        json_object_set_new(s, "type", json_string("string"));
        json_object_set_new(s, "format", json_string("int-or-string"));
        if (g->v3)
            json_object_set_new(s, "x-kubernetes-int-or-string", json_true());
        break;
    case SCHEMA_QUANTITY:
        json_object_set_new(s, "type", json_string("string"));
        break;
    case SCHEMA_TIME:
        json_object_set_new(s, "type", json_string("string"));
        json_object_set_new(s, "format", json_string("date-time"));
        break;
    case SCHEMA_ANY:
        json_object_set_new(s, "type", json_string("object"));
        if (g->v3)
            json_object_set_new(s, "x-kubernetes-preserve-unknown-fields", json_true());
        break;
    case SCHEMA_OBJECT: {
        /* Anonymous struct (CRD schemas): properties inline. */
        json_t *props = json_object(), *req = json_array();
        json_object_set_new(s, "type", json_string("object"));
        for (size_t i = 0; i < t->nfields; i++) {
            const schema_field_t *f = &t->fields[i];
            json_t *p = type_schema(g, f->type);
            if (f->description)
                json_object_set_new(p, "description", json_string(f->description));
            json_object_set_new(props, f->name, p);
            if (f->required)
                json_array_append_new(req, json_string(f->name));
        }
        json_object_set_new(s, "properties", props);
        if (json_array_size(req))
            json_object_set_new(s, "required", req);
        else
            json_decref(req);
        break;
    }
    }
    if (t->description && !json_object_get(s, "description"))
        json_object_set_new(s, "description", json_string(t->description));
    return s;
}

static json_t *field_schema(gen_t *g, const schema_field_t *f)
{
    json_t *p = type_schema(g, f->type);
    if (f->description)
        json_object_set_new(p, "description", json_string(f->description));
    if (f->patch_merge_key)
        json_object_set_new(p, "x-kubernetes-patch-merge-key", json_string(f->patch_merge_key));
    if (f->patch_strategy)
        json_object_set_new(p, "x-kubernetes-patch-strategy", json_string(f->patch_strategy));
    if (f->list_type)
        json_object_set_new(p, "x-kubernetes-list-type", json_string(f->list_type));
    if (f->list_map_keys)
        json_object_set_new(p, "x-kubernetes-list-map-keys", str_list(f->list_map_keys));
    return p;
}

/* x-kubernetes-group-version-kind entries for a definition name. */
static json_t *gvk_list_for(const char *name)
{
    json_t *list = json_array();
    size_t n = registry_count();
    for (size_t i = 0; i < n; i++) {
        const kind_def_t *k = registry_at(i);
        if (!k || !k->schema_name)
            continue;
        const char *group = k->group ? k->group : "";
        if (strcmp(k->schema_name, name) == 0)
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "group", group, "kind",
                                                  k->kind, "version", k->version));
        /* The list type sits next to the kind: io.k8s.api.apps.v1.DeploymentList. */
        const char *dot = strrchr(k->schema_name, '.');
        size_t plen = dot ? (size_t)(dot - k->schema_name) + 1 : 0;
        if (k->list_kind && strncmp(name, k->schema_name, plen) == 0 &&
            strcmp(name + plen, k->list_kind) == 0)
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "group", group, "kind",
                                                  k->list_kind, "version", k->version));
    }
    if (strcmp(name, STATUS_DEF) == 0)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "group", "", "kind", "Status",
                                              "version", "v1"));
    if (strcmp(name, SCALE_DEF) == 0)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "group", "autoscaling", "kind",
                                              "Scale", "version", "v1"));
    if (json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

/* The schema set carries no descriptions; give the top level of every kind
 * the few words `kubectl explain <kind>` shows first. */
static const struct {
    const char *field, *text;
} k_std_fields[] = {
    {"apiVersion", "The versioned schema this object follows, such as \"v1\" or \"apps/v1\"."},
    {"kind", "The type of this object, in CamelCase, such as \"Pod\"."},
    {"metadata", "Standard object metadata: name, namespace, labels, annotations, owners, "
                 "finalizers and the fields the server maintains."},
    {"spec", "The desired state of the object, written by its users."},
    {"status", "The most recently observed state of the object, written by the system."},
    {"items", "The objects of the list."},
};

static void describe_top_level(json_t *def, json_t *gvk)
{
    json_t *props = json_object_get(def, "properties");
    for (size_t i = 0; i < sizeof k_std_fields / sizeof k_std_fields[0]; i++) {
        json_t *p = json_object_get(props, k_std_fields[i].field);
        if (p && !json_object_get(p, "description"))
            json_object_set_new(p, "description", json_string(k_std_fields[i].text));
    }
    json_t *first = json_array_get(gvk, 0);
    if (!json_object_get(def, "description") && first) {
        const char *group = json_string_value(json_object_get(first, "group"));
        char text[400];
        snprintf(text, sizeof text, "%s is an object of the %s%s%s API.",
                 json_string_value(json_object_get(first, "kind")), group ? group : "",
                 group && group[0] ? "/" : "", json_string_value(json_object_get(first, "version")));
        json_object_set_new(def, "description", json_string(text));
    }
}

static void add_definition(gen_t *g, const schema_type_t *t, const char *name)
{
    if (json_object_get(g->defs, name))
        return;
    json_t *d = json_object();
    /* Reserve the name first: types refer to themselves (JSONSchemaProps). */
    json_object_set_new(g->defs, name, d);
    if (t->kind == SCHEMA_OBJECT) {
        json_t *props = json_object(), *req = json_array();
        if (t->description)
            json_object_set_new(d, "description", json_string(t->description));
        json_object_set_new(d, "type", json_string("object"));
        for (size_t i = 0; i < t->nfields; i++) {
            const schema_field_t *f = &t->fields[i];
            json_object_set_new(props, f->name, field_schema(g, f));
            if (f->required)
                json_array_append_new(req, json_string(f->name));
        }
        if (json_array_size(req))
            json_object_set_new(d, "required", req);
        else
            json_decref(req);
        json_object_set_new(d, "properties", props);
    } else {
        /* Named scalar-like types (Time, Quantity, IntOrString, RawExtension). */
        schema_type_t anon = *t;
        anon.name = NULL;
        json_t *s = type_schema(g, &anon);
        json_object_update(d, s);
        json_decref(s);
    }
    json_t *gvk = gvk_list_for(name);
    if (gvk) {
        describe_top_level(d, gvk);
        json_object_set_new(d, "x-kubernetes-group-version-kind", gvk);
    }
}

/* Meta types every document needs even if no kind refers to them. */
static void add_meta_definitions(gen_t *g)
{
    const char *names[] = {STATUS_DEF, DELETE_OPTIONS_DEF, WATCH_EVENT_DEF, META "ListMeta",
                           META "ObjectMeta"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const schema_type_t *t = schema_lookup(names[i]);
        if (t)
            add_definition(g, t, names[i]);
    }
    if (!json_object_get(g->defs, PATCH_DEF))
        json_object_set_new(g->defs, PATCH_DEF,
                            json_pack("{s:s, s:s}", "description",
                                      "Patch is the body of a PATCH request; its format is "
                                      "given by the Content-Type.",
                                      "type", "object"));
}

/* Definition name of a kind's list type, and its definition if the schema
 * set has none. */
static void list_def_name(const kind_def_t *k, char *buf, size_t size)
{
    const char *dot = strrchr(k->schema_name, '.');
    int plen = dot ? (int)(dot - k->schema_name) + 1 : 0;
    snprintf(buf, size, "%.*s%s", plen, k->schema_name, k->list_kind ? k->list_kind : "List");
}

static void add_kind_definitions(gen_t *g, const kind_def_t *k)
{
    if (!k->schema_name)
        return;
    if (k->crd && !json_object_get(g->defs, k->schema_name)) {
        json_t *d = crd_openapi_definition(k, g->ref_prefix, g->v3);
        if (d)
            json_object_set_new(g->defs, k->schema_name, d);
    }
    if (k->schema)
        add_definition(g, k->schema, k->schema_name);
    char lname[512];
    list_def_name(k, lname, sizeof lname);
    const schema_type_t *lt = schema_lookup(lname);
    if (lt) {
        add_definition(g, lt, lname);
    } else if (!json_object_get(g->defs, lname)) {
        json_t *d = json_pack("{s:s, s:[s], s:{s:{s:s}, s:{s:s, s:o}, s:{s:s}, s:o}}", "type",
                              "object", "required", "items", "properties", "apiVersion", "type",
                              "string", "items", "type", "array", "items",
                              ref_to(g, k->schema_name), "kind", "type", "string", "metadata",
                              ref_to(g, META "ListMeta"));
        json_t *gvk = gvk_list_for(lname);
        if (gvk) {
            describe_top_level(d, gvk);
            json_object_set_new(d, "x-kubernetes-group-version-kind", gvk);
        }
        json_object_set_new(g->defs, lname, d);
    }
    if (k->has_scale) {
        const schema_type_t *st = schema_lookup(SCALE_DEF);
        if (st)
            add_definition(g, st, SCALE_DEF);
    }
}

/* ---- paths --------------------------------------------------------------- */

typedef struct param_def {
    const char *name;
    const char *type; /* "string", "boolean", "integer" */
    const char *description;
} param_def_t;

static const param_def_t P_LIST[] = {
    {"allowWatchBookmarks", "boolean",
     "Ask for BOOKMARK watch events; the server may send them at any time. Ignored when not "
     "watching."},
    {"continue", "string", "Token from a previous limited list call: return the next chunk."},
    {"fieldSelector", "string", "Only return objects whose fields match this selector."},
    {"labelSelector", "string", "Only return objects whose labels match this selector."},
    {"limit", "integer",
     "Most objects to return; when more exist, metadata.continue allows fetching the rest."},
    {"resourceVersion", "string",
     "Constrains which resource versions the answer may be served from."},
    {"resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."},
    {"sendInitialEvents", "boolean",
     "With watch: start with synthetic ADDED events for the current state, then a bookmark."},
    {"timeoutSeconds", "integer", "Time limit for the list or watch call."},
    {"watch", "boolean", "Watch for changes and return them as a stream of events."},
    {NULL, NULL, NULL}};
static const param_def_t P_WRITE[] = {
    {"dryRun", "string", "When All, every stage runs but nothing is persisted."},
    {"fieldManager", "string", "Name of the actor making the change (managedFields)."},
    {"fieldValidation", "string",
     "What the server does with unknown or duplicate fields: Ignore, Warn (the default) or "
     "Strict (reject the request)."},
    {NULL, NULL, NULL}};
static const param_def_t P_PATCH_EXTRA[] = {
    {"force", "boolean", "For apply patches: take over fields owned by other managers."},
    {NULL, NULL, NULL}};
static const param_def_t P_DELETE[] = {
    {"dryRun", "string", "When All, every stage runs but nothing is persisted."},
    {"gracePeriodSeconds", "integer", "Seconds before the object is deleted; 0 deletes now."},
    {"ignoreStoreReadErrorWithClusterBreakingPotential", "boolean",
     "Delete an object that cannot be read from storage (unsafe)."},
    {"orphanDependents", "boolean", "Deprecated: use propagationPolicy."},
    {"propagationPolicy", "string",
     "Whether and how dependents are garbage collected: Orphan, Background or Foreground."},
    {NULL, NULL, NULL}};

static json_t *param_json(const gen_t *g, const char *name, const char *in, const char *type,
                          const char *desc, int required)
{
    json_t *p = json_pack("{s:s, s:s, s:s}", "name", name, "in", in, "description", desc);
    if (required)
        json_object_set_new(p, "required", json_true());
    if (g->v3)
        json_object_set_new(p, "schema", json_pack("{s:s, s:b}", "type", type, "uniqueItems", 1));
    else {
        json_object_set_new(p, "type", json_string(type));
        json_object_set_new(p, "uniqueItems", json_true());
    }
    return p;
}

static void add_params(const gen_t *g, json_t *arr, const param_def_t *defs)
{
    for (size_t i = 0; defs[i].name; i++)
        json_array_append_new(arr, param_json(g, defs[i].name, "query", defs[i].type,
                                              defs[i].description, 0));
}

static json_t *media_list(const char *const *types, const gen_t *g, const char *ref)
{
    /* v3: {"type": {"schema": ref}}; v2 only uses the names. */
    json_t *c = json_object();
    for (size_t i = 0; types[i]; i++)
        json_object_set_new(c, types[i], json_pack("{s:o}", "schema", ref_to(g, ref)));
    return c;
}

static const char *const k_json_types[] = {"application/json", "application/yaml",
                                           "application/vnd.kubernetes.protobuf", NULL};
static const char *const k_watch_types[] = {
    "application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch", NULL};
static const char *const k_patch_types[] = {
    "application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", NULL};
static const char *const k_cr_patch_types[] = {
    "application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
    NULL};
static const char *const k_any_type[] = {"*/*", NULL};

typedef struct op_spec {
    const char *method;   /* "get", "post", ... */
    const char *action;   /* x-kubernetes-action */
    const char *op_id;
    const char *desc;
    const char *body_ref; /* request body definition or NULL */
    const char *const *consumes;
    const char *const *produces;
    const char *resp_ref;
    int codes[3];         /* response codes with a body */
    const param_def_t *params[3];
    const char *gvk_group, *gvk_version, *gvk_kind;
    const char *tag;
} op_spec_t;

static json_t *string_array(const char *const *v)
{
    return str_list(v);
}

static void add_op(gen_t *g, const char *path, const json_t *path_params, const op_spec_t *o)
{
    json_t *item = json_object_get(g->paths, path);
    if (!item) {
        item = json_object();
        json_object_set_new(item, "parameters", skiff_json_copy(path_params));
        json_object_set_new(g->paths, path, item);
    }
    json_t *op = json_object();
    json_object_set_new(op, "description", json_string(o->desc));
    if (!g->v3) {
        json_object_set_new(op, "consumes", string_array(o->consumes));
        json_object_set_new(op, "produces", string_array(o->produces));
        json_object_set_new(op, "schemes", json_pack("[s]", "https"));
    }
    json_object_set_new(op, "tags", json_pack("[s]", o->tag));
    json_object_set_new(op, "operationId", json_string(o->op_id));

    json_t *params = json_array();
    if (o->body_ref && !g->v3) {
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:o}", "name", "body", "in",
                                                "body", "required", 1, "schema",
                                                ref_to(g, o->body_ref)));
    }
    for (size_t i = 0; i < 3 && o->params[i]; i++)
        add_params(g, params, o->params[i]);
    if (json_array_size(params))
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);
    if (o->body_ref && g->v3)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:o, s:b}", "content",
                                      media_list(o->consumes, g, o->body_ref), "required", 1));

    json_t *resps = json_object();
    for (size_t i = 0; i < 3 && o->codes[i]; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", o->codes[i]);
        const char *text = o->codes[i] == 200   ? "OK"
                           : o->codes[i] == 201 ? "Created"
                                                : "Accepted";
        json_t *r = json_pack("{s:s}", "description", text);
        if (g->v3)
            json_object_set_new(r, "content", media_list(o->produces, g, o->resp_ref));
        else
            json_object_set_new(r, "schema", ref_to(g, o->resp_ref));
        json_object_set_new(resps, code, r);
    }
    json_object_set_new(resps, "401", json_pack("{s:s}", "description", "Unauthorized"));
    json_object_set_new(op, "responses", resps);
    json_object_set_new(op, "x-kubernetes-action", json_string(o->action));
    json_object_set_new(op, "x-kubernetes-group-version-kind",
                        json_pack("{s:s, s:s, s:s}", "group", o->gvk_group, "kind", o->gvk_kind,
                                  "version", o->gvk_version));
    json_object_set_new(item, o->method, op);
}

/* "CoreV1", "AppsV1", "RbacAuthorizationV1", "ExampleComV1alpha1". */
static void op_group_version(const kind_def_t *k, char *buf, size_t size, char *tag, size_t tsize)
{
    char tmp[256] = "";
    const char *grp = k->group && k->group[0] ? k->group : "core";
    size_t gl = strlen(grp);
    if (gl > 7 && strcmp(grp + gl - 7, ".k8s.io") == 0)
        gl -= 7;
    size_t o = 0;
    int up = 1;
    for (size_t i = 0; i < gl && o + 1 < sizeof tmp; i++) {
        if (grp[i] == '.' || grp[i] == '-') {
            up = 1;
            continue;
        }
        tmp[o++] = up ? (char)toupper((unsigned char)grp[i]) : grp[i];
        up = 0;
    }
    tmp[o] = '\0';
    snprintf(buf, size, "%s%c%s", tmp, toupper((unsigned char)k->version[0]), k->version + 1);
    snprintf(tag, tsize, "%c%s_%s", tolower((unsigned char)tmp[0]), tmp[0] ? tmp + 1 : "",
             k->version);
}

static json_t *path_params(const gen_t *g, int ns, int name)
{
    json_t *a = json_array();
    if (name)
        json_array_append_new(a, param_json(g, "name", "path", "string", "name of the object", 1));
    if (ns)
        json_array_append_new(a, param_json(g, "namespace", "path", "string",
                                            "object name and auth scope, such as for teams and "
                                            "projects",
                                            1));
    json_array_append_new(a, param_json(g, "pretty", "query", "string",
                                        "If 'true', the output is pretty printed.", 0));
    return a;
}

/* One operation of a kind: responses 200 (+ c2, c3) with resp_ref. */
static void std_op(gen_t *g, const char *path, const json_t *pp, const op_spec_t *base,
                   const char *method, const char *action, const char *id, const char *descfmt,
                   const char *body_ref, const char *resp_ref, int c2, int c3,
                   const param_def_t *p1, const param_def_t *p2)
{
    char desc[256];
    op_spec_t o = *base;
    snprintf(desc, sizeof desc, descfmt, base->gvk_kind);
    o.method = method;
    o.action = action;
    o.op_id = id;
    o.desc = desc;
    o.body_ref = body_ref;
    o.resp_ref = resp_ref;
    o.codes[0] = 200;
    o.codes[1] = c2;
    o.codes[2] = c3;
    o.params[0] = p1;
    o.params[1] = p2;
    if (strcmp(action, "list") == 0 || strcmp(action, "watch") == 0 ||
        strcmp(action, "watchlist") == 0)
        o.produces = k_watch_types;
    add_op(g, path, pp, &o);
}

static void add_kind_paths(gen_t *g, const kind_def_t *k)
{
    char prefix[256], gv[300], tag[300], coll[512], item[540], wcoll[512], witem[540], all[512],
        wall[512], sub[560], id[400], desc[256], lname[512];
    const char *group = k->group ? k->group : "";
    if (group[0])
        snprintf(prefix, sizeof prefix, "/apis/%s/%s", group, k->version);
    else
        snprintf(prefix, sizeof prefix, "/api/%s", k->version);
    op_group_version(k, gv, sizeof gv, tag, sizeof tag);
    list_def_name(k, lname, sizeof lname);
    const char *nsw = k->namespaced ? "Namespaced" : "";
    if (k->namespaced) {
        snprintf(coll, sizeof coll, "%s/namespaces/{namespace}/%s", prefix, k->resource);
        snprintf(wcoll, sizeof wcoll, "%s/watch/namespaces/{namespace}/%s", prefix, k->resource);
        snprintf(all, sizeof all, "%s/%s", prefix, k->resource);
        snprintf(wall, sizeof wall, "%s/watch/%s", prefix, k->resource);
    } else {
        snprintf(coll, sizeof coll, "%s/%s", prefix, k->resource);
        snprintf(wcoll, sizeof wcoll, "%s/watch/%s", prefix, k->resource);
    }
    snprintf(item, sizeof item, "%s/{name}", coll);
    snprintf(witem, sizeof witem, "%s/{name}", wcoll);

    json_t *pp_coll = path_params(g, k->namespaced, 0);
    json_t *pp_item = path_params(g, k->namespaced, 1);
    json_t *pp_all = path_params(g, 0, 0);
    op_spec_t o;
    const op_spec_t base = {.gvk_group = group, .gvk_version = k->version, .gvk_kind = k->kind,
                            .tag = tag, .consumes = k_any_type, .produces = k_json_types};
    const char *kn = k->kind, *sn = k->schema_name;

    /* Collection. */
    snprintf(id, sizeof id, "list%s%s%s", gv, nsw, kn);
    std_op(g, coll, pp_coll, &base, "get", "list", id, "list or watch objects of kind %s", NULL,
           lname, 200, 0, P_LIST, NULL);
    snprintf(id, sizeof id, "create%s%s%s", gv, nsw, kn);
    std_op(g, coll, pp_coll, &base, "post", "post", id, "create a %s", sn, sn, 201, 202, P_WRITE,
           NULL);
    snprintf(id, sizeof id, "delete%sCollection%s%s", gv, nsw, kn);
    std_op(g, coll, pp_coll, &base, "delete", "deletecollection", id, "delete collection of %s",
           DELETE_OPTIONS_DEF, STATUS_DEF, 0, 0, P_LIST, P_DELETE);
    /* Item. */
    snprintf(id, sizeof id, "read%s%s%s", gv, nsw, kn);
    std_op(g, item, pp_item, &base, "get", "get", id, "read the specified %s", NULL, sn, 0, 0,
           NULL, NULL);
    snprintf(id, sizeof id, "replace%s%s%s", gv, nsw, kn);
    std_op(g, item, pp_item, &base, "put", "put", id, "replace the specified %s", sn, sn, 201, 0,
           P_WRITE, NULL);
    snprintf(id, sizeof id, "patch%s%s%s", gv, nsw, kn);
    std_op(g, item, pp_item, &base, "patch", "patch", id, "partially update the specified %s",
           PATCH_DEF, sn, 201, 0, P_WRITE, P_PATCH_EXTRA);
    snprintf(id, sizeof id, "delete%s%s%s", gv, nsw, kn);
    std_op(g, item, pp_item, &base, "delete", "delete", id, "delete a %s", DELETE_OPTIONS_DEF,
           STATUS_DEF, 202, 0, P_DELETE, NULL);
    /* Deprecated watch paths, still listed by Kubernetes. */
    snprintf(id, sizeof id, "watch%s%s%sList", gv, nsw, kn);
    std_op(g, wcoll, pp_coll, &base, "get", "watchlist", id,
           "watch individual changes to a list of %s", NULL, WATCH_EVENT_DEF, 0, 0, P_LIST, NULL);
    snprintf(id, sizeof id, "watch%s%s%s", gv, nsw, kn);
    std_op(g, witem, pp_item, &base, "get", "watch", id, "watch changes to an object of kind %s",
           NULL, WATCH_EVENT_DEF, 0, 0, P_LIST, NULL);
    if (k->namespaced) {
        snprintf(id, sizeof id, "list%s%sForAllNamespaces", gv, kn);
        std_op(g, all, pp_all, &base, "get", "list", id, "list or watch objects of kind %s", NULL,
               lname, 0, 0, P_LIST, NULL);
        snprintf(id, sizeof id, "watch%s%sListForAllNamespaces", gv, kn);
        std_op(g, wall, pp_all, &base, "get", "watchlist", id,
               "watch individual changes to a list of %s", NULL, WATCH_EVENT_DEF, 0, 0, P_LIST,
               NULL);
    }
    /* Subresources. */
    if (k->has_status) {
        snprintf(sub, sizeof sub, "%s/status", item);
        snprintf(id, sizeof id, "read%s%s%sStatus", gv, nsw, kn);
        std_op(g, sub, pp_item, &base, "get", "get", id, "read status of the specified %s", NULL,
               sn, 0, 0, NULL, NULL);
        snprintf(id, sizeof id, "replace%s%s%sStatus", gv, nsw, kn);
        std_op(g, sub, pp_item, &base, "put", "put", id, "replace status of the specified %s", sn,
               sn, 201, 0, P_WRITE, NULL);
        snprintf(id, sizeof id, "patch%s%s%sStatus", gv, nsw, kn);
        std_op(g, sub, pp_item, &base, "patch", "patch", id,
               "partially update status of the specified %s", PATCH_DEF, sn, 201, 0, P_WRITE,
               P_PATCH_EXTRA);
    }
    if (k->has_scale && json_object_get(g->defs, SCALE_DEF)) {
        const op_spec_t scale_base = {.gvk_group = "autoscaling", .gvk_version = "v1",
                                      .gvk_kind = "Scale", .tag = tag, .consumes = k_any_type,
                                      .produces = k_json_types};
        snprintf(sub, sizeof sub, "%s/scale", item);
        const struct {
            const char *method, *action, *verb, *what, *body;
            int c2;
            const param_def_t *p1, *p2;
        } so[] = {
            {"get", "get", "read", "read scale of the specified %s", NULL, 0, NULL, NULL},
            {"put", "put", "replace", "replace scale of the specified %s", SCALE_DEF, 201,
             P_WRITE, NULL},
            {"patch", "patch", "patch", "partially update scale of the specified %s", PATCH_DEF,
             201, P_WRITE, P_PATCH_EXTRA},
        };
        for (size_t i = 0; i < 3; i++) {
            o = scale_base;
            snprintf(id, sizeof id, "%s%s%s%sScale", so[i].verb, gv, nsw, k->kind);
            snprintf(desc, sizeof desc, so[i].what, k->kind);
            o.method = so[i].method;
            o.action = so[i].action;
            o.op_id = id;
            o.desc = desc;
            o.body_ref = so[i].body;
            if (so[i].body && strcmp(so[i].body, PATCH_DEF) == 0)
                o.consumes = k_patch_types;
            o.resp_ref = SCALE_DEF;
            o.codes[0] = 200;
            o.codes[1] = so[i].c2;
            o.params[0] = so[i].p1;
            o.params[1] = so[i].p2;
            add_op(g, sub, pp_item, &o);
        }
    }
    json_decref(pp_coll);
    json_decref(pp_item);
    json_decref(pp_all);
}

static void fix_patch_consumes(gen_t *g)
{
    /* Patch operations accept the four patch media types, not any type. */
    const char *path;
    json_t *item;
    json_object_foreach(g->paths, path, item) {
        json_t *op = json_object_get(item, "patch");
        if (!op)
            continue;
        /* custom resources take no strategic merge patch (kubectl then
         * sends a JSON merge patch, as against Kubernetes) */
        json_t *gvk = json_object_get(op, "x-kubernetes-group-version-kind");
        const kind_def_t *k = registry_find_kind(json_string_value(json_object_get(gvk, "group")),
                                                 json_string_value(json_object_get(gvk, "version")),
                                                 json_string_value(json_object_get(gvk, "kind")));
        /* nor does the CRD kind here: its schema is not detailed enough
         * for kubectl to compute one */
        int no_smp = k && (k->crd || (strcmp(k->group, crd_definition_kind.group) == 0 &&
                                      strcmp(k->kind, crd_definition_kind.kind) == 0));
        const char *const *types = no_smp ? k_cr_patch_types : k_patch_types;
        if (g->v3) {
            json_t *rb = json_object_get(op, "requestBody");
            json_t *content = json_object();
            for (size_t i = 0; types[i]; i++)
                json_object_set_new(content, types[i],
                                    json_pack("{s:o}", "schema", ref_to(g, PATCH_DEF)));
            json_object_set_new(rb, "content", content);
        } else {
            json_object_set_new(op, "consumes", string_array(types));
        }
    }
}

/* ---- whole documents -------------------------------------------------------- */

static int kind_in_gv(const kind_def_t *k, const char *group, const char *version)
{
    const char *kg = k->group ? k->group : "";
    return group == NULL || (strcmp(kg, group) == 0 && strcmp(k->version, version) == 0);
}

static void build_paths(gen_t *g, const char *group, const char *version)
{
    size_t n = registry_count();
    for (size_t i = 0; i < n; i++) {
        const kind_def_t *k = registry_at(i);
        if (k && k->resource && k->schema_name && kind_in_gv(k, group, version)) {
            add_kind_definitions(g, k);
            add_kind_paths(g, k);
        }
    }
    fix_patch_consumes(g);
}

static json_t *info(void)
{
    return json_pack("{s:s, s:s}", "title", "Kubernetes", "version", DISCOVERY_GIT_VERSION);
}

json_t *openapi_v2_new(void)
{
    gen_t g = {.v3 = 0, .ref_prefix = "#/definitions/", .defs = json_object(),
               .paths = json_object()};
    add_meta_definitions(&g);
    /* Every type of the schema set, as the Kubernetes document has them all. */
    size_t n = schema_count();
    for (size_t i = 0; i < n; i++) {
        const schema_type_t *t = schema_at(i);
        if (t && t->name)
            add_definition(&g, t, t->name);
    }
    build_paths(&g, NULL, NULL);
    return json_pack("{s:s, s:o, s:o, s:o, s:{s:{s:s, s:s, s:s, s:s}}, s:[{s:[]}]}", "swagger",
                     "2.0", "info", info(), "paths", g.paths, "definitions", g.defs,
                     "securityDefinitions", "BearerToken", "description",
                     "Bearer Token authentication", "type", "apiKey", "name", "authorization",
                     "in", "header", "security", "BearerToken");
}

json_t *openapi_v3_new(const char *group, const char *version)
{
    if (!group || !version)
        return NULL;
    gen_t g = {.v3 = 1, .ref_prefix = "#/components/schemas/", .defs = json_object(),
               .paths = json_object()};
    add_meta_definitions(&g);
    build_paths(&g, group, version);
    if (json_object_size(g.paths) == 0) {
        json_decref(g.defs);
        json_decref(g.paths);
        return NULL;
    }
    return json_pack("{s:s, s:o, s:o, s:{s:o, s:{s:{s:s, s:s, s:s, s:s}}}}", "openapi", "3.0.0",
                     "info", info(), "paths", g.paths, "components", "schemas", g.defs,
                     "securitySchemes", "BearerToken", "type", "apiKey", "description",
                     "Bearer Token authentication", "name", "authorization", "in", "header");
}

/* ---- cache -------------------------------------------------------------------- */

typedef struct v3_doc {
    char *key;  /* "api/v1", "apis/apps/v1" */
    char *body;
    size_t len;
    char hash[129];
    char etag[132];
} v3_doc_t;

typedef struct oa_gen {
    char *v2;
    size_t v2_len;
    char v2_etag[132];
    int v3_built;
    v3_doc_t *v3;
    size_t nv3;
    char *index;
    size_t index_len;
} oa_gen_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static oa_gen_t *g_cur, *g_prev;
static size_t g_cur_count;

static void oa_gen_free(oa_gen_t *g)
{
    if (!g)
        return;
    free(g->v2);
    for (size_t i = 0; i < g->nv3; i++) {
        free(g->v3[i].key);
        free(g->v3[i].body);
    }
    free(g->v3);
    free(g->index);
    free(g);
}

void openapi_invalidate(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_cur) {
        oa_gen_free(g_prev);
        g_prev = g_cur;
        g_cur = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}

void openapi_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    oa_gen_free(g_cur);
    oa_gen_free(g_prev);
    g_cur = g_prev = NULL;
    pthread_mutex_unlock(&g_lock);
}

static void sha512_hex(const char *data, size_t len, char out[129])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha512(), NULL))
        return;
    for (unsigned int i = 0; i < mdlen && i < 64; i++)
        snprintf(out + 2 * i, 3, "%02X", md[i]);
}

static char *dump(json_t *doc, size_t *len)
{
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    *len = s ? strlen(s) : 0;
    return s;
}

static int build_v2(oa_gen_t *g)
{
    if (g->v2)
        return 0;
    g->v2 = dump(openapi_v2_new(), &g->v2_len);
    if (!g->v2)
        return SKIFF_ENOMEM;
    char h[129];
    sha512_hex(g->v2, g->v2_len, h);
    snprintf(g->v2_etag, sizeof g->v2_etag, "\"%s\"", h);
    return 0;
}

static int build_v3(oa_gen_t *g)
{
    if (g->v3_built)
        return 0;
    size_t n = registry_count();
    g->v3 = calloc(n ? n : 1, sizeof *g->v3);
    if (!g->v3)
        return SKIFF_ENOMEM;
    json_t *paths = json_object();
    for (size_t i = 0; i < n; i++) {
        const kind_def_t *k = registry_at(i);
        if (!k)
            continue;
        const char *group = k->group ? k->group : "";
        char key[256];
        if (group[0])
            snprintf(key, sizeof key, "apis/%s/%s", group, k->version);
        else
            snprintf(key, sizeof key, "api/%s", k->version);
        if (json_object_get(paths, key))
            continue;
        v3_doc_t *d = &g->v3[g->nv3];
        d->body = dump(openapi_v3_new(group, k->version), &d->len);
        d->key = strdup(key);
        if (!d->body || !d->key) {
            free(d->body);
            free(d->key);
            json_decref(paths);
            return SKIFF_ENOMEM;
        }
        g->nv3++;
        sha512_hex(d->body, d->len, d->hash);
        snprintf(d->etag, sizeof d->etag, "\"%s\"", d->hash);
        char url[512];
        snprintf(url, sizeof url, "/openapi/v3/%s?hash=%s", key, d->hash);
        json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
    }
    g->index = dump(json_pack("{s:o}", "paths", paths), &g->index_len);
    if (!g->index)
        return SKIFF_ENOMEM;
    g->v3_built = 1;
    return 0;
}

/* ---- request handling ----------------------------------------------------- */

/* 1 if Accept allows JSON (absent, any, or a JSON type listed). */
static int accepts_json(const char *accept)
{
    if (!accept || !*accept)
        return 1;
    return strstr(accept, "application/json") || strstr(accept, "*/*") ||
           strstr(accept, "application/*");
}

static void reply_static(api_doc_reply_t *out, int status, const char *body)
{
    memset(out, 0, sizeof *out);
    out->status = status;
    out->content_type = "application/json";
    out->body = body;
    out->len = strlen(body);
}

/* Value of "hash" in a raw query string, copied to buf; 0 if absent. */
static int query_hash(const char *query, char *buf, size_t size)
{
    for (const char *p = query; p && *p;) {
        if (strncmp(p, "hash=", 5) == 0) {
            size_t n = strcspn(p + 5, "&");
            if (n >= size)
                n = size - 1;
            memcpy(buf, p + 5, n);
            buf[n] = '\0';
            return 1;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

int openapi_handle(const api_request_t *req, api_doc_reply_t *out)
{
    if (!req || !req->path || !out)
        return SKIFF_EINVAL;
    const char *path = req->path;
    int v2 = strcmp(path, "/openapi/v2") == 0;
    int v3_index = strcmp(path, "/openapi/v3") == 0 || strcmp(path, "/openapi/v3/") == 0;
    int v3_doc = strncmp(path, "/openapi/v3/", 12) == 0 && path[12];
    if (!v2 && !v3_index && !v3_doc)
        return 0;
    if (req->method && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        reply_static(out, 405, k_status_405);
        return 1;
    }
    if (!accepts_json(req->accept)) {
        reply_static(out, 406, k_status_406);
        return 1;
    }

    pthread_mutex_lock(&g_lock);
    size_t count = registry_count();
    if (g_cur && g_cur_count != count) {
        oa_gen_free(g_prev);
        g_prev = g_cur;
        g_cur = NULL;
    }
    if (!g_cur) {
        g_cur = calloc(1, sizeof *g_cur);
        g_cur_count = count;
    }
    int rc = g_cur ? 0 : SKIFF_ENOMEM;
    if (rc == 0)
        rc = v2 ? build_v2(g_cur) : build_v3(g_cur);
    oa_gen_t *g = g_cur;
    pthread_mutex_unlock(&g_lock);
    if (rc < 0) {
        reply_static(out, 500, k_status_500);
        return 1;
    }

    memset(out, 0, sizeof *out);
    out->content_type = "application/json";
    if (v2) {
        out->status = 200;
        out->body = g->v2;
        out->len = g->v2_len;
        out->etag = g->v2_etag;
        return 1;
    }
    if (v3_index) {
        out->status = 200;
        out->body = g->index;
        out->len = g->index_len;
        out->cache_control = "no-cache, private";
        return 1;
    }
    const char *key = path + 12;
    const v3_doc_t *d = NULL;
    for (size_t i = 0; i < g->nv3 && !d; i++)
        if (strcmp(g->v3[i].key, key) == 0)
            d = &g->v3[i];
    if (!d) {
        reply_static(out, 404, k_status_404);
        return 1;
    }
    char hash[160];
    int has_hash = query_hash(req->query, hash, sizeof hash);
    if (has_hash && strcmp(hash, d->hash) != 0) {
        /* An old hash (the registry changed since the client read the
         * index). Kubernetes redirects; our response sink carries no
         * headers, so serve the current document, uncacheable, and name
         * its current URL for callers that can send a Location. */
        static __thread char location[512];
        snprintf(location, sizeof location, "/openapi/v3/%s?hash=%s", d->key, d->hash);
        out->status = 200;
        out->location = location;
        out->body = d->body;
        out->len = d->len;
        out->etag = d->etag;
        out->cache_control = "no-cache, private";
        return 1;
    }
    out->status = 200;
    out->body = d->body;
    out->len = d->len;
    out->etag = d->etag;
    out->cache_control = has_hash ? "public, immutable" : "no-cache, private";
    return 1;
}
