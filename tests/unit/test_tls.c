/* tests/unit/test_tls.c - TLS: the memory-BIO engine on its own, then the
 * HTTP server over TLS, reached with core/http/client.c on a loop of the
 * test's own and with blocking OpenSSL clients (TLS 1.1, pipelining,
 * stalled handshakes). The server runs its loop in a second thread. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <jansson.h>
#include <skiff/client.h>
#include <skiff/errors.h>

#include "api/client_http.h"
#include "http/client.h"
#include "http/server.h"
#include "http/tls.h"
#include "security/pki.h"

static char tmpdir[256];
static pki_t *pki;

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-tls-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/pki", tmpdir);
    return pki_ensure(dir, &(pki_opts_t){.no_host_names = 1}, &pki, err, sizeof err);
}

static int group_teardown(void **state)
{
    pki_free(pki);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Moves ciphertext from one engine to the other; returns bytes moved. */
static size_t pump(tls_conn_t *from, tls_conn_t *to)
{
    char buf[65536];
    size_t moved = 0, n;
    while ((n = tls_conn_out_take(from, buf, sizeof buf)) > 0) {
        assert_int_equal(tls_conn_feed(to, buf, n), 0);
        moved += n;
    }
    return moved;
}

/* Runs the handshake in memory; returns the server side's last result. */
static int handshake(tls_conn_t *cli, tls_conn_t *srv)
{
    int rs = 0, rc = 0;
    for (int i = 0; i < 10 && !(tls_conn_ready(cli) && tls_conn_ready(srv)); i++) {
        rc = tls_conn_handshake(cli);
        pump(cli, srv);
        rs = tls_conn_handshake(srv);
        pump(srv, cli);
        if (rc < 0 || rs < 0)
            break;
    }
    return rs < 0 ? rs : rc;
}

