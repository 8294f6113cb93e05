/* core/api/discovery.c - discovery documents (legacy and aggregated) and
 * /version, built from the kind registry and served from a cache.
 *
 * Formats follow what kubectl 1.32 reads: APIVersions, APIGroupList,
 * APIGroup, APIResourceList (meta/v1) and APIGroupDiscoveryList
 * (apidiscovery.k8s.io/v2 and v2beta1). This file only renders documents;
 * routing of resource requests is the API server's. */
#include "api/discovery.h"
#include "api/object_meta.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "object/registry.h"
#include "skiff/errors.h"
#include "util/hash.h"

static const char *const k_sub_verbs[] = {"get", "patch", "update", NULL};

static const char k_status_404[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"the server could not find the requested resource\",\"reason\":\"NotFound\","
    "\"details\":{},\"code\":404}";
static const char k_status_500[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"the discovery document could not be built\",\"reason\":\"InternalError\","
    "\"details\":{},\"code\":500}";
static const char k_status_405[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"the server does not allow this method on the requested resource\","
    "\"reason\":\"MethodNotAllowed\",\"details\":{},\"code\":405}";

enum { VARIANT_PLAIN = 0, VARIANT_V2BETA1 = 1, VARIANT_V2 = 2 };

typedef struct disc_doc {
    char *path;
    int variant;
    char *body;
    size_t len;
    char etag[24];
} disc_doc_t;

typedef struct disc_gen {
    disc_doc_t *docs;
    size_t n, cap;
} disc_gen_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static disc_gen_t *g_cur;
static disc_gen_t *g_prev; /* kept one generation so in-flight bodies stay valid */
static size_t g_cur_count;
static char g_version_body[1024];
static size_t g_version_len;

/* ---- small helpers ---------------------------------------------------- */

static json_t *str_array(const char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* Parse "v<major>[alpha|beta<minor>]"; 0 if the name is not of that form. */
static int parse_kube_version(const char *v, long *major, int *stability, long *minor)
{
    if (!v || v[0] != 'v' || !isdigit((unsigned char)v[1]))
        return 0;
    char *end;
    *major = strtol(v + 1, &end, 10);
    *minor = 0;
    if (*end == '\0') {
        *stability = 3;
        return 1;
    }
    if (strncmp(end, "beta", 4) == 0) {
        *stability = 2;
        end += 4;
    } else if (strncmp(end, "alpha", 5) == 0) {
        *stability = 1;
        end += 5;
    } else {
        return 0;
    }
    if (!isdigit((unsigned char)*end))
        return 0;
    *minor = strtol(end, &end, 10);
    return *end == '\0';
}

int discovery_version_newer(const char *a, const char *b)
{
    long ma, na, mb, nb;
    int sa, sb;
    int ka = parse_kube_version(a, &ma, &sa, &na);
    int kb = parse_kube_version(b, &mb, &sb, &nb);
    if (ka != kb)
        return ka > kb;
    if (!ka)
        return strcmp(a, b) < 0; /* non-Kubernetes names: alphabetical */
    if (sa != sb)
        return sa > sb;
    if (ma != mb)
        return ma > mb;
    return na > nb;
}

/* ---- groups and versions in registry order ---------------------------- */

typedef struct gv_group {
    const char *name;
    const char *versions[16]; /* newest first */
    size_t nversions;
} gv_group_t;

typedef struct gv_set {
    gv_group_t *groups;
    size_t n;
} gv_set_t;

static void gv_add(gv_set_t *s, const char *group, const char *version)
{
    gv_group_t *g = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->groups[i].name, group) == 0)
            g = &s->groups[i];
    if (!g) {
        g = &s->groups[s->n++];
        memset(g, 0, sizeof *g);
        g->name = group;
    }
    for (size_t i = 0; i < g->nversions; i++)
        if (strcmp(g->versions[i], version) == 0)
            return;
    if (g->nversions == sizeof g->versions / sizeof g->versions[0])
        return;
    size_t pos = g->nversions;
    while (pos > 0 && discovery_version_newer(version, g->versions[pos - 1])) {
        g->versions[pos] = g->versions[pos - 1];
        pos--;
    }
    g->versions[pos] = version;
    g->nversions++;
}

static int gv_collect(gv_set_t *s)
{
    size_t n = registry_count();
    s->groups = calloc(n + 1, sizeof *s->groups);
    s->n = 0;
    if (!s->groups)
        return SKIFF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const kind_def_t *k = registry_at(i);
        if (k)
            gv_add(s, k->group ? k->group : "", k->version);
    }
    return 0;
}

static json_t *group_version_obj(const char *group, const char *version)
{
    char gv[256];
    if (group[0])
        snprintf(gv, sizeof gv, "%s/%s", group, version);
    else
        snprintf(gv, sizeof gv, "%s", version);
    return json_pack("{s:s, s:s}", "groupVersion", gv, "version", version);
}

static json_t *api_group_obj(const gv_group_t *g)
{
    json_t *versions = json_array();
    for (size_t i = 0; i < g->nversions; i++)
        json_array_append_new(versions, group_version_obj(g->name, g->versions[i]));
    return json_pack("{s:s, s:o, s:o}", "name", g->name, "versions", versions, "preferredVersion",
                     group_version_obj(g->name, g->versions[0]));
}

/* ---- legacy documents --------------------------------------------------- */

static json_t *build_api_versions(const gv_set_t *s)
{
    json_t *versions = json_array();
    for (size_t i = 0; i < s->n; i++)
        if (s->groups[i].name[0] == '\0')
            for (size_t j = 0; j < s->groups[i].nversions; j++)
                json_array_append_new(versions, json_string(s->groups[i].versions[j]));
    /* kubectl does not use the address; 0.0.0.0/0 tells it to keep its own. */
    return json_pack("{s:s, s:o, s:[{s:s, s:s}]}", "kind", "APIVersions", "versions", versions,
                     "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0", "serverAddress", "");
}

static json_t *build_group_list(const gv_set_t *s)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < s->n; i++)
        if (s->groups[i].name[0])
            json_array_append_new(groups, api_group_obj(&s->groups[i]));
    return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups", groups);
}

