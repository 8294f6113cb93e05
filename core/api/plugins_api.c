/* core/api/plugins_api.c - serves the plugin table as JSON at
 * /skiff/v1/plugins (GET only). */
#include "api/plugins_api.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/status.h"
#include "plugin/registry.h"

int plugins_api_handle(const api_request_t *req, api_response_t *resp)
{
    if (!req->path || strcmp(req->path, PLUGINS_API_PATH) != 0) return 0;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        status_reply(resp, 405, "MethodNotAllowed", NULL,
                     "%s only answers GET (the plugin list is read-only)", PLUGINS_API_PATH);
        return 1;
    }
    json_t *doc = plugin_registry_json();
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body) {
        status_reply(resp, 500, "InternalError", NULL, "out of memory");
        return 1;
    }
    resp->ops->send(resp, 200, "application/json", body, strlen(body));
    free(body);
    return 1;
}