static void test_engine_in_memory(void **state)
{
    char err[256];
    SSL_CTX *sctx = pki_server_ctx_new(pki, err, sizeof err);
    char *cpem, *kpem;
    static const char *const groups[] = {"dev", "ops", NULL};
    assert_int_equal(pki_issue_client(pki, "alice", groups, 1, &cpem, &kpem), 0);
    SSL_CTX *cctx = tls_client_ctx_new(
        &(tls_client_opts_t){.ca_pem = pki_ca_pem(pki), .cert_pem = cpem, .key_pem = kpem}, err,
        sizeof err);
    assert_non_null(sctx);
    assert_non_null(cctx);
    tls_conn_t *cli, *srv;
    assert_int_equal(tls_conn_new(cctx, 0, "localhost", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), 0);
    assert_true(tls_conn_ready(cli));
    assert_true(tls_conn_ready(srv));
    uv_buf_t b[2] = {uv_buf_init("hello ", 6), uv_buf_init("world", 5)};
    assert_int_equal(tls_conn_writev(cli, b, 2), 0);
    pump(cli, srv);
    char got[64];
    size_t n = 0;
    assert_int_equal(tls_conn_read(srv, got, sizeof got, &n), TLS_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(got, "hello world", 11);
    char *user;
    char **gr;
    assert_int_equal(tls_conn_peer_identity(srv, &user, &gr), 1);
    assert_string_equal(user, "alice");
    assert_string_equal(gr[0], "dev");
    assert_string_equal(gr[1], "ops");
    assert_null(gr[2]);
    free(user);
    tls_groups_free(gr);
    /* close_notify reaches the other side as TLS_CLOSED */
    tls_conn_shutdown(cli);
    pump(cli, srv);
    assert_int_equal(tls_conn_read(srv, got, sizeof got, &n), TLS_CLOSED);
    tls_conn_free(cli);
    tls_conn_free(srv);
    free(cpem);
    free(kpem);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_engine_wrong_name(void **state)
{
    char err[256];
    SSL_CTX *sctx = pki_server_ctx_new(pki, err, sizeof err);
    SSL_CTX *cctx = tls_client_ctx_new(&(tls_client_opts_t){.ca_pem = pki_ca_pem(pki)}, err,
                                       sizeof err);
    tls_conn_t *cli, *srv;
    assert_int_equal(tls_conn_new(cctx, 0, "not-this-host.example", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), SKIFF_EIO);
    assert_non_null(strstr(tls_conn_error(cli), "hostname mismatch"));
    tls_conn_free(cli);
    tls_conn_free(srv);
    /* the right IP address passes, another one does not */
    assert_int_equal(tls_conn_new(cctx, 0, "127.0.0.1", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), 0);
    tls_conn_free(cli);
    tls_conn_free(srv);
    assert_int_equal(tls_conn_new(cctx, 0, "10.99.0.1", &cli), 0);
    assert_int_equal(tls_conn_new(sctx, 1, NULL, &srv), 0);
    assert_int_equal(handshake(cli, srv), SKIFF_EIO);
    tls_conn_free(cli);
    tls_conn_free(srv);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* ---- the server in its own thread ------------------------------------------ */

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    http_server_t *srv;
    SSL_CTX *ctx;
    int port;
    int stopped;
    int aborts;       /* on_abort calls (atomic) */
    int flood_failed; /* stream_write refused (atomic) */
} fixture_t;

typedef struct streamer {
    uv_timer_t timer;
    api_response_t *resp;
    fixture_t *f;
    int step;
} streamer_t;

static void streamer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void stream_step(uv_timer_t *t)
{
    streamer_t *st = t->data;
    static const char *parts[] = {"first\n", "second\n", "third\n"};
    if (st->step < 3) {
        st->resp->ops->stream_write(st->resp, parts[st->step], strlen(parts[st->step]));
        st->step++;
        return;
    }
    st->resp->ops->stream_end(st->resp);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, streamer_closed);
}

/* A watch whose reader never reads: the write cap must end it. */
static void flood_step(uv_timer_t *t)
{
    streamer_t *st = t->data;
    static char block[256 * 1024];
    memset(block, 'x', sizeof block);
    if (st->resp->ops->stream_write(st->resp, block, sizeof block) < 0) {
        __atomic_store_n(&st->f->flood_failed, 1, __ATOMIC_SEQ_CST);
        uv_timer_stop(t); /* on_abort ends the stream */
    }
}

static void flood_abort(api_response_t *r, void *data)
{
    streamer_t *st = data;
    __atomic_add_fetch(&st->f->aborts, 1, __ATOMIC_SEQ_CST);
    r->ops->stream_end(r);
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, streamer_closed);
}

static void handler(void *data, const api_request_t *req, api_response_t *resp)
{
    fixture_t *f = data;
    char text[512];
    if (!strcmp(req->path, "/whoami")) {
        if (!req->tls_user) {
            snprintf(text, sizeof text, "anonymous");
        } else {
            int n = snprintf(text, sizeof text, "user=%s groups=", req->tls_user);
            for (const char *const *g = req->tls_groups; g && *g; g++)
                n += snprintf(text + n, sizeof text - (size_t)n, "%s%s",
                              g == req->tls_groups ? "" : ",", *g);
        }
    } else if (!strncmp(req->path, "/api/", 5)) {
        /* what the SDK client expects: an object, here named after the caller */
        snprintf(text, sizeof text,
                 "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":"
                 "{\"name\":\"%s\"}}",
                 req->tls_user ? req->tls_user : "anonymous");
        resp->ops->send(resp, 200, "application/json", text, strlen(text));
        return;
    } else if (!strcmp(req->path, "/flood")) {
        streamer_t *st = calloc(1, sizeof(*st));
        st->resp = resp;
        st->f = f;
        uv_timer_init(&f->loop, &st->timer);
        st->timer.data = st;
        resp->on_abort = flood_abort;
        resp->abort_data = st;
        resp->ops->stream_begin(resp, 200, "application/octet-stream");
        uv_timer_start(&st->timer, flood_step, 1, 1);
        return;
    } else if (!strcmp(req->path, "/stream")) {
        streamer_t *st = calloc(1, sizeof(*st));
        st->resp = resp;
        uv_timer_init(&f->loop, &st->timer);
        st->timer.data = st;
        resp->ops->stream_begin(resp, 200, "application/json");
        uv_timer_start(&st->timer, stream_step, 5, 5);
        return;
    } else {
        snprintf(text, sizeof text, "%s %s %.*s", req->method, req->path,
                 (int)(req->body ? req->body_len : 0), req->body ? req->body : "");
    }
    resp->ops->send(resp, 200, "text/plain", text, strlen(text));
}