static json_t *build_group(const gv_group_t *g)
{
    json_t *o = api_group_obj(g);
    json_t *doc = json_pack("{s:s, s:s}", "kind", "APIGroup", "apiVersion", "v1");
    json_object_update(doc, o);
    json_decref(o);
    return doc;
}

static void add_opt_array(json_t *obj, const char *key, const char *const *v)
{
    if (v && v[0])
        json_object_set_new(obj, key, str_array(v));
}

static json_t *build_resource_list(const char *group, const char *version)
{
    json_t *res = json_array();
    size_t n = registry_count();
    for (size_t i = 0; i < n; i++) {
        const kind_def_t *k = registry_at(i);
        const char *kg = k && k->group ? k->group : "";
        if (!k || strcmp(kg, group) != 0 || strcmp(k->version, version) != 0)
            continue;
        json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", k->resource, "singularName",
                              k->singular ? k->singular : "", "namespaced", k->namespaced != 0,
                              "kind", k->kind, "verbs", str_array(registry_verbs(k)));
        add_opt_array(r, "shortNames", k->short_names);
        add_opt_array(r, "categories", k->categories);
        json_array_append_new(res, r);

        char sub[256];
        if (api_kind_is_core(k, "Pod")) {
            /* Served by the API server's pod handlers (kubectl logs, exec). */
            snprintf(sub, sizeof sub, "%s/exec", k->resource);
            json_array_append_new(res, json_pack("{s:s, s:s, s:b, s:s, s:[s,s]}", "name", sub,
                                                 "singularName", "", "namespaced", 1, "kind",
                                                 "PodExecOptions", "verbs", "create", "get"));
            snprintf(sub, sizeof sub, "%s/log", k->resource);
            json_array_append_new(res, json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name", sub,
                                                 "singularName", "", "namespaced", 1, "kind",
                                                 "Pod", "verbs", "get"));
        }
        if (k->has_scale) {
            snprintf(sub, sizeof sub, "%s/scale", k->resource);
            json_array_append_new(
                res, json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:o}", "name", sub, "singularName",
                               "", "namespaced", k->namespaced != 0, "group", "autoscaling",
                               "version", "v1", "kind", "Scale", "verbs", str_array(k_sub_verbs)));
        }
        if (k->has_status) {
            snprintf(sub, sizeof sub, "%s/status", k->resource);
            json_array_append_new(res, json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", sub,
                                                 "singularName", "", "namespaced",
                                                 k->namespaced != 0, "kind", k->kind, "verbs",
                                                 str_array(k_sub_verbs)));
        }
        for (const kind_subresource_t *sr = k->subresources; sr && sr->name; sr++) {
            snprintf(sub, sizeof sub, "%s/%s", k->resource, sr->name);
            json_array_append_new(
                res, json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:o}", "name", sub, "singularName",
                               "", "namespaced", k->namespaced != 0, "group", sr->group,
                               "version", sr->version, "kind", sr->kind, "verbs",
                               str_array(sr->verbs)));
        }
    }
    char gv[256];
    if (group[0])
        snprintf(gv, sizeof gv, "%s/%s", group, version);
    else
        snprintf(gv, sizeof gv, "%s", version);
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", res);
}

