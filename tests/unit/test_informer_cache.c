/* tests/unit/test_informer_cache.c - an informer's local store: objects by
 * key, the namespace, label and owner indexes following updates and
 * removals, lists in the order objects were first cached, and a large
 * cache staying whole while most of it is removed again; each as trees and
 * packed (objects kept as text), and what packing must give back whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controller/informer_cache.h"

static json_t *pod(const char *ns, const char *name, const char *app, const char *owner)
{
    json_t *meta = json_pack("{s:s, s:s}", "namespace", ns, "name", name);
    if (app) json_object_set_new(meta, "labels", json_pack("{s:s, s:s}", "app", app, "tier", "web"));
    if (owner)
        json_object_set_new(meta, "ownerReferences",
                            json_pack("[{s:s, s:s}]", "kind", "ReplicaSet", "uid", owner));
    return json_pack("{s:s, s:o}", "kind", "Pod", "metadata", meta);
}

static void put(informer_cache_t *c, const char *key, json_t *obj)
{
    int err;
    json_t *old = informer_cache_put(c, key, obj, &err);
    assert_int_equal(err, 0);
    json_decref(old);
    json_decref(obj);
}

/* The names of a list's objects, comma-separated; frees the list. */
static const char *names(json_t *list)
{
    static char buf[4096];
    buf[0] = 0;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *n = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
        strncat(buf, i ? "," : "", sizeof buf - strlen(buf) - 1);
        strncat(buf, n, sizeof buf - strlen(buf) - 1);
    }
    json_decref(list);
    return buf;
}

static void test_get_put_remove(void **state)
{
    int packed = *(int *)*state;
    informer_cache_t *c = informer_cache_new(packed);
    assert_non_null(c);
    assert_null(informer_cache_get(c, "a/x"));
    put(c, "a/x", pod("a", "x", "one", NULL));
    put(c, "a/y", pod("a", "y", "one", NULL));
    put(c, "b/z", pod("b", "z", "two", NULL));
    assert_int_equal(informer_cache_size(c), 3);
    json_t *y = informer_cache_get(c, "a/y");
    assert_string_equal(json_string_value(json_object_get(json_object_get(y, "metadata"), "name")), "y");

    /* replacing returns the old object and keeps the place in the order */
    json_t *x2 = pod("a", "x", "two", NULL);
    int err;
    json_t *old = informer_cache_put(c, "a/x", x2, &err);
    assert_int_equal(err, 0);
    assert_non_null(old);
    assert_ptr_not_equal(old, x2);
    json_decref(old);
    /* a tree cache holds the object itself, a packed one an equal tree */
    if (packed) assert_true(json_equal(informer_cache_get(c, "a/x"), x2));
    else assert_ptr_equal(informer_cache_get(c, "a/x"), x2);
    json_decref(x2);
    assert_string_equal(names(informer_cache_list(c)), "x,y,z");

    json_t *gone = informer_cache_remove(c, "a/y");
    assert_non_null(gone);
    json_decref(gone);
    assert_null(informer_cache_remove(c, "a/y"));
    assert_null(informer_cache_get(c, "a/y"));
    assert_int_equal(informer_cache_size(c), 2);
    assert_string_equal(names(informer_cache_list(c)), "x,z");
    informer_cache_free(c);
}

