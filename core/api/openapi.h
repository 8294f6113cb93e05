/* core/api/openapi.h - OpenAPI v2 (/openapi/v2) and v3 (/openapi/v3,
 * /openapi/v3/api/v1, /openapi/v3/apis/<group>/<version>) documents,
 * generated from the kind registry and the schema set.
 *
 * kubectl reads these for `kubectl explain`, for strategic merge patch keys
 * (`kubectl apply`) and to learn that the server validates fields itself
 * (the fieldValidation parameter on PATCH). Documents are built once and
 * served from a cache until the registry changes. */
#ifndef SKIFF_API_OPENAPI_H
#define SKIFF_API_OPENAPI_H

#include <jansson.h>

#include "api/discovery.h" /* api_doc_reply_t */
#include "api/request.h"

/* Answer req if its path is /openapi/v2, /openapi/v3 or a v3 group-version
 * document. Returns 1 and fills out when the path is ours (200; 404 for an
 * unknown group-version, 405, 406 when only protobuf is acceptable, 500
 * with a Status when a document could not be built), 0 when the path is
 * not ours (out untouched), SKIFF_EINVAL only for NULL arguments.
 * For a v3 request carrying the current ?hash=, out->cache_control is
 * "public, immutable"; without a hash, or with an outdated one (then the
 * current document is served and out->location names its current URL), it
 * is "no-cache, private". */
int openapi_handle(const api_request_t *req, api_doc_reply_t *out);

/* Forget the cached documents (call after the registry changes; a change in
 * registry_count() is also noticed on its own). */
void openapi_invalidate(void);

/* Free every cached document (at server shutdown). */
void openapi_shutdown(void);

/* Uncached builders, for tests and tools. New references, NULL on failure.
 * group "" is the core group. */
json_t *openapi_v2_new(void);
json_t *openapi_v3_new(const char *group, const char *version);

#endif
