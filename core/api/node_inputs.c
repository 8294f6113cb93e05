/* core/api/node_inputs.c - what the node authorizer needs to know about a
 * request from a node (user system:node:NAME): the pod a pods request is
 * about, and whether a pod bound to the node uses a Secret or ConfigMap. */
#include "api/apiserver_int.h"

#include <string.h>

/* Does `v` (any part of a pod spec) name `want` through a reference of the
 * kind asked for? Secrets: secretName, secretRef, secretKeyRef, secret
 * (projected), imagePullSecrets; ConfigMaps: configMapRef, configMapKeyRef,
 * configMap. */
static int refers(const json_t *v, int secret, const char *want)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)v, i, e) if (refers(e, secret, want)) return 1;
        return 0;
    }
    if (!json_is_object(v)) return 0;
    static const char *const secret_refs[] = {"secretRef", "secretKeyRef", "secret", NULL};
    static const char *const cm_refs[] = {"configMapRef", "configMapKeyRef", "configMap", NULL};
    const char *const *refs = secret ? secret_refs : cm_refs;
    for (size_t i = 0; refs[i]; i++) {
        const char *n = json_string_value(json_object_get(json_object_get(v, refs[i]), "name"));
        if (n && strcmp(n, want) == 0) return 1;
    }
    if (secret) {
        const char *sn = json_string_value(json_object_get(json_object_get(v, "secret"), "secretName"));
        if (sn && strcmp(sn, want) == 0) return 1;
        const json_t *ips = json_object_get(v, "imagePullSecrets");
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)ips, i, e)
        {
            const char *n = json_string_value(json_object_get(e, "name"));
            if (n && strcmp(n, want) == 0) return 1;
        }
    }
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)v, key, child) if (refers(child, secret, want)) return 1;
    return 0;
}

typedef struct uses_scan {
    const char *node, *ns, *name;
    int secret;
} uses_scan_t;

static int pod_on_node_uses(cache_obj_t *o, void *data)
{
    uses_scan_t *u = data;
    if (strcmp(o->ns, u->ns) != 0 || cache_obj_text_has(o, u->name) != 1)
        return 0; /* cheap filters */
    json_t *pod = cache_obj_decode(o);
    const json_t *spec = json_object_get(pod, "spec");
    const char *node = json_string_value(json_object_get(spec, "nodeName"));
    int used = node && strcmp(node, u->node) == 0 && refers(spec, u->secret, u->name);
    json_decref(pod);
    return used;
}

static int pod_uses(void *data, const char *node, const char *kind, const char *ns,
                    const char *name)
{
    api_server_t *s = data;
    const kind_def_t *pods = registry_find_resource("", "v1", "pods");
    watch_cache_t *c = pods ? api_cache_for(s, pods) : NULL;
    if (!c || !ns || !name) return 0;
    uses_scan_t u = {node, ns, name, strcmp(kind, "Secret") == 0};
    cache_obj_t **items;
    size_t n = watch_cache_list(c, ns, NULL, NULL, &items);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) found = pod_on_node_uses(items[i], &u);
    watch_cache_list_free(items, n);
    return found;
}

json_t *api_node_inputs(void *srv, const api_path_t *p, rbac_node_inputs_t *in)
{
    api_server_t *s = srv;
    memset(in, 0, sizeof *in);
    in->pod_uses = pod_uses;
    in->data = s;
    if (!p->resource_request || !p->resource || strcmp(p->resource, "pods") != 0 ||
        (p->group && *p->group) || !p->name || !p->ns)
        return NULL;
    const kind_def_t *pods = registry_find_resource("", "v1", "pods");
    watch_cache_t *c = pods ? api_cache_for(s, pods) : NULL;
    char key[600];
    snprintf(key, sizeof key, "%s/%s", p->ns, p->name);
    cache_obj_t *o = c ? watch_cache_get(c, key) : NULL;
    json_t *pod = o ? cache_obj_decode(o) : NULL;
    in->pod = pod;
    return pod; /* the caller releases it */
}
