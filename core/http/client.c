/* core/http/client.c - asynchronous HTTP/1.1 client: one keep-alive
 * connection, a queue of requests, whole or streamed answers.
 *
 * The socket lives in its own small allocation (client_sock_t) so that a
 * connection can be dropped and a new one opened at once while libuv still
 * closes the old handle. Callbacks into the user may free the client or
 * cancel the current request; `busy` counts the frames on the stack that
 * still use the client, and the last one out does the deferred work.
 *
 * With TLS (http_client_set_tls) each socket carries an OpenSSL engine on
 * memory BIOs (core/http/tls.c): the request is encrypted into it and the
 * ciphertext written with uv_write; bytes read are decrypted and take the
 * plain path. The request is sent once the handshake, which verifies the
 * server's certificate and name, has finished. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <skiff/errors.h>

#include "http/client.h"
#include "http/tls.h"

#define CLIENT_BODY_KEEP ((size_t)1 << 20)

typedef struct client_sock {
    uv_tcp_t tcp;
    uv_connect_t connect;
    http_client_t *client; /* NULL once detached from its client */
    tls_conn_t *tls;       /* NULL in plain mode */
} client_sock_t;

/* Ciphertext the kernel did not take at once. */
typedef struct tls_wreq {
    uv_write_t req;
    char data[];
} tls_wreq_t;

struct http_client_req {
    http_client_req_t *next;
    http_client_t *client;
    http_client_chunk_fn on_chunk;
    http_client_done_fn on_done;
    void *udata;
    uv_write_t wreq;
    unsigned is_head : 1;
    unsigned idempotent : 1;
    unsigned cancelled : 1;
    unsigned writing : 1;  /* a uv_write still points into data */
    unsigned finished : 1; /* out of the queue; free when the write is done */
    unsigned retried : 1;
    size_t len;
    char wire[]; /* the serialized request */
};

struct http_client {
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    char hostport[80];
    char host[64];
    SSL_CTX *tls_ctx;
    char *tls_name;
    client_sock_t *sock;
    int connected;
    int inflight;  /* head of the queue is on the wire */
    int reused;    /* the current connection already carried an answer */
    int got_bytes; /* some of the current answer arrived */
    http_client_req_t *head, *tail;
    size_t npending;
    http_parser parser;

    int complete;
    int keep_alive;
    int status;
    int in_ct;
    char field[16];
    size_t field_len;
    char ct[128];
    size_t ct_len;
    int have_ct;
    char *body;
    size_t body_len, body_cap;
    int streaming; /* current answer goes to on_chunk */

    int busy;
    int freeing;
    int reset_pending;
};

static const http_parser_settings parser_settings;
static void client_kick(http_client_t *c);

/* ---- queue and lifetime ------------------------------------------------- */

static void req_release(http_client_req_t *q)
{
    q->finished = 1;
    if (!q->writing)
        free(q);
}

static http_client_req_t *queue_pop(http_client_t *c)
{
    http_client_req_t *q = c->head;
    if (!q)
        return NULL;
    c->head = q->next;
    if (!c->head)
        c->tail = NULL;
    q->next = NULL;
    c->npending--;
    return q;
}

static void on_sock_closed(uv_handle_t *h)
{
    client_sock_t *s = (client_sock_t *)h;
    tls_conn_free(s->tls);
    free(s);
}

/* Drops the socket; a new one is made by client_kick when needed. */
static void client_disconnect(http_client_t *c)
{
    if (!c->sock)
        return;
    c->sock->client = NULL;
    uv_close((uv_handle_t *)&c->sock->tcp, on_sock_closed);
    c->sock = NULL;
    c->connected = 0;
    c->inflight = 0;
    c->reused = 0;
}

static void result_fail(http_client_result_t *res, int err)
{
    memset(res, 0, sizeof(*res));
    res->error = err;
    res->body = "";
}

/* Fails every queued request (status 0); callbacks may queue new ones,
 * which are kept. */
static void client_fail_all(http_client_t *c, int err)
{
    http_client_req_t *list = c->head;
    c->head = c->tail = NULL;
    c->npending = 0;
    c->inflight = 0;
    c->busy++;
    while (list) {
        http_client_req_t *q = list;
        list = q->next;
        q->next = NULL;
        if (!q->cancelled && q->on_done) {
            http_client_result_t res;
            result_fail(&res, err);
            q->cancelled = 1; /* no second call whatever the callback does */
            q->on_done(q->udata, &res);
        }
        req_release(q);
    }
    c->busy--;
}

