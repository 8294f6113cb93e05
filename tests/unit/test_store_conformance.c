/* tests/unit/test_store_conformance.c - the store-conformance suite: what
 * every storage plugin must do, written against skiff_store_vtable_t only.
 *
 * The backend comes from the environment so every backend runs this file:
 *   SKIFF_STORE_PLUGIN   plugin name or path (default: the built storage-sqlite)
 *   SKIFF_STORE_LOCATION what open() gets (default: a fresh file in a temp dir
 *                        per test); with a shared location each test works
 *                        under its own key prefix.
 * On a plugin of one's own, from the build directory:
 *   make tests/unit/test_store_conformance
 *   SKIFF_STORE_PLUGIN=/path/to/my-store.so ./tests/unit/test_store_conformance
 *   SKIFF_STORE_PLUGIN=/path/to/my-store.so make check TESTS=tests/unit/test_store_conformance */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include <skiff/store.h>

#include "plugin/loader.h"

/* ---- fixture ------------------------------------------------------------ */

static uv_loop_t loop;
static uv_timer_t deadline_timer;
static int timed_out;
static loaded_plugin_t *plugin;
static const skiff_store_vtable_t *vt;
static char tmpdir[256];
static char location[512];
static char pfx[128]; /* key prefix for the running test */
static int shared_location;
static int test_seq;
static char last_close_log[512];

static void capture_log(skiff_plugin_ctx_t *ctx, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (strstr(line, "commits") != NULL) snprintf(last_close_log, sizeof last_close_log, "%s", line);
    if (level <= SKIFF_LOG_WARN) fprintf(stderr, "# %s: %s\n", ctx->name, line);
}

static int group_setup(void **state)
{
    if (uv_loop_init(&loop) != 0) return -1;
    uv_timer_init(&loop, &deadline_timer);
    char err[512];
    const char *which = getenv("SKIFF_STORE_PLUGIN");
    char path[1024];
    if (which == NULL || which[0] == '\0') {
        const char *build = getenv("SKIFF_BUILD_DIR");
        if (build) {
            snprintf(path, sizeof path, "%s/plugins/.libs/storage-sqlite.so", build);
            which = path;
        } else {
            which = "storage-sqlite";
        }
    }
    plugin = plugin_load(which, &loop, "/tmp", err, sizeof err);
    if (plugin == NULL) {
        fprintf(stderr, "# cannot load the store plugin: %s\n", err);
        return -1;
    }
    if (plugin->desc->kind != SKIFF_PLUGIN_STORAGE || plugin_start(plugin, err, sizeof err) != 0) {
        fprintf(stderr, "# %s is not a usable storage plugin: %s\n", which, err);
        return -1;
    }
    plugin->ctx.log = capture_log;
    vt = plugin->desc->vtable;
    const char *loc = getenv("SKIFF_STORE_LOCATION");
    shared_location = loc != NULL && loc[0] != '\0';
    if (shared_location) snprintf(location, sizeof location, "%s", loc);
    return 0;
}

static int group_teardown(void **state)
{
    uv_close((uv_handle_t *)&deadline_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    plugin_unload(plugin);
    plugin_loader_reset_dirs();
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int test_setup(void **state)
{
    test_seq++;
    snprintf(pfx, sizeof pfx, "/conformance/%d-%d/", (int)getpid(), test_seq);
    last_close_log[0] = '\0';
    if (shared_location) return 0;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/skiff-store-XXXXXX", base && base[0] ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) return -1;
    /* A nested path also checks that open creates missing directories. */
    snprintf(location, sizeof location, "%s/data/store.db", tmpdir);
    return 0;
}

static int test_teardown(void **state)
{
    if (!shared_location) nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- running the loop until something happened -------------------------- */

static void on_deadline(uv_timer_t *t) { timed_out = 1; }

/* Runs the loop until *flag is non-zero; fails the test after 30 s. */
static void wait_for(int *flag)
{
    timed_out = 0;
    uv_timer_start(&deadline_timer, on_deadline, 30000, 0);
    while (!*flag && !timed_out) uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&deadline_timer);
    assert_false(timed_out);
}

static void wait_until(int *counter, int target)
{
    timed_out = 0;
    uv_timer_start(&deadline_timer, on_deadline, 60000, 0);
    while (*counter < target && !timed_out) uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&deadline_timer);
    assert_false(timed_out);
}

static void key_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s%s", pfx, name);
}

/* ---- synchronous wrappers ----------------------------------------------- */

typedef struct res {
    int calls;
    int status;
    int have_kv;
    char *key;
    char *value;
    size_t value_len;
    int64_t create_rev, mod_rev, version;
} res_t;

static void res_reset(res_t *r)
{
    free(r->key);
    free(r->value);
    memset(r, 0, sizeof *r);
}

static void res_fill(res_t *r, int status, const skiff_kv_t *kv)
{
    r->calls++;
    r->status = status;
    r->have_kv = kv != NULL;
    if (kv) {
        r->key = strdup(kv->key);
        r->value = NULL;
        if (kv->value) {
            r->value = malloc(kv->value_len + 1);
            memcpy(r->value, kv->value, kv->value_len);
            r->value[kv->value_len] = '\0';
        }
        r->value_len = kv->value_len;
        r->create_rev = kv->create_revision;
        r->mod_rev = kv->mod_revision;
        r->version = kv->version;
    }
}