/* ---- aggregated discovery --------------------------------------------- */

static json_t *response_kind(const char *group, const char *version, const char *kind)
{
    return json_pack("{s:s, s:s, s:s}", "group", group, "version", version, "kind", kind);
}

static json_t *agg_resource(const kind_def_t *k)
{
    const char *group = k->group ? k->group : "";
    json_t *r = json_pack("{s:s, s:o, s:s, s:s, s:o}", "resource", k->resource, "responseKind",
                          response_kind(group, k->version, k->kind), "scope",
                          k->namespaced ? "Namespaced" : "Cluster", "singularResource",
                          k->singular ? k->singular : "", "verbs", str_array(registry_verbs(k)));
    add_opt_array(r, "shortNames", k->short_names);
    add_opt_array(r, "categories", k->categories);

    json_t *subs = json_array();
    if (api_kind_is_core(k, "Pod")) {
        json_array_append_new(subs, json_pack("{s:s, s:o, s:[s,s]}", "subresource", "exec",
                                              "responseKind",
                                              response_kind("", "v1", "PodExecOptions"), "verbs",
                                              "create", "get"));
        json_array_append_new(subs, json_pack("{s:s, s:o, s:[s]}", "subresource", "log",
                                              "responseKind", response_kind("", "v1", "Pod"),
                                              "verbs", "get"));
    }
    if (k->has_scale)
        json_array_append_new(subs, json_pack("{s:s, s:o, s:o}", "subresource", "scale",
                                              "responseKind",
                                              response_kind("autoscaling", "v1", "Scale"),
                                              "verbs", str_array(k_sub_verbs)));
    if (k->has_status)
        json_array_append_new(subs, json_pack("{s:s, s:o, s:o}", "subresource", "status",
                                              "responseKind",
                                              response_kind(group, k->version, k->kind), "verbs",
                                              str_array(k_sub_verbs)));
    for (const kind_subresource_t *sr = k->subresources; sr && sr->name; sr++)
        json_array_append_new(subs, json_pack("{s:s, s:o, s:o}", "subresource", sr->name,
                                              "responseKind",
                                              response_kind(sr->group, sr->version, sr->kind),
                                              "verbs", str_array(sr->verbs)));
    if (json_array_size(subs))
        json_object_set_new(r, "subresources", subs);
    else
        json_decref(subs);
    return r;
}

static json_t *agg_group(const gv_group_t *g)
{
    json_t *versions = json_array();
    size_t n = registry_count();
    for (size_t v = 0; v < g->nversions; v++) {
        json_t *res = json_array();
        for (size_t i = 0; i < n; i++) {
            const kind_def_t *k = registry_at(i);
            const char *kg = k && k->group ? k->group : "";
            if (k && strcmp(kg, g->name) == 0 && strcmp(k->version, g->versions[v]) == 0)
                json_array_append_new(res, agg_resource(k));
        }
        json_array_append_new(versions, json_pack("{s:s, s:o, s:s}", "version", g->versions[v],
                                                  "resources", res, "freshness", "Current"));
    }
    json_t *meta = json_object();
    if (g->name[0])
        json_object_set_new(meta, "name", json_string(g->name));
    json_object_set_new(meta, "creationTimestamp", json_null());
    return json_pack("{s:o, s:o}", "metadata", meta, "versions", versions);
}

/* core: only the "" group (/api); otherwise every named group (/apis). */
static json_t *build_aggregated(const gv_set_t *s, int core, int variant)
{
    json_t *items = json_array();
    for (size_t i = 0; i < s->n; i++) {
        int is_core = s->groups[i].name[0] == '\0';
        if (is_core == core)
            json_array_append_new(items, agg_group(&s->groups[i]));
    }
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "APIGroupDiscoveryList", "apiVersion",
                     variant == VARIANT_V2 ? "apidiscovery.k8s.io/v2"
                                           : "apidiscovery.k8s.io/v2beta1",
                     "metadata", "items", items);
}

