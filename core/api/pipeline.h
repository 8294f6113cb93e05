/* core/api/pipeline.h - what every request passes before and after its
 * handler: who is asking, the abuse limits (429 with Retry-After), and the
 * audit log (one event per request, completed when the answer ends).
 * Authentication and authorization will join here. */
#ifndef SKIFF_API_PIPELINE_H
#define SKIFF_API_PIPELINE_H

#include "api/path.h"
#include "api/request.h"
#include "http/limits.h"
#include "security/audit.h"
#include "security/rbac.h"
#include "security/tokens.h"

typedef struct api_pipeline {
    audit_t *audit;   /* NULL: no audit log */
    limits_t *limits; /* NULL: no limits */
    rbac_index_t *rbac; /* NULL: everyone may do everything */
    const tokens_t *tokens; /* bearer tokens; NULL: none accepted */
    int anonymous;          /* requests without credentials act as system:anonymous */
    int any_host;           /* plain HTTP answers any Host (--insecure-allow-remote) */
    tokens_sa_exists_fn sa_exists;
    void *sa_data;
    /* bootstrap tokens (0 ok, -1 refused, 1 not one); called with sa_data */
    int (*bootstrap)(void *data, const char *token, token_identity_t *out, char *err,
                     size_t errlen);
    /* For requests from nodes: the pod a pods request names (a new
     * reference, or NULL) and the pod_uses lookup the node authorizer asks. */
    json_t *(*node_inputs)(void *data, const api_path_t *p, rbac_node_inputs_t *in);
    void *node_inputs_data;
} api_pipeline_t;

#define API_MAX_GROUPS 32

/* Who sent a request, and its groups (NULL-terminated, into groups, which
 * has room for API_MAX_GROUPS + 2 entries). */
const char *api_requester(const api_request_t *req, const token_identity_t *token,
                          const char **groups, size_t *ngroups);
/* Whom the request acts as: the impersonated user (kubectl --as) once the
 * pipeline has allowed it, else the requester. */
const char *api_identity(const api_request_t *req, api_response_t *resp, const char **groups,
                         size_t *ngroups);

/* Admit a request. Returns the sink the handler must answer through (a
 * proxy that completes the audit event and releases the limits when the
 * answer ends), or NULL after answering itself (403 denied by RBAC, 429
 * over a limit). */
api_response_t *api_pipeline_enter(const api_pipeline_t *pl, const api_request_t *req,
                                   const api_path_t *path, api_response_t *resp);

#endif
