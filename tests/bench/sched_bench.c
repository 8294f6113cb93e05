/* tests/bench/sched_bench.c - scheduling throughput end to end against a
 * running `skiff server --plain-http`: registers nodes (unless told they
 * exist), watches pods, creates bare pods through the API with many
 * requests in flight, and times each pod from the moment its create was
 * sent to the watch event that shows it bound. Prints figures; asserts
 * nothing. tests/bench/sched_bench (the script) starts the server and
 * adds its RSS and CPU time.
 *
 *   sched_bench --port P [--nodes N] [--pods M] [--in-flight K]
 *               [--node-cpu 32] [--pod-cpu 100m] [--clients 64] [--skip-nodes]
 *               [--rate PODS_PER_S] [--create-only | --bound-only] [--timeout S]
 *               [--deployments D] [--verify-events]
 *
 * Creates are spread over --clients HTTP clients (four keep-alive
 * connections each), since a connection carries one request at a time.
 * Without --rate pods are created as fast as --in-flight allows (the
 * scheduler then runs behind and latency measures the backlog); with it,
 * at a steady rate. --create-only creates and stops (for a server without a
 * scheduler); --bound-only creates nothing and times how fast the pods
 * already stored get bound (a backlog, after a restart with a scheduler).
 * --deployments D creates D Deployments of M/D replicas instead of bare
 * pods (the server must run the deployment and replicaset controllers) and
 * times each pod from its creation (the first watch event showing it) to
 * its binding, and also from its Deployment's create.
 *
 * The benchmark shares the machine with the server, so it spends as little
 * CPU as it can: node and pod bodies are encoded once as a template with
 * the name patched in, creates and the pod watch speak HTTP directly
 * (core/http/client.h) without decoding answers that succeeded, and watch
 * events are read by a scanner that picks out only type,
 * metadata.name, metadata.resourceVersion and spec.nodeName, instead of
 * building a JSON tree per event. --verify-events also decodes every event
 * with jansson and stops at the first disagreement. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <skiff/client.h>

#include "api/client_http.h"
#include "http/client.h"
#include "util/strmap.h"

#define CONNS_PER_CLIENT 4
#define NAME_MARK "@NAME@"
#define NAME_MAX_LEN 63

/* A body encoded once, with the places its name goes. */
typedef struct tmpl {
    char *text;      /* json_dumps of the object with NAME_MARK for the name */
    size_t cut[3];   /* text[cut[k]] is where piece k+1 starts (after a mark) */
    size_t at[2];    /* offsets of the marks */
    int marks;
    char *buf;       /* the filled body, reused */
} tmpl_t;

/* A piece of a watch event line (not NUL-terminated). */
typedef struct span {
    const char *p;
    size_t n;
} span_t;

/* What the benchmark reads from a watch event. */
typedef struct pod_event {
    span_t type, name, rv, node, phase;
    int escaped; /* one of those strings has a backslash escape */
} pod_event_t;

typedef struct bench {
    uv_loop_t *loop;
    skiff_client_t *c;         /* lists */
    http_client_t **conns;     /* creates: --clients groups of CONNS_PER_CLIENT */
    int n_clients, rr;
    http_client_t *wc;         /* the pod watch's own connection */
    char *line;                /* the watch event being reassembled */
    size_t line_len, line_cap;
    int verify;                /* --verify-events */
    int port;
    int nodes, pods, in_flight;
    const char *node_cpu, *pod_cpu;
    tmpl_t node_body, pod_body;
    int nodes_done, nodes_sent, nodes_failed;
    int pods_sent, pods_done, pods_failed, bound;
    uint64_t *sent_ns;    /* per pod: create sent */
    uint64_t *bound_ns;   /* per pod: bound seen (0: not yet) */
    unsigned char *running; /* per pod: seen with status.phase Running */
    int n_running;        /* pods seen Running (hollow nodes report them) */
    uint64_t first_ns, last_bound_ns, last_created_ns;
    uv_timer_t timeout;
    int timeout_s;
    int rate;                  /* pods per second; 0: as fast as in_flight allows */
    int create_only;           /* create nodes and pods, then stop */
    int bound_only;            /* create nothing: time the binding of existing pods */
    uint64_t first_bound_ns;
    int done;
    uv_timer_t pacer;
    uint64_t paced_start_ns;
    char rv[64];
    /* --deployments: per Deployment its create time; per pod seen bound
     * its latency from its Deployment's create (lat_ns) and from its own
     * creation, the first watch event that shows it (pod_lat_ns); pods
     * have generated names, so `seen` maps a name to its pod_seen_t */
    int deployments, deploys_sent, deploys_done, deploys_failed;
    uint64_t *deploy_sent_ns;
    uint64_t *lat_ns, *pod_lat_ns;
    strmap_t *seen;
} bench_t;