/* ---- the cache -------------------------------------------------------- */

static void gen_free(disc_gen_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++) {
        free(g->docs[i].path);
        free(g->docs[i].body);
    }
    free(g->docs);
    free(g);
}

/* Takes ownership of doc. */
static int gen_add(disc_gen_t *g, const char *path, int variant, json_t *doc)
{
    if (!doc)
        return SKIFF_ENOMEM;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 32;
        disc_doc_t *d = realloc(g->docs, cap * sizeof *d);
        if (!d) {
            json_decref(doc);
            return SKIFF_ENOMEM;
        }
        g->docs = d;
        g->cap = cap;
    }
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    char *p = strdup(path);
    if (!body || !p) {
        free(body);
        free(p);
        return SKIFF_ENOMEM;
    }
    disc_doc_t *d = &g->docs[g->n++];
    d->path = p;
    d->variant = variant;
    d->body = body;
    d->len = strlen(body);
    snprintf(d->etag, sizeof d->etag, "\"%016llX\"", (unsigned long long)fnv1a(body, d->len));
    return 0;
}

static disc_gen_t *gen_build(void)
{
    gv_set_t s;
    if (gv_collect(&s) < 0)
        return NULL;
    disc_gen_t *g = calloc(1, sizeof *g);
    int rc = g ? 0 : SKIFF_ENOMEM;
    char path[512];
    if (rc == 0)
        rc = gen_add(g, "/api", VARIANT_PLAIN, build_api_versions(&s));
    if (rc == 0)
        rc = gen_add(g, "/apis", VARIANT_PLAIN, build_group_list(&s));
    for (int v = VARIANT_V2BETA1; rc == 0 && v <= VARIANT_V2; v++) {
        rc = gen_add(g, "/api", v, build_aggregated(&s, 1, v));
        if (rc == 0)
            rc = gen_add(g, "/apis", v, build_aggregated(&s, 0, v));
    }
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        const gv_group_t *grp = &s.groups[i];
        if (grp->name[0]) {
            snprintf(path, sizeof path, "/apis/%s", grp->name);
            rc = gen_add(g, path, VARIANT_PLAIN, build_group(grp));
        }
        for (size_t j = 0; rc == 0 && j < grp->nversions; j++) {
            if (grp->name[0])
                snprintf(path, sizeof path, "/apis/%s/%s", grp->name, grp->versions[j]);
            else
                snprintf(path, sizeof path, "/api/%s", grp->versions[j]);
            rc = gen_add(g, path, VARIANT_PLAIN, build_resource_list(grp->name, grp->versions[j]));
        }
    }
    free(s.groups);
    if (rc < 0) {
        gen_free(g);
        return NULL;
    }
    return g;
}

void discovery_invalidate(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_cur) {
        gen_free(g_prev);
        g_prev = g_cur;
        g_cur = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}

void discovery_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    gen_free(g_cur);
    gen_free(g_prev);
    g_cur = g_prev = NULL;
    pthread_mutex_unlock(&g_lock);
}

/* ---- Accept header ------------------------------------------------------ */

/* Value of parameter name in one media range "type/sub;a=b;c=d", copied to
 * buf; 0 if absent. */