static void test_indexes_follow_updates(void **state)
{
    int packed = *(int *)*state;
    informer_cache_t *c = informer_cache_new(packed);
    put(c, "a/p1", pod("a", "p1", "web", "rs-1"));
    put(c, "a/p2", pod("a", "p2", "web", "rs-1"));
    put(c, "b/p3", pod("b", "p3", "db", "rs-2"));
    put(c, "a/p4", pod("a", "p4", NULL, NULL));
    assert_string_equal(names(informer_cache_list_namespace(c, "a")), "p1,p2,p4");
    assert_string_equal(names(informer_cache_list_namespace(c, "b")), "p3");
    assert_string_equal(names(informer_cache_list_namespace(c, "none")), "");
    assert_string_equal(names(informer_cache_list_label(c, "app", "web")), "p1,p2");
    assert_string_equal(names(informer_cache_list_label(c, "tier", "web")), "p1,p2,p3");
    assert_string_equal(names(informer_cache_list_owner(c, "rs-1")), "p1,p2");

    /* p1 moves to app=db and loses its owner; lists stay in first-cached order */
    put(c, "a/p1", pod("a", "p1", "db", NULL));
    assert_string_equal(names(informer_cache_list_label(c, "app", "web")), "p2");
    assert_string_equal(names(informer_cache_list_label(c, "app", "db")), "p1,p3");
    assert_string_equal(names(informer_cache_list_owner(c, "rs-1")), "p2");

    json_decref(informer_cache_remove(c, "a/p2"));
    assert_string_equal(names(informer_cache_list_label(c, "app", "web")), "");
    assert_string_equal(names(informer_cache_list_owner(c, "rs-1")), "");
    assert_string_equal(names(informer_cache_list_namespace(c, "a")), "p1,p4");
    informer_cache_free(c);
}

static void count(const char *key, json_t *obj, void *data)
{
    (void)obj;
    assert_non_null(key);
    (*(size_t *)data)++;
}

/* Many objects, most removed again in an order unlike the insertion:
 * every survivor is still found by key and in its indexes. */
static void test_many(void **state)
{
    int packed = *(int *)*state;
    enum { N = 20000 };
    informer_cache_t *c = informer_cache_new(packed);
    char key[64], name[32], owner[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "p%05d", i);
        snprintf(key, sizeof key, "ns/%s", name);
        snprintf(owner, sizeof owner, "rs-%d", i % 7);
        put(c, key, pod("ns", name, i % 2 ? "odd" : "even", owner));
    }
    assert_int_equal(informer_cache_size(c), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "ns/p%05d", (i * 7919) % N);
        if (((i * 7919) % N) % 10 == 3) continue;
        json_decref(informer_cache_remove(c, key));
    }
    size_t left = 0;
    informer_cache_each(c, count, &left);
    assert_int_equal(left, informer_cache_size(c));
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "ns/p%05d", i);
        json_t *o = informer_cache_get(c, key);
        if (i % 10 == 3) assert_non_null(o);
        else assert_null(o);
    }
    json_t *all = informer_cache_list_namespace(c, "ns");
    assert_int_equal(json_array_size(all), informer_cache_size(c));
    json_decref(all);
    json_t *odd = informer_cache_list_label(c, "app", "odd");
    json_t *even = informer_cache_list_label(c, "app", "even");
    assert_int_equal(json_array_size(odd) + json_array_size(even), informer_cache_size(c));
    json_decref(odd);
    json_decref(even);
    size_t owned = 0;
    for (int r = 0; r < 7; r++) {
        snprintf(owner, sizeof owner, "rs-%d", r);
        json_t *l = informer_cache_list_owner(c, owner);
        owned += json_array_size(l);
        json_decref(l);
    }
    assert_int_equal(owned, informer_cache_size(c));
    informer_cache_free(c);
}

static json_t *load(const char *text)
{
    json_t *o = json_loads(text, JSON_ALLOW_NUL, NULL);
    assert_non_null(o);
    return o;
}

/* What a packed cache gives back is what it was given, whether or not
 * apiVersion, kind, name and namespace could be left out of the text. */
