/* tests/bench/skiff_bench.c - end-to-end figures for `skiff server` over
 * HTTP: time to ready, create throughput and latency, list time, watch
 * fan-out and memory. Not a test: it prints one line per figure with its
 * target and exits 0 unless the run itself broke.
 *
 *   skiff_bench --skiff PATH --data-dir DIR   spawn `PATH server ...` and measure
 *   skiff_bench --fake --data-dir DIR         same against the built-in fake API
 *   skiff_bench fake-server --data-dir D --port P   (the fake API itself)
 *
 * The fake API keeps ConfigMaps in memory; it exists to check the bench
 * and the HTTP layer on their own. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "http/client.h"
#include "http/server.h"

typedef struct bench {
    uv_loop_t *loop;
    const char *skiff;
    const char *self;
    const char *data_dir;
    int fake;
    int count;
    int conns;
    int watchers;
    int ready_runs;
    int port;
    uv_process_t proc;
    int proc_running;
    int failures;
} bench_t;

static double ms_since(uint64_t t0)
{
    return (double)(uv_hrtime() - t0) / 1e6;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, double value, const char *unit, const char *target,
                   int met)
{
    printf("%-22s %12.1f %-6s target %-10s %s\n", name, value, unit, target ? target : "-",
           target ? (met ? "ok" : "MISSED") : "");
    fflush(stdout);
}

/* ---- one request, waited for ------------------------------------------------- */

typedef struct sync_req {
    int done;
    int status;
    char *body;
    size_t body_len;
} sync_req_t;

static void sync_done(void *data, const http_client_result_t *res)
{
    sync_req_t *s = data;
    s->status = res->status;
    s->body = malloc(res->body_len + 1);
    if (s->body) {
        memcpy(s->body, res->body, res->body_len);
        s->body[res->body_len] = '\0';
        s->body_len = res->body_len;
    }
    s->done = 1;
}

static int get_wait(bench_t *b, http_client_t *c, const char *path, sync_req_t *s)
{
    memset(s, 0, sizeof(*s));
    http_client_request_t r = {.method = "GET", .path = path, .accept = "application/json",
                               .on_done = sync_done, .data = s};
    if (http_client_send(c, &r, NULL) < 0)
        return -1;
    while (!s->done)
        uv_run(b->loop, UV_RUN_ONCE);
    return s->status;
}

/* ---- the server process ----------------------------------------------------------- */

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    bench_t *b = p->data;
    b->proc_running = 0;
    uv_close((uv_handle_t *)p, NULL);
}

static int spawn_server(bench_t *b, const char *dir)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", b->port);
    char *args[8];
    if (b->fake) {
        args[0] = (char *)b->self;
        args[1] = "fake-server";
    } else {
        args[0] = (char *)b->skiff;
        args[1] = "server";
    }
    args[2] = "--data-dir";
    args[3] = (char *)dir;
    args[4] = "--port";
    args[5] = port;
    /* the HTTP figures are measured on the development listener; TLS
     * against plain is tests/bench/tls_bench */
    args[6] = b->fake ? NULL : "--plain-http";
    args[7] = NULL;
    char logpath[4200];
    snprintf(logpath, sizeof(logpath), "%s.log", dir);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = logfd},
                                     {.flags = UV_INHERIT_FD, .data.fd = logfd}};
    uv_process_options_t o = {.exit_cb = on_exit_cb, .file = args[0], .args = args,
                              .stdio = stdio, .stdio_count = 3};
    b->proc.data = b;
    int e = uv_spawn(b->loop, &b->proc, &o);
    close(logfd);
    if (e < 0) {
        fprintf(stderr, "skiff_bench: cannot start %s: %s\n", args[0], uv_strerror(e));
        return -1;
    }
    b->proc_running = 1;
    return 0;
}

static void stop_server(bench_t *b)
{
    if (!b->proc_running)
        return;
    uv_process_kill(&b->proc, SIGTERM);
    uint64_t t0 = uv_hrtime();
    while (b->proc_running) {
        if (ms_since(t0) > 5000) {
            uv_process_kill(&b->proc, SIGKILL);
            t0 = uv_hrtime();
        }
        uv_run(b->loop, UV_RUN_ONCE);
    }
}