/* --deployments: a pod of theirs, from its first watch event on */
typedef struct pod_seen {
    uint64_t first_ns;
    int bound;
    int running;
} pod_seen_t;

static const skiff_resource_t pods_res = {"", "v1", "pods", NULL};
#define DEPLOY_PREFIX "bench-deploy-"
#define NODES_PATH "/api/v1/nodes"
#define PODS_PATH "/api/v1/namespaces/default/pods"
#define DEPLOYS_PATH "/apis/apps/v1/namespaces/default/deployments"


static void send_node(bench_t *b);
static void send_pod(bench_t *b);
static void start_pods(bench_t *b);
static int open_watch(bench_t *b);

/* ---- bodies ------------------------------------------------------------------ */

/* Takes obj (a reference) whose name fields hold NAME_MARK. 0 or -1. */
static int tmpl_init(tmpl_t *t, json_t *obj)
{
    t->text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!t->text) return -1;
    const char *p = t->text;
    t->marks = 0;
    while (t->marks < 2 && (p = strstr(p, NAME_MARK))) {
        t->at[t->marks] = (size_t)(p - t->text);
        p += strlen(NAME_MARK);
        t->cut[t->marks++] = (size_t)(p - t->text);
    }
    t->buf = malloc(strlen(t->text) + (size_t)t->marks * NAME_MAX_LEN + 1);
    return t->marks && t->buf ? 0 : -1;
}

/* The body with name in place of the marks, in t->buf; its length. */
static size_t tmpl_fill(tmpl_t *t, const char *name, size_t nlen)
{
    char *o = t->buf;
    size_t from = 0;
    for (int k = 0; k < t->marks; k++) {
        memcpy(o, t->text + from, t->at[k] - from);
        o += t->at[k] - from;
        memcpy(o, name, nlen);
        o += nlen;
        from = t->cut[k];
    }
    size_t rest = strlen(t->text + from);
    memcpy(o, t->text + from, rest + 1);
    return (size_t)(o - t->buf) + rest;
}

static void tmpl_free(tmpl_t *t)
{
    free(t->text);
    free(t->buf);
}

/* prefix followed by i in at least width digits, zero-padded, in out
 * (NAME_MAX_LEN + 1 bytes); its length. */
static size_t make_name(char *out, const char *prefix, int i, int width)
{
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    char d[16];
    int k = 0;
    unsigned v = (unsigned)i;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k < width) d[k++] = '0';
    while (k) out[n++] = d[--k];
    out[n] = '\0';
    return n;
}

static int post(bench_t *b, const char *path, const char *body, size_t len,
                http_client_done_fn done)
{
    /* as the SDK client did: round-robin over the clients, then the least
     * busy of a client's connections */
    http_client_t **g = b->conns + (size_t)(b->rr++ % b->n_clients) * CONNS_PER_CLIENT;
    http_client_t *best = g[0];
    for (int i = 1; i < CONNS_PER_CLIENT; i++)
        if (http_client_pending(g[i]) < http_client_pending(best)) best = g[i];
    http_client_request_t r = {
        .method = "POST",
        .path = path,
        .content_type = "application/json",
        .accept = "application/json",
        .body = body,
        .body_len = len,
        .on_done = done,
        .data = b,
    };
    return http_client_send(best, &r, NULL);
}

/* The message of a refused create's Status (decoded only then). */
static void print_refusal(const char *what, const http_client_result_t *res)
{
    json_t *st = res->body_len ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    fprintf(stderr, "sched_bench: %s create failed (%d): %s\n", what, res->status,
            json_string_value(json_object_get(st, "message")));
    json_decref(st);
}

/* ---- the run ----------------------------------------------------------------- */

static void finish(bench_t *b)
{
    b->done = 1;
    if (b->wc) {
        http_client_free(b->wc);
        b->wc = NULL;
    }
    uv_timer_stop(&b->timeout);
    uv_close((uv_handle_t *)&b->timeout, NULL);
    uv_timer_stop(&b->pacer);
    uv_close((uv_handle_t *)&b->pacer, NULL);
    b->c->vt->free(b->c);
    for (int i = 0; i < b->n_clients * CONNS_PER_CLIENT; i++) http_client_free(b->conns[i]);
}