static void test_packed_round_trip(void **state)
{
    (void)state;
    const char *objs[][2] = {
        {"ns/a", "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
                 "\"namespace\":\"ns\",\"uid\":\"u-a\",\"resourceVersion\":\"7\"}}"},
        /* another kind than the first object's */
        {"ns/b", "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":"
                 "\"b\",\"namespace\":\"ns\",\"ownerReferences\":[{\"uid\":\"u-d\"}],"
                 "\"finalizers\":[\"orphan\"],\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"}}"},
        /* cluster-scoped, and a name with a slash-free key */
        {"node-1", "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                   "\"node-1\",\"labels\":{\"a\":\"b\"}}}"},
        /* a name that is not the key's: kept in the text */
        {"ns/c", "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"other\","
                 "\"namespace\":\"ns\"}}"},
        /* no apiVersion, no metadata at all */
        {"ns/d", "{\"spec\":{\"x\":[1,2,\"\\u00e9\"]}}"},
        /* a string holding NUL, which jansson writes as \u0000 */
        {"ns/e", "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"e\","
                 "\"namespace\":\"ns\"},\"data\":{\"k\":\"a\\u0000b\"}}"},
        /* an empty namespace member on a cluster-scoped object */
        {"pv", "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"pv\","
               "\"namespace\":\"\"}}"},
    };
    size_t n = sizeof objs / sizeof objs[0];
    informer_cache_t *c = informer_cache_new(1);
    for (size_t i = 0; i < n; i++) put(c, objs[i][0], load(objs[i][1]));
    /* text longer than the encoder's first buffer */
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    json_t *large = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
                              "ConfigMap", "metadata", "name", "big", "namespace", "ns", "data",
                              "k", big);
    int err;
    json_decref(informer_cache_put(c, "ns/big", large, &err));
    assert_int_equal(err, 0);
    assert_true(json_equal(informer_cache_get(c, "ns/big"), large));
    json_decref(large);
    for (size_t i = 0; i < n; i++) {
        json_t *want = load(objs[i][1]);
        /* get_ref: a tree of the caller's own, nothing held */
        json_t *ref = informer_cache_get_ref(c, objs[i][0]);
        assert_true(json_equal(ref, want));
        json_decref(ref);
        json_t *got = informer_cache_get(c, objs[i][0]);
        assert_non_null(got);
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_SORT_KEYS);
            fail_msg("%s came back as %s", objs[i][1], g);
        }
        json_decref(want);
    }
    assert_string_equal(names(informer_cache_list_owner(c, "u-d")), "b");
    assert_string_equal(names(informer_cache_list_label(c, "a", "b")), "node-1");
    informer_cache_free(c);
}

/* A packed cache's get hands out the same tree until the reads are
 * released, and the tree stays valid across an update of its key for the
 * one holding it. */
static void test_packed_reads_held(void **state)
{
    (void)state;
    informer_cache_t *c = informer_cache_new(1);
    put(c, "a/x", pod("a", "x", "one", NULL));
    json_t *first = informer_cache_get(c, "a/x");
    assert_ptr_equal(informer_cache_get(c, "a/x"), first);
    json_incref(first);
    informer_cache_release_reads(c);
    json_t *again = informer_cache_get(c, "a/x");
    assert_non_null(again);
    assert_true(json_equal(again, first));
    /* an update returns the tree a reader was given */
    int err;
    json_t *x2 = pod("a", "x", "two", NULL);
    json_t *old = informer_cache_put(c, "a/x", x2, &err);
    assert_ptr_equal(old, again);
    json_decref(old);
    json_decref(x2);
    assert_string_equal(names(informer_cache_list_label(c, "app", "two")), "x");
    assert_string_equal(names(informer_cache_list_label(c, "app", "one")), "");
    json_decref(first);
    /* removal with a read held, then the reads released: nothing twice */
    assert_non_null(informer_cache_get(c, "a/x"));
    json_decref(informer_cache_remove(c, "a/x"));
    informer_cache_release_reads(c);
    assert_int_equal(informer_cache_size(c), 0);
    informer_cache_free(c);
}

int main(void)
{
    static int trees = 0, packed = 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_get_put_remove, &trees),
        cmocka_unit_test_prestate(test_indexes_follow_updates, &trees),
        cmocka_unit_test_prestate(test_many, &trees),
        cmocka_unit_test_prestate(test_get_put_remove, &packed),
        cmocka_unit_test_prestate(test_indexes_follow_updates, &packed),
        cmocka_unit_test_prestate(test_many, &packed),
        cmocka_unit_test(test_packed_round_trip),
        cmocka_unit_test(test_packed_reads_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
