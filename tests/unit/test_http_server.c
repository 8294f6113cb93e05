/* tests/unit/test_http_server.c - the HTTP server seen from the wire: raw
 * sockets (keep-alive, pipelining, limits, HEAD, bad input, streams, peer
 * close) and core/http/client.c against the same test handler.
 *
 * The server runs its own loop in a second thread so that the test can
 * use plain blocking sockets. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "http/client.h"
#include "http/server.h"

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    http_server_t *srv;
    int port;
    int aborts;       /* on_abort calls (atomic) */
    int flood_failed; /* stream_write returned < 0 (atomic) */
    int stopped;
} fixture_t;

typedef struct later {
    uv_timer_t timer;
    api_response_t *resp;
    fixture_t *f;
    int step;
    char text[256];
} later_t;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_done(later_t *l)
{
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, later_closed);
}

static later_t *later_new(fixture_t *f, api_response_t *resp)
{
    later_t *l = calloc(1, sizeof(*l));
    l->f = f;
    l->resp = resp;
    uv_timer_init(&f->loop, &l->timer);
    l->timer.data = l;
    return l;
}

static void async_answer(uv_timer_t *t)
{
    later_t *l = t->data;
    l->resp->ops->send(l->resp, 200, "text/plain", l->text, strlen(l->text));
    later_done(l);
}

static void stream_step(uv_timer_t *t)
{
    later_t *l = t->data;
    static const char *parts[] = {"first\n", "second\n", "third\n"};
    if (l->step < 3) {
        l->resp->ops->stream_write(l->resp, parts[l->step], strlen(parts[l->step]));
        l->step++;
        return;
    }
    l->resp->ops->stream_end(l->resp);
    later_done(l);
}

static void watch_abort(api_response_t *r, void *data)
{
    later_t *l = data;
    __atomic_add_fetch(&l->f->aborts, 1, __ATOMIC_SEQ_CST);
    r->ops->stream_end(r);
    later_done(l);
}

static void flood_step(uv_timer_t *t)
{
    later_t *l = t->data;
    static char block[256 * 1024];
    memset(block, 'x', sizeof(block));
    if (l->resp->ops->stream_write(l->resp, block, sizeof(block)) < 0) {
        __atomic_store_n(&l->f->flood_failed, 1, __ATOMIC_SEQ_CST);
        uv_timer_stop(&l->timer); /* on_abort ends the stream */
    }
}

