/* core/api/client_http.h - the SDK client (skiff/client.h) over HTTP, for
 * processes other than `skiff server`: agents, tools, end-to-end tests.
 *
 * Requests go over a small pool of keep-alive connections; each watch has
 * a connection of its own. URLs follow the Kubernetes REST layout
 * (/api/v1/..., /apis/<group>/<version>/...). */
#ifndef SKIFF_API_CLIENT_HTTP_H
#define SKIFF_API_CLIENT_HTTP_H

#include <uv.h>

#include <skiff/client.h>

/* A watch handle is valid until watch_cancel or until its callback ran
 * with (NULL, NULL); do not cancel a watch after that end call.
 *
 * host: numeric IPv4/IPv6 address or "localhost". The token, when given,
 * is sent as "Authorization: Bearer <token>". NULL on a bad argument or
 * out of memory. Free with skiff_client_t's vt->free: requests still
 * pending then complete with status 0, open watches end with (NULL, NULL). */
skiff_client_t *client_http_new(uv_loop_t *loop, const char *host, int port,
                                const char *bearer_token_or_NULL);

/* The same over HTTPS: tls (from tls_client_ctx_new in http/tls.h, which
 * holds the CA and an optional client certificate; the client takes its own
 * reference) verifies the server, whose certificate must name
 * server_name_or_NULL (default: host). NULL on a bad argument or out of
 * memory. */
struct ssl_ctx_st;
skiff_client_t *client_http_new_tls(uv_loop_t *loop, const char *host, int port,
                                    struct ssl_ctx_st *tls, const char *server_name_or_NULL,
                                    const char *bearer_token_or_NULL);

/* Builds the path (no query) of a resource URL into buf; the length it
 * needs (like snprintf), or SKIFF_EINVAL. Exposed for tests and tools. */
int client_http_path(char *buf, size_t len, const skiff_resource_t *r, const char *ns,
                     const char *name);

#endif
