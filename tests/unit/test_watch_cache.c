/* tests/unit/test_watch_cache.c - the per-resource cache behind lists and watches:
 * snapshots with their resourceVersion, sorted lists with selectors, replay
 * from a revision, selector transitions, compaction and bookmarks, and
 * settled snapshots packed with a dictionary and read back unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "api/selector.h"
#include "api/watch_cache.h"
#include "object/registry.h"

static const kind_def_t *cm_kind;

static int setup(void **state)
{
    if (registry_init() != 0) return -1;
    cm_kind = registry_find_resource("", "v1", "configmaps");
    return cm_kind ? 0 : -1;
}

static int teardown(void **state)
{
    registry_shutdown();
    return 0;
}

/* Stored form: canonical key order, no resourceVersion. */
static void put(watch_cache_t *c, const char *ns, const char *name, const char *app, int64_t rev)
{
    char key[128], val[512];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    snprintf(val, sizeof val,
             "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\"}},\"data\":{\"k\":\"v\"}}",
             name, ns, app);
    watch_cache_put(c, key, val, strlen(val), rev);
}

typedef struct seen {
    int type[32];
    char name[32][32];
    int64_t rev[32];
    int n;
} seen_t;

static void on_event(void *data, int type, cache_obj_t *o, int64_t rev)
{
    seen_t *s = data;
    if (s->n == 32) return;
    s->type[s->n] = type;
    snprintf(s->name[s->n], 32, "%s", o ? o->name : "");
    s->rev[s->n] = rev;
    s->n++;
}

static void test_snapshot_has_resource_version(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    watch_cache_progress(c, 1);
    put(c, "default", "a", "web", 7);
    cache_obj_t *o = watch_cache_get(c, "default/a");
    assert_non_null(o);
    assert_string_equal(o->ns, "default");
    assert_string_equal(o->name, "a");
    json_t *j = json_loadb(o->json, o->len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion")), "7");
    assert_string_equal(json_string_value(json_object_get(cache_obj_labels(o), "app")), "web");
    json_decref(j);
    watch_cache_free(c);
}

/* The parsed tree is shared (in-process watchers hold it): decoding gives
 * a copy that can be changed without touching it. */
static void test_decode_copies_the_shared_tree(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    watch_cache_progress(c, 1);
    put(c, "default", "a", "web", 7);
    cache_obj_t *o = watch_cache_get(c, "default/a");
    assert_non_null(o);
    json_t *shared = json_incref((json_t *)cache_obj_parsed(o));
    assert_non_null(shared);
    json_t *mine = cache_obj_decode(o);
    assert_non_null(mine);
    assert_ptr_not_equal(mine, shared);
    json_object_set_new(json_object_get(mine, "data"), "k", json_string("changed"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(shared, "data"), "k")),
                        "v");
    json_decref(mine);
    cache_obj_drop_parsed(o);
    assert_null(o->parsed);
    /* the holder's reference outlives the cache's */
    assert_string_equal(json_string_value(json_object_get(json_object_get(shared, "data"), "k")),
                        "v");
    json_decref(shared);
    watch_cache_free(c);
}

static json_t *seen_tree;

static void on_event_tree(void *data, int type, cache_obj_t *o, int64_t rev)
{
    if (o && o->parsed) seen_tree = json_incref(o->parsed);
}

/* A writer's tree serves as the parsed object while its event is
 * dispatched (resourceVersion set); the cache keeps only bytes after. */
static void test_put_parsed_hands_over_the_tree(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    watch_cache_progress(c, 1);
    int too_old = 0;
    cache_watcher_t *w = watch_cache_watch(c, NULL, NULL, NULL, 1, on_event_tree, NULL, &too_old);
    assert_non_null(w);
    assert_int_equal(watch_cache_wants_objects(c), 0);
    watch_cache_watcher_want_objects(w);
    assert_int_equal(watch_cache_wants_objects(c), 1);
    const char *val = "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":"
                      "{\"name\":\"a\",\"namespace\":\"default\"},\"data\":{\"k\":\"v\"}}";
    json_t *tree = json_loads(val, 0, NULL);
    json_t *mine = tree;
    seen_tree = NULL;
    watch_cache_put_parsed(c, "default/a", val, strlen(val), 9, tree);
    assert_ptr_equal(seen_tree, mine);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(seen_tree, "metadata"), "resourceVersion")),
        "9");
    cache_obj_t *o = watch_cache_get(c, "default/a");
    assert_non_null(o);
    assert_null(o->parsed);
    json_decref(seen_tree);
    watch_cache_unwatch(w);
    assert_int_equal(watch_cache_wants_objects(c), 0);
    watch_cache_free(c);
}