static void handler(void *data, const api_request_t *req, api_response_t *resp)
{
    fixture_t *f = data;
    char text[256];
    snprintf(text, sizeof(text), "%s %s %s %.*s", req->method, req->path,
             req->query ? req->query : "-", (int)(req->body ? req->body_len : 0),
             req->body ? req->body : "");
    if (!strcmp(req->path, "/async")) {
        later_t *l = later_new(f, resp);
        snprintf(l->text, sizeof(l->text), "%s", text);
        uv_timer_start(&l->timer, async_answer, 20, 0);
    } else if (!strcmp(req->path, "/stream")) {
        later_t *l = later_new(f, resp);
        resp->ops->stream_begin(resp, 200, "application/json");
        uv_timer_start(&l->timer, stream_step, 5, 5);
    } else if (!strcmp(req->path, "/watch")) {
        later_t *l = later_new(f, resp);
        resp->on_abort = watch_abort;
        resp->abort_data = l;
        resp->ops->stream_begin(resp, 200, "application/json");
        resp->ops->stream_write(resp, "hello\n", 6);
    } else if (!strcmp(req->path, "/flood")) {
        later_t *l = later_new(f, resp);
        resp->on_abort = watch_abort;
        resp->abort_data = l;
        resp->ops->stream_begin(resp, 200, "application/octet-stream");
        uv_timer_start(&l->timer, flood_step, 1, 1);
    } else if (!strcmp(req->path, "/big")) {
        size_t n = 4 << 20;
        char *big = malloc(n);
        for (size_t i = 0; i < n; i++)
            big[i] = (char)('a' + i % 26);
        resp->ops->send(resp, 200, "text/plain", big, n);
        free(big);
    } else if (!strcmp(req->path, "/missing")) {
        resp->ops->send(resp, 404, "application/json", "{}", 2);
    } else {
        resp->ops->send(resp, 200, "text/plain", text, strlen(text));
    }
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

static fixture_t *fixture_start(size_t max_body, size_t max_header, uint64_t idle_ms,
                                size_t write_cap)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    http_server_opts_t o = {.host = "127.0.0.1", .port = 0, .max_body = max_body,
                            .max_header = max_header, .handler = handler, .handler_data = f};
    assert_int_equal(http_server_start(&f->loop, &o, &f->srv), 0);
    f->port = http_server_port(f->srv);
    assert_true(f->port > 0);
    if (idle_ms)
        http_server_set_timeouts(f->srv, idle_ms, idle_ms);
    if (write_cap)
        http_server_set_write_cap(f->srv, write_cap);
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

/* ---- raw socket helpers ---------------------------------------------------- */

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

static void send_str(int fd, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(write(fd, s, len), (ssize_t)len);
}

typedef struct response {
    int status;
    char head[2048];
    char *body;
    size_t body_len;
} response_t;

/* Reads exactly one response (Content-Length or chunked); 0, or -1 on EOF. */
static int read_response(int fd, response_t *r, int head_only_request)
{
    size_t hl = 0;
    memset(r, 0, sizeof(*r));
    while (hl < 4 || memcmp(r->head + hl - 4, "\r\n\r\n", 4)) {
        if (hl + 1 >= sizeof(r->head))
            return -1;
        if (read(fd, r->head + hl, 1) != 1)
            return -1;
        hl++;
    }
    r->head[hl] = '\0';
    sscanf(r->head, "HTTP/1.1 %d", &r->status);
    const char *cl = strcasestr(r->head, "Content-Length:");
    if (head_only_request)
        return 0;
    if (cl) {
        r->body_len = strtoul(cl + 15, NULL, 10);
        r->body = malloc(r->body_len + 1);
        size_t got = 0;
        while (got < r->body_len) {
            ssize_t n = read(fd, r->body + got, r->body_len - got);
            if (n <= 0)
                return -1;
            got += (size_t)n;
        }
        r->body[got] = '\0';
        return 0;
    }
    if (strcasestr(r->head, "Transfer-Encoding: chunked")) {
        r->body = malloc(1);
        for (;;) {
            char line[32];
            size_t ll = 0;
            while (ll < 2 || memcmp(line + ll - 2, "\r\n", 2)) {
                if (read(fd, line + ll, 1) != 1 || ll + 2 >= sizeof(line))
                    return -1;
                ll++;
            }
            size_t n = strtoul(line, NULL, 16);
            r->body = realloc(r->body, r->body_len + n + 3);
            size_t got = 0;
            while (got < n + 2) {
                ssize_t k = read(fd, r->body + r->body_len + got, n + 2 - got);
                if (k <= 0)
                    return -1;
                got += (size_t)k;
            }
            r->body_len += n;
            r->body[r->body_len] = '\0';
            if (n == 0)
                return 0;
        }
    }
    return 0;
}

static int peer_closed(int fd)
{
    char c;
    return read(fd, &c, 1) == 0;
}

static void wait_for(int *flag, int want)
{
    for (int i = 0; i < 400 && __atomic_load_n(flag, __ATOMIC_SEQ_CST) != want; i++)
        usleep(10000);
    assert_int_equal(__atomic_load_n(flag, __ATOMIC_SEQ_CST), want);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_keepalive_and_decoding(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    response_t r;
    send_str(fd, "GET /a%20b/c?x=%20y HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET /a b/c x=%20y ");
    assert_non_null(strstr(r.head, "Content-Type: text/plain"));
    free(r.body);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_string_equal(r.body, "POST /echo - hello");
    free(r.body);
    send_str(fd, "PUT /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_string_equal(r.body, "PUT /chunked - abcde");
    free(r.body);
    send_str(fd, "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 404);
    free(r.body);
    close(fd);
    fixture_stop(f);
}

static void test_pipelining_in_order(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "GET /async?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /sync?n=2 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /async?n=3 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
                 "GET /sync?n=4 HTTP/1.1\r\nHost: t\r\n\r\n");
    const char *want[] = {"GET /async n=1 ", "GET /sync n=2 ", "POST /async n=3 hi",
                          "GET /sync n=4 "};
    for (int i = 0; i < 4; i++) {
        response_t r;
        assert_int_equal(read_response(fd, &r, 0), 0);
        assert_string_equal(r.body, want[i]);
        free(r.body);
    }
    close(fd);
    fixture_stop(f);
}

static void test_body_too_large(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"kind\":\"Status\""));
    assert_non_null(strstr(r.body, "\"reason\":\"RequestEntityTooLarge\""));
    assert_non_null(strstr(r.body, "the request body is larger than 1024 bytes"));
    assert_non_null(strstr(r.body, "\"code\":413"));
    assert_non_null(strstr(r.head, "Connection: close"));
    free(r.body);
    close(fd);

    /* chunked bodies are counted as they arrive */
    fd = dial(f->port);
    char big[1500];
    memset(big, 'z', sizeof(big));
    send_str(fd, "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5dc\r\n");
    assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 413);
    free(r.body);
    close(fd);
    fixture_stop(f);
}

