/* core/api/client_http.c - the SDK client over HTTP: a rest_transport_t on
 * core/http/client, for processes other than `skiff server`.
 *
 * Plain requests share a small pool of keep-alive connections; each watch
 * gets a connection of its own. What the calls mean lives in client_rest.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <skiff/errors.h>

#include "api/client_http.h"
#include "api/client_rest.h"
#include "http/client.h"

#define CLIENT_HTTP_POOL 4

typedef struct http_transport http_transport_t;

/* One request in flight; the handle given back for cancel. */
typedef struct hreq {
    http_transport_t *t;
    struct hreq *prev, *next;  /* streams only: the transport ends them on free */
    http_client_t *own;        /* streams: their own connection */
    http_client_req_t *req;
    void (*on_chunk)(void *data, const char *chunk, size_t len);
    void (*on_done)(void *data, int status, const char *body, size_t len);
    void *data;
} hreq_t;

struct http_transport {
    rest_transport_t base;
    uv_loop_t *loop;
    char host[64];
    int port;
    char *auth; /* "Authorization: Bearer ...\r\n" or NULL */
    SSL_CTX *tls;   /* HTTPS when set (a reference of ours) */
    char *tls_name; /* name the server's certificate must carry, or NULL */
    http_client_t *pool[CLIENT_HTTP_POOL];
    hreq_t *streams;
};

static http_client_t *pick(http_transport_t *t)
{
    http_client_t *best = t->pool[0];
    for (int i = 1; i < CLIENT_HTTP_POOL; i++)
        if (http_client_pending(t->pool[i]) < http_client_pending(best)) best = t->pool[i];
    return best;
}

static void stream_unlink(hreq_t *q)
{
    if (!q->t) return;
    if (q->prev) q->prev->next = q->next;
    else q->t->streams = q->next;
    if (q->next) q->next->prev = q->prev;
    q->prev = q->next = NULL;
    q->t = NULL;
}

static void on_chunk(void *data, const char *chunk, size_t len)
{
    hreq_t *q = data;
    if (q->on_chunk) q->on_chunk(q->data, chunk, len);
}

static void on_done(void *data, const http_client_result_t *res)
{
    hreq_t *q = data;
    if (q->own) {
        stream_unlink(q);
        http_client_free(q->own); /* from its own callback: the client defers this */
    }
    q->on_done(q->data, res->status, res->body, res->body_len);
    free(q);
}

static int ht_send(rest_transport_t *base, const rest_request_t *r, void **handle)
{
    http_transport_t *t = (http_transport_t *)base;
    hreq_t *q = calloc(1, sizeof *q);
    if (!q) return SKIFF_ENOMEM;
    q->on_chunk = r->on_chunk;
    q->on_done = r->on_done;
    q->data = r->data;
    http_client_t *c;
    if (r->stream) {
        int e = http_client_new(t->loop, t->host, t->port, &q->own);
        if (e == 0 && t->tls)
            e = http_client_set_tls(q->own, t->tls, t->tls_name);
        if (e < 0) {
            http_client_free(q->own);
            free(q);
            return e;
        }
        c = q->own;
    } else {
        c = pick(t);
    }
    http_client_request_t hr = {
        .method = r->method,
        .path = r->path,
        .content_type = r->content_type,
        .accept = "application/json",
        .headers = t->auth,
        .body = r->body,
        .body_len = r->body_len,
        .on_chunk = r->stream ? on_chunk : NULL,
        .on_done = on_done,
        .data = q,
    };
    if (r->stream) {
        q->t = t;
        q->next = t->streams;
        if (t->streams) t->streams->prev = q;
        t->streams = q;
    }
    int e = http_client_send(c, &hr, &q->req);
    if (e < 0) {
        stream_unlink(q);
        if (q->own) http_client_free(q->own);
        free(q);
        return e;
    }
    *handle = q;
    return 0;
}

static void ht_cancel(rest_transport_t *base, void *handle)
{
    hreq_t *q = handle;
    if (!q) return;
    http_client_cancel(q->req);
    if (q->own) {
        stream_unlink(q);
        http_client_free(q->own);
    }
    free(q);
}

static void ht_free(rest_transport_t *base)
{
    http_transport_t *t = (http_transport_t *)base;
    /* open streams end with status 0 through their own completion */
    while (t->streams) {
        hreq_t *q = t->streams;
        stream_unlink(q);
        http_client_free(q->own);
    }
    for (int i = 0; i < CLIENT_HTTP_POOL; i++) http_client_free(t->pool[i]);
    free(t->auth);
    SSL_CTX_free(t->tls);
    free(t->tls_name);
    free(t);
}

static const rest_transport_ops_t http_transport_ops = {
    .send = ht_send,
    .cancel = ht_cancel,
    .free = ht_free,
};

skiff_client_t *client_http_new(uv_loop_t *loop, const char *host, int port,
                                const char *bearer_token_or_NULL)
{
    return client_http_new_tls(loop, host, port, NULL, NULL, bearer_token_or_NULL);
}

skiff_client_t *client_http_new_tls(uv_loop_t *loop, const char *host, int port,
                                    struct ssl_ctx_st *tls, const char *server_name_or_NULL,
                                    const char *bearer_token_or_NULL)
{
    if (!loop || !host || strlen(host) >= sizeof(((http_transport_t *)0)->host)) return NULL;
    http_transport_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    if (tls) {
        if (SSL_CTX_up_ref(tls) != 1) {
            free(t);
            return NULL;
        }
        t->tls = tls;
        if (server_name_or_NULL && !(t->tls_name = strdup(server_name_or_NULL))) goto fail;
    }
    t->base.ops = &http_transport_ops;
    t->loop = loop;
    snprintf(t->host, sizeof(t->host), "%s", host);
    t->port = port;
    if (bearer_token_or_NULL && *bearer_token_or_NULL) {
        size_t n = strlen(bearer_token_or_NULL) + 32;
        t->auth = malloc(n);
        if (!t->auth) goto fail;
        snprintf(t->auth, n, "Authorization: Bearer %s\r\n", bearer_token_or_NULL);
    }
    for (int i = 0; i < CLIENT_HTTP_POOL; i++) {
        if (http_client_new(loop, host, port, &t->pool[i]) < 0) goto fail;
        if (t->tls && http_client_set_tls(t->pool[i], t->tls, t->tls_name) < 0) goto fail;
    }
    return client_rest_new(&t->base);
fail:
    for (int i = 0; i < CLIENT_HTTP_POOL; i++) http_client_free(t->pool[i]);
    free(t->auth);
    SSL_CTX_free(t->tls);
    free(t->tls_name);
    free(t);
    return NULL;
}

int client_http_path(char *buf, size_t len, const skiff_resource_t *r, const char *ns,
                     const char *name)
{
    return client_rest_path(buf, len, r, ns, name);
}
