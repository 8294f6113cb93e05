/* tests/bench/lua_bench.c - reconcile throughput of the Website controller
 * in Lua (plugins/examples/website/website.lua) against its C twin
 * (plugins/examples/website-c), on one in-process API server (SQLite
 * store in a temporary directory) with N Websites (default 10,000).
 *
 * For each implementation: a fresh server, the Website CRD, N Websites;
 * then the plugin starts and two figures are taken:
 *   converge: from start until no reconcile has finished for 1 s: the
 *             plugin creates 3 objects per Website and writes its status
 *             (dominated by the API server's writes);
 *   in sync:  the plugin is stopped and started again, so every Website is
 *             reconciled once more with nothing to write (what the
 *             language costs: cache reads, building the desired objects,
 *             comparing); median of --runs runs.
 * Both run with --workers reconciles in flight (default 32). The store
 * lives in $TMPDIR, /dev/shm when unset, so fsync does not set the pace. Prints
 * Websites reconciled per second. Not a test: it prints figures. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <skiff/controller.h>
#include <uv.h>

#include "api/client_inproc.h"
#include "lua/lua_host.h"
#include "object/registry.h"
#include "plugin/loader.h"
#include "util/log.h"
#include "util/yaml_json.h"

#include "../unit/api_fixture.h"

static uv_loop_t loop;
static int inflight, failures;
static const char *workers = "32";

static void on_tick(uv_timer_t *t) { *(int *)t->data = 1; }
static void tick_closed(uv_handle_t *h) { (void)h; }

/* Runs the loop for ms, sleeping only when it has nothing to do. */
static void run_ms(int ms)
{
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_tick, (uint64_t)ms, 0);
    while (!fired) uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, tick_closed);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void on_created(void *data, int status, json_t *obj)
{
    (void)data, (void)obj;
    inflight--;
    if (status != 201) failures++;
}

static json_t *load_yaml(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    char err[256];
    json_t *j = yaml_json_load(buf, len, YAML_JSON_TYPED_SCALARS, err, sizeof err);
    if (!j) fprintf(stderr, "%s: %s\n", path, err);
    free(buf);
    return j;
}

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

/* CPU time of the process: on a machine shared with other work, what a
 * reconcile costs shows better in CPU seconds than on the wall clock. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct plugin_run {
    loaded_plugin_t *p;
    int is_lua;
    uint64_t *c_counter;
} plugin_run_t;

static uint64_t reconciles(plugin_run_t *pr)
{
    return pr->is_lua ? lua_plugin_reconciles(pr->p->handle) : *pr->c_counter;
}

/* Runs until the counter has not moved for quiet_ms (or reached target,
 * when given); the time of the last change. */
