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
 * document. Returns 1 and fills out when the path is ours (200, 301 to the
 * current ?hash= when an old hash is asked, 404 for an unknown group-version,
 * 405, or 406 when only protobuf is acceptable), 0 when not ours, or a
 * negative SKIFF_E* code when the document could not be built.
 * For a v3 request carrying the current hash, out->cache_control is
 * "public, immutable"; without a hash it is "no-cache, private". */
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