static void on_node(void *data, const http_client_result_t *res)
{
    bench_t *b = data;
    b->nodes_done++;
    if (res->status != 201) b->nodes_failed++;
    if (b->nodes_sent < b->nodes) send_node(b);
    else if (b->nodes_done == b->nodes) {
        fprintf(stderr, "sched_bench: %d nodes registered (%d failed)\n", b->nodes, b->nodes_failed);
        start_pods(b);
    }
}

static void send_node(bench_t *b)
{
    int i = b->nodes_sent++;
    char name[NAME_MAX_LEN + 1];
    size_t n = make_name(name, "bench-node-", i, 5);
    size_t len = tmpl_fill(&b->node_body, name, n);
    if (post(b, NODES_PATH, b->node_body.buf, len, on_node) != 0) {
        b->nodes_done++;
        b->nodes_failed++;
    }
}

/* The number after the last '-' of a pod's name, or -1. */
static int index_of(span_t name)
{
    size_t k = name.n;
    while (k && name.p[k - 1] != '-') k--;
    if (!k || k == name.n) return -1;
    int v = 0;
    for (size_t j = k; j < name.n; j++) {
        if (name.p[j] < '0' || name.p[j] > '9') return -1;
        if (v > 100000000) return -1;
        v = v * 10 + (name.p[j] - '0');
    }
    return v;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

/* ---- watch events -------------------------------------------------------------- */

/* Where a value sits, for the few the benchmark reads. */
enum {
    AT_OTHER, AT_ROOT, AT_OBJECT, AT_META, AT_SPEC, AT_STATUS,
    AT_TYPE, AT_NAME, AT_RV, AT_NODE, AT_PHASE
};

static int span_is(span_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static int child_of(int at, span_t key)
{
    switch (at) {
    case AT_ROOT:
        return span_is(key, "type") ? AT_TYPE : span_is(key, "object") ? AT_OBJECT : AT_OTHER;
    case AT_OBJECT:
        return span_is(key, "metadata") ? AT_META
               : span_is(key, "spec")   ? AT_SPEC
               : span_is(key, "status") ? AT_STATUS
                                        : AT_OTHER;
    case AT_META:
        return span_is(key, "name") ? AT_NAME : span_is(key, "resourceVersion") ? AT_RV : AT_OTHER;
    case AT_SPEC:
        return span_is(key, "nodeName") ? AT_NODE : AT_OTHER;
    case AT_STATUS:
        return span_is(key, "phase") ? AT_PHASE : AT_OTHER;
    default:
        return AT_OTHER;
    }
}

/* The member of ev a string at `at` goes to, or NULL. */
static span_t *slot_of(pod_event_t *ev, int at)
{
    switch (at) {
    case AT_TYPE: return &ev->type;
    case AT_NAME: return &ev->name;
    case AT_RV: return &ev->rv;
    case AT_NODE: return &ev->node;
    case AT_PHASE: return &ev->phase;
    default: return NULL;
    }
}

typedef struct scan {
    const char *p, *end;
    pod_event_t *ev;
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* A string at s->p; its contents (escapes left as they are) in out. */
static int scan_string(scan_t *s, span_t *out, int *escaped)
{
    if (s->p >= s->end || *s->p != '"') return -1;
    const char *start = ++s->p;
    /* most strings have no escape: find the quote, then look for a
     * backslash. Raw control characters, which JSON forbids in strings,
     * are not looked for there: the server does not send them. */
    const char *q = memchr(start, '"', (size_t)(s->end - start));
    if (q && !memchr(start, '\\', (size_t)(q - start))) {
        out->p = start;
        out->n = (size_t)(q - start);
        s->p = q + 1;
        return 0;
    }
    for (; s->p < s->end; s->p++) {
        unsigned char ch = (unsigned char)*s->p;
        if (ch == '"') {
            out->p = start;
            out->n = (size_t)(s->p - start);
            s->p++;
            return 0;
        }
        if (ch < 0x20) return -1;
        if (ch == '\\') {
            *escaped = 1;
            if (++s->p >= s->end) return -1;
        }
    }
    return -1;
}

static int scan_value(scan_t *s, int at, int depth)
{
    if (depth > 64) return -1;
    skip_ws(s);
    if (s->p >= s->end) return -1;
    char ch = *s->p;
    if (ch == '"') {
        span_t v;
        int esc = 0;
        if (scan_string(s, &v, &esc) < 0) return -1;
        span_t *slot = slot_of(s->ev, at);
        if (slot) {
            *slot = v;
            s->ev->escaped |= esc;
        }
        return 0;
    }
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return 0;
        }
        for (;;) {
            int child = AT_OTHER;
            if (ch == '{') {
                span_t key;
                int esc = 0;
                skip_ws(s);
                if (scan_string(s, &key, &esc) < 0) return -1;
                skip_ws(s);
                if (s->p >= s->end || *s->p++ != ':') return -1;
                /* a key with an escape is none of ours (jansson would decode it) */
                child = esc ? AT_OTHER : child_of(at, key);
            }
            /* a value that is not a string clears what an earlier key set,
             * as the last of duplicate keys wins in jansson */
            span_t *slot = slot_of(s->ev, child);
            if (slot) *slot = (span_t){NULL, 0};
            if (scan_value(s, child, depth + 1) < 0) return -1;
            skip_ws(s);
            if (s->p >= s->end) return -1;
            if (*s->p == ',') {
                s->p++;
                continue;
            }
            if (*s->p++ == close) return 0;
            return -1;
        }
    }
    /* a number, true, false or null: the benchmark reads none */
    const char *start = s->p;
    while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
           *s->p != '\t' && *s->p != '\r' && *s->p != '\n')
        s->p++;
    return s->p > start ? 0 : -1;
}

