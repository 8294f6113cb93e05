/* tests/bench/tls_bench.c - what TLS costs the HTTP layer: requests/s and
 * latency over keep-alive connections, plain against TLS, on the same
 * handler and server loop; then new connections per second (a full
 * handshake each, no session resumption). Not a test: it prints figures.
 *
 *   tls_bench [--requests N] [--conns C] [--handshakes N] [--body BYTES]
 *   tls_bench --plain-port P --plain-pid PID --tls-port Q --tls-pid PID2 --pki DIR
 *             [--path PATH] [...]
 *
 * The second form measures two running `skiff server`s instead (one plain,
 * one with --tls whose DATA_DIR/pki is DIR), with GETs of PATH (default
 * /api/v1/namespaces/default/configmaps/bench: create it first); server
 * CPU comes from /proc/PID/stat.
 *
 * The server (core/http/server.c, one loop, like `skiff server`) runs in a
 * thread of its own; the clients (core/http/client.c) run on the main
 * thread's loop. Build without sanitizers for meaningful figures. */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "http/client.h"
#include "http/server.h"
#include "http/tls.h"
#include "security/pki.h"

static const char *bench_path = "/api/v1/namespaces/default/configmaps/bench";

typedef struct srv {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    http_server_t *plain, *tls;
    char *body;
    size_t body_len;
    int stopped;
} srv_t;

static void handler(void *data, const api_request_t *req, api_response_t *resp)
{
    srv_t *s = data;
    resp->ops->send(resp, 200, "application/json", s->body, s->body_len);
}

static void on_stopped(void *data)
{
    srv_t *s = data;
    s->stopped++;
}

static void on_stop(uv_async_t *a)
{
    srv_t *s = a->data;
    http_server_stop(s->plain, on_stopped, s);
    http_server_stop(s->tls, on_stopped, s);
    uv_close((uv_handle_t *)a, NULL);
}