static int media_param(const char *mr, size_t len, const char *name, char *buf, size_t bufsz)
{
    size_t nlen = strlen(name);
    const char *end = mr + len;
    const char *p = memchr(mr, ';', len);
    while (p && p < end) {
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if ((size_t)(stop - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vl = (size_t)(stop - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= bufsz)
                vl = bufsz - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return 1;
        }
        p = semi;
    }
    return 0;
}

int discovery_accept_aggregated(const char *accept)
{
    if (!accept)
        return 0;
    const char *p = accept;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        char g[64], v[32], as[64];
        if (len >= 16 && strncasecmp(p, "application/json", 16) == 0 &&
            media_param(p, len, "g", g, sizeof g) && media_param(p, len, "v", v, sizeof v) &&
            media_param(p, len, "as", as, sizeof as) && strcmp(g, "apidiscovery.k8s.io") == 0 &&
            strcmp(as, "APIGroupDiscoveryList") == 0) {
            if (strcmp(v, "v2") == 0)
                return VARIANT_V2;
            if (strcmp(v, "v2beta1") == 0)
                return VARIANT_V2BETA1;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

/* ---- /version ----------------------------------------------------------- */

static const char *build_platform(void)
{
#if defined(__x86_64__)
    return "linux/amd64";
#elif defined(__aarch64__)
    return "linux/arm64";
#elif defined(__arm__)
    return "linux/arm";
#elif defined(__i386__)
    return "linux/386";
#else
    return "linux/unknown";
#endif
}

static void build_version_body(void)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major",
                          DISCOVERY_VERSION_MAJOR, "minor", DISCOVERY_VERSION_MINOR, "gitVersion",
                          DISCOVERY_GIT_VERSION, "gitCommit", "", "gitTreeState", "clean",
                          "buildDate", "", "goVersion", "", "compiler", "gcc", "platform",
                          build_platform());
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (s && strlen(s) < sizeof g_version_body) {
        memcpy(g_version_body, s, strlen(s) + 1);
        g_version_len = strlen(s);
    }
    free(s);
}

/* ---- request handling --------------------------------------------------- */

static int is_discovery_path(const char *path)
{
    if (strcmp(path, "/api") == 0 || strcmp(path, "/apis") == 0 || strcmp(path, "/version") == 0)
        return 1;
    if (strncmp(path, "/api/", 5) == 0) /* /api/<v> only */
        return path[5] && !strchr(path + 5, '/');
    if (strncmp(path, "/apis/", 6) == 0) { /* /apis/<g> or /apis/<g>/<v> */
        const char *s = strchr(path + 6, '/');
        return path[6] && (!s || (s[1] && !strchr(s + 1, '/')));
    }
    return 0;
}

static void reply_static(api_doc_reply_t *out, int status, const char *body)
{
    memset(out, 0, sizeof *out);
    out->status = status;
    out->content_type = "application/json";
    out->body = body;
    out->len = strlen(body);
}

int discovery_handle(const api_request_t *req, api_doc_reply_t *out)
{
    if (!req || !req->path || !out)
        return SKIFF_EINVAL;
    char path[512];
    size_t plen = strlen(req->path);
    if (plen >= sizeof path)
        return 0;
    memcpy(path, req->path, plen + 1);
    while (plen > 1 && path[plen - 1] == '/') /* "/apis/" is "/apis" */
        path[--plen] = '\0';
    if (!is_discovery_path(path))
        return 0;
    if (req->method && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        reply_static(out, 405, k_status_405);
        return 1;
    }

    if (strcmp(path, "/version") == 0) {
        pthread_mutex_lock(&g_lock);
        if (!g_version_len)
            build_version_body();
        pthread_mutex_unlock(&g_lock);
        reply_static(out, 200, g_version_body);
        return 1;
    }

    int variant = VARIANT_PLAIN;
    if (strcmp(path, "/api") == 0 || strcmp(path, "/apis") == 0)
        variant = discovery_accept_aggregated(req->accept);

    pthread_mutex_lock(&g_lock);
    size_t count = registry_count();
    if (g_cur && g_cur_count != count) {
        gen_free(g_prev);
        g_prev = g_cur;
        g_cur = NULL;
    }
    if (!g_cur) {
        g_cur = gen_build();
        g_cur_count = count;
    }
    if (!g_cur) {
        pthread_mutex_unlock(&g_lock);
        reply_static(out, 500, k_status_500);
        return 1;
    }
    const disc_doc_t *found = NULL;
    for (size_t i = 0; i < g_cur->n && !found; i++)
        if (g_cur->docs[i].variant == variant && strcmp(g_cur->docs[i].path, path) == 0)
            found = &g_cur->docs[i];
    pthread_mutex_unlock(&g_lock);

    if (!found) {
        reply_static(out, 404, k_status_404);
        return 1;
    }
    memset(out, 0, sizeof *out);
    out->status = 200;
    out->body = found->body;
    out->len = found->len;
    out->etag = found->etag;
    if (variant == VARIANT_V2)
        out->content_type = DISCOVERY_AGGREGATED_V2_TYPE;
    else if (variant == VARIANT_V2BETA1)
        out->content_type = DISCOVERY_AGGREGATED_V2BETA1_TYPE;
    else
        out->content_type = "application/json";
    return 1;
}