/* Reads one event line; -1 when it is not a JSON object. */
static int scan_event(const char *line, size_t len, pod_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    scan_t s = {line, line + len, ev};
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') return -1;
    if (scan_value(&s, AT_ROOT, 0) < 0) return -1;
    skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

/* The same fields through jansson, for lines with escapes and for
 * --verify-events. The spans point into obj (or are empty). */
static int decode_event(json_t *ev, pod_event_t *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(ev)) return -1;
    json_t *obj = json_object_get(ev, "object");
    json_t *v[5] = {json_object_get(ev, "type"),
                    json_object_get(json_object_get(obj, "metadata"), "name"),
                    json_object_get(json_object_get(obj, "metadata"), "resourceVersion"),
                    json_object_get(json_object_get(obj, "spec"), "nodeName"),
                    json_object_get(json_object_get(obj, "status"), "phase")};
    span_t *slot[5] = {&out->type, &out->name, &out->rv, &out->node, &out->phase};
    for (int k = 0; k < 5; k++)
        if (json_is_string(v[k]))
            *slot[k] = (span_t){json_string_value(v[k]), json_string_length(v[k])};
    return 0;
}

static int span_eq(span_t a, span_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0) && !a.p == !b.p;
}

static void report(bench_t *b)
{
    if (b->bound_only) {
        printf("pods_bound            %d of %d\n", b->bound, b->pods);
        printf("bound_per_s           %.0f   (first pod bound to last)\n",
               b->last_bound_ns > b->first_bound_ns
                   ? b->bound / ((double)(b->last_bound_ns - b->first_bound_ns) / 1e9) : 0);
        printf("start_to_last_bound_s %.1f   (watch opened to last pod bound)\n",
               (double)(b->last_bound_ns - b->first_ns) / 1e9);
        return;
    }
    uint64_t *lat = malloc(sizeof *lat * (size_t)(b->pods ? b->pods : 1));
    int n = 0;
    if (b->deployments) {
        for (int i = 0; i < b->bound; i++) lat[n++] = b->pod_lat_ns[i];
    } else {
        for (int i = 0; i < b->pods; i++)
            if (b->bound_ns[i] && b->sent_ns[i]) lat[n++] = b->bound_ns[i] - b->sent_ns[i];
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    double span = (double)(b->last_bound_ns - b->first_ns) / 1e9;
    double create_span = (double)(b->last_created_ns - b->first_ns) / 1e9;
    printf("nodes                 %d\n", b->nodes);
    if (b->deployments)
        printf("deployments_created   %d (failed %d), %d replicas each\n",
               b->deploys_done - b->deploys_failed, b->deploys_failed, b->pods / b->deployments);
    else
        printf("pods_created          %d (failed %d)\n", b->pods_done - b->pods_failed, b->pods_failed);
    printf("pods_bound            %d\n", b->bound);
    if (!b->deployments)
        printf("creates_per_s         %.0f\n",
               create_span > 0 ? (b->pods_done - b->pods_failed) / create_span : 0);
    printf("bound_per_s           %.0f   (first create sent to last pod bound)\n",
           span > 0 ? b->bound / span : 0);
    if (n) {
        printf("create_to_bound_p50_ms %.1f\n", lat[n / 2] / 1e6);
        printf("create_to_bound_p99_ms %.1f\n", lat[(size_t)((double)n * 0.99)] / 1e6);
        printf("create_to_bound_max_ms %.1f\n", lat[n - 1] / 1e6);
    }
    /* with hollow nodes: how far their kubelets had got by then */
    printf("pods_running          %d   (seen Running when the last pod was bound)\n", b->n_running);
    if (b->deployments && b->bound) {
        /* the same pods timed from their Deployment's create: all
         * Deployments are created at once, so the last pods wait for the
         * whole run whatever the scheduler's latency */
        n = 0;
        for (int i = 0; i < b->bound; i++) lat[n++] = b->lat_ns[i];
        qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
        printf("deploy_to_bound_p50_ms %.1f\n", lat[n / 2] / 1e6);
        printf("deploy_to_bound_p99_ms %.1f\n", lat[(size_t)((double)n * 0.99)] / 1e6);
    }
    free(lat);
}

/* One pod event, from the watch or from the list of --bound-only. */
static void on_pod_event(bench_t *b, const pod_event_t *ev)
{
    if (ev->rv.p && ev->rv.n < sizeof b->rv) {
        memcpy(b->rv, ev->rv.p, ev->rv.n);
        b->rv[ev->rv.n] = '\0';
    }
    if (!span_is(ev->type, "ADDED") && !span_is(ev->type, "MODIFIED")) return;
    if (b->deployments) {
        /* "bench-deploy-0007-<hash>-<suffix>": timed from its first event
         * and from Deployment 7's create */
        char pname[NAME_MAX_LEN * 4 + 1];
        if (ev->name.n >= sizeof pname) return;
        memcpy(pname, ev->name.p, ev->name.n);
        pname[ev->name.n] = '\0';
        if (strncmp(pname, DEPLOY_PREFIX, strlen(DEPLOY_PREFIX)) != 0) return;
        int d = atoi(pname + strlen(DEPLOY_PREFIX));
        if (d < 0 || d >= b->deployments || !b->deploy_sent_ns[d] || b->bound >= b->pods) return;
        uint64_t now = uv_hrtime();
        pod_seen_t *seen = strmap_get(b->seen, pname);
        if (!seen) {
            seen = calloc(1, sizeof *seen);
            if (!seen) return;
            seen->first_ns = now;
            strmap_put(b->seen, pname, seen);
        }
        if (!seen->running && span_is(ev->phase, "Running")) {
            seen->running = 1;
            b->n_running++;
        }
        if (!ev->node.n || seen->bound) return;
        seen->bound = 1;
        b->lat_ns[b->bound] = now - b->deploy_sent_ns[d];
        b->pod_lat_ns[b->bound] = now - seen->first_ns;
        if (!b->first_bound_ns) b->first_bound_ns = now;
        b->last_bound_ns = now;
        if (++b->bound == b->pods) {
            report(b);
            finish(b);
        }
        return;
    }
    if (!ev->node.n) return;
    int i = index_of(ev->name);
    if (i < 0 || i >= b->pods) return;
    if (!b->running[i] && span_is(ev->phase, "Running")) {
        b->running[i] = 1;
        b->n_running++;
    }
    if (b->bound_ns[i]) return;
    b->bound_ns[i] = uv_hrtime();
    if (!b->first_bound_ns) b->first_bound_ns = b->bound_ns[i];
    b->last_bound_ns = b->bound_ns[i];
    if (++b->bound == b->pods) {
        report(b);
        finish(b);
    }
}

static void verify_failed(const char *what, const char *line, size_t len)
{
    fprintf(stderr, "sched_bench: --verify-events: %s differs for %.*s\n", what, (int)len, line);
    exit(1);
}

/* One complete line of the watch: {"type": ..., "object": ...}. */
static void watch_line(bench_t *b, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) len--;
    if (!len) return;
    pod_event_t ev;
    int r = scan_event(line, len, &ev);
    json_t *tree = NULL;
    if (b->verify || (r == 0 && ev.escaped)) {
        pod_event_t dec;
        tree = json_loadb(line, len, 0, NULL);
        int rd = decode_event(tree, &dec);
        if (b->verify && !ev.escaped) {
            if ((r == 0) != (rd == 0)) verify_failed("parsing", line, len);
            if (r == 0 && !(span_eq(ev.type, dec.type) && span_eq(ev.name, dec.name) &&
                             span_eq(ev.rv, dec.rv) && span_eq(ev.node, dec.node) &&
                             span_eq(ev.phase, dec.phase)))
                verify_failed("a field", line, len);
        }
        ev = dec;
        r = rd;
    }
    if (r == 0 && ev.type.p) on_pod_event(b, &ev);
    json_decref(tree);
}

