/* core/http/server.c - HTTP/1.1 server: libuv TCP, http-parser, keep-alive,
 * pipelining, size limits, chunked streaming and timeouts.
 *
 * One request per connection is in the handler's hands at a time; bytes
 * that arrive meanwhile (pipelined requests) wait in the connection's
 * pending buffer and are parsed once the answer is finished. Request
 * strings live in per-connection buffers that are reused from request to
 * request, and answers go out with uv_try_write first, so a keep-alive
 * request costs no allocation in the steady state. This file knows
 * nothing about Kubernetes beyond the Status body of its own errors.
 *
 * With a TLS context, each connection runs an OpenSSL engine on memory
 * BIOs (core/http/tls.c): bytes read are fed to it and the plaintext it
 * yields goes through the very same parsing path; everything the HTTP code
 * writes is encrypted and the ciphertext goes out with the same
 * uv_try_write / uv_write logic. Keep-alive, pipelining, streaming and the
 * write cap therefore behave as in plain mode (the cap counts ciphertext). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <skiff/errors.h>

#include "http/server.h"
#include "http/tls.h"
#include "util/percent.h"

#define HTTP_READ_BUF (64 * 1024)
#define HTTP_DEFAULT_WRITE_CAP ((size_t)64 << 20)
#define HTTP_DEFAULT_IDLE_MS (5 * 60 * 1000)
#define HTTP_DEFAULT_HEADER_MS (30 * 1000)
#define HTTP_DEFAULT_HANDSHAKE_MS (10 * 1000)
#define HTTP_DRAIN_MS 2000
#define HTTP_SWEEP_MS 1000
/* Pipelined input buffered while the handler works; reading pauses beyond. */
#define HTTP_PENDING_MAX ((size_t)4 << 20)
/* A request body buffer bigger than this is released between requests. */
#define HTTP_BODY_KEEP ((size_t)256 << 10)

enum {
    SLOT_URL,
    SLOT_CT,
    SLOT_ACCEPT,
    SLOT_UA,
    SLOT_EXPECT,
    SLOT_AUTH,
    SLOT_IMP_USER,
    SLOT_IMP_GROUP, /* the first Impersonate-Group; further ones in imp_group_off */
    SLOT_HOST,
    SLOT_N
};
#define HTTP_MAX_IMP_GROUPS 16
/* err_status values of header errors answered with 400 */
enum { ERR_TOO_MANY_GROUPS = 1, ERR_TWO_HOSTS = 2 };
enum { HS_NONE, HS_URL, HS_FIELD, HS_VALUE };

typedef struct http_conn http_conn_t;

struct http_conn {
    uv_tcp_t tcp; /* first: the handle pointer is the connection pointer */
    http_server_t *srv;
    http_conn_t *prev, *next;
    http_conn_t *abort_next;
    http_parser parser;
    api_request_t req;
    api_response_t resp;

    /* URL and the header values we keep, NUL-separated, reused per request. */
    char *hdr;
    size_t hdr_len, hdr_cap;
    size_t off[SLOT_N];
    size_t imp_group_off[HTTP_MAX_IMP_GROUPS]; /* every Impersonate-Group value */
    int n_imp_groups;
    const char *imp_groups[HTTP_MAX_IMP_GROUPS + 1];
    int hstate;
    int cur_slot;
    char field[24];
    size_t field_len;
    size_t header_bytes;

    char *body;
    size_t body_len, body_cap;

    /* Received but not yet parsed (pipelined while the handler is busy). */
    char *pending;
    size_t pending_off, pending_len, pending_cap;

    size_t queued; /* bytes in uv_write requests not yet completed */
    /* A watch's chunks written during one turn of the loop, sent together
     * (see cork_add) */
    char *cork;
    size_t cork_len, cork_cap;
    http_conn_t *cork_next;
    uint64_t last_active, msg_start, drain_until, accepted_at;

    tls_conn_t *tls; /* NULL in plain mode */
    char peer[64];   /* the client's address, for audit events and limits */
    char *tls_user;  /* from the verified client certificate */
    char **tls_groups;
    int err_status;

    unsigned keep_alive : 1;
    unsigned in_headers : 1;
    unsigned in_message : 1;
    unsigned is_head : 1;
    unsigned http10 : 1;
    unsigned streaming : 1;
    unsigned resp_active : 1;
    unsigned aborted : 1;      /* on_abort was called, or must not be any more */
    unsigned abort_queued : 1; /* in the server's deferred abort list */
    unsigned closing : 1;
    unsigned closed : 1;
    unsigned in_process : 1;
    unsigned close_after_write : 1;
    unsigned want_close : 1;
    unsigned reading : 1;
    unsigned draining : 1;
    unsigned tls_ready : 1;     /* handshake finished */
    unsigned tls_no_notify : 1; /* peer gone or protocol error: no close_notify */
    unsigned corked : 1;        /* in the server's cork list */
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    uv_idle_t deferred;
    uv_check_t cork_after_io;   /* sends corked chunks after the I/O of a turn... */
    uv_prepare_t cork_before_io; /* ...and before the loop waits for more */
    http_conn_t *cork_list;
    http_handler_fn handler;
    void *handler_data;
    size_t max_body, max_header, write_cap;
    uint64_t idle_ms, header_ms, handshake_ms;
    SSL_CTX *tls_ctx;
    http_conn_t *conns;
    size_t nconns;
    http_conn_t *abort_list;
    int port;
    int stopping;
    int open_handles;
    void (*done)(void *data);
    void *done_data;
    char readbuf[HTTP_READ_BUF];
    char plainbuf[HTTP_READ_BUF]; /* TLS: decrypted input */
    char cipherbuf[HTTP_READ_BUF]; /* TLS: encrypted output on its way out */
};