static void test_header_too_large(void **state)
{
    fixture_t *f = fixture_start(1024, 4096, 0, 0);
    int fd = dial(f->port);
    char req[8192];
    char filler[6000];
    memset(filler, 'h', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", filler);
    send_str(fd, req);
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 431);
    assert_non_null(strstr(r.body, "\"kind\":\"Status\""));
    assert_non_null(strstr(r.body, "\"code\":431"));
    free(r.body);
    close(fd);
    fixture_stop(f);
}

/* Headers we cannot honour whole are refused, not cut short or guessed. */
static void test_ambiguous_headers_refused(void **state)
{
    fixture_t *f = fixture_start(1024, 65536, 0, 0);
    char req[8192];
    size_t used = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\n"
                                                      "Impersonate-User: u\r\n");
    for (int i = 0; i < 17; i++)
        used += (size_t)snprintf(req + used, sizeof(req) - used, "Impersonate-Group: g%d\r\n", i);
    snprintf(req + used, sizeof(req) - used, "\r\n");
    int fd = dial(f->port);
    send_str(fd, req);
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "Impersonate-Group"));
    free(r.body);
    close(fd);

    fd = dial(f->port);
    send_str(fd, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n");
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "more than one Host header"));
    free(r.body);
    close(fd);
    fixture_stop(f);
}

static void test_bad_request_closes(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "THIS IS NOT HTTP\r\n\r\n");
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"reason\":\"BadRequest\""));
    free(r.body);
    shutdown(fd, SHUT_WR);
    assert_true(peer_closed(fd));
    close(fd);
    fixture_stop(f);
}

static void test_head_has_no_body(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "HEAD /thing HTTP/1.1\r\nHost: t\r\n\r\n");
    response_t r;
    assert_int_equal(read_response(fd, &r, 1), 0);
    assert_int_equal(r.status, 200);
    /* the length of the GET answer, but no bytes of it */
    assert_non_null(strstr(r.head, "Content-Length: 14\r\n"));
    send_str(fd, "GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_string_equal(r.body, "GET /next - ");
    free(r.body);
    close(fd);
    fixture_stop(f);
}

static void test_http10_closes(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "GET /old HTTP/1.0\r\n\r\n");
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_string_equal(r.body, "GET /old - ");
    assert_non_null(strstr(r.head, "Connection: close"));
    free(r.body);
    assert_true(peer_closed(fd));
    close(fd);
    fixture_stop(f);
}