static void watch_chunk(void *data, const char *chunk, size_t len)
{
    bench_t *b = data;
    if (b->done) return;
    /* whole lines straight from the chunk; only a line cut in two is copied */
    while (len && !b->done) {
        const char *nl = memchr(chunk, '\n', len);
        size_t take = nl ? (size_t)(nl - chunk) : len;
        if (b->line_len + take + 1 > b->line_cap) {
            size_t c = b->line_cap ? b->line_cap : 4096;
            while (c < b->line_len + take + 1) c *= 2;
            char *p = realloc(b->line, c);
            if (!p) return;
            b->line = p;
            b->line_cap = c;
        }
        if (!nl) {
            memcpy(b->line + b->line_len, chunk, take);
            b->line_len += take;
            return;
        }
        if (b->line_len) {
            memcpy(b->line + b->line_len, chunk, take);
            size_t n = b->line_len + take;
            b->line_len = 0;
            watch_line(b, b->line, n);
        } else {
            watch_line(b, chunk, take);
        }
        chunk = nl + 1;
        len -= take + 1;
    }
}

static void watch_done(void *data, const http_client_result_t *res)
{
    bench_t *b = data;
    if (b->done) return;
    if (res->status >= 200 && res->status < 300 && b->line_len) {
        size_t n = b->line_len;
        b->line_len = 0;
        watch_line(b, b->line, n);
    }
    b->line_len = 0;
    if (b->done || b->bound >= b->pods) return;
    /* the server may end a watch (timeout, a slow reader): resume from the
     * last revision seen, as an informer would. The connection finished its
     * only request and is reused for the next one. */
    if (open_watch(b) != 0)
        fprintf(stderr, "sched_bench: the watch ended and could not be opened again\n");
}