static void on_write(void *data, int status, const skiff_kv_t *kv) { res_fill(data, status, kv); }
static void on_get(void *data, int status, const skiff_kv_t *kv) { res_fill(data, status, kv); }

static skiff_store_t *store_open(void)
{
    skiff_store_t *s = NULL;
    int rc = vt->open(&plugin->ctx, location, &s);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static void on_closed(void *data) { (*(int *)data)++; }

static void store_close(skiff_store_t *s)
{
    int done = 0;
    vt->close(s, on_closed, &done);
    wait_for(&done);
    assert_int_equal(done, 1);
}

/* Each returns the operation's status; r keeps the kv handed to the callback. */
static int do_create(skiff_store_t *s, const char *name, const char *value, res_t *r)
{
    char key[256];
    key_of(key, sizeof key, name);
    res_reset(r);
    int rc = vt->create(s, key, value, strlen(value), on_write, r);
    if (rc != 0) return rc;
    wait_for(&r->calls);
    assert_int_equal(r->calls, 1);
    return r->status;
}

static int do_update(skiff_store_t *s, const char *name, const char *value, int64_t expect,
                     res_t *r)
{
    char key[256];
    key_of(key, sizeof key, name);
    res_reset(r);
    int rc = vt->update(s, key, value, strlen(value), expect, on_write, r);
    if (rc != 0) return rc;
    wait_for(&r->calls);
    assert_int_equal(r->calls, 1);
    return r->status;
}

static int do_delete(skiff_store_t *s, const char *name, int64_t expect, res_t *r)
{
    char key[256];
    key_of(key, sizeof key, name);
    res_reset(r);
    int rc = vt->remove(s, key, expect, on_write, r);
    if (rc != 0) return rc;
    wait_for(&r->calls);
    assert_int_equal(r->calls, 1);
    return r->status;
}

static int do_get(skiff_store_t *s, const char *name, int64_t rev, res_t *r)
{
    char key[256];
    key_of(key, sizeof key, name);
    res_reset(r);
    int rc = vt->get(s, key, rev, on_get, r);
    if (rc != 0) return rc;
    wait_for(&r->calls);
    assert_int_equal(r->calls, 1);
    return r->status;
}

typedef struct range_res {
    int calls;
    int status;
    size_t count;
    char **keys;
    char **values;
    int64_t *mods;
    int more;
    int64_t revision;
} range_res_t;

static void range_reset(range_res_t *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->keys[i]);
        free(r->values[i]);
    }
    free(r->keys);
    free(r->values);
    free(r->mods);
    memset(r, 0, sizeof *r);
}

static void on_range(void *data, int status, const skiff_kv_t *kvs, size_t count, int more,
                     int64_t revision)
{
    range_res_t *r = data;
    r->calls++;
    r->status = status;
    r->more = more;
    r->revision = revision;
    r->count = count;
    r->keys = calloc(count + 1, sizeof *r->keys);
    r->values = calloc(count + 1, sizeof *r->values);
    r->mods = calloc(count + 1, sizeof *r->mods);
    for (size_t i = 0; i < count; i++) {
        r->keys[i] = strdup(kvs[i].key);
        r->values[i] = strndup(kvs[i].value, kvs[i].value_len);
        r->mods[i] = kvs[i].mod_revision;
    }
}

static int do_range(skiff_store_t *s, const char *start, const char *end, int64_t limit,
                    int64_t rev, range_res_t *r)
{
    range_reset(r);
    int rc = vt->range(s, start, end, limit, rev, on_range, r);
    if (rc != 0) return rc;
    wait_for(&r->calls);
    assert_int_equal(r->calls, 1);
    return r->status;
}

/* ---- watch collector ---------------------------------------------------- */

typedef struct ev_copy {
    int type;
    char *key;
    char *value; /* NULL for a deletion */
    int64_t mod_rev, create_rev, version;
    char *prev_value;
    int64_t prev_mod;
} ev_copy_t;

typedef struct watch_res {
    ev_copy_t ev[256];
    int count;
    int calls;
    int final_status; /* 1 until a final status arrives */
    int finals;
    int cancel_after; /* cancel inside the callback once count reaches it */
    skiff_store_watch_t *w;
} watch_res_t;

static void on_watch(void *data, int status, const skiff_store_event_t *events, size_t count)
{
    watch_res_t *r = data;
    r->calls++;
    if (status != 0) {
        r->final_status = status;
        r->finals++;
        return;
    }
    for (size_t i = 0; i < count && r->count < 256; i++) {
        ev_copy_t *e = &r->ev[r->count++];
        e->type = events[i].type;
        e->key = strdup(events[i].kv.key);
        e->value = events[i].kv.value ? strndup(events[i].kv.value, events[i].kv.value_len) : NULL;
        e->mod_rev = events[i].kv.mod_revision;
        e->create_rev = events[i].kv.create_revision;
        e->version = events[i].kv.version;
        e->prev_value =
            events[i].prev.value ? strndup(events[i].prev.value, events[i].prev.value_len) : NULL;
        e->prev_mod = events[i].prev.mod_revision;
    }
    if (r->cancel_after && r->count >= r->cancel_after && r->w) {
        vt->watch_cancel(r->w);
        r->w = NULL;
    }
}

