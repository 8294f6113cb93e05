/* core/http/server.h - HTTP/1.1 listener on libuv (keep-alive, chunked
 * streaming) that feeds api_request_t to one handler.
 *
 * It knows HTTP only: parsing (http-parser), limits on header and body
 * size, keep-alive and chunked transfer encoding for streamed answers. */
#ifndef SKIFF_HTTP_SERVER_H
#define SKIFF_HTTP_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "api/request.h"

typedef struct http_server http_server_t;

/* Called once per request; the handler answers through resp, now or later. */
typedef void (*http_handler_fn)(void *data, const api_request_t *req, api_response_t *resp);

typedef struct http_server_opts {
    const char *host;       /* "127.0.0.1", "::1", "0.0.0.0" */
    int port;               /* 0: pick a free port (see http_server_port) */
    size_t max_body;        /* bigger bodies get 413 with a Status body */
    size_t max_header;      /* bigger headers get 431 */
    http_handler_fn handler;
    void *handler_data;
    /* TLS (an SSL_CTX, e.g. from pki_server_ctx_new or tls_server_ctx_new):
     * NULL serves plain HTTP. The server takes its own reference. */
    struct ssl_ctx_st *tls_ctx;
    uint64_t tls_handshake_ms; /* time allowed for the handshake (default 10 s) */
} http_server_opts_t;

/* 0 or a negative libuv error code (UV_EADDRINUSE ...). */
int http_server_start(uv_loop_t *loop, const http_server_opts_t *opts, http_server_t **out);
int http_server_port(const http_server_t *s);
/* Closes the listener and every connection; ongoing streams are aborted. */
void http_server_stop(http_server_t *s, void (*done)(void *data), void *data);

/* Additions beyond the first contract: tuning and introspection. */
#include <stddef.h>
#include <stdint.h>
/* Idle keep-alive timeout (default 5 min) and time allowed to send the
 * request headers (default 30 s); 0 keeps the current value. */
void http_server_set_timeouts(http_server_t *s, uint64_t idle_ms, uint64_t header_ms);
/* Unsent bytes a streamed answer may queue before it is aborted (64 MiB). */
void http_server_set_write_cap(http_server_t *s, size_t bytes);
/* Open connections (for tests and metrics). */
size_t http_server_connections(const http_server_t *s);

#endif