static int open_watch(bench_t *b)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/pods?watch=1%s%s&timeoutSeconds=3600",
             b->rv[0] ? "&resourceVersion=" : "", b->rv);
    if (!b->wc && http_client_new(b->loop, "127.0.0.1", b->port, &b->wc) < 0) return -1;
    http_client_request_t r = {
        .method = "GET",
        .path = path,
        .accept = "application/json",
        .on_chunk = watch_chunk,
        .on_done = watch_done,
        .data = b,
    };
    return http_client_send(b->wc, &r, NULL);
}

static void on_pod(void *data, const http_client_result_t *res)
{
    bench_t *b = data;
    b->pods_done++;
    b->last_created_ns = uv_hrtime();
    if (res->status != 201 && b->pods_failed++ < 5) print_refusal("pod", res);
    if (!b->rate && b->pods_sent < b->pods) send_pod(b);
    if (b->create_only && b->pods_done == b->pods) {
        printf("pods_created          %d (failed %d) in %.1f s\n", b->pods_done - b->pods_failed,
               b->pods_failed, (double)(b->last_created_ns - b->first_ns) / 1e9);
        finish(b);
    }
}

/* --rate: every 5 ms, send what the schedule is owed (in_flight still caps) */
static void on_pace(uv_timer_t *t)
{
    bench_t *b = t->data;
    uint64_t due = (uv_hrtime() - b->paced_start_ns) * (uint64_t)b->rate / 1000000000u;
    while ((uint64_t)b->pods_sent < due && b->pods_sent < b->pods &&
           b->pods_sent - b->pods_done < b->in_flight)
        send_pod(b);
    if (b->pods_sent == b->pods) uv_timer_stop(t);
}

static void send_pod(bench_t *b)
{
    int i = b->pods_sent++;
    char name[NAME_MAX_LEN + 1];
    size_t n = make_name(name, "bench-pod-", i, 6);
    size_t len = tmpl_fill(&b->pod_body, name, n);
    b->sent_ns[i] = uv_hrtime();
    if (!b->first_ns) b->first_ns = b->sent_ns[i];
    if (post(b, PODS_PATH, b->pod_body.buf, len, on_pod) != 0) {
        b->pods_done++;
        b->pods_failed++;
    }
}

static void send_deploy(bench_t *b);

static void on_deploy(void *data, const http_client_result_t *res)
{
    bench_t *b = data;
    b->deploys_done++;
    b->last_created_ns = uv_hrtime();
    if (res->status != 201 && b->deploys_failed++ < 5) print_refusal("deployment", res);
    if (b->deploys_sent < b->deployments) send_deploy(b);
}