/* Exec to the first 200 from /readyz, in ms; < 0 on failure. */
static double start_and_wait_ready(bench_t *b, const char *dir)
{
    mkdir(dir, 0755);
    b->port = free_port();
    uint64_t t0 = uv_hrtime();
    if (spawn_server(b, dir) < 0)
        return -1;
    http_client_t *c;
    if (http_client_new(b->loop, "127.0.0.1", b->port, &c) < 0)
        return -1;
    double ready = -1;
    while (b->proc_running && ms_since(t0) < 20000) {
        sync_req_t s;
        int st = get_wait(b, c, "/readyz", &s);
        free(s.body);
        if (st == 200) {
            ready = ms_since(t0);
            break;
        }
        usleep(st == 0 ? 200 : 1000);
    }
    http_client_free(c);
    return ready;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* ---- creates ---------------------------------------------------------------------- */

typedef struct creator {
    bench_t *b;
    http_client_t *c;
    struct create_run *run;
    uint64_t sent_at;
} creator_t;

typedef struct create_run {
    int next;
    int done;
    int errors;
    int total;
    uint64_t *lat;
    int first_error_status;
} create_run_t;

static void create_send(creator_t *w);

static void create_done(void *data, const http_client_result_t *res)
{
    creator_t *w = data;
    create_run_t *r = w->run;
    r->lat[r->done++] = uv_hrtime() - w->sent_at;
    if (res->status != 201) {
        if (!r->errors)
            r->first_error_status = res->status;
        r->errors++;
    }
    create_send(w);
}

static void create_send(creator_t *w)
{
    create_run_t *r = w->run;
    if (r->next >= r->total)
        return;
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                     "\"bench-%06d\",\"labels\":{\"app\":\"bench\"}},\"data\":{\"key\":\"value-%d\"}}",
                     r->next, r->next);
    r->next++;
    http_client_request_t q = {.method = "POST",
                               .path = "/api/v1/namespaces/default/configmaps",
                               .content_type = "application/json",
                               .accept = "application/json",
                               .body = body,
                               .body_len = (size_t)n,
                               .on_done = create_done,
                               .data = w};
    w->sent_at = uv_hrtime();
    if (http_client_send(w->c, &q, NULL) < 0) {
        r->errors++;
        r->done++;
    }
}

static int phase_creates(bench_t *b)
{
    create_run_t run = {.total = b->count};
    run.lat = calloc((size_t)b->count, sizeof(uint64_t));
    creator_t *ws = calloc((size_t)b->conns, sizeof(creator_t));
    for (int i = 0; i < b->conns; i++) {
        ws[i].b = b;
        ws[i].run = &run;
        http_client_new(b->loop, "127.0.0.1", b->port, &ws[i].c);
    }
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < b->conns; i++)
        create_send(&ws[i]);
    while (run.done < run.total)
        uv_run(b->loop, UV_RUN_ONCE);
    double secs = ms_since(t0) / 1000.0;
    for (int i = 0; i < b->conns; i++)
        http_client_free(ws[i].c);
    uv_run(b->loop, UV_RUN_NOWAIT);
    qsort(run.lat, (size_t)run.done, sizeof(uint64_t), cmp_u64);
    double p50 = (double)run.lat[run.done / 2] / 1e6;
    double p99 = (double)run.lat[(size_t)((double)run.done * 0.99)] / 1e6;
    double rate = run.done / secs;
    char what[64];
    snprintf(what, sizeof(what), "creates_per_s(%dx%d)", b->count / 1000, b->conns);
    report("creates_per_s", rate, "/s", ">= 20000", rate >= 20000);
    report("create_p50_ms", p50, "ms", NULL, 1);
    report("create_p99_ms", p99, "ms", "< 10", p99 < 10);
    if (run.errors) {
        printf("create_errors          %12d        (first status %d)\n", run.errors,
               run.first_error_status);
        b->failures++;
    }
    free(run.lat);
    free(ws);
    return run.errors ? -1 : 0;
}

/* ---- list -------------------------------------------------------------------------- */

