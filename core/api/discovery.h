/* core/api/discovery.h - API discovery documents and /version, generated
 * from the kind registry.
 *
 * Serves /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version> (the
 * legacy documents: APIVersions, APIGroupList, APIGroup, APIResourceList),
 * the aggregated discovery documents (apidiscovery.k8s.io/v2 and v2beta1
 * APIGroupDiscoveryList) that kubectl asks for first through its Accept
 * header, and /version. Documents are built once and served from a cache
 * until the registry changes; nothing here touches the store. */
#ifndef SKIFF_API_DISCOVERY_H
#define SKIFF_API_DISCOVERY_H

#include <stddef.h>

#include "api/request.h"

/* What to send back for a generated document. Every pointer is borrowed from
 * a cache: it stays valid at least until the second invalidation after the
 * call (so a response still being written when a CRD arrives is safe), and
 * until discovery_shutdown()/openapi_shutdown(). Send it, do not free it. */
typedef struct api_doc_reply {
    int status;                /* HTTP status: 200, 404, 405, 406, 500 */
    const char *content_type;  /* "application/json", aggregated type, ... */
    const char *body;          /* not NUL-terminated necessarily; use len */
    size_t len;
    const char *cache_control; /* value for a Cache-Control header, or NULL */
    const char *etag;          /* quoted ETag value, or NULL */
    const char *location;      /* current URL of a document asked by an old hash, or NULL */
} api_doc_reply_t;

/* Content types of the aggregated discovery documents. */
#define DISCOVERY_AGGREGATED_V2_TYPE \
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#define DISCOVERY_AGGREGATED_V2BETA1_TYPE \
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

/* The version this server reports (GET /version) and claims to kubectl. */
#define DISCOVERY_VERSION_MAJOR "1"
#define DISCOVERY_VERSION_MINOR "32"
#define DISCOVERY_GIT_VERSION "v1.32.0+skiff"

/* Answer req if its path is a discovery path or /version.
 * Returns 1 and fills out when the path is ours (200; 404 for an unknown
 * group/version under /apis, 405 for a method other than GET or HEAD, 500
 * with a Status when a document could not be built), 0 when the path is
 * not ours (out untouched), SKIFF_EINVAL only for NULL arguments. So
 * `if (discovery_handle(req, &d) > 0) send(d)` is all a caller needs. */
int discovery_handle(const api_request_t *req, api_doc_reply_t *out);

/* Forget the cached documents; the next request rebuilds them from the
 * registry. Call after the registry changes (CRD added, removed, updated).
 * A change in registry_count() is also noticed on its own. */
void discovery_invalidate(void);

/* Free every cached document (at server shutdown). */
void discovery_shutdown(void);

/* Which aggregated discovery version the Accept header asks for first:
 * 2 (v2), 1 (v2beta1) or 0 (plain JSON documents). */
int discovery_accept_aggregated(const char *accept);

/* Helpers shared with openapi.c. */

/* 1 if version a is preferred over b by Kubernetes version priority
 * (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else). */
int discovery_version_newer(const char *a, const char *b);

#endif