static void watch_reset(watch_res_t *r)
{
    for (int i = 0; i < r->count; i++) {
        free(r->ev[i].key);
        free(r->ev[i].value);
        free(r->ev[i].prev_value);
    }
    memset(r, 0, sizeof *r);
    r->final_status = 1;
}

/* ---- tests -------------------------------------------------------------- */

static void test_create_get(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0}, g = {0};
    int64_t before = vt->revision(s);
    assert_int_equal(do_create(s, "a", "hello", &r), 0);
    assert_true(r.have_kv);
    assert_string_equal(r.value, "hello");
    assert_int_equal(r.mod_rev, before + 1);
    assert_int_equal(r.create_rev, r.mod_rev);
    assert_int_equal(r.version, 1);
    assert_int_equal(vt->revision(s), r.mod_rev);

    assert_int_equal(do_get(s, "a", 0, &g), 0);
    assert_string_equal(g.value, "hello");
    assert_int_equal(g.value_len, 5);
    assert_int_equal(g.mod_rev, r.mod_rev);
    assert_int_equal(g.create_rev, r.mod_rev);
    assert_int_equal(g.version, 1);

    assert_int_equal(do_get(s, "missing", 0, &g), SKIFF_ENOENT);
    assert_false(g.have_kv);

    /* Values are bytes, not strings. */
    char key[256];
    key_of(key, sizeof key, "bin");
    res_reset(&r);
    assert_int_equal(vt->create(s, key, "x\0y", 3, on_write, &r), 0);
    wait_for(&r.calls);
    assert_int_equal(r.status, 0);
    assert_int_equal(do_get(s, "bin", 0, &g), 0);
    assert_int_equal(g.value_len, 3);
    assert_memory_equal(g.value, "x\0y", 3);

    res_reset(&r);
    res_reset(&g);
    store_close(s);
}

static void test_create_existing(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    assert_int_equal(do_create(s, "k", "one", &r), 0);
    int64_t rev = r.mod_rev;
    assert_int_equal(do_create(s, "k", "two", &r), SKIFF_EEXIST);
    assert_true(r.have_kv);
    assert_string_equal(r.value, "one");
    assert_int_equal(r.mod_rev, rev);
    assert_int_equal(vt->revision(s), rev); /* a refused write does not bump the counter */

    /* Two creates of one key in flight together: one wins, the other sees its state. */
    res_t a = {0}, b = {0};
    char key[256];
    key_of(key, sizeof key, "race");
    assert_int_equal(vt->create(s, key, "first", 5, on_write, &a), 0);
    assert_int_equal(vt->create(s, key, "second", 6, on_write, &b), 0);
    wait_for(&a.calls);
    wait_for(&b.calls);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, SKIFF_EEXIST);
    assert_true(b.have_kv);
    assert_string_equal(b.value, "first");
    assert_int_equal(b.mod_rev, a.mod_rev);
    res_reset(&a);
    res_reset(&b);
    res_reset(&r);
    store_close(s);
}

static void test_update(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    assert_int_equal(do_create(s, "u", "v1", &r), 0);
    int64_t created = r.mod_rev;
    assert_int_equal(do_update(s, "u", "v2", created, &r), 0);
    assert_string_equal(r.value, "v2");
    assert_int_equal(r.mod_rev, created + 1);
    assert_int_equal(r.create_rev, created);
    assert_int_equal(r.version, 2);

    /* Stale revision: refused with the current state. */
    assert_int_equal(do_update(s, "u", "v3", created, &r), SKIFF_ECONFLICT);
    assert_true(r.have_kv);
    assert_string_equal(r.value, "v2");
    assert_int_equal(r.mod_rev, created + 1);

    /* 0 means whatever it is now. */
    assert_int_equal(do_update(s, "u", "v4", 0, &r), 0);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.mod_rev, created + 2);

    assert_int_equal(do_update(s, "nope", "x", 0, &r), SKIFF_ENOENT);
    assert_false(r.have_kv);
    assert_int_equal(vt->revision(s), created + 2);
    res_reset(&r);
    store_close(s);
}

static void test_delete(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0}, g = {0};
    assert_int_equal(do_create(s, "d", "gone soon", &r), 0);
    int64_t created = r.mod_rev;
    assert_int_equal(do_delete(s, "d", created + 100, &r), SKIFF_ECONFLICT);
    assert_true(r.have_kv);
    assert_int_equal(r.mod_rev, created);

    assert_int_equal(do_delete(s, "d", created, &r), 0);
    assert_true(r.have_kv);
    assert_string_equal(r.value, "gone soon"); /* the deleted state */
    assert_int_equal(r.mod_rev, created + 1);  /* ... at the deletion revision */
    assert_int_equal(r.create_rev, created);
    assert_int_equal(vt->revision(s), created + 1);

    assert_int_equal(do_get(s, "d", 0, &g), SKIFF_ENOENT);
    assert_int_equal(do_delete(s, "d", 0, &r), SKIFF_ENOENT);
    assert_false(r.have_kv);

    /* A key created again starts a new life. */
    assert_int_equal(do_create(s, "d", "again", &r), 0);
    assert_int_equal(r.create_rev, created + 2);
    assert_int_equal(r.version, 1);
    assert_int_equal(do_delete(s, "d", 0, &r), 0);
    assert_int_equal(r.mod_rev, created + 3);
    res_reset(&r);
    res_reset(&g);
    store_close(s);
}