typedef struct http_wreq {
    uv_write_t req;
    size_t len;
    char data[];
} http_wreq_t;

static const http_parser_settings parser_settings;
static const api_response_ops_t resp_ops;

static void conn_close(http_conn_t *c);
static void conn_resume(http_conn_t *c);
static void conn_free(http_conn_t *c);

/* ---- small helpers ------------------------------------------------------- */

static http_conn_t *conn_of_resp(api_response_t *r)
{
    return (http_conn_t *)((char *)r - offsetof(http_conn_t, resp));
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return SKIFF_ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}



/* ---- writing ------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    http_wreq_t *w = (http_wreq_t *)req;
    http_conn_t *c = (http_conn_t *)req->handle;
    c->queued -= w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        c->tls_no_notify = 1; /* the socket is broken: nothing more goes out */
        conn_close(c);
        return;
    }
    if (c->close_after_write && c->queued == 0 && !c->draining)
        conn_close(c);
}

/* Writes what the kernel takes now; copies the rest into one uv_write. */
static int conn_write_raw(http_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
        r = 0;
    if (r < 0)
        return SKIFF_EIO;
    if ((size_t)r == total)
        return 0;
    size_t skip = (size_t)r, rest = total - skip;
    http_wreq_t *w = malloc(sizeof(*w) + rest);
    if (!w)
        return SKIFF_ENOMEM;
    size_t at = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t len = bufs[i].len;
        const char *base = bufs[i].base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->data + at, base + skip, len - skip);
        at += len - skip;
        skip = 0;
    }
    w->len = rest;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)rest);
    int e = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (e < 0) {
        free(w);
        return SKIFF_EIO;
    }
    c->queued += rest;
    return 0;
}

/* Sends the ciphertext the TLS engine has ready. */
static int conn_flush_tls(http_conn_t *c)
{
    char *buf = c->srv->cipherbuf;
    size_t n;
    while ((n = tls_conn_out_take(c->tls, buf, sizeof(c->srv->cipherbuf))) > 0) {
        uv_buf_t b = uv_buf_init(buf, (unsigned)n);
        int e = conn_write_raw(c, &b, 1);
        if (e < 0)
            return e;
    }
    return 0;
}

static int conn_write(http_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->closing)
        return SKIFF_ECLOSED;
    if (!c->tls)
        return conn_write_raw(c, bufs, n);
    if (!c->tls_ready)
        return SKIFF_EIO;
    if (tls_conn_writev(c->tls, bufs, n) < 0)
        return SKIFF_EIO;
    return conn_flush_tls(c);
}

/* Appends n bytes of s at buf + *at, as many as fit before the last byte of cap. */
static void head_put(char *buf, size_t cap, size_t *at, const char *s, size_t n)
{
    if (*at + 1 >= cap)
        return;
    if (n > cap - 1 - *at)
        n = cap - 1 - *at;
    memcpy(buf + *at, s, n);
    *at += n;
    buf[*at] = '\0';
}

/* A decimal number in out (24 bytes); its length. */
static size_t head_number(char *out, unsigned long long v)
{
    char d[24];
    size_t k = 0, n = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        out[n++] = d[--k];
    return n;
}

/* Every answer has one: pieced together with memcpy, not printed. */
static size_t format_head(const http_conn_t *c, char *buf, size_t cap, int status,
                          const char *ct, size_t len, int chunked, const char *extra)
{
    const char *reason = http_status_str((enum http_status)status);
    char num[24];
    size_t n = 0;
    if (cap)
        buf[0] = '\0';
    head_put(buf, cap, &n, "HTTP/1.1 ", 9);
    if (status < 0) {
        head_put(buf, cap, &n, "-", 1);
        head_put(buf, cap, &n, num, head_number(num, (unsigned long long)-(long long)status));
    } else {
        head_put(buf, cap, &n, num, head_number(num, (unsigned long long)status));
    }
    head_put(buf, cap, &n, " ", 1);
    if (reason)
        head_put(buf, cap, &n, reason, strlen(reason));
    head_put(buf, cap, &n, "\r\n", 2);
    if (ct) {
        size_t l = strlen(ct);
        head_put(buf, cap, &n, "Content-Type: ", 14);
        head_put(buf, cap, &n, ct, l > 400 ? 400 : l);
        head_put(buf, cap, &n, "\r\n", 2);
    }
    if (chunked) {
        head_put(buf, cap, &n, "Transfer-Encoding: chunked\r\n", 28);
    } else if (len != SIZE_MAX) {
        head_put(buf, cap, &n, "Content-Length: ", 16);
        head_put(buf, cap, &n, num, head_number(num, len));
        head_put(buf, cap, &n, "\r\n", 2);
    }
    if (extra)
        head_put(buf, cap, &n, extra, strlen(extra));
    if (!c->keep_alive)
        head_put(buf, cap, &n, "Connection: close\r\n", 19);
    else if (c->http10)
        head_put(buf, cap, &n, "Connection: keep-alive\r\n", 24);
    head_put(buf, cap, &n, "\r\n", 2);
    return n;
}

