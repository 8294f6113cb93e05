/* core/http/client.h - asynchronous HTTP/1.1 client on libuv and http-parser.
 *
 * An http_client_t is one keep-alive connection to one host:port with a
 * queue of requests sent one after another (no pipelining). The connection
 * is opened on the first request and reopened when the server closed it.
 * An answer is delivered whole (status, Content-Type, body), or, in
 * streaming mode, as body chunks (already chunk-decoded) while they arrive,
 * which is what a watch needs. It knows HTTP only; the Kubernetes client
 * on top of it is core/api/client_http.c. */
#ifndef SKIFF_HTTP_CLIENT_H
#define SKIFF_HTTP_CLIENT_H

#include <stddef.h>

#include <uv.h>

typedef struct http_client http_client_t;
typedef struct http_client_req http_client_req_t;

/* What came back. All pointers are borrowed for the duration of the callback. */
typedef struct http_client_result {
    int status;               /* HTTP status code, or 0 when no answer came */
    int error;                /* 0, or a negative SKIFF_E* code when status is 0 */
    const char *content_type; /* Content-Type of the answer, or NULL */
    const char *body;         /* NUL-terminated whole body ("" after a 2xx stream) */
    size_t body_len;
} http_client_result_t;

/* Runs once per request unless the request was cancelled. */
typedef void (*http_client_done_fn)(void *data, const http_client_result_t *res);
/* Streaming mode: one call per piece of body as it arrives (2xx answers only;
 * other answers are collected and handed to done as usual). */
typedef void (*http_client_chunk_fn)(void *data, const char *chunk, size_t len);

typedef struct http_client_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* path and query, already percent-encoded */
    const char *content_type; /* of the body, or NULL */
    const char *accept;       /* or NULL */
    const char *headers;      /* extra raw header lines, each ending in "\r\n", or NULL */
    const char *body;         /* or NULL */
    size_t body_len;
    http_client_chunk_fn on_chunk; /* non-NULL selects streaming mode */
    http_client_done_fn on_done;
    void *data;
} http_client_request_t;

/* host is a numeric IPv4 or IPv6 address, or "localhost". No connection is
 * made until the first request. 0 or SKIFF_EINVAL / SKIFF_ENOMEM. */
int http_client_new(uv_loop_t *loop, const char *host, int port, http_client_t **out);

/* Speaks HTTPS from now on: ctx (from tls_client_ctx_new in http/tls.h;
 * the client takes a reference) verifies the server's certificate, and
 * server_name (NULL: the host given to http_client_new) must be in it, as
 * a DNS name or an IP address. Call before the first request.
 * 0 or SKIFF_EINVAL / SKIFF_ENOMEM. A failed handshake completes the
 * queued requests with status 0 and SKIFF_EIO. */
struct ssl_ctx_st;
int http_client_set_tls(http_client_t *c, struct ssl_ctx_st *ctx, const char *server_name);

/* Queues a request; everything in r is copied, so it may go away after the
 * call. out (optional) receives a handle for http_client_cancel, valid
 * until on_done runs. 0 or a negative SKIFF_E* code. */
int http_client_send(http_client_t *c, const http_client_request_t *r, http_client_req_t **out);

/* Drops a request: on_done and on_chunk are not called for it again. A
 * request already on the wire costs its connection (it is reopened for the
 * next request). Safe to call from the request's own callbacks. */
void http_client_cancel(http_client_req_t *q);

/* Requests queued or in flight (to pick the least busy of several clients). */
size_t http_client_pending(const http_client_t *c);

/* Closes the connection. Requests still queued get on_done with status 0
 * and SKIFF_ECLOSED, from inside this call. Safe to call from a callback.
 * The loop must run afterwards to finish closing the socket. */
void http_client_free(http_client_t *c);

#endif
