/* skiff/discovery.h - which resources the API server serves, read from its
 * discovery documents (/api/v1, /apis, /apis/GROUP/VERSION) through a
 * skiff_client_t, as client-go's discovery client reads them.
 *
 * Controllers that act on every kind (the garbage collector, the namespace
 * controller, quota) use it instead of a list compiled in, so resources
 * added at run time are covered as well. */
#ifndef SKIFF_DISCOVERY_H
#define SKIFF_DISCOVERY_H

#include <jansson.h>
#include <skiff/client.h>
#include <skiff/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

/* resources: borrowed array of objects, one per resource of every group
 * version the server lists (subresources such as "pods/status" left out):
 *   {"group": "apps", "version": "v1", "resource": "deployments",
 *    "kind": "Deployment", "namespaced": true, "preferred": true,
 *    "verbs": ["create", "delete", ...]}
 * "preferred" marks the group's preferred version (the one to watch when a
 * resource is served in several). error is NULL when every document was
 * read; otherwise a message naming what failed ("apps/v1: status 503"),
 * and resources holds what could be read (possibly nothing). */
typedef void (*skiff_discovery_cb)(void *data, json_t *resources, const char *error);

/* Reads the discovery documents; cb runs exactly once, from the client's
 * loop (never inside this call), when 0 is returned. A negative SKIFF_E*
 * code means nothing was started. */
int skiff_discover_resources(skiff_client_t *c, skiff_discovery_cb cb, void *data);

/* 1 when a resource entry of that array lists the verb. */
int skiff_resource_has_verb(const json_t *resource, const char *verb);

#ifdef __cplusplus
}
#endif
#endif