static void test_revisions(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    int64_t base = vt->revision(s);
    if (!shared_location) {
        assert_int_equal(base, 1); /* etcd: an empty store is at revision 1 */
        assert_int_equal(vt->compacted_revision(s), 0);
    }
    assert_int_equal(do_create(s, "x", "0", &r), 0);
    assert_int_equal(do_create(s, "y", "0", &r), 0);
    for (int i = 1; i <= 5; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        assert_int_equal(do_update(s, "x", v, 0, &r), 0);
        assert_int_equal(r.version, i + 1);
        assert_int_equal(r.create_rev, base + 1);
        assert_int_equal(r.mod_rev, base + 2 + i);
    }
    assert_int_equal(do_update(s, "y", "1", 0, &r), 0);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.mod_rev, base + 8);
    assert_int_equal(vt->revision(s), base + 8);
    res_reset(&r);
    store_close(s);
}

static void test_range_pages(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    range_res_t rr = {0};
    const char *names[] = {"r/e", "r/a", "r/d", "r/b", "r/c", "r/g", "r/f"};
    for (size_t i = 0; i < 7; i++) assert_int_equal(do_create(s, names[i], names[i], &r), 0);
    int64_t rev_after_seven = vt->revision(s);
    assert_int_equal(do_create(s, "rr", "outside", &r), 0);
    assert_int_equal(do_create(s, "r/h", "r/h", &r), 0);

    char start[256], end[256];
    key_of(start, sizeof start, "r/");
    assert_non_null(skiff_prefix_end(start, end, sizeof end));

    /* All at once, sorted, without the key outside the prefix. */
    assert_int_equal(do_range(s, start, end, 0, 0, &rr), 0);
    assert_int_equal(rr.count, 8);
    assert_false(rr.more);
    assert_int_equal(rr.revision, vt->revision(s));
    for (size_t i = 0; i < rr.count; i++) {
        char want[256];
        snprintf(want, sizeof want, "%sr/%c", pfx, (char)('a' + i));
        assert_string_equal(rr.keys[i], want);
        assert_string_equal(rr.values[i], want + strlen(pfx));
    }

    /* Pages of 3 at one revision. Keys are C strings, so the smallest key
     * after K is K + "\x01" (the header's K + "\0" for byte keys). */
    char cursor[300];
    snprintf(cursor, sizeof cursor, "%s", start);
    int64_t at = 0;
    size_t seen = 0, pages = 0;
    for (;;) {
        assert_int_equal(do_range(s, cursor, end, 3, at, &rr), 0);
        pages++;
        if (at == 0) at = rr.revision;
        assert_int_equal(rr.revision, at);
        for (size_t i = 0; i < rr.count; i++) {
            char want[256];
            snprintf(want, sizeof want, "%sr/%c", pfx, (char)('a' + seen + i));
            assert_string_equal(rr.keys[i], want);
        }
        seen += rr.count;
        if (!rr.more) break;
        assert_int_equal(rr.count, 3);
        snprintf(cursor, sizeof cursor, "%s\x01", rr.keys[rr.count - 1]);
        /* A write between pages does not change what the pinned revision shows. */
        if (pages == 1) assert_int_equal(do_create(s, "r/0", "late", &r), 0);
    }
    assert_int_equal(seen, 8);
    assert_int_equal(pages, 3);

    /* At an older revision: only the first seven existed. */
    assert_int_equal(do_range(s, start, end, 0, rev_after_seven, &rr), 0);
    assert_int_equal(rr.count, 7);
    assert_int_equal(rr.revision, rev_after_seven);

    /* A deleted key vanishes from the latest range but not from the old one. */
    assert_int_equal(do_delete(s, "r/a", 0, &r), 0);
    assert_int_equal(do_range(s, start, end, 0, 0, &rr), 0);
    assert_int_equal(rr.count, 8); /* r/0 .. r/h without r/a */
    assert_string_equal(rr.keys[1] + strlen(pfx), "r/b");
    assert_int_equal(do_range(s, start, end, 0, rev_after_seven, &rr), 0);
    assert_int_equal(rr.count, 7);
    assert_string_equal(rr.keys[0] + strlen(pfx), "r/a");

    /* No end: every key from start on, still sorted. */
    assert_int_equal(do_range(s, start, NULL, 0, 0, &rr), 0);
    assert_true(rr.count >= 9);
    int saw_rr = 0;
    for (size_t i = 0; i < rr.count; i++) {
        if (i) assert_true(strcmp(rr.keys[i - 1], rr.keys[i]) < 0);
        saw_rr |= strncmp(rr.keys[i], pfx, strlen(pfx)) == 0 &&
                  strcmp(rr.keys[i] + strlen(pfx), "rr") == 0;
    }
    assert_true(saw_rr);

    /* Limit exactly matching the count: no more. */
    assert_int_equal(do_range(s, start, end, 8, 0, &rr), 0);
    assert_int_equal(rr.count, 8);
    assert_false(rr.more);
    range_reset(&rr);
    res_reset(&r);
    store_close(s);
}