/* Kubernetes Status for errors the HTTP layer answers itself; closes after. */
static void conn_send_error(http_conn_t *c, int status, const char *reason, const char *msg)
{
    char body[512], head[256];
    int blen = snprintf(body, sizeof(body),
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                        "\"status\":\"Failure\",\"message\":\"%s\",\"reason\":\"%s\","
                        "\"code\":%d}\n",
                        msg, reason, status);
    if (blen < 0 || (size_t)blen >= sizeof(body))
        blen = 0;
    c->keep_alive = 0;
    size_t hlen =
        format_head(c, head, sizeof(head), status, "application/json", (size_t)blen, 0, NULL);
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hlen), uv_buf_init(body, (unsigned)blen)};
    if (conn_write(c, bufs, 2) < 0) {
        conn_close(c);
        return;
    }
    /* Keep reading (and discarding) for a moment so that the peer, still
     * sending the body we refused, gets the answer rather than a reset. */
    c->draining = 1;
    c->close_after_write = 1;
    c->drain_until = uv_now(c->srv->loop) + HTTP_DRAIN_MS;
}

/* ---- the response sink --------------------------------------------------- */

static void finish_response(http_conn_t *c)
{
    c->resp_active = 0;
    c->resp.extra_headers = NULL;
    c->streaming = 0;
    c->resp.on_abort = NULL;
    c->resp.abort_data = NULL;
    if (c->closed) {
        /* the handle is gone; the connection only waited for this answer */
        conn_free(c);
        return;
    }
    if (c->closing)
        return;
    c->last_active = uv_now(c->srv->loop);
    if (c->want_close || !c->keep_alive) {
        if (c->queued == 0)
            conn_close(c);
        else
            c->close_after_write = 1;
        return;
    }
    if (!c->in_process)
        conn_resume(c);
}

static void resp_send(api_response_t *r, int status, const char *content_type, const char *body,
                      size_t len)
{
    http_conn_t *c = conn_of_resp(r);
    if (!c->resp_active || c->streaming)
        return;
    if (!c->closing) {
        char small[640];
        size_t cap = sizeof(small) + (r->extra_headers ? strlen(r->extra_headers) : 0);
        char *head = cap > sizeof(small) ? malloc(cap) : small;
        if (!head) {
            head = small;
            cap = sizeof(small);
        }
        size_t hlen = format_head(c, head, cap, status, content_type, len, 0,
                                  head == small ? NULL : r->extra_headers);
        uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hlen),
                            uv_buf_init((char *)(body ? body : ""), (unsigned)len)};
        if (conn_write(c, bufs, c->is_head || !body ? 1 : 2) < 0)
            c->want_close = 1;
        if (head != small)
            free(head);
    }
    finish_response(c);
}

static void resp_stream_begin(api_response_t *r, int status, const char *content_type)
{
    http_conn_t *c = conn_of_resp(r);
    if (!c->resp_active || c->streaming)
        return;
    c->streaming = 1;
    if (c->http10)
        c->keep_alive = 0; /* no chunked encoding: the body ends with the connection */
    if (c->closing)
        return;
    char small[640];
    size_t cap = sizeof(small) + (r->extra_headers ? strlen(r->extra_headers) : 0);
    char *head = cap > sizeof(small) ? malloc(cap) : small;
    if (!head) {
        head = small;
        cap = sizeof(small);
    }
    size_t hlen = format_head(c, head, cap, status, content_type, SIZE_MAX,
                              !c->http10 && !c->is_head, head == small ? NULL : r->extra_headers);
    uv_buf_t b = uv_buf_init(head, (unsigned)hlen);
    if (conn_write(c, &b, 1) < 0)
        c->want_close = 1;
    if (head != small)
        free(head);
}

static void on_deferred(uv_idle_t *h)
{
    http_server_t *s = h->data;
    while (s->abort_list) {
        http_conn_t *c = s->abort_list;
        s->abort_list = c->abort_next;
        c->abort_queued = 0;
        c->abort_next = NULL;
        if (c->resp_active && !c->aborted) {
            c->aborted = 1;
            if (c->resp.on_abort)
                c->resp.on_abort(&c->resp, c->resp.abort_data);
        }
    }
    uv_idle_stop(h);
}

/* A stream write failed or overflowed: close now, tell the handler from a
 * fresh loop iteration rather than from inside its own stream_write call. */