static double wait_quiet(plugin_run_t *pr, uint64_t target, int quiet_ms, double t0)
{
    uint64_t start = reconciles(pr), last = start;
    double last_t = now_s();
    for (;;) {
        run_ms(20);
        uint64_t c = reconciles(pr);
        if (c != last) {
            last = c;
            last_t = now_s();
            if (getenv("LUA_BENCH_TRACE"))
                fprintf(stderr, "  %.3f s: %llu reconciles\n", last_t - t0, (unsigned long long)c);
        }
        if (target && c >= target) return now_s() - t0;
        /* quiet counts only once reconciles began (the caches load first) */
        if (c != start && (now_s() - last_t) * 1000 > quiet_ms) return last_t - t0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench(const char *plugin, int count, int runs, const char *crd_path)
{
    api_fixture_t fx;
    api_server_opts_t ao = {0};
    if (api_fixture_start(&fx, &loop, ao, 0) != 0) return -1;
    skiff_client_t *client = client_inproc_new(&loop, fx.api);
    skiff_informer_factory_t *inf = NULL;
    skiff_informer_factory_new(&loop, client, &inf);
    int rc = -1;
    loaded_plugin_t *p = NULL;

    json_t *crd = load_yaml(crd_path);
    static const skiff_resource_t res_crds = {"apiextensions.k8s.io", "v1",
                                              "customresourcedefinitions", NULL};
    static const skiff_resource_t res_websites = {"example.skiff.io", "v1", "websites", NULL};
    inflight = 1;
    failures = 0;
    if (!crd || skiff_client_create(client, &res_crds, NULL, crd, NULL, on_created, NULL) != 0) {
        fprintf(stderr, "cannot create the Website CRD (are CRDs served?)\n");
        json_decref(crd);
        goto out;
    }
    json_decref(crd);
    while (inflight) run_ms(5);
    for (int i = 0; i < 200 && !registry_find_name("websites.example.skiff.io"); i++) run_ms(10);
    if (failures || !registry_find_name("websites.example.skiff.io")) {
        fprintf(stderr, "the Website CRD was not served\n");
        goto out;
    }
    double t0 = now_s();
    for (int i = 0; i < count; i++) {
        json_t *w = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i}}", "apiVersion",
                              "example.skiff.io/v1", "kind", "Website", "metadata", "name", "",
                              "namespace", "default", "spec", "content", "<h1>hi</h1>", "replicas", 1);
        char name[32];
        snprintf(name, sizeof name, "site-%05d", i);
        json_object_set_new(json_object_get(w, "metadata"), "name", json_string(name));
        inflight++;
        skiff_client_create(client, &res_websites, "default", w, NULL, on_created, NULL);
        json_decref(w);
        while (inflight > 64) run_ms(1);
    }
    while (inflight) run_ms(1);
    if (failures) {
        fprintf(stderr, "%d Websites were not created\n", failures);
        goto out;
    }
    fprintf(stderr, "  %d Websites created in %.1f s\n", count, now_s() - t0);

    char err[1024];
    p = plugin_load(plugin, &loop, fx.dir, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    p->ctx.client = client;
    p->ctx.informers = inf;
    p->ctx.component = "bench";
    if (plugin_set_setting(p, "workers", workers, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    plugin_run_t pr = {.p = p, .is_lua = lua_host_is_script(plugin)};
    if (!pr.is_lua) pr.c_counter = dlsym(p->handle, "website_c_reconciles");
    if (!pr.is_lua && !pr.c_counter) {
        fprintf(stderr, "%s exports no website_c_reconciles\n", plugin);
        goto out;
    }
    t0 = now_s();
    double c0 = cpu_s();
    if (plugin_start(p, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    double converge = wait_quiet(&pr, 0, 1000, t0);
    /* less the quiet second's polling, which costs next to nothing */
    double converge_cpu = cpu_s() - c0;
    uint64_t total = reconciles(&pr);
    printf("%-10s converge: %d Websites (3 objects and a status each) in %.2f s: %.0f Websites/s, "
           "%.0f per CPU second, API server included (%llu reconciles)\n",
           pr.is_lua ? "lua" : "c", count, converge, count / converge, count / converge_cpu,
           (unsigned long long)total);
    double *rates = calloc((size_t)runs, sizeof *rates);
    double *cpu_rates = calloc((size_t)runs, sizeof *cpu_rates);
    for (int r = 0; r < runs; r++) {
        plugin_stop(p);
        run_ms(50);
        uint64_t before = reconciles(&pr);
        t0 = now_s();
        double c0 = cpu_s();
        if (plugin_start(p, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            free(rates);
            free(cpu_rates);
            goto out;
        }
        double took = wait_quiet(&pr, before + (uint64_t)count, 2000, t0);
        double cpu = cpu_s() - c0;
        uint64_t done = reconciles(&pr) - before;
        rates[r] = (double)done / took;
        cpu_rates[r] = (double)done / cpu;
        fprintf(stderr, "  in-sync run %d: %llu reconciles in %.3f s (%.3f s of CPU)\n", r + 1,
                (unsigned long long)done, took, cpu);
    }
    qsort(rates, (size_t)runs, sizeof *rates, cmp_double);
    qsort(cpu_rates, (size_t)runs, sizeof *cpu_rates, cmp_double);
    printf("%-10s in sync: %.0f Websites/s, %.0f per CPU second (medians of %d runs of %d)\n",
           pr.is_lua ? "lua" : "c", rates[runs / 2], cpu_rates[runs / 2], runs, count);
    free(rates);
    free(cpu_rates);
    rc = 0;
out:
    if (p) plugin_stop(p);
    run_ms(50);
    skiff_informer_factory_free(inf);
    run_ms(50);
    if (p) plugin_unload(p);
    client->vt->free(client);
    run_ms(20);
    api_fixture_stop(&fx);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 10000, runs = 5;
    const char *only = NULL;
    static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:r:o:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': count = atoi(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 'o': only = optarg; break;
        case 'w': workers = optarg; break;
        default:
            printf("usage: lua_bench [--count N] [--runs R] [--workers W] [--only lua|c]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (count < 1 || runs < 1) return 2;
    const char *src = getenv("SKIFF_SRC_DIR") ? getenv("SKIFF_SRC_DIR") : SKIFF_SRC;
    const char *build = getenv("SKIFF_BUILD_DIR") ? getenv("SKIFF_BUILD_DIR") : SKIFF_BUILD;
    char lua[1024], cso[1024], crd[1024];
    snprintf(lua, sizeof lua, "%s/plugins/examples/website/website.lua", src);
    snprintf(cso, sizeof cso, "%s/plugins/.libs/controller-website-c.so", build);
    snprintf(crd, sizeof crd, "%s/plugins/examples/website/website-crd.yaml", src);
    /* the store on tmpfs unless told otherwise: the figures are about the
     * controllers, not about how fast this disk syncs */
    if (!getenv("TMPDIR") && access("/dev/shm", W_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
    log_set_level(getenv("LUA_BENCH_LOG") ? atoi(getenv("LUA_BENCH_LOG")) : LOG_ERROR);
    printf("Website controller, %d Websites, %s workers, one in-process API server (SQLite)\n",
           count, workers);
    fflush(stdout);
    /* each implementation in a process of its own: a fresh registry and
     * heap, and neither pays for what the other left behind */
    int rc = 0;
    const char *impls[2][2] = {{"c", cso}, {"lua", lua}};
    for (int i = 0; i < 2; i++) {
        if (only && strcmp(only, impls[i][0]) != 0) continue;
        pid_t pid = fork();
        if (pid == 0) {
            int r = bench(impls[i][1], count, runs, crd);
            fflush(stdout);
            _exit(r ? 1 : 0);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
    }
    return rc;
}