static void test_list_sorted_and_selected(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    watch_cache_progress(c, 1);
    put(c, "b", "z", "web", 2);
    put(c, "a", "y", "db", 3);
    put(c, "a", "x", "web", 4);
    cache_obj_t **items;
    size_t n = watch_cache_list(c, NULL, NULL, NULL, &items);
    assert_int_equal(n, 3);
    assert_string_equal(items[0]->key, "a/x");
    assert_string_equal(items[1]->key, "a/y");
    assert_string_equal(items[2]->key, "b/z");
    watch_cache_list_free(items, n);
    label_selector_t *ls;
    char err[128];
    assert_int_equal(label_selector_parse("app=web", &ls, err, sizeof err), 0);
    n = watch_cache_list(c, "a", ls, NULL, &items);
    assert_int_equal(n, 1);
    assert_string_equal(items[0]->key, "a/x");
    watch_cache_list_free(items, n);
    field_selector_t *fs;
    assert_int_equal(field_selector_parse("metadata.name=z", &fs, err, sizeof err), 0);
    n = watch_cache_list(c, NULL, NULL, fs, &items);
    assert_int_equal(n, 1);
    assert_string_equal(items[0]->key, "b/z");
    assert_null(items[0]->parsed); /* decoded only to match, not kept */
    watch_cache_list_free(items, n);
    label_selector_free(ls);
    field_selector_free(fs);
    watch_cache_free(c);
}

static void test_replay_and_selector_transitions(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    watch_cache_progress(c, 1);
    put(c, "ns", "a", "web", 2);
    put(c, "ns", "b", "web", 3);
    label_selector_t *ls;
    char err[128];
    assert_int_equal(label_selector_parse("app=web", &ls, err, sizeof err), 0);
    seen_t s = {0};
    int too_old;
    /* replay from revision 2: only b's creation */
    cache_watcher_t *w = watch_cache_watch(c, "ns", ls, NULL, 2, on_event, &s, &too_old);
    assert_non_null(w);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.type[0], CACHE_ADDED);
    assert_string_equal(s.name[0], "b");
    /* leaving the selection is a DELETED for this watcher, coming back an ADDED */
    put(c, "ns", "a", "db", 4);
    put(c, "ns", "a", "web", 5);
    watch_cache_delete(c, "ns/b", 6);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.type[1], CACHE_DELETED);
    assert_int_equal(s.type[2], CACHE_ADDED);
    assert_int_equal(s.type[3], CACHE_DELETED);
    assert_string_equal(s.name[3], "b");
    assert_int_equal(s.rev[3], 6);
    /* bookmarks only for those who asked */
    watch_cache_bookmark_all(c, 9);
    assert_int_equal(s.n, 4);
    watch_cache_watcher_want_bookmarks(w, 1);
    watch_cache_bookmark_all(c, 9);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.type[4], CACHE_BOOKMARK);
    assert_int_equal(s.rev[4], 9);
    watch_cache_unwatch(w);
    label_selector_free(ls);
    watch_cache_free(c);
}

static void test_initial_adds_without_revision(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    static const char stored[] =
        "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"}}";
    watch_cache_load(c, "ns/a", stored, sizeof stored - 1, 5);
    watch_cache_progress(c, 5);
    seen_t s = {0};
    int too_old;
    cache_watcher_t *w = watch_cache_watch(c, NULL, NULL, NULL, -1, on_event, &s, &too_old);
    assert_non_null(w);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.type[0], CACHE_ADDED);
    /* history before the load is not in the ring */
    seen_t s2 = {0};
    assert_null(watch_cache_watch(c, NULL, NULL, NULL, 3, on_event, &s2, &too_old));
    assert_true(too_old);
    watch_cache_unwatch(w);
    watch_cache_free(c);
}

static void test_ring_overflow_and_compaction(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 4);
    watch_cache_progress(c, 1);
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof name, "o%d", i);
        put(c, "ns", name, "web", 2 + i);
    }
    seen_t s = {0};
    int too_old;
    /* the ring holds the last 4 events (revisions 8..11) */
    assert_null(watch_cache_watch(c, NULL, NULL, NULL, 5, on_event, &s, &too_old));
    assert_true(too_old);
    cache_watcher_t *w = watch_cache_watch(c, NULL, NULL, NULL, 8, on_event, &s, &too_old);
    assert_non_null(w);
    assert_int_equal(s.n, 3);
    watch_cache_unwatch(w);
    /* after compaction at 10, a watch from 9 is too old */
    watch_cache_compact(c, 10);
    assert_null(watch_cache_watch(c, NULL, NULL, NULL, 9, on_event, &s, &too_old));
    assert_true(too_old);
    watch_cache_free(c);
}