static void conn_fail_stream(http_conn_t *c)
{
    http_server_t *s = c->srv;
    if (!c->aborted && !c->abort_queued && !s->stopping) {
        c->abort_queued = 1;
        c->abort_next = s->abort_list;
        s->abort_list = c;
        uv_idle_start(&s->deferred, on_deferred);
    }
    if (!c->closing) {
        int was_aborted = c->aborted;
        c->aborted = 1; /* conn_close must not call on_abort synchronously */
        conn_close(c);
        c->aborted = was_aborted;
    }
}

/* ---- corking a watch's chunks ------------------------------------------- */

/* A busy watch gets an event line after another, often hundreds in one
 * turn of the loop; one write (one system call, one TLS record, one TCP
 * segment train) for all of them instead of one each. Chunks wait at most
 * until the end of the turn's I/O, or until the loop would wait for more;
 * CORK_MAX bytes go out at once. */
#define CORK_MAX ((size_t)64 << 10)

/* Writes the n pieces of a stream: 0, or an error (the stream is then
 * failed) when the write fails or leaves more than the cap unsent. */
static int stream_send(http_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    int e = conn_write(c, bufs, n);
    if (e == 0 && c->queued > c->srv->write_cap)
        e = SKIFF_ETOOLARGE;
    if (e < 0)
        conn_fail_stream(c);
    return e;
}

/* Sends c's corked chunks. 0 or an error (the stream is then failed). */
static int cork_flush(http_conn_t *c)
{
    if (!c->cork_len)
        return 0;
    uv_buf_t b = uv_buf_init(c->cork, (unsigned)c->cork_len);
    c->cork_len = 0;
    int e = stream_send(c, &b, 1);
    if (c->cork_cap > CORK_MAX) {
        /* grown by a burst: a watch that is quiet again does not keep it */
        free(c->cork);
        c->cork = NULL;
        c->cork_cap = 0;
    }
    return e;
}

static void cork_unlink(http_conn_t *c)
{
    if (!c->corked)
        return;
    for (http_conn_t **pp = &c->srv->cork_list; *pp; pp = &(*pp)->cork_next) {
        if (*pp == c) {
            *pp = c->cork_next;
            break;
        }
    }
    c->corked = 0;
}

static void cork_flush_all(http_server_t *s)
{
    http_conn_t *list = s->cork_list;
    s->cork_list = NULL;
    while (list) {
        http_conn_t *c = list;
        list = c->cork_next;
        c->corked = 0;
        if (!c->closing)
            cork_flush(c);
        else
            c->cork_len = 0;
    }
}

static void on_cork_after_io(uv_check_t *h) { cork_flush_all(h->data); }
static void on_cork_before_io(uv_prepare_t *h) { cork_flush_all(h->data); }

/* Appends the n pieces to c's cork. 0 or an error (the stream is then failed). */
static int cork_add(http_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (c->queued + c->cork_len + total > c->srv->write_cap) {
        conn_fail_stream(c);
        return SKIFF_ETOOLARGE;
    }
    if (total >= CORK_MAX) {
        /* a big chunk gains nothing from waiting: what waits goes first */
        int e = cork_flush(c);
        return e < 0 ? e : stream_send(c, bufs, n);
    }
    if (grow(&c->cork, &c->cork_cap, c->cork_len + total) < 0) {
        conn_fail_stream(c);
        return SKIFF_ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        memcpy(c->cork + c->cork_len, bufs[i].base, bufs[i].len);
        c->cork_len += bufs[i].len;
    }
    if (!c->corked) {
        c->corked = 1;
        c->cork_next = c->srv->cork_list;
        c->srv->cork_list = c;
    }
    return c->cork_len >= CORK_MAX ? cork_flush(c) : 0;
}

static int resp_stream_write(api_response_t *r, const char *data, size_t len)
{
    http_conn_t *c = conn_of_resp(r);
    if (!c->resp_active || !c->streaming || c->closing || c->want_close)
        return SKIFF_ECLOSED;
    if (len == 0 || c->is_head)
        return 0;
    if (c->http10) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        return cork_add(c, &b, 1);
    }
    char size[24];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init("\r\n", 2)};
    return cork_add(c, bufs, 3);
}

static void resp_stream_end(api_response_t *r)
{
    http_conn_t *c = conn_of_resp(r);
    if (!c->resp_active || !c->streaming)
        return;
    if (!c->closing && !c->want_close && cork_flush(c) < 0)
        c->want_close = 1;
    if (!c->closing && !c->want_close && !c->http10 && !c->is_head) {
        uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
        if (conn_write(c, &b, 1) < 0)
            c->want_close = 1;
    }
    finish_response(c);
}

static const api_response_ops_t resp_ops = {
    .send = resp_send,
    .stream_begin = resp_stream_begin,
    .stream_write = resp_stream_write,
    .stream_end = resp_stream_end,
};

/* ---- parsing --------------------------------------------------------------- */

static int hdr_append(http_conn_t *c, const char *at, size_t len)
{
    if (grow(&c->hdr, &c->hdr_cap, c->hdr_len + len + 1) < 0)
        return -1;
    memcpy(c->hdr + c->hdr_len, at, len);
    c->hdr_len += len;
    return 0;
}

static int hdr_count(http_conn_t *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > c->srv->max_header) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