static int count_items(const char *body, char *rv, size_t rvlen)
{
    int n = 0;
    /* every ConfigMap item carries the bench label once */
    for (const char *p = body; (p = strstr(p, "\"app\":\"bench\"")); p++)
        n++;
    rv[0] = '\0';
    const char *m = strstr(body, "\"resourceVersion\":\"");
    if (m) {
        /* the list's own resourceVersion is in its metadata, before the items */
        const char *items = strstr(body, "\"items\"");
        if (!items || m < items) {
            m += strlen("\"resourceVersion\":\"");
            size_t i = 0;
            while (m[i] && m[i] != '"' && i + 1 < rvlen) {
                rv[i] = m[i];
                i++;
            }
            rv[i] = '\0';
        }
    }
    return n;
}

static int phase_list(bench_t *b, char *rv, size_t rvlen)
{
    http_client_t *c;
    http_client_new(b->loop, "127.0.0.1", b->port, &c);
    sync_req_t s;
    uint64_t t0 = uv_hrtime();
    int st = get_wait(b, c, "/api/v1/namespaces/default/configmaps", &s);
    double ms = ms_since(t0);
    http_client_free(c);
    uv_run(b->loop, UV_RUN_NOWAIT);
    int n = s.body ? count_items(s.body, rv, rvlen) : 0;
    char label[64];
    snprintf(label, sizeof(label), "list_ms(%d items)", n);
    report(label, ms, "ms", NULL, 1);
    free(s.body);
    if (st != 200 || n < b->count) {
        printf("list_error             status %d, %d of %d items\n", st, n, b->count);
        b->failures++;
        return -1;
    }
    return 0;
}

/* ---- watch fan-out ------------------------------------------------------------------- */

typedef struct watcher {
    struct fanout *f;
    http_client_t *c;
    char *buf;
    size_t len, cap;
    int saw_warm;
    int saw_target;
    int ended;
} watcher_t;

typedef struct fanout {
    int warm;
    int target;
    int ended;
    uint64_t last_seen;
} fanout_t;

static void watch_chunk(void *data, const char *chunk, size_t len)
{
    watcher_t *w = data;
    if (w->len + len + 1 > w->cap) {
        size_t c = w->cap ? w->cap * 2 : 4096;
        while (c < w->len + len + 1)
            c *= 2;
        w->buf = realloc(w->buf, c);
        w->cap = c;
    }
    memcpy(w->buf + w->len, chunk, len);
    w->len += len;
    w->buf[w->len] = '\0';
    char *nl;
    while ((nl = memchr(w->buf, '\n', w->len))) {
        *nl = '\0';
        if (!w->saw_warm && strstr(w->buf, "\"bench-fanout-warm\"")) {
            w->saw_warm = 1;
            w->f->warm++;
        }
        if (!w->saw_target && strstr(w->buf, "\"bench-fanout\"")) {
            w->saw_target = 1;
            w->f->target++;
            w->f->last_seen = uv_hrtime();
        }
        size_t used = (size_t)(nl - w->buf) + 1;
        memmove(w->buf, nl + 1, w->len - used);
        w->len -= used;
    }
}

static void watch_end(void *data, const http_client_result_t *res)
{
    watcher_t *w = data;
    w->ended = 1;
    w->f->ended++;
}

static int create_one(bench_t *b, const char *name)
{
    http_client_t *c;
    http_client_new(b->loop, "127.0.0.1", b->port, &c);
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"}}",
                     name);
    sync_req_t s = {0};
    http_client_request_t q = {.method = "POST",
                               .path = "/api/v1/namespaces/default/configmaps",
                               .content_type = "application/json",
                               .body = body,
                               .body_len = (size_t)n,
                               .on_done = sync_done,
                               .data = &s};
    http_client_send(c, &q, NULL);
    while (!s.done)
        uv_run(b->loop, UV_RUN_ONCE);
    http_client_free(c);
    free(s.body);
    return s.status;
}