static void test_get_old_revision(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0}, g = {0};
    assert_int_equal(do_create(s, "h", "v1", &r), 0);
    int64_t r1 = r.mod_rev;
    assert_int_equal(do_update(s, "h", "v2", 0, &r), 0);
    int64_t r2 = r.mod_rev;
    assert_int_equal(do_delete(s, "h", 0, &r), 0);
    assert_int_equal(do_get(s, "h", r1, &g), 0);
    assert_string_equal(g.value, "v1");
    assert_int_equal(g.mod_rev, r1);
    assert_int_equal(do_get(s, "h", r2, &g), 0);
    assert_string_equal(g.value, "v2");
    assert_int_equal(g.version, 2);
    assert_int_equal(do_get(s, "h", r1 - 1, &g), SKIFF_ENOENT);
    assert_int_equal(do_get(s, "h", 0, &g), SKIFF_ENOENT);
    res_reset(&r);
    res_reset(&g);
    store_close(s);
}

static void test_watch_history_then_live(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    watch_res_t *w = calloc(1, sizeof *w);
    watch_reset(w);
    assert_int_equal(do_create(s, "w/a", "a1", &r), 0);
    int64_t first = r.mod_rev;
    assert_int_equal(do_create(s, "w/b", "b1", &r), 0);
    assert_int_equal(do_create(s, "other", "o1", &r), 0);
    assert_int_equal(do_update(s, "w/a", "a2", 0, &r), 0);

    char prefix[256];
    key_of(prefix, sizeof prefix, "w/");
    assert_int_equal(vt->watch(s, prefix, first, on_watch, w, &w->w), 0);
    wait_until(&w->count, 2); /* history: b1 and a2, not "other", not a1 */
    assert_int_equal(w->count, 2);
    assert_string_equal(w->ev[0].key + strlen(pfx), "w/b");
    assert_int_equal(w->ev[0].type, SKIFF_EVENT_PUT);
    assert_int_equal(w->ev[0].mod_rev, first + 1);
    assert_null(w->ev[0].prev_value);
    assert_string_equal(w->ev[1].value, "a2");
    assert_int_equal(w->ev[1].mod_rev, first + 3);
    assert_string_equal(w->ev[1].prev_value, "a1");
    assert_int_equal(w->ev[1].prev_mod, first);

    /* Live: an update and a delete, each once, in order. */
    assert_int_equal(do_update(s, "w/b", "b2", 0, &r), 0);
    assert_int_equal(do_create(s, "other2", "o", &r), 0);
    assert_int_equal(do_delete(s, "w/a", 0, &r), 0);
    int64_t del_rev = r.mod_rev;
    wait_until(&w->count, 4);
    assert_int_equal(w->count, 4);
    assert_string_equal(w->ev[2].value, "b2");
    assert_string_equal(w->ev[2].prev_value, "b1");
    assert_int_equal(w->ev[3].type, SKIFF_EVENT_DELETE);
    assert_null(w->ev[3].value);
    assert_int_equal(w->ev[3].mod_rev, del_rev);
    assert_string_equal(w->ev[3].prev_value, "a2");
    for (int i = 1; i < w->count; i++) assert_true(w->ev[i].mod_rev > w->ev[i - 1].mod_rev);
    vt->watch_cancel(w->w);

    /* after_revision 0: only what happens from now on. */
    watch_res_t *now = calloc(1, sizeof *now);
    watch_reset(now);
    assert_int_equal(vt->watch(s, prefix, 0, on_watch, now, &now->w), 0);
    assert_int_equal(do_create(s, "w/c", "c1", &r), 0);
    wait_until(&now->count, 1);
    assert_int_equal(now->count, 1);
    assert_string_equal(now->ev[0].value, "c1");
    vt->watch_cancel(now->w);

    assert_int_equal(w->finals, 0);
    watch_reset(w);
    watch_reset(now);
    free(w);
    free(now);
    res_reset(&r);
    store_close(s);
}

static void test_watch_cancel_in_callback(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    watch_res_t *w = calloc(1, sizeof *w), *all = calloc(1, sizeof *all);
    watch_reset(w);
    watch_reset(all);
    w->cancel_after = 1;
    assert_int_equal(vt->watch(s, pfx, 0, on_watch, w, &w->w), 0);
    assert_int_equal(vt->watch(s, pfx, 0, on_watch, all, &all->w), 0);
    assert_int_equal(do_create(s, "c1", "1", &r), 0);
    assert_int_equal(do_create(s, "c2", "2", &r), 0);
    wait_until(&all->count, 2);
    assert_int_equal(w->count, 1);
    assert_int_equal(w->calls, 1);
    vt->watch_cancel(all->w);
    /* Closing ends no cancelled watch. */
    store_close(s);
    assert_int_equal(w->finals, 0);
    assert_int_equal(all->finals, 0);
    watch_reset(w);
    watch_reset(all);
    free(w);
    free(all);
    res_reset(&r);
}

static int expect_compacted_get(skiff_store_t *s, const char *name, int64_t rev)
{
    res_t g = {0};
    int rc = do_get(s, name, rev, &g);
    res_reset(&g);
    return rc;
}