/* Ends the URL or header value being collected. */
static int hdr_terminate(http_conn_t *c)
{
    if (c->hstate == HS_URL || (c->hstate == HS_VALUE && c->cur_slot >= 0)) {
        if (hdr_append(c, "", 1) < 0)
            return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn_t *c = p->data;
    c->hdr_len = 0;
    c->body_len = 0;
    c->header_bytes = 0;
    c->hstate = HS_NONE;
    c->cur_slot = -1;
    c->err_status = 0;
    for (int i = 0; i < SLOT_N; i++)
        c->off[i] = SIZE_MAX;
    c->n_imp_groups = 0;
    if (c->body_cap > HTTP_BODY_KEEP) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    c->in_message = 1;
    c->in_headers = 1;
    c->msg_start = uv_now(c->srv->loop);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (hdr_count(c, len) < 0)
        return -1;
    if (c->hstate != HS_URL) {
        c->hstate = HS_URL;
        c->off[SLOT_URL] = c->hdr_len;
    }
    return hdr_append(c, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (hdr_count(c, len) < 0)
        return -1;
    if (c->hstate != HS_FIELD) {
        if (hdr_terminate(c) < 0)
            return -1;
        c->hstate = HS_FIELD;
        c->field_len = 0;
    }
    size_t room = sizeof(c->field) - 1 - c->field_len;
    size_t n = len < room ? len : room;
    memcpy(c->field + c->field_len, at, n);
    c->field_len += n;
    c->field[c->field_len] = '\0';
    return 0;
}

static int slot_of_field(const char *f)
{
    if (!strcasecmp(f, "content-type"))
        return SLOT_CT;
    if (!strcasecmp(f, "accept"))
        return SLOT_ACCEPT;
    if (!strcasecmp(f, "user-agent"))
        return SLOT_UA;
    if (!strcasecmp(f, "expect"))
        return SLOT_EXPECT;
    if (!strcasecmp(f, "authorization"))
        return SLOT_AUTH;
    if (!strcasecmp(f, "impersonate-user"))
        return SLOT_IMP_USER;
    if (!strcasecmp(f, "impersonate-group"))
        return SLOT_IMP_GROUP;
    if (!strcasecmp(f, "host"))
        return SLOT_HOST;
    return -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (hdr_count(c, len) < 0)
        return -1;
    if (c->hstate != HS_VALUE) {
        c->hstate = HS_VALUE;
        c->cur_slot = slot_of_field(c->field);
        if (c->cur_slot == SLOT_IMP_GROUP) {
            /* a header that may repeat: keep every value; more than we
             * hold is refused rather than silently cut short */
            if (c->n_imp_groups == HTTP_MAX_IMP_GROUPS) {
                c->err_status = ERR_TOO_MANY_GROUPS;
                return -1;
            }
            c->imp_group_off[c->n_imp_groups++] = c->hdr_len;
        } else if (c->cur_slot == SLOT_HOST && c->off[SLOT_HOST] != SIZE_MAX) {
            /* two Host headers: which one names the server is ambiguous */
            c->err_status = ERR_TWO_HOSTS;
            return -1;
        }
        if (c->cur_slot >= 0)
            c->off[c->cur_slot] = c->hdr_len;
    }
    if (c->cur_slot < 0)
        return 0;
    return hdr_append(c, at, len);
}

static int on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    http_server_t *s = c->srv;
    if (hdr_terminate(c) < 0)
        return -1;
    c->hstate = HS_NONE;
    c->in_headers = 0;
    if (c->off[SLOT_URL] == SIZE_MAX)
        return -1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > s->max_body) {
        c->err_status = 413;
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0 &&
        grow(&c->body, &c->body_cap, (size_t)p->content_length + 1) < 0)
        return -1;
    if (c->off[SLOT_EXPECT] != SIZE_MAX &&
        !strcasecmp(c->hdr + c->off[SLOT_EXPECT], "100-continue") && p->http_major == 1 &&
        p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
        conn_write(c, &b, 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (c->body_len + len > c->srv->max_body) {
        c->err_status = 413;
        return -1;
    }
    if (grow(&c->body, &c->body_cap, c->body_len + len + 1) < 0)
        return -1;
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    c->in_message = 0;
    c->keep_alive = http_should_keep_alive(p) ? 1 : 0;
    c->http10 = (p->http_major == 1 && p->http_minor == 0) ? 1 : 0;
    c->is_head = p->method == HTTP_HEAD;
    /* stop here: the next pipelined request waits for this answer */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_dispatch(http_conn_t *c)
{
    http_server_t *s = c->srv;
    char *url = c->hdr + c->off[SLOT_URL];
    /* absolute-form request target: keep only the path and query */
    if (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8)) {
        char *slash = strchr(strstr(url, "//") + 2, '/');
        url = slash ? slash : "/";
    }
    char *q = strchr(url, '?');
    if (q)
        *q++ = '\0';
    percent_decode_inplace(url, 0);

    if (c->body)
        c->body[c->body_len] = '\0';
    api_request_t *req = &c->req;
    req->method = http_method_str((enum http_method)c->parser.method);
    req->path = url;
    req->query = q;
    req->content_type = c->off[SLOT_CT] != SIZE_MAX ? c->hdr + c->off[SLOT_CT] : NULL;
    req->accept = c->off[SLOT_ACCEPT] != SIZE_MAX ? c->hdr + c->off[SLOT_ACCEPT] : NULL;
    req->user_agent = c->off[SLOT_UA] != SIZE_MAX ? c->hdr + c->off[SLOT_UA] : NULL;
    req->body = c->body_len ? c->body : NULL;
    req->body_len = c->body_len;
    req->tls_user = c->tls_user;
    req->tls_groups = (const char *const *)c->tls_groups;
    req->secure = c->tls != NULL;
    req->remote_addr = c->peer; /* "" when unknown: still a network request */
    req->host = c->off[SLOT_HOST] != SIZE_MAX ? c->hdr + c->off[SLOT_HOST] : NULL;
    req->authorization = c->off[SLOT_AUTH] != SIZE_MAX ? c->hdr + c->off[SLOT_AUTH] : NULL;
    req->impersonate_user =
        c->off[SLOT_IMP_USER] != SIZE_MAX ? c->hdr + c->off[SLOT_IMP_USER] : NULL;
    for (int i = 0; i < c->n_imp_groups; i++)
        c->imp_groups[i] = c->hdr + c->imp_group_off[i];
    c->imp_groups[c->n_imp_groups] = NULL;
    req->impersonate_groups = c->n_imp_groups ? c->imp_groups : NULL;

    c->resp.ops = &resp_ops;
    c->resp.on_abort = NULL;
    c->resp.abort_data = NULL;
    c->resp_active = 1;
    c->streaming = 0;
    c->aborted = 0;
    c->want_close = 0;
    s->handler(s->handler_data, req, &c->resp);
}

static void conn_parse_error(http_conn_t *c)
{
    char msg[160];
    if (c->err_status == 413) {
        snprintf(msg, sizeof(msg), "the request body is larger than %zu bytes", c->srv->max_body);
        conn_send_error(c, 413, "RequestEntityTooLarge", msg);
    } else if (c->err_status == 431 ||
               HTTP_PARSER_ERRNO(&c->parser) == HPE_HEADER_OVERFLOW) {
        snprintf(msg, sizeof(msg), "the request headers are larger than %zu bytes",
                 c->srv->max_header);
        conn_send_error(c, 431, "BadRequest", msg);
    } else if (c->err_status == ERR_TOO_MANY_GROUPS) {
        snprintf(msg, sizeof(msg), "more than %d Impersonate-Group headers",
                 HTTP_MAX_IMP_GROUPS);
        conn_send_error(c, 400, "BadRequest", msg);
    } else if (c->err_status == ERR_TWO_HOSTS) {
        conn_send_error(c, 400, "BadRequest", "more than one Host header");
    } else {
        snprintf(msg, sizeof(msg), "malformed HTTP request: %s",
                 http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
        conn_send_error(c, 400, "BadRequest", msg);
    }
}

/* Parses and dispatches requests until the handler keeps one; returns the
 * number of bytes consumed. */
static size_t conn_parse(http_conn_t *c, const char *data, size_t len)
{
    size_t done = 0;
    c->in_process = 1;
    while (done < len && !c->closing && !c->resp_active && !c->draining) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, data + done, len - done);
        done += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            conn_dispatch(c);
            continue;
        }
        if (e != HPE_OK || c->parser.upgrade) {
            conn_parse_error(c);
            done = len;
            break;
        }
    }
    c->in_process = 0;
    /* an answer finished inside the loop may have asked to close */
    return done;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *c = (http_conn_t *)h;
    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(http_conn_t *c)
{
    if (!c->reading && !c->closing) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    }
}