static void on_stopped(void *data)
{
    fixture_t *f = data;
    f->stopped = 1;
}

static void on_stop(uv_async_t *a)
{
    fixture_t *f = a->data;
    http_server_stop(f->srv, on_stopped, f);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_thread(void *arg)
{
    fixture_t *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static fixture_t *fixture_start(const char *host, uint64_t handshake_ms)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    f->ctx = pki_server_ctx_new(pki, err, sizeof err);
    assert_non_null(f->ctx);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    http_server_opts_t o = {.host = host, .handler = handler, .handler_data = f,
                            .tls_ctx = f->ctx, .tls_handshake_ms = handshake_ms};
    assert_int_equal(http_server_start(&f->loop, &o, &f->srv), 0);
    /* the server holds its own reference */
    SSL_CTX_free(f->ctx);
    f->ctx = NULL;
    f->port = http_server_port(f->srv);
    http_server_set_write_cap(f->srv, 1 << 20);
    uv_async_init(&f->loop, &f->stop, on_stop);
    f->stop.data = f;
    pthread_create(&f->thread, NULL, server_thread, f);
    return f;
}

static void fixture_stop(fixture_t *f)
{
    uv_async_send(&f->stop);
    pthread_join(f->thread, NULL);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

/* ---- core/http/client.c over TLS -------------------------------------------- */

typedef struct result {
    int done, status, error;
    char body[1024];
    char chunks[1024];
    int nchunks;
} result_t;

static void c_done(void *data, const http_client_result_t *res)
{
    result_t *r = data;
    r->done = 1;
    r->status = res->status;
    r->error = res->error;
    snprintf(r->body, sizeof r->body, "%.*s", (int)res->body_len, res->body);
}

static void c_chunk(void *data, const char *chunk, size_t len)
{
    result_t *r = data;
    size_t at = strlen(r->chunks);
    snprintf(r->chunks + at, sizeof r->chunks - at, "%.*s", (int)len, chunk);
    r->nchunks++;
}

static SSL_CTX *client_ctx(const char *cert, const char *key)
{
    char err[256];
    SSL_CTX *ctx = tls_client_ctx_new(
        &(tls_client_opts_t){.ca_pem = pki_ca_pem(pki), .cert_pem = cert, .key_pem = key}, err,
        sizeof err);
    assert_non_null(ctx);
    return ctx;
}

/* Runs a GET to completion on a fresh loop-driven client. */
static void run_get(uv_loop_t *loop, http_client_t *c, const char *path, result_t *r,
                    int stream)
{
    memset(r, 0, sizeof(*r));
    http_client_request_t rq = {.method = "GET", .path = path, .on_done = c_done, .data = r,
                                .on_chunk = stream ? c_chunk : NULL};
    assert_int_equal(http_client_send(c, &rq, NULL), 0);
    for (int i = 0; i < 500 && !r->done; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_true(r->done);
}

static void client_done(uv_loop_t *loop, http_client_t *c)
{
    http_client_free(c);
    while (uv_run(loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(uv_loop_close(loop), 0);
}

static void check_client_over(const char *host)
{
    fixture_t *f = fixture_start(host, 0);
    static const char *const groups[] = {"dev", "ops", NULL};
    char *cpem, *kpem;
    assert_int_equal(pki_issue_client(pki, "alice", groups, 1, &cpem, &kpem), 0);
    SSL_CTX *ctx = client_ctx(cpem, kpem);
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, host, f->port, &c), 0);
    assert_int_equal(http_client_set_tls(c, ctx, NULL), 0);
    SSL_CTX_free(ctx);
    result_t r;
    run_get(&loop, c, "/whoami", &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "user=alice groups=dev,ops");
    /* keep-alive: more requests, still one connection */
    run_get(&loop, c, "/a", &r, 0);
    assert_string_equal(r.body, "GET /a ");
    run_get(&loop, c, "/b", &r, 0);
    assert_string_equal(r.body, "GET /b ");
    assert_int_equal(http_server_connections(f->srv), 1);
    /* a streamed answer arrives chunk by chunk, decrypted */
    run_get(&loop, c, "/stream", &r, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.chunks, "first\nsecond\nthird\n");
    assert_true(r.nchunks >= 3);
    run_get(&loop, c, "/after-stream", &r, 0);
    assert_string_equal(r.body, "GET /after-stream ");
    assert_int_equal(http_server_connections(f->srv), 1);
    client_done(&loop, c);
    free(cpem);
    free(kpem);
    fixture_stop(f);
}

static void test_client_ipv4(void **state)
{
    check_client_over("127.0.0.1");
}

static void test_client_ipv6(void **state)
{
    check_client_over("::1");
}

static void test_client_without_cert_is_anonymous(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, "localhost", f->port, &c), 0);
    assert_int_equal(http_client_set_tls(c, ctx, NULL), 0);
    SSL_CTX_free(ctx);
    result_t r;
    run_get(&loop, c, "/whoami", &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "anonymous");
    client_done(&loop, c);
    fixture_stop(f);
}

static void test_client_cert_from_other_ca_rejected(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/other-pki", tmpdir);
    pki_t *other;
    assert_int_equal(pki_ensure(dir, &(pki_opts_t){.no_host_names = 1}, &other, err, sizeof err),
                     0);
    static const char *const groups[] = {"system:masters", NULL};
    char *cpem, *kpem;
    assert_int_equal(pki_issue_client(other, "mallory", groups, 1, &cpem, &kpem), 0);
    SSL_CTX *ctx = client_ctx(cpem, kpem);
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, "127.0.0.1", f->port, &c), 0);
    assert_int_equal(http_client_set_tls(c, ctx, NULL), 0);
    SSL_CTX_free(ctx);
    result_t r;
    run_get(&loop, c, "/whoami", &r, 0);
    /* the handshake fails: no answer at all, certainly not as mallory */
    assert_int_equal(r.status, 0);
    assert_int_equal(r.error, SKIFF_EIO);
    client_done(&loop, c);
    free(cpem);
    free(kpem);
    pki_free(other);
    fixture_stop(f);
}