/* Events keep their order across a compaction that leaves the ring's
 * start mid-array and the wrap-around after it; at capacity the oldest go. */
static void test_ring_keeps_order(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 40);
    watch_cache_progress(c, 1);
    char name[8];
    int64_t rev = 2;
    for (int i = 0; i < 10; i++, rev++) {
        snprintf(name, sizeof name, "a%d", i);
        put(c, "ns", name, "web", rev);
    }
    watch_cache_compact(c, 6); /* drops revisions 2..6: the ring starts mid-array */
    for (int i = 0; i < 50; i++, rev++) {
        snprintf(name, sizeof name, "b%d", i);
        put(c, "ns", name, "web", rev);
    }
    /* revisions 2..61 were written; the last 40 (22..61) are kept */
    int too_old;
    seen_t s = {0};
    assert_null(watch_cache_watch(c, NULL, NULL, NULL, 20, on_event, &s, &too_old));
    assert_true(too_old);
    cache_watcher_t *w = watch_cache_watch(c, NULL, NULL, NULL, 35, on_event, &s, &too_old);
    assert_non_null(w);
    assert_int_equal(s.n, 26);
    for (int i = 0; i < s.n; i++) {
        assert_int_equal(s.rev[i], 36 + i);
        snprintf(name, sizeof name, "b%d", (int)(36 + i - 12));
        assert_string_equal(s.name[i], name);
    }
    watch_cache_unwatch(w);
    watch_cache_free(c);
}

/* A watcher may end itself from its own callback. */
static cache_watcher_t *self;
static void end_self(void *data, int type, cache_obj_t *o, int64_t rev)
{
    (*(int *)data)++;
    watch_cache_unwatch(self);
}

static void test_unwatch_inside_callback(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    watch_cache_progress(c, 1);
    int calls = 0, too_old;
    self = watch_cache_watch(c, NULL, NULL, NULL, 1, end_self, &calls, &too_old);
    assert_non_null(self);
    put(c, "ns", "a", "web", 2);
    put(c, "ns", "b", "web", 3);
    assert_int_equal(calls, 1);
    assert_int_equal(watch_cache_watcher_count(c), 0);
    watch_cache_free(c);
}

/* Two watchers with opposite field selectors see each object's events as
 * their own selectors say, also when one version is matched for both (a
 * version's match is remembered per watcher). */
static void test_field_selectors_per_watcher(void **state)
{
    watch_cache_t *c = watch_cache_new(cm_kind, 16);
    watch_cache_progress(c, 1);
    field_selector_t *is_a, *not_a;
    char err[128];
    assert_int_equal(field_selector_parse("metadata.name=a", &is_a, err, sizeof err), 0);
    assert_int_equal(field_selector_parse("metadata.name!=a", &not_a, err, sizeof err), 0);
    seen_t sa = {0}, sn = {0};
    int too_old;
    cache_watcher_t *wa = watch_cache_watch(c, NULL, NULL, is_a, 1, on_event, &sa, &too_old);
    cache_watcher_t *wn = watch_cache_watch(c, NULL, NULL, not_a, 1, on_event, &sn, &too_old);
    assert_non_null(wa);
    assert_non_null(wn);
    put(c, "ns", "a", "web", 2);
    put(c, "ns", "b", "web", 3);
    put(c, "ns", "a", "db", 4);
    put(c, "ns", "b", "db", 5);
    watch_cache_delete(c, "ns/a", 6);
    assert_int_equal(sa.n, 3);
    assert_int_equal(sa.type[0], CACHE_ADDED);
    assert_int_equal(sa.type[1], CACHE_MODIFIED);
    assert_int_equal(sa.type[2], CACHE_DELETED);
    for (int i = 0; i < sa.n; i++) assert_string_equal(sa.name[i], "a");
    assert_int_equal(sn.n, 2);
    assert_int_equal(sn.type[0], CACHE_ADDED);
    assert_int_equal(sn.type[1], CACHE_MODIFIED);
    for (int i = 0; i < sn.n; i++) assert_string_equal(sn.name[i], "b");
    watch_cache_unwatch(wa);
    watch_cache_unwatch(wn);
    field_selector_free(is_a);
    field_selector_free(not_a);
    watch_cache_free(c);
}

/* Many alike objects of one resource: once settled they are packed with a
 * dictionary trained on them, to a small part of their size, and every
 * reader (text, labels, lists with selectors, a deletion's event) sees
 * them as they were. */
#define PACKED_N 700