/* A cancelled request that was on the wire leaves with its connection. */
static void drop_cancelled_head(http_client_t *c)
{
    if (c->inflight && c->head && c->head->cancelled)
        req_release(queue_pop(c));
}

static void client_destroy(http_client_t *c)
{
    free(c->body);
    SSL_CTX_free(c->tls_ctx);
    free(c->tls_name);
    free(c);
}

/* The outermost frame using the client finishes deferred work. Returns 1
 * when the client is gone. */
static int client_leave(http_client_t *c)
{
    if (--c->busy > 0)
        return 0;
    if (c->freeing) {
        client_destroy(c);
        return 1;
    }
    if (c->reset_pending) {
        c->reset_pending = 0;
        drop_cancelled_head(c);
        client_disconnect(c);
        client_kick(c);
    }
    return 0;
}

/* ---- parser callbacks ---------------------------------------------------- */

static int body_append(http_client_t *c, const char *at, size_t len)
{
    if (c->body_len + len + 1 > c->body_cap) {
        size_t n = c->body_cap ? c->body_cap : 4096;
        while (n < c->body_len + len + 1)
            n *= 2;
        char *p = realloc(c->body, n);
        if (!p)
            return -1;
        c->body = p;
        c->body_cap = n;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_client_t *c = p->data;
    c->status = 0;
    c->have_ct = 0;
    c->ct_len = 0;
    c->in_ct = 0;
    c->field_len = 0;
    c->body_len = 0;
    c->complete = 0;
    c->streaming = 0;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_client_t *c = p->data;
    if (c->in_ct != 0) {
        c->field_len = 0; /* a value ended: new field */
        c->in_ct = 0;
    }
    size_t room = sizeof(c->field) - 1 - c->field_len;
    size_t n = len < room ? len : room;
    memcpy(c->field + c->field_len, at, n);
    c->field_len += n;
    c->field[c->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_client_t *c = p->data;
    if (c->in_ct == 0) {
        /* first piece of this value: is it the header we keep? */
        if (!strcasecmp(c->field, "content-type")) {
            c->in_ct = 2;
            c->have_ct = 1;
            c->ct_len = 0;
        } else {
            c->in_ct = -1;
        }
    }
    if (c->in_ct == 2) {
        size_t room = sizeof(c->ct) - 1 - c->ct_len;
        size_t n = len < room ? len : room;
        memcpy(c->ct + c->ct_len, at, n);
        c->ct_len += n;
        c->ct[c->ct_len] = '\0';
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_client_t *c = p->data;
    http_client_req_t *q = c->head;
    c->status = p->status_code;
    if (q && q->on_chunk && c->status >= 200 && c->status < 300)
        c->streaming = 1;
    if (q && q->is_head)
        return 1; /* no body follows an answer to HEAD */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_client_t *c = p->data;
    http_client_req_t *q = c->head;
    if (!q || q->cancelled)
        return -1;
    if (!c->streaming)
        return body_append(c, at, len);
    c->busy++;
    q->on_chunk(q->udata, at, len);
    c->busy--;
    if (c->freeing || q->cancelled)
        return -1;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_client_t *c = p->data;
    c->complete = 1;
    c->keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- I/O ------------------------------------------------------------------ */

static void on_write(uv_write_t *w, int status)
{
    http_client_req_t *q = (http_client_req_t *)((char *)w - offsetof(http_client_req_t, wreq));
    q->writing = 0;
    if (q->finished)
        free(q);
    /* a failed write shows up as a read error or EOF on the same socket */
}

static void on_tls_write(uv_write_t *w, int status)
{
    free(w);
}

/* Sends the ciphertext the socket's engine has ready. 0 or SKIFF_EIO. */
static int sock_flush_tls(client_sock_t *s)
{
    static __thread char cipher[64 * 1024];
    size_t n;
    while ((n = tls_conn_out_take(s->tls, cipher, sizeof cipher)) > 0) {
        uv_buf_t b = uv_buf_init(cipher, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (r == UV_EAGAIN || r == UV_ENOSYS)
            r = 0;
        if (r < 0)
            return SKIFF_EIO;
        if ((size_t)r == n)
            continue;
        size_t rest = n - (size_t)r;
        tls_wreq_t *w = malloc(sizeof(*w) + rest);
        if (!w)
            return SKIFF_EIO;
        memcpy(w->data, cipher + r, rest);
        b = uv_buf_init(w->data, (unsigned)rest);
        if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_tls_write) < 0) {
            free(w);
            return SKIFF_EIO;
        }
    }
    return 0;
}

static void client_write_head(http_client_t *c)
{
    http_client_req_t *q = c->head;
    uv_buf_t b = uv_buf_init(q->wire, (unsigned)q->len);
    if (c->sock->tls) {
        c->inflight = 1;
        c->got_bytes = 0;
        c->complete = 0;
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
        if (tls_conn_writev(c->sock->tls, &b, 1) < 0 || sock_flush_tls(c->sock) < 0)
            c->reset_pending = 1;
        return;
    }
    int r = uv_try_write((uv_stream_t *)&c->sock->tcp, &b, 1);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
        r = 0;
    c->inflight = 1;
    c->got_bytes = 0;
    c->complete = 0;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    if (r < 0) {
        c->reset_pending = 1;
        return;
    }
    if ((size_t)r < q->len) {
        b = uv_buf_init(q->wire + r, (unsigned)(q->len - (size_t)r));
        if (uv_write(&q->wreq, (uv_stream_t *)&c->sock->tcp, &b, 1, on_write) == 0)
            q->writing = 1;
        else
            c->reset_pending = 1;
    }
}

/* Delivers the finished answer of the head request. */
static void client_complete(http_client_t *c)
{
    http_client_req_t *q = queue_pop(c);
    c->inflight = 0;
    c->reused = 1;
    if (!c->keep_alive)
        client_disconnect(c);
    if (q && !q->cancelled && q->on_done) {
        http_client_result_t res = {
            .status = c->status,
            .content_type = c->have_ct ? c->ct : NULL,
            .body = c->body_len ? c->body : "",
            .body_len = c->body_len,
        };
        q->cancelled = 1;
        q->on_done(q->udata, &res);
    }
    if (q)
        req_release(q);
    if (c->body_cap > CLIENT_BODY_KEEP) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    c->body_len = 0;
}

/* The connection ended (EOF, error): finish or fail the request on it. */
static void client_conn_lost(http_client_t *c, int err)
{
    http_client_req_t *q = c->inflight ? c->head : NULL;
    int reused = c->reused;
    client_disconnect(c);
    if (!q)
        return;
    if (!c->got_bytes && reused && q->idempotent && !q->retried && !q->writing) {
        /* the server closed an idle keep-alive connection as we sent: retry once */
        q->retried = 1;
        return;
    }
    queue_pop(c);
    if (!q->cancelled && q->on_done) {
        http_client_result_t res;
        result_fail(&res, err);
        q->cancelled = 1;
        q->on_done(q->udata, &res);
    }
    req_release(q);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* parsed before the next read; one per thread for clients on several loops */
    static __thread char readbuf[64 * 1024];
    buf->base = readbuf;
    buf->len = sizeof(readbuf);
}

/* The connection ended: an answer delimited by its end is complete. */
static void client_on_eof(http_client_t *c)
{
    if (c->inflight && c->got_bytes)
        http_parser_execute(&c->parser, &parser_settings, NULL, 0);
    if (c->complete && c->inflight)
        client_complete(c);
    else
        client_conn_lost(c, SKIFF_EIO);
}

/* Answer bytes (plaintext). The caller holds a busy frame. */
static void client_on_bytes(http_client_t *c, const char *data, size_t len)
{
    if (!c->inflight) {
        /* bytes nobody asked for: the connection is out of step */
        c->reset_pending = 1;
        return;
    }
    c->got_bytes = 1;
    http_parser_execute(&c->parser, &parser_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->freeing || (c->head && c->head->cancelled && !c->complete))
        return;
    if (e == HPE_PAUSED || c->complete) {
        http_parser_pause(&c->parser, 0);
        client_complete(c);
    } else if (e != HPE_OK) {
        client_conn_lost(c, SKIFF_EIO);
    }
}

/* A TLS handshake failed: like a refused connection, every queued request
 * fails (the next request tries again). */
static void client_tls_failed(http_client_t *c)
{
    client_disconnect(c);
    client_fail_all(c, SKIFF_EIO);
}

static void client_on_tls(http_client_t *c, client_sock_t *s, const char *data, size_t len)
{
    static __thread char plain[64 * 1024];
    if (tls_conn_feed(s->tls, data, len) < 0) {
        client_conn_lost(c, SKIFF_ENOMEM);
        return;
    }
    while (c->sock == s && !c->freeing && !c->reset_pending) {
        size_t got = 0;
        int r = tls_conn_read(s->tls, plain, sizeof plain, &got);
        if (!c->connected && tls_conn_ready(s->tls))
            c->connected = 1;
        if (r < 0) {
            sock_flush_tls(s); /* the alert, best effort */
            if (!c->connected)
                client_tls_failed(c);
            else
                client_conn_lost(c, SKIFF_EIO);
            return;
        }
        if (r == TLS_CLOSED) {
            client_on_eof(c);
            return;
        }
        if (got == 0)
            break;
        client_on_bytes(c, plain, got);
    }
    if (c->sock == s && sock_flush_tls(s) < 0)
        client_conn_lost(c, SKIFF_EIO);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    client_sock_t *s = (client_sock_t *)st;
    http_client_t *c = s->client;
    if (!c || nread == 0)
        return;
    c->busy++;
    if (nread < 0) {
        if (s->tls && !c->connected)
            client_tls_failed(c); /* closed during the handshake */
        else
            client_on_eof(c);
    } else if (s->tls) {
        client_on_tls(c, s, buf->base, (size_t)nread);
    } else {
        client_on_bytes(c, buf->base, (size_t)nread);
    }
    if (!client_leave(c))
        client_kick(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    client_sock_t *s = req->data;
    http_client_t *c = s->client;
    if (!c)
        return;
    c->busy++;
    if (status < 0) {
        client_disconnect(c);
        client_fail_all(c, SKIFF_EIO);
    } else if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) < 0) {
        client_disconnect(c);
        client_fail_all(c, SKIFF_EIO);
    } else {
        uv_tcp_nodelay(&s->tcp, 1);
        if (!s->tls)
            c->connected = 1;
        else if (tls_conn_handshake(s->tls) < 0 || sock_flush_tls(s) < 0)
            client_tls_failed(c); /* connected when the handshake is done */
    }
    if (!client_leave(c))
        client_kick(c);
}

/* Moves the queue forward: connect, or send the next request. */
static void client_kick(http_client_t *c)
{
    if (c->freeing || c->busy || !c->head)
        return;
    if (!c->sock) {
        client_sock_t *s = calloc(1, sizeof(*s));
        if (!s) {
            client_fail_all(c, SKIFF_ENOMEM);
            return;
        }
        s->client = c;
        if (c->tls_ctx && tls_conn_new(c->tls_ctx, 0, c->tls_name, &s->tls) < 0) {
            free(s);
            client_fail_all(c, SKIFF_ENOMEM);
            return;
        }
        uv_tcp_init(c->loop, &s->tcp);
        s->connect.data = s;
        c->sock = s;
        c->connected = 0;
        c->reused = 0;
        if (uv_tcp_connect(&s->connect, &s->tcp, (struct sockaddr *)&c->addr, on_connect) < 0) {
            client_disconnect(c);
            client_fail_all(c, SKIFF_EIO);
        }
        return;
    }
    if (!c->connected || c->inflight)
        return;
    c->busy++;
    client_write_head(c);
    client_leave(c);
}

/* ---- public --------------------------------------------------------------- */

int http_client_new(uv_loop_t *loop, const char *host, int port, http_client_t **out)
{
    if (!loop || !host || !out || port <= 0 || port > 65535)
        return SKIFF_EINVAL;
    http_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return SKIFF_ENOMEM;
    const char *ip = strcmp(host, "localhost") ? host : "127.0.0.1";
    int e;
    if (strchr(ip, ':')) {
        e = uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&c->addr);
        snprintf(c->hostport, sizeof(c->hostport), "[%s]:%d", ip, port);
    } else {
        e = uv_ip4_addr(ip, port, (struct sockaddr_in *)&c->addr);
        snprintf(c->hostport, sizeof(c->hostport), "%s:%d", host, port);
    }
    if (e < 0 || strlen(host) >= sizeof(c->host)) {
        free(c);
        return SKIFF_EINVAL;
    }
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->loop = loop;
    *out = c;
    return 0;
}

int http_client_set_tls(http_client_t *c, SSL_CTX *ctx, const char *server_name)
{
    if (!c || !ctx || c->sock || c->head)
        return SKIFF_EINVAL;
    char *name = strdup(server_name ? server_name : c->host);
    if (!name)
        return SKIFF_ENOMEM;
    if (SSL_CTX_up_ref(ctx) != 1) {
        free(name);
        return SKIFF_ENOMEM;
    }
    SSL_CTX_free(c->tls_ctx);
    free(c->tls_name);
    c->tls_ctx = ctx;
    c->tls_name = name;
    return 0;
}

static char *put(char *w, const char *s, size_t n)
{
    if (n)
        memcpy(w, s, n);
    return w + n;
}

int http_client_send(http_client_t *c, const http_client_request_t *r, http_client_req_t **out)
{
    if (!c || !r || !r->method || !r->path || c->freeing)
        return SKIFF_EINVAL;
    int with_len = r->body_len > 0 || !strcmp(r->method, "POST") || !strcmp(r->method, "PUT") ||
                   !strcmp(r->method, "PATCH");
    /* "METHOD PATH HTTP/1.1\r\nHost: ...\r\nUser-Agent: skiff\r\n" then
     * Content-Type, Accept, the extra lines, Content-Length and the body;
     * pieced together with memcpy, as every request of a busy client pays it */
    char clen[48];
    size_t clen_n = 0;
    if (with_len) {
        char digits[24];
        size_t k = 0, v = r->body_len;
        do {
            digits[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        memcpy(clen, "Content-Length: ", 16);
        clen_n = 16;
        while (k)
            clen[clen_n++] = digits[--k];
        clen[clen_n++] = '\r';
        clen[clen_n++] = '\n';
    }
    size_t lm = strlen(r->method), lp = strlen(r->path), lh = strlen(c->hostport);
    size_t lct = r->content_type ? strlen(r->content_type) : 0;
    size_t lac = r->accept ? strlen(r->accept) : 0;
    size_t lx = r->headers ? strlen(r->headers) : 0;
    size_t head = lm + 1 + lp + 17 + lh + 21 + (r->content_type ? 14 + lct + 2 : 0) +
                  (r->accept ? 8 + lac + 2 : 0) + lx + clen_n + 2;
    size_t total = head + r->body_len;
    http_client_req_t *q = calloc(1, sizeof(*q) + total + 1);
    if (!q)
        return SKIFF_ENOMEM;
    char *w = put(q->wire, r->method, lm);
    w = put(w, " ", 1);
    w = put(w, r->path, lp);
    w = put(w, " HTTP/1.1\r\nHost: ", 17);
    w = put(w, c->hostport, lh);
    w = put(w, "\r\nUser-Agent: skiff\r\n", 21);
    if (r->content_type) {
        w = put(w, "Content-Type: ", 14);
        w = put(w, r->content_type, lct);
        w = put(w, "\r\n", 2);
    }
    if (r->accept) {
        w = put(w, "Accept: ", 8);
        w = put(w, r->accept, lac);
        w = put(w, "\r\n", 2);
    }
    w = put(w, r->headers, lx);
    w = put(w, clen, clen_n);
    put(w, "\r\n", 2);
    if (r->body_len)
        memcpy(q->wire + head, r->body, r->body_len);
    q->len = total;
    q->client = c;
    q->on_chunk = r->on_chunk;
    q->on_done = r->on_done;
    q->udata = r->data;
    q->wire[total] = '\0';
    q->is_head = !strcmp(r->method, "HEAD");
    q->idempotent = q->is_head || !strcmp(r->method, "GET");
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->npending++;
    if (out)
        *out = q;
    client_kick(c);
    return 0;
}

void http_client_cancel(http_client_req_t *q)
{
    if (!q || q->cancelled || q->finished)
        return;
    http_client_t *c = q->client;
    q->cancelled = 1;
    if (c->head == q && c->inflight) {
        /* on the wire: only dropping the connection stops the answer */
        if (c->busy) {
            c->reset_pending = 1;
            return;
        }
        drop_cancelled_head(c);
        client_disconnect(c);
        client_kick(c);
        return;
    }
    for (http_client_req_t **pp = &c->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            if (c->tail == q)
                c->tail = prev;
            c->npending--;
            break;
        }
    }
    q->next = NULL;
    req_release(q);
}

size_t http_client_pending(const http_client_t *c)
{
    return c ? c->npending : 0;
}

void http_client_free(http_client_t *c)
{
    if (!c || c->freeing)
        return;
    c->busy++;
    c->freeing = 1;
    client_disconnect(c);
    client_fail_all(c, SKIFF_ECLOSED);
    client_leave(c);
}