static void conn_read_stop(http_conn_t *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static int pending_add(http_conn_t *c, const char *data, size_t len)
{
    if (c->pending_off > 0 && c->pending_off == c->pending_len)
        c->pending_off = c->pending_len = 0;
    if (grow(&c->pending, &c->pending_cap, c->pending_len + len) < 0)
        return SKIFF_ENOMEM;
    memcpy(c->pending + c->pending_len, data, len);
    c->pending_len += len;
    if (c->pending_len - c->pending_off > HTTP_PENDING_MAX)
        conn_read_stop(c);
    return 0;
}

/* Continues with buffered input once an answer is finished. */
static void conn_resume(http_conn_t *c)
{
    while (c->pending_off < c->pending_len && !c->resp_active && !c->closing && !c->draining) {
        size_t n = conn_parse(c, c->pending + c->pending_off, c->pending_len - c->pending_off);
        c->pending_off += n;
    }
    if (c->pending_off == c->pending_len) {
        c->pending_off = c->pending_len = 0;
        if (c->pending_cap > HTTP_BODY_KEEP) {
            free(c->pending);
            c->pending = NULL;
            c->pending_cap = 0;
        }
    }
    if (!c->closing && c->pending_len - c->pending_off <= HTTP_PENDING_MAX)
        conn_read_start(c);
    if (!c->resp_active && !c->closing && c->want_close)
        conn_close(c);
}

/* The peer closed or reset: an unfinished answer is aborted. */
static void conn_on_eof(http_conn_t *c)
{
    conn_read_stop(c);
    c->tls_no_notify = 1;
    if (c->resp_active || c->queued == 0 || c->draining)
        conn_close(c);
    else
        c->close_after_write = 1;
}

/* Request bytes (plaintext) from the peer. */
static void conn_on_data(http_conn_t *c, const char *data, size_t len)
{
    if (c->draining)
        return;
    if (c->pending_len > c->pending_off || c->resp_active) {
        if (pending_add(c, data, len) < 0) {
            conn_close(c);
            return;
        }
        if (!c->resp_active)
            conn_resume(c);
        return;
    }
    size_t n = conn_parse(c, data, len);
    if (n < len && !c->closing && !c->draining) {
        if (pending_add(c, data + n, len - n) < 0)
            conn_close(c);
    }
}

static void conn_tls_identity(http_conn_t *c)
{
    char *user = NULL;
    char **groups = NULL;
    if (tls_conn_peer_identity(c->tls, &user, &groups) == 1) {
        c->tls_user = user;
        c->tls_groups = groups;
    }
}

/* Ciphertext from the peer: decrypt everything it completes and hand the
 * plaintext to the HTTP path; send what the engine answers (handshake
 * messages, session tickets, alerts). */
static void conn_on_tls(http_conn_t *c, const char *data, size_t len)
{
    http_server_t *s = c->srv;
    if (tls_conn_feed(c->tls, data, len) < 0) {
        c->tls_no_notify = 1;
        conn_close(c);
        return;
    }
    while (!c->closing) {
        size_t got = 0;
        int r = tls_conn_read(c->tls, s->plainbuf, sizeof(s->plainbuf), &got);
        if (!c->tls_ready && tls_conn_ready(c->tls)) {
            c->tls_ready = 1;
            conn_tls_identity(c);
        }
        if (r < 0) {
            /* the alert OpenSSL queued goes out before the close */
            conn_flush_tls(c);
            c->tls_no_notify = 1;
            conn_close(c);
            return;
        }
        if (r == TLS_CLOSED) {
            conn_on_eof(c);
            return;
        }
        if (got == 0)
            break;
        conn_on_data(c, s->plainbuf, got);
    }
    if (!c->closing && conn_flush_tls(c) < 0) {
        c->tls_no_notify = 1;
        conn_close(c);
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn_t *c = (http_conn_t *)st;
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_on_eof(c);
        return;
    }
    c->last_active = uv_now(c->srv->loop);
    if (c->tls)
        conn_on_tls(c, buf->base, (size_t)nread);
    else
        conn_on_data(c, buf->base, (size_t)nread);
}

/* ---- connection life ----------------------------------------------------- */

static void maybe_done(http_server_t *s)
{
    if (s->stopping && s->open_handles == 0 && s->nconns == 0) {
        void (*done)(void *) = s->done;
        void *data = s->done_data;
        SSL_CTX_free(s->tls_ctx);
        free(s);
        if (done)
            done(data);
    }
}

static void conn_free(http_conn_t *c)
{
    http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->abort_queued) {
        for (http_conn_t **pp = &s->abort_list; *pp; pp = &(*pp)->abort_next) {
            if (*pp == c) {
                *pp = c->abort_next;
                break;
            }
        }
    }
    cork_unlink(c);
    free(c->cork);
    free(c->hdr);
    free(c->body);
    free(c->pending);
    tls_conn_free(c->tls);
    free(c->tls_user);
    tls_groups_free(c->tls_groups);
    free(c);
    s->nconns--;
    maybe_done(s);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn_t *c = (http_conn_t *)h;
    c->closed = 1;
    if (!c->resp_active)
        conn_free(c);
}