static void on_compact(void *data, int status)
{
    int *c = data;
    c[0]++;
    c[1] = status;
}

static void test_compaction(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    range_res_t rr = {0};
    assert_int_equal(do_create(s, "c/k", "v1", &r), 0);
    int64_t r1 = r.mod_rev;
    assert_int_equal(do_create(s, "c/gone", "g", &r), 0);
    assert_int_equal(do_update(s, "c/k", "v2", 0, &r), 0);
    int64_t r2 = r.mod_rev;
    assert_int_equal(do_delete(s, "c/gone", 0, &r), 0);
    assert_int_equal(do_update(s, "c/k", "v3", 0, &r), 0);
    int64_t r3 = r.mod_rev;

    int cres[2] = {0, 1}; /* calls, status */
    assert_int_equal(vt->compact(s, r2, on_compact, cres), 0);
    wait_for(&cres[0]);
    assert_int_equal(cres[0], 1);
    assert_int_equal(cres[1], 0);
    assert_int_equal(vt->compacted_revision(s), r2);

    assert_int_equal(expect_compacted_get(s, "c/k", r1), SKIFF_ECOMPACTED);
    res_t g = {0};
    assert_int_equal(do_get(s, "c/k", r2, &g), 0);
    assert_string_equal(g.value, "v2");
    assert_int_equal(do_get(s, "c/k", 0, &g), 0);
    assert_string_equal(g.value, "v3");
    assert_int_equal(g.version, 3);
    res_reset(&g);

    char start[256], end[256];
    key_of(start, sizeof start, "c/");
    skiff_prefix_end(start, end, sizeof end);
    assert_int_equal(do_range(s, start, end, 0, r1, &rr), SKIFF_ECOMPACTED);
    assert_int_equal(do_range(s, start, end, 0, r2, &rr), 0);
    assert_int_equal(rr.count, 2); /* c/gone still existed at r2 */

    /* A watch from before the compaction fails, at once or as its final event. */
    watch_res_t *w = calloc(1, sizeof *w);
    watch_reset(w);
    skiff_store_watch_t *h = NULL;
    int rc = vt->watch(s, start, r1, on_watch, w, &h);
    if (rc == 0) {
        wait_for(&w->finals);
        assert_int_equal(w->final_status, SKIFF_ECOMPACTED);
        assert_int_equal(w->count, 0);
    } else {
        assert_int_equal(rc, SKIFF_ECOMPACTED);
    }
    /* From the compacted revision on, history is complete. */
    watch_reset(w);
    assert_int_equal(vt->watch(s, start, r2, on_watch, w, &w->w), 0);
    wait_until(&w->count, 2);
    assert_int_equal(w->ev[0].type, SKIFF_EVENT_DELETE);
    assert_int_equal(w->ev[1].mod_rev, r3);
    assert_string_equal(w->ev[1].prev_value, "v2");
    vt->watch_cancel(w->w);
    watch_reset(w);
    free(w);

    /* Survives reopening. */
    store_close(s);
    s = store_open();
    assert_int_equal(vt->compacted_revision(s), r2);
    assert_int_equal(vt->revision(s), r3);
    assert_int_equal(expect_compacted_get(s, "c/k", r1), SKIFF_ECOMPACTED);
    assert_int_equal(do_range(s, start, end, 0, r2, &rr), 0);
    assert_int_equal(rr.count, 2);
    range_reset(&rr);
    res_reset(&r);
    store_close(s);
}

#define MANY 5000

typedef struct many {
    int done;
    int failed;
    int64_t revs[MANY];
} many_t;

static void on_many(void *data, int status, const skiff_kv_t *kv)
{
    many_t *m = data;
    if (status != 0 || kv == NULL)
        m->failed++;
    else
        m->revs[m->done] = kv->mod_revision;
    m->done++;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_many_concurrent_writes(void **state)
{
    skiff_store_t *s = store_open();
    many_t *m = calloc(1, sizeof *m);
    int64_t base = vt->revision(s);
    for (int i = 0; i < MANY; i++) {
        char key[256], value[64];
        snprintf(key, sizeof key, "%sm/%05d", pfx, i);
        snprintf(value, sizeof value, "value %d", i);
        assert_int_equal(vt->create(s, key, value, strlen(value), on_many, m), 0);
    }
    wait_until(&m->done, MANY);
    assert_int_equal(m->done, MANY);
    assert_int_equal(m->failed, 0);
    qsort(m->revs, MANY, sizeof m->revs[0], cmp_i64);
    for (int i = 0; i < MANY; i++) assert_int_equal(m->revs[i], base + 1 + i);
    assert_int_equal(vt->revision(s), base + MANY);
    store_close(s);
    free(m);
    /* The sqlite backend reports its commit count when it closes. */
    unsigned long long writes = 0, commits = 0;
    const char *p = strstr(last_close_log, "closed: ");
    if (p != NULL && sscanf(p, "closed: %llu writes in %llu commits", &writes, &commits) == 2) {
        assert_int_equal(writes, MANY);
        assert_true(commits < writes / 4);
        fprintf(stderr, "# %llu writes in %llu commits\n", writes, commits);
    }
}

static void test_persistence(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0}, g = {0};
    assert_int_equal(do_create(s, "p/1", "one", &r), 0);
    assert_int_equal(do_create(s, "p/2", "two", &r), 0);
    assert_int_equal(do_update(s, "p/1", "uno", 0, &r), 0);
    int64_t upd = r.mod_rev;
    assert_int_equal(do_delete(s, "p/2", 0, &r), 0);
    int64_t last = vt->revision(s);
    store_close(s);

    s = store_open();
    assert_int_equal(vt->revision(s), last);
    assert_int_equal(do_get(s, "p/1", 0, &g), 0);
    assert_string_equal(g.value, "uno");
    assert_int_equal(g.mod_rev, upd);
    assert_int_equal(g.version, 2);
    assert_int_equal(do_get(s, "p/2", 0, &g), SKIFF_ENOENT);
    assert_int_equal(do_create(s, "p/1", "x", &r), SKIFF_EEXIST);
    assert_int_equal(do_update(s, "p/1", "dos", upd, &r), 0);
    assert_int_equal(r.mod_rev, last + 1);
    assert_int_equal(do_create(s, "p/2", "again", &r), 0);
    assert_int_equal(r.version, 1);
    res_reset(&r);
    res_reset(&g);
    store_close(s);
}