static void test_stream_chunks_in_order(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Transfer-Encoding: chunked"));
    assert_string_equal(r.body, "first\nsecond\nthird\n");
    free(r.body);
    /* the connection is still usable after the stream */
    send_str(fd, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_string_equal(r.body, "GET /after - ");
    free(r.body);
    close(fd);
    fixture_stop(f);
}

static void test_peer_close_aborts_stream(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "GET /watch HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "200 OK"));
    close(fd);
    wait_for(&f->aborts, 1);
    /* a stream the server itself stops is aborted as well */
    fd = dial(f->port);
    send_str(fd, "GET /watch HTTP/1.1\r\nHost: t\r\n\r\n");
    n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    fixture_t *saved = f;
    int *aborts = &f->aborts;
    (void)aborts;
    uv_async_send(&saved->stop);
    pthread_join(saved->thread, NULL);
    assert_int_equal(saved->aborts, 2);
    assert_int_equal(saved->stopped, 1);
    assert_int_equal(uv_loop_close(&saved->loop), 0);
    free(saved);
    close(fd);
}

static void test_slow_reader_stream_aborted(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 1 << 20);
    int fd = dial(f->port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    send_str(fd, "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for(&f->flood_failed, 1);
    wait_for(&f->aborts, 1);
    close(fd);
    fixture_stop(f);
}

static void test_idle_timeout(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 200, 0);
    int fd = dial(f->port);
    send_str(fd, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    free(r.body);
    /* idle keep-alive connection is closed by the server */
    assert_true(peer_closed(fd));
    close(fd);
    /* so is one that never finishes its headers */
    fd = dial(f->port);
    send_str(fd, "GET /x HTTP/1.1\r\nHost:");
    assert_true(peer_closed(fd));
    close(fd);
    fixture_stop(f);
}

static void test_big_response(void **state)
{
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int fd = dial(f->port);
    send_str(fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(100000); /* let the server fill the socket and queue the rest */
    response_t r;
    assert_int_equal(read_response(fd, &r, 0), 0);
    assert_int_equal(r.body_len, 4 << 20);
    for (size_t i = 0; i < r.body_len; i += 4099)
        assert_int_equal(r.body[i], 'a' + i % 26);
    free(r.body);
    close(fd);
    fixture_stop(f);
}

/* ---- the client against the same server -------------------------------------- */

typedef struct cstate {
    int done;
    int status[8];
    char body[8][128];
    char ct[64];
    char streamed[256];
    int chunks;
    http_client_req_t *watch;
    http_client_t *client;
} cstate_t;

typedef struct cctx {
    cstate_t *st;
    int idx;
} cctx_t;

static void c_done(void *data, const http_client_result_t *res)
{
    cctx_t *x = data;
    x->st->status[x->idx] = res->status;
    snprintf(x->st->body[x->idx], sizeof(x->st->body[0]), "%s", res->body);
    if (res->content_type)
        snprintf(x->st->ct, sizeof(x->st->ct), "%s", res->content_type);
    x->st->done++;
}

static void c_chunk(void *data, const char *chunk, size_t len)
{
    cctx_t *x = data;
    strncat(x->st->streamed, chunk, len);
    x->st->chunks++;
    if (x->st->watch && strstr(x->st->streamed, "hello")) {
        http_client_cancel(x->st->watch);
        x->st->watch = NULL;
        x->st->done++;
    }
}

static void test_client_requests_and_streams(void **state)
{
    fixture_t *f = fixture_start(1 << 20, 8192, 0, 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    cstate_t st = {0};
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, "127.0.0.1", f->port, &c), 0);
    cctx_t x[5] = {{&st, 0}, {&st, 1}, {&st, 2}, {&st, 3}, {&st, 4}};
    http_client_request_t r1 = {.method = "GET", .path = "/a?b=c", .on_done = c_done, .data = &x[0]};
    http_client_request_t r2 = {.method = "POST", .path = "/async", .content_type = "application/json",
                                .body = "{}", .body_len = 2, .on_done = c_done, .data = &x[1]};
    http_client_request_t r3 = {.method = "GET", .path = "/missing", .on_done = c_done, .data = &x[2]};
    http_client_request_t r4 = {.method = "GET", .path = "/stream", .on_chunk = c_chunk,
                                .on_done = c_done, .data = &x[3]};
    assert_int_equal(http_client_send(c, &r1, NULL), 0);
    assert_int_equal(http_client_send(c, &r2, NULL), 0);
    assert_int_equal(http_client_send(c, &r3, NULL), 0);
    assert_int_equal(http_client_send(c, &r4, NULL), 0);
    assert_int_equal(http_client_pending(c), 4);
    while (st.done < 4)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.status[0], 200);
    assert_string_equal(st.body[0], "GET /a b=c ");
    assert_int_equal(st.status[1], 200);
    assert_string_equal(st.body[1], "POST /async - {}");
    assert_int_equal(st.status[2], 404);
    assert_string_equal(st.ct, "application/json");
    assert_int_equal(st.status[3], 200);
    assert_string_equal(st.streamed, "first\nsecond\nthird\n");
    assert_true(st.chunks >= 3);

    /* a watch cancelled from its own chunk callback: server sees the abort */
    st.streamed[0] = '\0';
    http_client_request_t r5 = {.method = "GET", .path = "/watch", .on_chunk = c_chunk,
                                .on_done = c_done, .data = &x[4]};
    assert_int_equal(http_client_send(c, &r5, &st.watch), 0);
    while (st.done < 5)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.status[4], 0); /* on_done never ran for it */
    wait_for(&f->aborts, 1);

    /* the client reconnects for the next request */
    assert_int_equal(http_client_send(c, &r1, NULL), 0);
    while (st.done < 6)
        uv_run(&loop, UV_RUN_ONCE);
    assert_string_equal(st.body[0], "GET /a b=c ");

    http_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fixture_stop(f);
}