static void *srv_thread(void *arg)
{
    srv_t *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- keep-alive phase ------------------------------------------------------ */

typedef struct run run_t;

typedef struct slot {
    run_t *run;
    http_client_t *c;
    uint64_t t0;
} slot_t;

struct run {
    uv_loop_t *loop;
    int port;
    SSL_CTX *tls;
    int total, sent, done, failed;
    int timing; /* latencies recorded */
    uint64_t *lat;
    int nlat;
    int handshakes; /* handshake phase: a new connection per request */
    slot_t *slots;
};

static void slot_next(slot_t *sl);

static void on_done(void *data, const http_client_result_t *res)
{
    slot_t *sl = data;
    run_t *r = sl->run;
    if (res->status != 200)
        r->failed++;
    if (r->timing && r->nlat < r->total)
        r->lat[r->nlat++] = uv_hrtime() - sl->t0;
    r->done++;
    if (r->handshakes) {
        http_client_free(sl->c); /* safe from its own callback */
        sl->c = NULL;
    }
    slot_next(sl);
}

static void slot_next(slot_t *sl)
{
    run_t *r = sl->run;
    if (r->sent >= r->total)
        return;
    if (!sl->c) {
        if (http_client_new(r->loop, "127.0.0.1", r->port, &sl->c) < 0 ||
            (r->tls && http_client_set_tls(sl->c, r->tls, NULL) < 0)) {
            fprintf(stderr, "tls_bench: cannot make a client\n");
            exit(1);
        }
    }
    r->sent++;
    sl->t0 = uv_hrtime();
    http_client_request_t q = {.method = "GET",
                               .path = bench_path,
                               .accept = "application/json",
                               .headers = r->handshakes ? "Connection: close\r\n" : NULL,
                               .on_done = on_done,
                               .data = sl};
    if (http_client_send(sl->c, &q, NULL) < 0) {
        fprintf(stderr, "tls_bench: send failed\n");
        exit(1);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct figures {
    double per_s, p50_ms, p99_ms;
    double server_us; /* server thread CPU time per request */
    int failed;
} figures_t;

/* CPU clock of the server's thread: what a request costs the server alone,
 * whatever the clients (on the same machine) cost. */
static clockid_t server_clock;
static int server_pid; /* external server: its CPU from /proc */

static uint64_t server_cpu_ns(void)
{
    if (server_pid > 0) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", server_pid);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        /* fields after the command: state is 3rd, utime 14th, stime 15th */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                         &st) != 2)
            return 0;
        return (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
    }
    struct timespec ts;
    clock_gettime(server_clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs total requests over conns slots; keep-alive slots keep their client. */
static figures_t measure(uv_loop_t *loop, int port, SSL_CTX *tls, int conns, int total,
                         int handshakes, slot_t *keep)
{
    run_t r = {.loop = loop, .port = port, .tls = tls, .total = total, .timing = 1,
               .handshakes = handshakes};
    r.lat = calloc((size_t)total, sizeof(uint64_t));
    slot_t *slots = keep ? keep : calloc((size_t)conns, sizeof(slot_t));
    for (int i = 0; i < conns; i++)
        slots[i].run = &r;
    uint64_t t0 = uv_hrtime(), c0 = server_cpu_ns();
    for (int i = 0; i < conns; i++)
        slot_next(&slots[i]);
    while (r.done < r.total)
        uv_run(loop, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    double server_us = (double)(server_cpu_ns() - c0) / 1e3 / r.done;
    qsort(r.lat, (size_t)r.nlat, sizeof(uint64_t), cmp_u64);
    figures_t f = {
        .per_s = r.done / secs,
        .p50_ms = r.nlat ? r.lat[r.nlat / 2] / 1e6 : 0,
        .p99_ms = r.nlat ? r.lat[(size_t)((r.nlat - 1) * 0.99)] / 1e6 : 0,
        .server_us = server_us,
        .failed = r.failed,
    };
    free(r.lat);
    if (!keep)
        free(slots);
    return f;
}

static figures_t keepalive_run(uv_loop_t *loop, int port, SSL_CTX *tls, int conns, int total,
                               int pid)
{
    server_pid = pid;
    slot_t *slots = calloc((size_t)conns, sizeof(slot_t));
    /* warm up: every connection open (and handshaken) before timing */
    measure(loop, port, tls, conns, conns * 20, 0, slots);
    figures_t f = measure(loop, port, tls, conns, total, 0, slots);
    for (int i = 0; i < conns; i++)
        http_client_free(slots[i].c);
    free(slots);
    while (uv_run(loop, UV_RUN_NOWAIT))
        ;
    return f;
}

static void print_pair(figures_t p, figures_t t)
{
    printf("plain_keepalive_req_per_s %.0f p50_ms %.3f p99_ms %.3f server_cpu_us_per_req %.2f "
           "failed %d\n",
           p.per_s, p.p50_ms, p.p99_ms, p.server_us, p.failed);
    printf("tls_keepalive_req_per_s   %.0f p50_ms %.3f p99_ms %.3f server_cpu_us_per_req %.2f "
           "failed %d\n",
           t.per_s, t.p50_ms, t.p99_ms, t.server_us, t.failed);
    printf("tls_vs_plain_throughput   %.3f (target >= 0.85; clients share the machine)\n",
           t.per_s / p.per_s);
    printf("tls_vs_plain_server_cpu   %.3f (server CPU per request, TLS / plain)\n",
           t.server_us / p.server_us);
    printf("tls_vs_plain_p99          %.3f\n", t.p99_ms / p.p99_ms);
}

/* Two running skiff servers: one plain, one with --tls. */
static int external(int pport, int ppid, int tport, int tpid, const char *pki, int conns,
                    int total, int handshakes)
{
    if (!pport || !tport || !pki) {
        fprintf(stderr, "tls_bench: --plain-port, --tls-port and --pki go together\n");
        return 2;
    }
    char ca[512], cert[512], key[512], err[512];
    snprintf(ca, sizeof ca, "%s/%s", pki, PKI_CA_CERT);
    snprintf(cert, sizeof cert, "%s/%s", pki, PKI_ADMIN_CERT);
    snprintf(key, sizeof key, "%s/%s", pki, PKI_ADMIN_KEY);
    SSL_CTX *cctx = tls_client_ctx_new(
        &(tls_client_opts_t){.ca_file = ca, .cert_file = cert, .key_file = key}, err, sizeof err);
    if (!cctx) {
        fprintf(stderr, "tls_bench: %s\n", err);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    printf("# skiff servers: GET %s, %d keep-alive connections, %d requests\n", bench_path,
           conns, total);
    figures_t p = keepalive_run(&loop, pport, NULL, conns, total, ppid);
    figures_t t = keepalive_run(&loop, tport, cctx, conns, total, tpid);
    print_pair(p, t);
    int failed = p.failed + t.failed;
    if (handshakes > 0) {
        server_pid = tpid;
        figures_t tn = measure(&loop, tport, cctx, conns, handshakes, 1, NULL);
        while (uv_run(&loop, UV_RUN_NOWAIT))
            ;
        printf("tls_new_conns_per_s       %.0f p99_ms %.3f server_cpu_us_per_conn %.1f failed %d "
               "(full handshake, client certificate)\n",
               tn.per_s, tn.p99_ms, tn.server_us, tn.failed);
        failed += tn.failed;
    }
    uv_loop_close(&loop);
    SSL_CTX_free(cctx);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    int total = 200000, conns = 32, handshakes = 5000;
    size_t body_len = 512;
    static const struct option longopts[] = {
        {"requests", required_argument, NULL, 'n'}, {"conns", required_argument, NULL, 'c'},
        {"handshakes", required_argument, NULL, 'k'}, {"body", required_argument, NULL, 'b'},
        {"plain-port", required_argument, NULL, 'P'}, {"tls-port", required_argument, NULL, 'T'},
        {"plain-pid", required_argument, NULL, 'p'}, {"tls-pid", required_argument, NULL, 't'},
        {"pki", required_argument, NULL, 'K'}, {"path", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0}};
    int ext_plain = 0, ext_tls = 0, ext_plain_pid = 0, ext_tls_pid = 0;
    const char *ext_pki = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "n:c:k:b:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n': total = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'k': handshakes = atoi(optarg); break;
        case 'b': body_len = (size_t)atol(optarg); break;
        case 'P': ext_plain = atoi(optarg); break;
        case 'T': ext_tls = atoi(optarg); break;
        case 'p': ext_plain_pid = atoi(optarg); break;
        case 't': ext_tls_pid = atoi(optarg); break;
        case 'K': ext_pki = optarg; break;
        case 'a': bench_path = optarg; break;
        default:
            fprintf(stderr, "usage: tls_bench [--requests N] [--conns C] [--handshakes N] "
                            "[--body BYTES]\n");
            return 2;
        }
    }
    if (total <= 0 || conns <= 0 || handshakes < 0) {
        fprintf(stderr, "tls_bench: counts must be positive\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (ext_plain || ext_tls)
        return external(ext_plain, ext_plain_pid, ext_tls, ext_tls_pid, ext_pki, conns, total,
                        handshakes);

    char dir[] = "/tmp/tls-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char pkidir[64], err[512];
    snprintf(pkidir, sizeof pkidir, "%s/pki", dir);
    pki_t *pki;
    if (pki_ensure(pkidir, &(pki_opts_t){.no_host_names = 1}, &pki, err, sizeof err) != 0) {
        fprintf(stderr, "tls_bench: %s\n", err);
        return 1;
    }
    SSL_CTX *sctx = pki_server_ctx_new(pki, err, sizeof err);
    SSL_CTX *cctx = tls_client_ctx_new(&(tls_client_opts_t){.ca_pem = pki_ca_pem(pki),
                                                            .cert_pem = pki_admin_cert_pem(pki),
                                                            .key_pem = pki_admin_key_pem(pki)},
                                       err, sizeof err);
    if (!sctx || !cctx) {
        fprintf(stderr, "tls_bench: %s\n", err);
        return 1;
    }

    srv_t s = {0};
    s.body_len = body_len;
    s.body = malloc(body_len);
    memset(s.body, 'x', body_len);
    uv_loop_init(&s.loop);
    http_server_opts_t po = {.host = "127.0.0.1", .handler = handler, .handler_data = &s};
    http_server_opts_t to = po;
    to.tls_ctx = sctx;
    if (http_server_start(&s.loop, &po, &s.plain) != 0 ||
        http_server_start(&s.loop, &to, &s.tls) != 0) {
        fprintf(stderr, "tls_bench: cannot listen\n");
        return 1;
    }
    int pport = http_server_port(s.plain), tport = http_server_port(s.tls);
    uv_async_init(&s.loop, &s.stop, on_stop);
    s.stop.data = &s;
    pthread_create(&s.thread, NULL, srv_thread, &s);
    pthread_getcpuclockid(s.thread, &server_clock);
    pthread_setname_np(s.thread, "bench-server");

    uv_loop_t loop;
    uv_loop_init(&loop);
    printf("# %d keep-alive connections, %d requests, %zu-byte answers; %d new connections\n",
           conns, total, body_len, handshakes);
    figures_t p = keepalive_run(&loop, pport, NULL, conns, total, 0);
    figures_t t = keepalive_run(&loop, tport, cctx, conns, total, 0);
    print_pair(p, t);
    int failed = p.failed + t.failed;
    if (handshakes > 0) {
        figures_t pn = measure(&loop, pport, NULL, conns, handshakes, 1, NULL);
        figures_t tn = measure(&loop, tport, cctx, conns, handshakes, 1, NULL);
        while (uv_run(&loop, UV_RUN_NOWAIT))
            ;
        printf("plain_new_conns_per_s     %.0f p99_ms %.3f server_cpu_us_per_conn %.1f "
               "failed %d\n",
               pn.per_s, pn.p99_ms, pn.server_us, pn.failed);
        printf("tls_new_conns_per_s       %.0f p99_ms %.3f server_cpu_us_per_conn %.1f failed %d "
               "(full handshake, client certificate)\n",
               tn.per_s, tn.p99_ms, tn.server_us, tn.failed);
        failed += pn.failed + tn.failed;
    }

    uv_async_send(&s.stop);
    pthread_join(s.thread, NULL);
    uv_loop_close(&s.loop);
    while (uv_run(&loop, UV_RUN_NOWAIT))
        ;
    uv_loop_close(&loop);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    pki_free(pki);
    free(s.body);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "tls_bench: could not remove %s\n", dir);
    return failed ? 1 : 0;
}