static void test_client_checks_server_name(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, "127.0.0.1", f->port, &c), 0);
    assert_int_equal(http_client_set_tls(c, ctx, "api.elsewhere.example"), 0);
    result_t r;
    run_get(&loop, c, "/x", &r, 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.error, SKIFF_EIO);
    client_done(&loop, c);
    /* a CA that did not sign the server's certificate */
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/third-pki", tmpdir);
    pki_t *other;
    assert_int_equal(pki_ensure(dir, &(pki_opts_t){.no_host_names = 1}, &other, err, sizeof err),
                     0);
    SSL_CTX *octx = tls_client_ctx_new(&(tls_client_opts_t){.ca_pem = pki_ca_pem(other)}, err,
                                       sizeof err);
    uv_loop_init(&loop);
    assert_int_equal(http_client_new(&loop, "127.0.0.1", f->port, &c), 0);
    assert_int_equal(http_client_set_tls(c, octx, NULL), 0);
    run_get(&loop, c, "/x", &r, 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.error, SKIFF_EIO);
    client_done(&loop, c);
    SSL_CTX_free(octx);
    SSL_CTX_free(ctx);
    pki_free(other);
    fixture_stop(f);
}

typedef struct sdk_result {
    int done, status;
    char name[64];
} sdk_result_t;