static void on_end_watch(void *data, int status, const skiff_store_event_t *ev, size_t n)
{
    on_watch(data, status, ev, n);
}

static void test_close_flushes_and_ends_watches(void **state)
{
    skiff_store_t *s = store_open();
    watch_res_t *w = calloc(1, sizeof *w);
    watch_reset(w);
    assert_int_equal(vt->watch(s, pfx, 0, on_end_watch, w, &w->w), 0);
    res_t rs[10] = {0};
    for (int i = 0; i < 10; i++) {
        char key[256];
        snprintf(key, sizeof key, "%sf/%d", pfx, i);
        assert_int_equal(vt->create(s, key, "v", 1, on_write, &rs[i]), 0);
    }
    int done = 0;
    vt->close(s, on_closed, &done);
    wait_for(&done);
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_true(rs[i].status == 0 || rs[i].status == SKIFF_ECLOSED);
        ok += rs[i].status == 0;
        res_reset(&rs[i]);
    }
    assert_int_equal(w->finals, 1);
    assert_int_equal(w->final_status, SKIFF_ECLOSED);
    watch_reset(w);
    free(w);

    /* What was acknowledged is there after reopening. */
    s = store_open();
    range_res_t rr = {0};
    char start[256], end[256];
    key_of(start, sizeof start, "f/");
    skiff_prefix_end(start, end, sizeof end);
    assert_int_equal(do_range(s, start, end, 0, 0, &rr), 0);
    assert_int_equal((int)rr.count, ok);
    range_reset(&rr);
    store_close(s);
}

/* ---- kill -9 ------------------------------------------------------------- */

typedef struct child_state {
    skiff_store_t *s;
    int fd;
    int next;
} child_state_t;

static void child_submit(child_state_t *c);

static void child_acked(void *data, int status, const skiff_kv_t *kv)
{
    child_state_t *c = data;
    if (status != 0 || kv == NULL) _exit(4);
    char line[300];
    int n = snprintf(line, sizeof line, "%s\n", kv->key);
    if (write(c->fd, line, (size_t)n) != n) _exit(5);
    child_submit(c);
}

static void child_submit(child_state_t *c)
{
    char key[256];
    snprintf(key, sizeof key, "%sk/%07d", pfx, c->next++);
    if (vt->create(c->s, key, key, strlen(key), child_acked, c) != 0) _exit(6);
}

static void child_run(int fd)
{
    alarm(60); /* a stuck child ends (and fails the test) instead of hanging it */
    uv_loop_t l;
    if (uv_loop_init(&l) != 0) _exit(2);
    skiff_plugin_ctx_t ctx = plugin->ctx;
    ctx.loop = &l;
    child_state_t c = {.fd = fd};
    if (vt->open(&ctx, location, &c.s) != 0) _exit(3);
    for (int i = 0; i < 64; i++) child_submit(&c);
    uv_run(&l, UV_RUN_DEFAULT);
    _exit(7);
}

static void test_kill9_durability(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_run(fds[1]);
        _exit(8);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    char **acked = malloc(cap * sizeof *acked);
    char line[300];
    int killed = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (n == cap) acked = realloc(acked, (cap *= 2) * sizeof *acked);
        acked[n++] = strdup(line);
        if (n == 3000 && !killed) {
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    fclose(f);
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFSIGNALED(wstatus));
    assert_int_equal(WTERMSIG(wstatus), SIGKILL);
    assert_true(n >= 3000);

    skiff_store_t *s = store_open();
    for (size_t i = 0; i < n; i++) {
        res_t g = {0};
        int rc = vt->get(s, acked[i], 0, on_get, &g);
        assert_int_equal(rc, 0);
        wait_for(&g.calls);
        if (g.status != 0) fprintf(stderr, "# acknowledged key lost: %s\n", acked[i]);
        assert_int_equal(g.status, 0);
        assert_string_equal(g.value, acked[i]);
        res_reset(&g);
        free(acked[i]);
    }
    free(acked);
    fprintf(stderr, "# %zu acknowledged writes survived kill -9\n", n);
    store_close(s);
}