static void test_packing_settled_snapshots(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    watch_cache_t *c = watch_cache_new(cm_kind, 64);
    watch_cache_enable_packing(c, &loop);
    static char *texts[PACKED_N];
    size_t text_bytes = 0;
    for (int i = 0; i < PACKED_N; i++) {
        char key[64], name[32], val[1024];
        snprintf(name, sizeof name, "cm-%04d", i);
        snprintf(key, sizeof key, "default/%s", name);
        snprintf(val, sizeof val,
                 "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
                 "\"namespace\":\"default\",\"uid\":\"6f1c2a%02d-47d8-4a3e-9c1b-%012d\","
                 "\"labels\":{\"app\":\"%s\",\"tier\":\"backend\"},\"creationTimestamp\":"
                 "\"2026-11-27T00:%02d:%02dZ\"},\"data\":{\"config.yaml\":\"listen: 0.0.0.0:8080\\n"
                 "workers: %d\\nlog_level: info\\nupstreams:\\n  - http://backend-a:9000\\n"
                 "  - http://backend-b:9000\\n\",\"owner\":\"team-platform\"}}",
                 name, i % 100, i * 7919, i % 3 ? "web" : "db", i / 60 % 60, i % 60, i % 16);
        watch_cache_put(c, key, val, strlen(val), 100 + i);
        size_t len;
        char *tmp;
        const char *t = cache_obj_text(watch_cache_get(c, key), &len, &tmp);
        assert_null(tmp); /* just written: kept as it is */
        texts[i] = strdup(t);
        text_bytes += len;
    }
    /* settled after a second, then packed on the thread pool */
    int packed = 0;
    for (int tries = 0; tries < 200 && packed < PACKED_N; tries++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(50 * 1000);
        packed = 0;
        for (int i = 0; i < PACKED_N; i++) {
            char key[64];
            snprintf(key, sizeof key, "default/cm-%04d", i);
            packed += watch_cache_get(c, key)->dict != NULL;
        }
    }
    assert_int_equal(packed, PACKED_N);
    size_t packed_bytes = 0;
    for (int i = 0; i < PACKED_N; i++) {
        char key[64];
        snprintf(key, sizeof key, "default/cm-%04d", i);
        cache_obj_t *o = watch_cache_get(c, key);
        packed_bytes += o->len;
        size_t len;
        char *tmp;
        const char *t = cache_obj_text(o, &len, &tmp);
        assert_non_null(tmp);
        assert_int_equal(len, strlen(texts[i]));
        assert_string_equal(t, texts[i]);
        free(tmp);
        assert_int_equal(o->rev, 100 + i);
    }
    /* a quarter of the size at most: about a tenth on these objects, a
     * twentieth on the pods of a Deployment */
    assert_true(packed_bytes * 4 < text_bytes);
    label_selector_t *ls = NULL;
    char err[128];
    assert_int_equal(label_selector_parse("app=db", &ls, err, sizeof err), 0);
    cache_obj_t **items;
    size_t n = watch_cache_list(c, "default", ls, NULL, &items);
    assert_int_equal(n, (PACKED_N + 2) / 3);
    json_t *first = cache_obj_decode(items[0]);
    assert_string_equal(json_string_value(json_object_get(json_object_get(first, "metadata"),
                                                          "name")),
                        "cm-0000");
    json_decref(first);
    watch_cache_list_free(items, n);
    label_selector_free(ls);
    /* a deletion's event carries the last state, with the deletion's revision */
    seen_t s = {0};
    int too_old = 0;
    cache_watcher_t *w = watch_cache_watch(c, NULL, NULL, NULL, 100 + PACKED_N, on_event, &s,
                                           &too_old);
    assert_non_null(w);
    watch_cache_delete(c, "default/cm-0005", 5000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.type[0], CACHE_DELETED);
    assert_string_equal(s.name[0], "cm-0005");
    assert_int_equal(s.rev[0], 5000);
    watch_cache_unwatch(w);
    for (int i = 0; i < PACKED_N; i++) free(texts[i]);
    watch_cache_free(c);
    uv_run(&loop, UV_RUN_DEFAULT); /* the packing timer closes */
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_has_resource_version),
        cmocka_unit_test(test_decode_copies_the_shared_tree),
        cmocka_unit_test(test_put_parsed_hands_over_the_tree),
        cmocka_unit_test(test_list_sorted_and_selected),
        cmocka_unit_test(test_replay_and_selector_transitions),
        cmocka_unit_test(test_initial_adds_without_revision),
        cmocka_unit_test(test_ring_overflow_and_compaction),
        cmocka_unit_test(test_ring_keeps_order),
        cmocka_unit_test(test_unwatch_inside_callback),
        cmocka_unit_test(test_field_selectors_per_watcher),
        cmocka_unit_test(test_packing_settled_snapshots),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