static void sdk_done(void *data, int status, json_t *obj)
{
    sdk_result_t *r = data;
    r->done = 1;
    r->status = status;
    const char *n = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    snprintf(r->name, sizeof r->name, "%s", n ? n : "");
}

static void test_sdk_client_over_tls(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    SSL_CTX *ctx = client_ctx(pki_admin_cert_pem(pki), pki_admin_key_pem(pki));
    uv_loop_t loop;
    uv_loop_init(&loop);
    skiff_client_t *c = client_http_new_tls(&loop, "127.0.0.1", f->port, ctx, NULL, NULL);
    SSL_CTX_free(ctx);
    assert_non_null(c);
    skiff_resource_t cm = {.group = "", .version = "v1", .resource = "configmaps"};
    sdk_result_t r = {0};
    assert_int_equal(skiff_client_get(c, &cm, "default", "x", sdk_done, &r), 0);
    for (int i = 0; i < 500 && !r.done; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.name, PKI_ADMIN_USER);
    c->vt->free(c);
    while (uv_run(&loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(uv_loop_close(&loop), 0);
    fixture_stop(f);
}

/* ---- blocking OpenSSL clients ------------------------------------------------ */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static SSL *ssl_dial(SSL_CTX *ctx, int port, int *fdp)
{
    int fd = dial(port);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "127.0.0.1");
    *fdp = fd;
    return ssl;
}

/* Reads one Content-Length response from ssl; leftovers stay in buf. */
typedef struct reader {
    char buf[8192];
    size_t len;
} reader_t;

static int read_one(SSL *ssl, reader_t *rd, char *body, size_t cap)
{
    for (;;) {
        rd->buf[rd->len] = '\0';
        char *end = strstr(rd->buf, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(rd->buf, "Content-Length:");
            size_t blen = cl ? strtoul(cl + 15, NULL, 10) : 0;
            size_t hlen = (size_t)(end + 4 - rd->buf);
            if (rd->len >= hlen + blen) {
                snprintf(body, cap, "%.*s", (int)blen, end + 4);
                memmove(rd->buf, rd->buf + hlen + blen, rd->len - hlen - blen);
                rd->len -= hlen + blen;
                return 0;
            }
        }
        int n = SSL_read(ssl, rd->buf + rd->len, (int)(sizeof(rd->buf) - 1 - rd->len));
        if (n <= 0)
            return -1;
        rd->len += (size_t)n;
    }
}

static void test_pipelining_over_tls(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    int fd;
    SSL *ssl = ssl_dial(ctx, f->port, &fd);
    assert_int_equal(SSL_connect(ssl), 1);
    const char *two = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(SSL_write(ssl, two, (int)strlen(two)), (int)strlen(two));
    reader_t rd = {0};
    char body[256];
    assert_int_equal(read_one(ssl, &rd, body, sizeof body), 0);
    assert_string_equal(body, "GET /one ");
    assert_int_equal(read_one(ssl, &rd, body, sizeof body), 0);
    assert_string_equal(body, "POST /two abc");
    /* Connection: close ends with close_notify, not a bare TCP close */
    const char *last = "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    SSL_write(ssl, last, (int)strlen(last));
    assert_int_equal(read_one(ssl, &rd, body, sizeof body), 0);
    assert_string_equal(body, "GET /three ");
    char c;
    assert_int_equal(SSL_read(ssl, &c, 1), 0);
    assert_int_equal(SSL_get_error(ssl, 0), SSL_ERROR_ZERO_RETURN);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    fixture_stop(f);
}

static void test_tls11_refused(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    /* let this client offer old versions, so the refusal is the server's */
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
    SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0");
    int fd;
    SSL *ssl = ssl_dial(ctx, f->port, &fd);
    assert_int_not_equal(SSL_connect(ssl), 1);
    /* the server answered with a protocol_version alert */
    unsigned long e = ERR_peek_last_error();
    assert_int_equal(ERR_GET_REASON(e), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    /* TLS 1.2 is accepted */
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    ssl = ssl_dial(ctx, f->port, &fd);
    assert_int_equal(SSL_connect(ssl), 1);
    assert_int_equal(SSL_version(ssl), TLS1_2_VERSION);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    fixture_stop(f);
}

static void test_stalled_handshake_times_out(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 300);
    /* one peer connects and sends half a ClientHello, then nothing */
    int stalled = dial(f->port);
    static const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    assert_int_equal(write(stalled, partial, sizeof partial), (ssize_t)sizeof partial);
    int idle = dial(f->port); /* and another sends nothing at all */
    /* meanwhile a real client is served at once */
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, "127.0.0.1", f->port, &c), 0);
    assert_int_equal(http_client_set_tls(c, ctx, NULL), 0);
    SSL_CTX_free(ctx);
    result_t r;
    uint64_t t0 = uv_hrtime();
    run_get(&loop, c, "/x", &r, 0);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(r.status, 200);
    assert_true(ms < 250);
    /* the stalled peers are dropped after the handshake timeout */
    char buf[64];
    t0 = uv_hrtime();
    assert_int_equal(read(stalled, buf, sizeof buf), 0);
    assert_int_equal(read(idle, buf, sizeof buf), 0);
    ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms < 2000);
    close(stalled);
    close(idle);
    /* the served client's connection is still there */
    run_get(&loop, c, "/y", &r, 0);
    assert_int_equal(r.status, 200);
    client_done(&loop, c);
    fixture_stop(f);
}