static void test_client_connection_refused(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* a port nobody listens on: bind one and close it */
    fixture_t *f = fixture_start(1024, 8192, 0, 0);
    int port = f->port;
    fixture_stop(f);
    cstate_t st = {0};
    cctx_t x = {&st, 0};
    st.status[0] = -1;
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, "127.0.0.1", port, &c), 0);
    http_client_request_t r = {.method = "GET", .path = "/", .on_done = c_done, .data = &x};
    assert_int_equal(http_client_send(c, &r, NULL), 0);
    while (st.done < 1)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.status[0], 0);
    /* requests still queued when the client is freed fail with status 0 */
    cctx_t y = {&st, 1};
    st.status[1] = -1;
    http_client_request_t r2 = {.method = "GET", .path = "/", .on_done = c_done, .data = &y};
    assert_int_equal(http_client_send(c, &r2, NULL), 0);
    http_client_free(c);
    assert_int_equal(st.done, 2);
    assert_int_equal(st.status[1], 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void ipv6_done(void *data, const http_client_result_t *res)
{
    cstate_t *st = data;
    st->status[0] = res->status;
    snprintf(st->body[0], sizeof(st->body[0]), "%s", res->body);
    st->done++;
}

static void test_ipv6_loopback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_server_t *srv;
    http_server_opts_t o = {.host = "::1", .max_body = 1024, .max_header = 8192,
                            .handler = handler, .handler_data = NULL};
    int e = http_server_start(&loop, &o, &srv);
    if (e == UV_EADDRNOTAVAIL || e == UV_EAFNOSUPPORT) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        skip(); /* no IPv6 on this host */
    }
    assert_int_equal(e, 0);
    cstate_t st = {0};
    http_client_t *c;
    assert_int_equal(http_client_new(&loop, "::1", http_server_port(srv), &c), 0);
    http_client_request_t r = {.method = "GET", .path = "/v6", .on_done = ipv6_done, .data = &st};
    assert_int_equal(http_client_send(c, &r, NULL), 0);
    while (st.done < 1)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.status[0], 200);
    assert_string_equal(st.body[0], "GET /v6 - ");
    http_client_free(c);
    http_server_stop(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_and_decoding),
        cmocka_unit_test(test_pipelining_in_order),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_bad_request_closes),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_http10_closes),
        cmocka_unit_test(test_stream_chunks_in_order),
        cmocka_unit_test(test_peer_close_aborts_stream),
        cmocka_unit_test(test_slow_reader_stream_aborted),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_big_response),
        cmocka_unit_test(test_client_requests_and_streams),
        cmocka_unit_test(test_client_connection_refused),
        cmocka_unit_test(test_ipv6_loopback),
        cmocka_unit_test(test_ambiguous_headers_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
