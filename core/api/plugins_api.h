/* core/api/plugins_api.h - GET /skiff/v1/plugins: the server's plugin table
 * (core/plugin/registry.h) for `skiff plugins list`. A non-resource URL:
 * RBAC allows it through nonResourceURLs (cluster-admin has them all). */
#ifndef SKIFF_API_PLUGINS_API_H
#define SKIFF_API_PLUGINS_API_H

#include "api/request.h"

#define PLUGINS_API_PATH "/skiff/v1/plugins"

/* Answers req when its path is PLUGINS_API_PATH and returns 1; else 0.
 * Call after authentication and authorization. */
int plugins_api_handle(const api_request_t *req, api_response_t *resp);

#endif