static int phase_fanout(bench_t *b, const char *rv)
{
    fanout_t f = {0};
    watcher_t *ws = calloc((size_t)b->watchers, sizeof(watcher_t));
    char path[256];
    snprintf(path, sizeof(path),
             "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=%s", rv);
    for (int i = 0; i < b->watchers; i++) {
        ws[i].f = &f;
        http_client_new(b->loop, "127.0.0.1", b->port, &ws[i].c);
        http_client_request_t q = {.method = "GET", .path = path, .accept = "application/json",
                                   .on_chunk = watch_chunk, .on_done = watch_end,
                                   .data = &ws[i]};
        http_client_send(ws[i].c, &q, NULL);
    }
    int rc = 0;
    /* a first object proves every watch is established (they start at rv,
     * so none can miss it); the second one is timed */
    uint64_t t0 = uv_hrtime();
    while (f.ended == 0 && ms_since(t0) < 300)
        uv_run(b->loop, UV_RUN_NOWAIT);
    if (create_one(b, "bench-fanout-warm") != 201)
        rc = -1;
    t0 = uv_hrtime();
    while (rc == 0 && f.warm + f.ended < b->watchers && ms_since(t0) < 30000)
        uv_run(b->loop, UV_RUN_ONCE);
    if (f.warm < b->watchers)
        rc = -1;
    double ms = 0;
    if (rc == 0) {
        t0 = uv_hrtime();
        if (create_one(b, "bench-fanout") != 201)
            rc = -1;
        while (rc == 0 && f.target + f.ended < b->watchers && ms_since(t0) < 30000)
            uv_run(b->loop, UV_RUN_ONCE);
        ms = (double)(f.last_seen - t0) / 1e6;
        if (f.target < b->watchers)
            rc = -1;
    }
    char label[64];
    snprintf(label, sizeof(label), "watch_fanout_ms(%d)", b->watchers);
    report(label, ms, "ms", NULL, 1);
    if (rc < 0) {
        printf("watch_error            %d of %d watchers saw the object (%d ended)\n",
               f.target ? f.target : f.warm, b->watchers, f.ended);
        b->failures++;
    }
    for (int i = 0; i < b->watchers; i++) {
        http_client_free(ws[i].c);
        free(ws[i].buf);
    }
    uv_run(b->loop, UV_RUN_NOWAIT);
    free(ws);
    return rc;
}

/* ---- the fake API -------------------------------------------------------------------- */

typedef struct fake {
    char **objs;
    size_t n, cap;
    api_response_t **watchers;
    size_t nw, capw;
} fake_t;

static void fake_watch_abort(api_response_t *r, void *data)
{
    fake_t *f = data;
    for (size_t i = 0; i < f->nw; i++) {
        if (f->watchers[i] == r) {
            f->watchers[i] = f->watchers[--f->nw];
            break;
        }
    }
    r->ops->stream_end(r);
}

static void fake_event(api_response_t *r, const char *obj)
{
    size_t len = strlen(obj) + 64;
    char *line = malloc(len);
    int n = snprintf(line, len, "{\"type\":\"ADDED\",\"object\":%s}\n", obj);
    r->ops->stream_write(r, line, (size_t)n);
    free(line);
}

static void fake_handler(void *data, const api_request_t *req, api_response_t *resp)
{
    fake_t *f = data;
    const char *j = "application/json";
    if (!strcmp(req->path, "/readyz")) {
        resp->ops->send(resp, 200, "text/plain", "ok", 2);
    } else if (!strcmp(req->method, "POST")) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 1024;
            f->objs = realloc(f->objs, f->cap * sizeof(char *));
        }
        f->objs[f->n++] = strndup(req->body ? req->body : "{}", req->body_len);
        for (size_t i = 0; i < f->nw; i++)
            fake_event(f->watchers[i], f->objs[f->n - 1]);
        resp->ops->send(resp, 201, j, req->body, req->body_len);
    } else if (req->query && strstr(req->query, "watch=1")) {
        const char *rv = strstr(req->query, "resourceVersion=");
        size_t from = rv ? strtoul(rv + 16, NULL, 10) : f->n;
        resp->on_abort = fake_watch_abort;
        resp->abort_data = f;
        resp->ops->stream_begin(resp, 200, j);
        for (size_t i = from; i < f->n; i++)
            fake_event(resp, f->objs[i]);
        if (f->nw == f->capw) {
            f->capw = f->capw ? f->capw * 2 : 64;
            f->watchers = realloc(f->watchers, f->capw * sizeof(*f->watchers));
        }
        f->watchers[f->nw++] = resp;
    } else if (!strcmp(req->method, "GET")) {
        size_t total = 128;
        for (size_t i = 0; i < f->n; i++)
            total += strlen(f->objs[i]) + 1;
        char *out = malloc(total);
        size_t at = (size_t)sprintf(out, "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\","
                                         "\"metadata\":{\"resourceVersion\":\"%zu\"},\"items\":[",
                                    f->n);
        for (size_t i = 0; i < f->n; i++) {
            if (i)
                out[at++] = ',';
            size_t l = strlen(f->objs[i]);
            memcpy(out + at, f->objs[i], l);
            at += l;
        }
        at += (size_t)sprintf(out + at, "]}");
        resp->ops->send(resp, 200, j, out, at);
        free(out);
    } else {
        resp->ops->send(resp, 404, j, "{}", 2);
    }
}