static void send_deploy(bench_t *b)
{
    int i = b->deploys_sent++;
    char name[64];
    snprintf(name, sizeof name, DEPLOY_PREFIX "%04d", i);
    json_t *d = json_pack(
        "{s:s,s:s,s:{s:s,s:s},s:{s:i,s:{s:{s:s}},s:{s:{s:{s:s}},"
        "s:{s:[{s:s,s:s,s:{s:{s:s,s:s}}}]}}}}",
        "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", name, "namespace",
        "default", "spec", "replicas", b->pods / b->deployments, "selector", "matchLabels",
        "app", name, "template", "metadata", "labels", "app", name, "spec", "containers", "name",
        "c", "image", "registry.k8s.io/pause:3.9", "resources", "requests", "cpu", b->pod_cpu,
        "memory", "64Mi");
    /* a few hundred Deployments: encoded one by one, sent like the pods */
    char *body = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    b->deploy_sent_ns[i] = uv_hrtime();
    if (!b->first_ns) b->first_ns = b->deploy_sent_ns[i];
    if (!body || post(b, DEPLOYS_PATH, body, strlen(body), on_deploy) != 0) {
        b->deploys_done++;
        b->deploys_failed++;
    }
    free(body);
}

static void on_list(void *data, int status, json_t *obj)
{
    bench_t *b = data;
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    snprintf(b->rv, sizeof b->rv, "%s", rv ? rv : "");
    if (b->create_only) {
        for (int i = 0; i < b->in_flight && b->pods_sent < b->pods; i++) send_pod(b);
        return;
    }
    if (b->bound_only) {
        /* the list held the pods bound already; the watch brings the rest */
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(obj, "items"), i, item) {
            json_t *ev = json_pack("{s:s,s:O}", "type", "ADDED", "object", item);
            pod_event_t pe;
            if (decode_event(ev, &pe) == 0) on_pod_event(b, &pe);
            json_decref(ev);
        }
        snprintf(b->rv, sizeof b->rv, "%s", rv ? rv : "");
        if (b->bound == b->pods) return;
    }
    if (open_watch(b) != 0) {
        fprintf(stderr, "sched_bench: cannot watch pods\n");
        finish(b);
        return;
    }
    if (b->bound_only) return;
    if (b->deployments) {
        for (int i = 0; i < b->in_flight && b->deploys_sent < b->deployments; i++) send_deploy(b);
        return;
    }
    if (b->rate) {
        b->paced_start_ns = uv_hrtime();
        uv_timer_start(&b->pacer, on_pace, 0, 5);
        return;
    }
    for (int i = 0; i < b->in_flight && b->pods_sent < b->pods; i++) send_pod(b);
}

static void start_pods(bench_t *b)
{
    skiff_list_opts_t o = {.limit = 1};
    if (b->bound_only) {
        b->first_ns = uv_hrtime();
        for (int i = 0; i < b->pods; i++) b->sent_ns[i] = b->first_ns;
        o.limit = 0;
        o.field_selector = "spec.nodeName!=";
    }
    skiff_client_list(b->c, &pods_res, NULL, &o, on_list, b);
}

static void on_timeout(uv_timer_t *t)
{
    bench_t *b = t->data;
    fprintf(stderr, "sched_bench: timed out after %d s with %d of %d pods bound\n", b->timeout_s,
            b->bound, b->pods);
    report(b);
    finish(b);
}

