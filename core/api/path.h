/* core/api/path.h - what a request path names: a resource request
 * (/api/v1/..., /apis/<group>/<version>/...) split into group, version,
 * namespace, resource, name and subresource, or a non-resource path. The
 * router, the audit log and the limits read the same parse. */
#ifndef SKIFF_API_PATH_H
#define SKIFF_API_PATH_H

typedef struct api_path {
    int resource_request;  /* 1: a path under /api/<v>/ or /apis/<g>/<v>/ with a resource */
    const char *group;     /* "" for the core group */
    const char *version;
    const char *ns;        /* NULL: cluster-scoped or all namespaces */
    const char *resource;  /* NULL when the path names no resource */
    const char *name;
    const char *sub;
    char buf[2048];        /* the segments the pointers above point into */
} api_path_t;

/* Parse path (percent-decoded, no query). 0, or -1 for a path too long to be
 * a resource path (then resource_request is 0). */
int api_path_parse(const char *path, api_path_t *out);

/* The Kubernetes verb of a request: get, list, watch, create, update,
 * patch, delete, deletecollection; for non-resource paths the lower-case
 * method. watch is the value of the watch query parameter (or NULL). */
const char *api_path_verb(const api_path_t *p, const char *method, int watch);

/* The value of query parameter `key` as the router reads it: keys and
 * values percent-decoded ('+' is a space), the last occurrence wins.
 * Newly allocated, or NULL when absent. */
char *api_query_value(const char *query, const char *key);

#endif
