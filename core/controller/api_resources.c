/* core/controller/api_resources.c - skiff_discover_resources: the server's
 * resources from its discovery documents, read through any skiff_client_t.
 *
 * One GET of /api/v1 and of /apis, then one of each group version /apis
 * lists; the answers are flattened into one array. A group version that
 * cannot be read is named in the error and left out, the rest is still
 * returned (client-go's ErrGroupDiscoveryFailed does the same), so a
 * caller can act on what it knows and report what it does not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/discovery.h>

typedef struct discovery_run {
    skiff_client_t *client;
    skiff_discovery_cb cb;
    void *data;
    json_t *out;
    char err[1024];
    int pending;
} discovery_run_t;

typedef struct gv_call {
    discovery_run_t *run;
    char *group, *version;
    int preferred;
} gv_call_t;

static void note_error(discovery_run_t *r, const char *what, int status)
{
    size_t used = strlen(r->err);
    if (used + 2 >= sizeof r->err) return;
    if (status > 0)
        snprintf(r->err + used, sizeof r->err - used, "%s%s: status %d", used ? ", " : "", what,
                 status);
    else
        snprintf(r->err + used, sizeof r->err - used, "%s%s: %s", used ? ", " : "", what,
                 status == 0 ? "no answer" : skiff_strerror(status));
}

static void run_finish(discovery_run_t *r)
{
    if (--r->pending > 0) return;
    r->cb(r->data, r->out, r->err[0] ? r->err : NULL);
    json_decref(r->out);
    free(r);
}

static void add_resources(discovery_run_t *r, const gv_call_t *g, json_t *list)
{
    size_t i;
    json_t *res;
    json_array_foreach(json_object_get(list, "resources"), i, res)
    {
        const char *name = json_string_value(json_object_get(res, "name"));
        const char *kind = json_string_value(json_object_get(res, "kind"));
        if (!name || !kind || strchr(name, '/')) continue; /* subresources */
        json_t *verbs = json_object_get(res, "verbs");
        verbs = json_is_array(verbs) ? json_incref(verbs) : json_array();
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:o}", "group", g->group,
                              "version", g->version, "resource", name, "kind", kind,
                              "namespaced", json_is_true(json_object_get(res, "namespaced")),
                              "preferred", g->preferred, "verbs", verbs);
        if (e) json_array_append_new(r->out, e);
    }
}

static void gv_free(gv_call_t *g)
{
    free(g->group);
    free(g->version);
    free(g);
}

static void on_group_version(void *data, int status, json_t *obj)
{
    gv_call_t *g = data;
    discovery_run_t *r = g->run;
    if (status == 200 && json_is_array(json_object_get(obj, "resources"))) {
        add_resources(r, g, obj);
    } else {
        char what[300];
        snprintf(what, sizeof what, "%s%s%s", g->group, g->group[0] ? "/" : "", g->version);
        note_error(r, what, status);
    }
    gv_free(g);
    run_finish(r);
}

static void get_group_version(discovery_run_t *r, const char *group, const char *version,
                              int preferred)
{
    gv_call_t *g = calloc(1, sizeof *g);
    char path[600];
    if (group[0]) snprintf(path, sizeof path, "/apis/%s/%s", group, version);
    else snprintf(path, sizeof path, "/api/%s", version);
    if (g) {
        g->run = r;
        g->group = strdup(group);
        g->version = strdup(version);
        g->preferred = preferred;
    }
    if (!g || !g->group || !g->version) {
        if (g) gv_free(g);
        note_error(r, path, SKIFF_ENOMEM);
        return;
    }
    r->pending++;
    int e = skiff_client_get_path(r->client, path, on_group_version, g);
    if (e < 0) {
        r->pending--;
        note_error(r, path, e);
        gv_free(g);
    }
}

/* Group and version names go into a path: only what DNS names and
 * versions may hold. */
static int plain_name(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

static void on_groups(void *data, int status, json_t *obj)
{
    discovery_run_t *r = data;
    if (status != 200 || !json_is_array(json_object_get(obj, "groups"))) {
        note_error(r, "/apis", status);
        run_finish(r);
        return;
    }
    size_t i, j;
    json_t *grp, *v;
    json_array_foreach(json_object_get(obj, "groups"), i, grp)
    {
        const char *name = json_string_value(json_object_get(grp, "name"));
        const char *pref = json_string_value(
            json_object_get(json_object_get(grp, "preferredVersion"), "version"));
        if (!plain_name(name)) continue;
        json_array_foreach(json_object_get(grp, "versions"), j, v)
        {
            const char *ver = json_string_value(json_object_get(v, "version"));
            if (!plain_name(ver)) continue;
            /* without a preferred version the first listed is preferred */
            int preferred = pref ? strcmp(pref, ver) == 0 : j == 0;
            get_group_version(r, name, ver, preferred);
        }
    }
    run_finish(r);
}

int skiff_discover_resources(skiff_client_t *c, skiff_discovery_cb cb, void *data)
{
    if (!c || !cb) return SKIFF_EINVAL;
    discovery_run_t *r = calloc(1, sizeof *r);
    if (!r) return SKIFF_ENOMEM;
    r->client = c;
    r->cb = cb;
    r->data = data;
    r->out = json_array();
    if (!r->out) {
        free(r);
        return SKIFF_ENOMEM;
    }
    /* held until both first calls are queued, so no answer can finish the
     * run while it is being started */
    r->pending = 1;
    r->pending++;
    int e = skiff_client_get_path(c, "/apis", on_groups, r);
    if (e < 0) {
        json_decref(r->out);
        free(r);
        return e;
    }
    get_group_version(r, "", "v1", 1);
    run_finish(r);
    return 0;
}

int skiff_resource_has_verb(const json_t *resource, const char *verb)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(resource, "verbs"), i, v)
    {
        const char *s = json_string_value(v);
        if (s && verb && strcmp(s, verb) == 0) return 1;
    }
    return 0;
}