static void wait_for(int *flag, int want)
{
    for (int i = 0; i < 500 && __atomic_load_n(flag, __ATOMIC_SEQ_CST) != want; i++)
        usleep(10000);
    assert_int_equal(__atomic_load_n(flag, __ATOMIC_SEQ_CST), want);
}

static void test_write_cap_over_tls(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    int fd;
    SSL *ssl = ssl_dial(ctx, f->port, &fd);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(SSL_connect(ssl), 1);
    const char *req = "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
    /* never read: the queued ciphertext passes the 1 MiB cap */
    wait_for(&f->flood_failed, 1);
    wait_for(&f->aborts, 1);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    fixture_stop(f);
}

static void test_plain_client_on_tls_port(void **state)
{
    fixture_t *f = fixture_start("127.0.0.1", 0);
    int fd = dial(f->port);
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    /* no plaintext answer: at most a TLS alert, then the connection ends */
    char buf[256];
    ssize_t n, total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        assert_int_not_equal(buf[0], 'H');
        total += n;
    }
    assert_int_equal(n, 0);
    assert_true(total < 64);
    close(fd);
    fixture_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_in_memory),
        cmocka_unit_test(test_engine_wrong_name),
        cmocka_unit_test(test_client_ipv4),
        cmocka_unit_test(test_client_ipv6),
        cmocka_unit_test(test_client_without_cert_is_anonymous),
        cmocka_unit_test(test_client_cert_from_other_ca_rejected),
        cmocka_unit_test(test_client_checks_server_name),
        cmocka_unit_test(test_sdk_client_over_tls),
        cmocka_unit_test(test_pipelining_over_tls),
        cmocka_unit_test(test_tls11_refused),
        cmocka_unit_test(test_stalled_handshake_times_out),
        cmocka_unit_test(test_write_cap_over_tls),
        cmocka_unit_test(test_plain_client_on_tls_port),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