static int make_bodies(bench_t *b)
{
    json_t *n = json_pack(
        "{s:s,s:s,s:{s:s,s:{s:s}},s:{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:[{s:s,s:s}]}}",
        "apiVersion", "v1", "kind", "Node", "metadata", "name", NAME_MARK, "labels",
        "kubernetes.io/hostname", NAME_MARK, "status", "capacity", "cpu", b->node_cpu, "memory",
        "256Gi", "pods", "110", "allocatable", "cpu", b->node_cpu, "memory", "256Gi", "pods",
        "110", "conditions", "type", "Ready", "status", "True");
    json_t *p = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:[{s:s,s:s,s:{s:{s:s,s:s}}}]}}",
                          "apiVersion", "v1", "kind", "Pod", "metadata", "name", NAME_MARK,
                          "namespace", "default", "labels", "app", "bench", "spec", "containers",
                          "name", "c", "image", "registry.k8s.io/pause:3.9", "resources",
                          "requests", "cpu", b->pod_cpu, "memory", "64Mi");
    int e = tmpl_init(&b->node_body, n);
    return tmpl_init(&b->pod_body, p) < 0 || e < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    bench_t b = {.nodes = 5000, .pods = 50000, .in_flight = 256, .node_cpu = "32",
                 .pod_cpu = "100m", .timeout_s = 600, .n_clients = 64};
    int skip_nodes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && v) b.port = atoi(argv[++i]);
        else if (strcmp(a, "--nodes") == 0 && v) b.nodes = atoi(argv[++i]);
        else if (strcmp(a, "--pods") == 0 && v) b.pods = atoi(argv[++i]);
        else if (strcmp(a, "--in-flight") == 0 && v) b.in_flight = atoi(argv[++i]);
        else if (strcmp(a, "--node-cpu") == 0 && v) b.node_cpu = argv[++i];
        else if (strcmp(a, "--pod-cpu") == 0 && v) b.pod_cpu = argv[++i];
        else if (strcmp(a, "--timeout") == 0 && v) b.timeout_s = atoi(argv[++i]);
        else if (strcmp(a, "--clients") == 0 && v) b.n_clients = atoi(argv[++i]);
        else if (strcmp(a, "--rate") == 0 && v) b.rate = atoi(argv[++i]);
        else if (strcmp(a, "--create-only") == 0) b.create_only = 1;
        else if (strcmp(a, "--bound-only") == 0) b.bound_only = 1;
        else if (strcmp(a, "--skip-nodes") == 0) skip_nodes = 1;
        else if (strcmp(a, "--deployments") == 0 && v) b.deployments = atoi(argv[++i]);
        else if (strcmp(a, "--verify-events") == 0) b.verify = 1;
        else {
            fprintf(stderr, "usage: sched_bench --port P [--nodes N] [--pods M] [--in-flight K] "
                            "[--node-cpu Q] [--pod-cpu Q] [--skip-nodes] [--timeout S] "
                            "[--rate R] [--clients C] [--deployments D] [--verify-events]\n");
            return 2;
        }
    }
    if (!b.port || b.pods <= 0) {
        fprintf(stderr, "sched_bench: --port is required\n");
        return 2;
    }
    b.loop = uv_default_loop();
    b.c = client_http_new(b.loop, "127.0.0.1", b.port, NULL);
    if (b.n_clients < 1) b.n_clients = 1;
    int n_conns = b.n_clients * CONNS_PER_CLIENT;
    b.conns = calloc((size_t)n_conns, sizeof *b.conns);
    for (int i = 0; b.conns && i < n_conns; i++)
        if (http_client_new(b.loop, "127.0.0.1", b.port, &b.conns[i]) < 0) return 1;
    b.sent_ns = calloc((size_t)b.pods, sizeof *b.sent_ns);
    b.bound_ns = calloc((size_t)b.pods, sizeof *b.bound_ns);
    b.running = calloc((size_t)b.pods, 1);
    if (!b.c || !b.conns || !b.sent_ns || !b.bound_ns || !b.running || make_bodies(&b) < 0)
        return 1;
    if (b.deployments > 0) {
        /* replicas per Deployment; the pods timed are that many times D */
        if (b.deployments > b.pods) b.deployments = b.pods;
        b.pods = b.pods / b.deployments * b.deployments;
        b.deploy_sent_ns = calloc((size_t)b.deployments, sizeof *b.deploy_sent_ns);
        b.lat_ns = calloc((size_t)b.pods, sizeof *b.lat_ns);
        b.pod_lat_ns = calloc((size_t)b.pods, sizeof *b.pod_lat_ns);
        b.seen = strmap_new();
        if (!b.deploy_sent_ns || !b.lat_ns || !b.pod_lat_ns || !b.seen) return 1;
    }
    uv_timer_init(b.loop, &b.timeout);
    uv_timer_init(b.loop, &b.pacer);
    b.pacer.data = &b;
    b.timeout.data = &b;
    uv_timer_start(&b.timeout, on_timeout, (uint64_t)b.timeout_s * 1000, 0);
    if (skip_nodes || b.nodes == 0 || b.bound_only) {
        start_pods(&b);
    } else {
        for (int i = 0; i < b.in_flight && b.nodes_sent < b.nodes; i++) send_node(&b);
    }
    uv_run(b.loop, UV_RUN_DEFAULT);
    free(b.sent_ns);
    free(b.bound_ns);
    free(b.running);
    free(b.deploy_sent_ns);
    free(b.lat_ns);
    free(b.pod_lat_ns);
    if (b.seen) strmap_free(b.seen, free);
    free(b.conns);
    free(b.line);
    tmpl_free(&b.node_body);
    tmpl_free(&b.pod_body);
    return b.create_only ? (b.pods_failed ? 1 : 0) : b.bound == b.pods ? 0 : 1;
}