static void test_refused_calls(void **state)
{
    skiff_store_t *s = store_open();
    res_t r = {0};
    assert_int_equal(vt->create(s, "", "v", 1, on_write, &r), SKIFF_EINVAL);
    assert_int_equal(vt->create(s, NULL, "v", 1, on_write, &r), SKIFF_EINVAL);
    assert_int_equal(r.calls, 0);
    store_close(s);
}

/* storage-sqlite only: a commit that fails (the file may not grow past
 * max-size) fails every write of its batch with EIO and leaves the store as
 * if they had never been submitted. */
static void test_failed_commit_rolls_back(void **state)
{
    if (shared_location || strcmp(plugin->name, "storage-sqlite") != 0) skip();
    char err[256];
    assert_int_equal(plugin_set_setting(plugin, "max-size", "64", err, sizeof err), 0);
    skiff_store_t *s = store_open();
    assert_int_equal(plugin_set_setting(plugin, "max-size", "0", err, sizeof err), 0);
    res_t r = {0}, g = {0};
    assert_int_equal(do_create(s, "keep", "v1", &r), 0);
    int64_t base = r.mod_rev;

    size_t big_len = 256 * 1024;
    char *big = malloc(big_len);
    memset(big, 'b', big_len);
    res_t rs[3] = {{0}};
    char k0[256], k1[256], k2[256];
    key_of(k0, sizeof k0, "keep");
    key_of(k1, sizeof k1, "big");
    key_of(k2, sizeof k2, "after");
    assert_int_equal(vt->update(s, k0, "v2", 2, base, on_write, &rs[0]), 0);
    assert_int_equal(vt->create(s, k1, big, big_len, on_write, &rs[1]), 0);
    assert_int_equal(vt->remove(s, k0, 0, on_write, &rs[2]), 0);
    free(big);
    wait_until(&rs[2].calls, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].status, SKIFF_EIO);
        res_reset(&rs[i]);
    }
    assert_int_equal(vt->revision(s), base);
    assert_int_equal(do_get(s, "keep", 0, &g), 0);
    assert_string_equal(g.value, "v1");
    assert_int_equal(do_get(s, "big", 0, &g), SKIFF_ENOENT);

    /* The index and the counter were rolled back: the same writes, small enough, succeed. */
    assert_int_equal(do_update(s, "keep", "v2", base, &r), 0);
    assert_int_equal(r.mod_rev, base + 1);
    assert_int_equal(r.version, 2);
    assert_int_equal(do_create(s, "big", "small now", &r), 0);
    assert_int_equal(r.mod_rev, base + 2);
    assert_int_equal(do_delete(s, "keep", 0, &r), 0);
    assert_int_equal(r.mod_rev, base + 3);
    res_reset(&r);
    res_reset(&g);
    store_close(s);
}

typedef struct counter_watch {
    int count;
    int bad_order;
    int finals;
    int64_t last_rev;
} counter_watch_t;

static void on_count(void *data, int status, const skiff_store_event_t *events, size_t n)
{
    counter_watch_t *c = data;
    if (status != 0) {
        c->finals++;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (c->last_rev && events[i].kv.mod_revision != c->last_rev + 1) c->bad_order++;
        c->last_rev = events[i].kv.mod_revision;
        c->count++;
    }
}

static void on_ignore(void *data, int status, const skiff_kv_t *kv) { (*(int *)data)++; }

/* A watch far behind replays a long history (however the backend chunks it)
 * with no gap or repeat, then goes on live. */
static void test_watch_long_history(void **state)
{
    skiff_store_t *s = store_open();
    enum { N = 1500 };
    int acked = 0;
    int64_t base = vt->revision(s);
    for (int i = 0; i < N; i++) {
        char key[256];
        snprintf(key, sizeof key, "%slh/%05d", pfx, i);
        assert_int_equal(vt->create(s, key, "v", 1, on_ignore, &acked), 0);
    }
    wait_until(&acked, N);
    counter_watch_t c = {0};
    skiff_store_watch_t *w = NULL;
    assert_int_equal(vt->watch(s, pfx, base, on_count, &c, &w), 0);
    /* More writes while the history is being replayed. */
    for (int i = 0; i < 100; i++) {
        char key[256];
        snprintf(key, sizeof key, "%slh/late-%03d", pfx, i);
        assert_int_equal(vt->create(s, key, "v", 1, on_ignore, &acked), 0);
    }
    wait_until(&c.count, N + 100);
    assert_int_equal(c.count, N + 100);
    assert_int_equal(c.bad_order, 0);
    assert_int_equal(c.last_rev, base + N + 100);
    vt->watch_cancel(w);
    wait_until(&acked, N + 100);
    store_close(s);
    assert_int_equal(c.finals, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_get, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_create_existing, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_update, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_delete, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_revisions, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_range_pages, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_get_old_revision, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_watch_history_then_live, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_watch_cancel_in_callback, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_watch_long_history, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_compaction, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent_writes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_persistence, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes_and_ends_watches, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_durability, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_refused_calls, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_rolls_back, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("store conformance", tests, group_setup, group_teardown);
}