static void fake_on_signal(uv_signal_t *s, int signum)
{
    uv_stop(s->loop);
}

static int fake_server(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
    }
    uv_loop_t *loop = uv_default_loop();
    fake_t f = {0};
    http_server_t *srv;
    http_server_opts_t o = {.host = "127.0.0.1", .port = port, .max_body = 3 << 20,
                            .max_header = 1 << 20, .handler = fake_handler, .handler_data = &f};
    if (http_server_start(loop, &o, &srv) < 0)
        return 1;
    uv_signal_t sig;
    uv_signal_init(loop, &sig);
    uv_signal_start(&sig, fake_on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: skiff_bench (--skiff PATH | --fake) --data-dir DIR [--count N] [--conns N]\n"
            "                   [--watchers N] [--ready-runs N]\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "fake-server"))
        return fake_server(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    bench_t b = {.count = 20000, .conns = 64, .watchers = 1000, .ready_runs = 3};
    static const struct option opts[] = {
        {"skiff", required_argument, 0, 's'},   {"fake", no_argument, 0, 'f'},
        {"data-dir", required_argument, 0, 'd'}, {"count", required_argument, 0, 'n'},
        {"conns", required_argument, 0, 'c'},   {"watchers", required_argument, 0, 'w'},
        {"ready-runs", required_argument, 0, 'r'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 's': b.skiff = optarg; break;
        case 'f': b.fake = 1; break;
        case 'd': b.data_dir = optarg; break;
        case 'n': b.count = atoi(optarg); break;
        case 'c': b.conns = atoi(optarg); break;
        case 'w': b.watchers = atoi(optarg); break;
        case 'r': b.ready_runs = atoi(optarg); break;
        default: usage(); return 2;
        }
    }
    if ((!b.skiff && !b.fake) || !b.data_dir || b.count < 1 || b.conns < 1 || b.ready_runs < 1) {
        usage();
        return 2;
    }
    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl > 0)
        self[sl] = '\0';
    b.self = self;
    /* 1,000 watchers and 64 writers need more descriptors than the usual 1024 */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    mkdir(b.data_dir, 0755);
    uv_loop_t loop;
    uv_loop_init(&loop);
    b.loop = &loop;

    printf("%-22s %12s %-6s %-17s\n", "figure", "value", "unit", "target");
    double ready[16];
    int runs = b.ready_runs > 16 ? 16 : b.ready_runs;
    char dir[4096];
    for (int i = 0; i < runs; i++) {
        snprintf(dir, sizeof(dir), "%s/run%d", b.data_dir, i);
        ready[i] = start_and_wait_ready(&b, dir);
        if (ready[i] < 0) {
            fprintf(stderr, "skiff_bench: server in %s never became ready (see %s.log)\n", dir,
                    dir);
            stop_server(&b);
            return 1;
        }
        if (i + 1 < runs)
            stop_server(&b);
    }
    double sorted[16];
    memcpy(sorted, ready, sizeof(double) * (size_t)runs);
    qsort(sorted, (size_t)runs, sizeof(double), cmp_double);
    report("ready_ms(median)", sorted[runs / 2], "ms", "< 100", sorted[runs / 2] < 100);

    int pid = b.proc.pid;
    phase_creates(&b);
    long kb = rss_kb(pid);
    report("server_rss_mb", kb / 1024.0, "MB", "< 40", kb >= 0 && kb < 40 * 1024);
    char rv[64] = "";
    if (phase_list(&b, rv, sizeof(rv)) == 0 && b.watchers > 0)
        phase_fanout(&b, rv[0] ? rv : "0");
    stop_server(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return b.failures ? 1 : 0;
}