static void conn_close(http_conn_t *c)
{
    if (c->closing)
        return;
    if (c->tls && c->tls_ready && !c->tls_no_notify) {
        /* best effort: close_notify tells the peer the end is not a truncation */
        tls_conn_shutdown(c->tls);
        conn_flush_tls(c);
    }
    c->closing = 1;
    c->reading = 0;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    if (c->resp_active && !c->aborted) {
        c->aborted = 1;
        if (c->resp.on_abort)
            c->resp.on_abort(&c->resp, c->resp.abort_data);
    }
}

static void on_connection(uv_stream_t *ls, int status)
{
    http_server_t *s = ls->data;
    if (status < 0 || s->stopping)
        return;
    http_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    if (uv_tcp_init(s->loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    c->srv = s;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    c->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
        if (sa.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&sa, c->peer, sizeof c->peer);
        else
            uv_ip4_name((struct sockaddr_in *)&sa, c->peer, sizeof c->peer);
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = 1;
    c->last_active = c->accepted_at = uv_now(s->loop);
    if (s->tls_ctx && tls_conn_new(s->tls_ctx, 1, NULL, &c->tls) < 0) {
        conn_close(c);
        return;
    }
    conn_read_start(c);
    if (!c->reading)
        conn_close(c);
}

static void on_sweep(uv_timer_t *t)
{
    http_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    http_conn_t *next;
    for (http_conn_t *c = s->conns; c; c = next) {
        next = c->next;
        if (c->closing || c->resp_active)
            continue;
        if (c->tls && !c->tls_ready) {
            /* a peer that stalls in the handshake only costs its own socket */
            if (now - c->accepted_at > s->handshake_ms) {
                c->tls_no_notify = 1;
                conn_close(c);
            }
            continue;
        }
        if (c->draining) {
            if (now >= c->drain_until)
                conn_close(c);
        } else if (c->in_headers && c->in_message && now - c->msg_start > s->header_ms) {
            conn_close(c);
        } else if (c->queued == 0 && now - c->last_active > s->idle_ms) {
            conn_close(c);
        }
    }
}

/* ---- server -------------------------------------------------------------- */

/* The sweep runs often enough to honour the shortest timeout. */
static void sweep_restart(http_server_t *s)
{
    uint64_t tick = s->idle_ms < s->header_ms ? s->idle_ms : s->header_ms;
    if (s->tls_ctx && s->handshake_ms < tick)
        tick = s->handshake_ms;
    tick = tick / 4 ? tick / 4 : 1;
    if (tick > HTTP_SWEEP_MS)
        tick = HTTP_SWEEP_MS;
    uv_timer_start(&s->sweep, on_sweep, tick, tick);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    http_server_t *s = h->data;
    s->open_handles--;
    maybe_done(s);
}

int http_server_start(uv_loop_t *loop, const http_server_opts_t *opts, http_server_t **out)
{
    if (!loop || !opts || !opts->handler || !out)
        return UV_EINVAL;
    const char *host = opts->host ? opts->host : "127.0.0.1";
    struct sockaddr_storage addr;
    int e;
    if (strchr(host, ':'))
        e = uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)&addr);
    else
        e = uv_ip4_addr(host, opts->port, (struct sockaddr_in *)&addr);
    if (e < 0)
        return e;
    http_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return UV_ENOMEM;
    s->loop = loop;
    s->handler = opts->handler;
    s->handler_data = opts->handler_data;
    s->max_body = opts->max_body ? opts->max_body : (size_t)3 << 20;
    s->max_header = opts->max_header ? opts->max_header : (size_t)1 << 20;
    s->write_cap = HTTP_DEFAULT_WRITE_CAP;
    s->idle_ms = HTTP_DEFAULT_IDLE_MS;
    s->header_ms = HTTP_DEFAULT_HEADER_MS;
    s->handshake_ms = opts->tls_handshake_ms ? opts->tls_handshake_ms : HTTP_DEFAULT_HANDSHAKE_MS;
    if (opts->tls_ctx && SSL_CTX_up_ref(opts->tls_ctx) == 1)
        s->tls_ctx = opts->tls_ctx;
    else if (opts->tls_ctx) {
        free(s);
        return UV_ENOMEM;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->open_handles = 1;
    e = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (e == 0)
        e = uv_listen((uv_stream_t *)&s->listener, 4096, on_connection);
    if (e < 0) {
        /* nothing else was started: close the listener and free on the loop */
        s->stopping = 1;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
        return e;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        else
            s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    sweep_restart(s);
    uv_idle_init(loop, &s->deferred);
    s->deferred.data = s;
    uv_check_init(loop, &s->cork_after_io);
    s->cork_after_io.data = s;
    uv_check_start(&s->cork_after_io, on_cork_after_io);
    uv_unref((uv_handle_t *)&s->cork_after_io);
    uv_prepare_init(loop, &s->cork_before_io);
    s->cork_before_io.data = s;
    uv_prepare_start(&s->cork_before_io, on_cork_before_io);
    uv_unref((uv_handle_t *)&s->cork_before_io);
    s->open_handles = 5;
    *out = s;
    return 0;
}

int http_server_port(const http_server_t *s)
{
    return s ? s->port : 0;
}

void http_server_set_timeouts(http_server_t *s, uint64_t idle_ms, uint64_t header_ms)
{
    if (!s)
        return;
    if (idle_ms)
        s->idle_ms = idle_ms;
    if (header_ms)
        s->header_ms = header_ms;
    sweep_restart(s);
}

void http_server_set_write_cap(http_server_t *s, size_t bytes)
{
    if (s && bytes)
        s->write_cap = bytes;
}

size_t http_server_connections(const http_server_t *s)
{
    return s ? s->nconns : 0;
}

void http_server_stop(http_server_t *s, void (*done)(void *data), void *data)
{
    if (!s || s->stopping)
        return;
    s->stopping = 1;
    s->done = done;
    s->done_data = data;
    /* stream failures waiting for their on_abort get it now */
    while (s->abort_list) {
        http_conn_t *c = s->abort_list;
        s->abort_list = c->abort_next;
        c->abort_queued = 0;
        if (c->resp_active && !c->aborted) {
            c->aborted = 1;
            if (c->resp.on_abort)
                c->resp.on_abort(&c->resp, c->resp.abort_data);
        }
    }
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->deferred, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->cork_after_io, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->cork_before_io, on_server_handle_closed);
    /* conn_close never frees synchronously, so the walk stays valid */
    for (http_conn_t *c = s->conns; c; c = c->next)
        conn_close(c);
}
