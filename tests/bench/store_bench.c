/* tests/bench/store_bench.c - durable creates per second through a storage
 * plugin, with a fixed number of writes in flight, and their p50/p99
 * latency (submission to acknowledgement). Prints figures; asserts nothing.
 *
 *   store_bench [-n COUNT] [-c IN_FLIGHT] [-p PLUGIN] [-l LOCATION] [-s VALUE_BYTES]
 *
 * Defaults: 20000 creates, 64 in flight, the built storage-sqlite, a fresh
 * file under $TMPDIR. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include <skiff/store.h>

#include "plugin/loader.h"

typedef struct bench {
    const skiff_store_vtable_t *vt;
    skiff_store_t *s;
    int total;
    int submitted;
    int done;
    int failed;
    uint64_t *lat; /* ns per write */
    uint64_t *start;
    char *value;
    size_t value_len;
} bench_t;

typedef struct slot {
    bench_t *b;
    int index;
} slot_t;

static void submit(bench_t *b, slot_t *slot);

static void on_ack(void *data, int status, const skiff_kv_t *kv)
{
    slot_t *slot = data;
    bench_t *b = slot->b;
    b->lat[slot->index] = uv_hrtime() - b->start[slot->index];
    if (status != 0) b->failed++;
    b->done++;
    if (b->submitted < b->total) submit(b, slot);
}

static void submit(bench_t *b, slot_t *slot)
{
    char key[64];
    slot->index = b->submitted++;
    snprintf(key, sizeof key, "/registry/configmaps/bench/cm-%07d", slot->index);
    b->start[slot->index] = uv_hrtime();
    if (b->vt->create(b->s, key, b->value, b->value_len, on_ack, slot) != 0) {
        b->failed++;
        b->done++;
    }
}

static int range_count;
static size_t range_keys;

static void on_range(void *data, int status, const skiff_kv_t *kvs, size_t count, int more,
                     int64_t revision)
{
    range_count++;
    range_keys = status == 0 ? count : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_closed(void *data) { *(int *)data = 1; }

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    int count = 20000, inflight = 64;
    size_t value_bytes = 300;
    const char *which = NULL, *loc = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:c:p:l:s:h")) != -1) {
        switch (opt) {
        case 'n': count = atoi(optarg); break;
        case 'c': inflight = atoi(optarg); break;
        case 'p': which = optarg; break;
        case 'l': loc = optarg; break;
        case 's': value_bytes = (size_t)atol(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-n COUNT] [-c IN_FLIGHT] [-p PLUGIN] [-l LOCATION]"
                            " [-s VALUE_BYTES]\n", argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (count <= 0 || inflight <= 0) return 2;
    char path[1024], tmpdir[512] = "", location[600];
    if (which == NULL) {
        const char *build = getenv("SKIFF_BUILD_DIR");
        if (build) {
            snprintf(path, sizeof path, "%s/plugins/.libs/storage-sqlite.so", build);
            which = path;
        } else {
            which = "storage-sqlite";
        }
    }
    if (loc == NULL) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/skiff-bench-XXXXXX", t && t[0] ? t : "/tmp");
        if (mkdtemp(tmpdir) == NULL) return 1;
        snprintf(location, sizeof location, "%s/store.db", tmpdir);
        loc = location;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[512];
    loaded_plugin_t *p = plugin_load(which, &loop, tmpdir, err, sizeof err);
    if (p == NULL || plugin_start(p, err, sizeof err) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        if (p) plugin_unload(p);
        return 1;
    }
    bench_t b = {.vt = p->desc->vtable, .total = count};
    long rss_before = rss_kib();
    if (b.vt->open(&p->ctx, loc, &b.s) != 0) {
        fprintf(stderr, "store_bench: cannot open %s\n", loc);
        plugin_unload(p);
        return 1;
    }
    b.lat = calloc((size_t)count, sizeof *b.lat);
    b.start = calloc((size_t)count, sizeof *b.start);
    b.value_len = value_bytes;
    b.value = malloc(value_bytes + 1);
    memset(b.value, 'x', value_bytes);
    slot_t *slots = calloc((size_t)inflight, sizeof *slots);

    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < inflight && b.submitted < count; i++) {
        slots[i].b = &b;
        submit(&b, &slots[i]);
    }
    while (b.done < count) uv_run(&loop, UV_RUN_ONCE);
    uint64_t elapsed = uv_hrtime() - t0;
    long rss_after = rss_kib();

    qsort(b.lat, (size_t)count, sizeof *b.lat, cmp_u64);
    double secs = (double)elapsed / 1e9;
    printf("backend          %s\n", p->name);
    printf("creates          %d (%d failed), %d in flight, %zu-byte values\n", count, b.failed,
           inflight, value_bytes);
    printf("durable creates/s %.0f\n", count / secs);
    printf("latency p50      %.2f ms\n", b.lat[count / 2] / 1e6);
    printf("latency p99      %.2f ms\n", b.lat[(size_t)((count - 1) * 0.99)] / 1e6);
    printf("latency max      %.2f ms\n", b.lat[count - 1] / 1e6);
    printf("rss              %ld KiB before open, %ld KiB after\n", rss_before, rss_after);

    /* One list of everything, as a LIST of all ConfigMaps does. */
    range_count = 0;
    uint64_t r0 = uv_hrtime();
    if (b.vt->range(b.s, "/registry/configmaps/bench/", "/registry/configmaps/bench0", 0, 0,
                    on_range, NULL) == 0)
        while (range_count == 0) uv_run(&loop, UV_RUN_ONCE);
    printf("range all        %zu keys in %.2f ms\n", range_keys, (uv_hrtime() - r0) / 1e6);

    int closed = 0;
    b.vt->close(b.s, on_closed, &closed);
    while (!closed) uv_run(&loop, UV_RUN_ONCE);
    plugin_unload(p);
    uv_loop_close(&loop);
    free(b.lat);
    free(b.start);
    free(b.value);
    free(slots);
    if (tmpdir[0]) nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return b.failed ? 1 : 0;
}
