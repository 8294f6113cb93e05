/* core/controller/informer_cache.c - an informer's local store (see
 * informer_cache.h). Each object has one entry (its key, its object, its
 * place in the order); the key table and the index sets are open-addressing
 * tables of entry pointers, so an object in three indexes costs three
 * pointer slots rather than three copies of its key. */
#include "controller/informer_cache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/strmap.h"

typedef struct entry {
    uint64_t hash; /* of key */
    uint64_t seq;  /* when first cached: the order of lists */
    json_t *obj;
    struct entry *prev, *next;
    char key[];
} entry_t;

/* Entries by key (the key table) or by identity (an index set): linear
 * probing, removal by backward shift, so no tombstones. */
typedef struct table {
    entry_t **slots;
    size_t n, cap; /* cap: 0 or a power of two */
} table_t;

struct informer_cache {
    table_t by_key;
    entry_t *first, *last;
    uint64_t next_seq;
    strmap_t *by_ns, *by_label, *by_owner; /* index value -> table_t of entries */
};

static uint64_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return x ^ (x >> 33);
}

static size_t home(const table_t *t, const entry_t *e, int by_key)
{
    return (size_t)(by_key ? e->hash : ptr_hash(e)) & (t->cap - 1);
}

static void place(table_t *t, entry_t *e, int by_key)
{
    size_t i = home(t, e, by_key);
    while (t->slots[i]) i = (i + 1) & (t->cap - 1);
    t->slots[i] = e;
    t->n++;
}

/* Rehashes into cap slots (a power of two above n). */
static int table_resize(table_t *t, size_t cap, int by_key)
{
    entry_t **slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    table_t nt = {slots, 0, cap};
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i]) place(&nt, t->slots[i], by_key);
    free(t->slots);
    *t = nt;
    return 0;
}

/* Adds e (not there yet), keeping the load at 3/4 or below. */
static int table_add(table_t *t, entry_t *e, int by_key)
{
    if ((t->n + 1) * 4 > t->cap * 3) {
        size_t cap = t->cap ? t->cap * 2 : (by_key ? 64 : 4);
        if (table_resize(t, cap, by_key) != 0) return -1;
    }
    place(t, e, by_key);
    return 0;
}

static long find_key(const table_t *t, const char *key, uint64_t h)
{
    if (!t->cap) return -1;
    for (size_t i = (size_t)h & (t->cap - 1); t->slots[i]; i = (i + 1) & (t->cap - 1))
        if (t->slots[i]->hash == h && strcmp(t->slots[i]->key, key) == 0) return (long)i;
    return -1;
}

static long find_entry(const table_t *t, const entry_t *e)
{
    if (!t->cap) return -1;
    for (size_t i = (size_t)ptr_hash(e) & (t->cap - 1); t->slots[i]; i = (i + 1) & (t->cap - 1))
        if (t->slots[i] == e) return (long)i;
    return -1;
}

/* Empties slot i and moves back the entries after it that probed past it. */
static void remove_at(table_t *t, size_t i, int by_key)
{
    size_t mask = t->cap - 1, j = i;
    t->slots[i] = NULL;
    t->n--;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slots[j]) break;
        size_t k = home(t, t->slots[j], by_key);
        /* the entry stays when its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        t->slots[i] = t->slots[j];
        t->slots[j] = NULL;
        i = j;
    }
    /* a table much larger than what it holds gives memory back */
    if (t->cap > 64 && t->n * 8 < t->cap) table_resize(t, t->cap / 4, by_key);
}

/* ---- indexes ------------------------------------------------------------------------- */

static void table_free(void *p)
{
    table_t *t = p;
    if (t) free(t->slots);
    free(t);
}

static void index_add(strmap_t *idx, const char *value, entry_t *e)
{
    table_t *set = strmap_get(idx, value);
    if (!set) {
        set = calloc(1, sizeof *set);
        if (!set) return;
        strmap_put(idx, value, set);
        if (strmap_get(idx, value) != set) {
            free(set);
            return;
        }
    }
    if (find_entry(set, e) < 0) table_add(set, e, 0);
}

static void index_del(strmap_t *idx, const char *value, entry_t *e)
{
    table_t *set = strmap_get(idx, value);
    if (!set) return;
    long i = find_entry(set, e);
    if (i >= 0) remove_at(set, (size_t)i, 0);
    if (set->n == 0) table_free(strmap_remove(idx, value));
}

/* The label index's key for label k with value v ("k=v"): in buf when it
 * fits, else malloc'd (NULL when memory runs out). */
#define LABEL_KEY_BUF 320
static char *label_key(char buf[LABEL_KEY_BUF], const char *k, const char *v)
{
    size_t n = strlen(k) + (v ? strlen(v) : 0) + 2;
    char *kv = n <= LABEL_KEY_BUF ? buf : malloc(n);
    if (kv) snprintf(kv, n, "%s=%s", k, v ? v : "");
    return kv;
}

/* Adds e to (or removes it from) the index sets obj belongs to. */
static void index_each(informer_cache_t *c, const json_t *obj, entry_t *e, int add)
{
    void (*fn)(strmap_t *, const char *, entry_t *) = add ? index_add : index_del;
    const json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    fn(c->by_ns, ns ? ns : "", e);
    const char *lk;
    json_t *lv;
    json_object_foreach((json_t *)json_object_get(meta, "labels"), lk, lv)
    {
        char buf[LABEL_KEY_BUF];
        char *kv = label_key(buf, lk, json_string_value(lv));
        if (!kv) continue;
        fn(c->by_label, kv, e);
        if (kv != buf) free(kv);
    }
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(meta, "ownerReferences"), i, ref)
    {
        const char *uid = json_string_value(json_object_get(ref, "uid"));
        if (uid) fn(c->by_owner, uid, e);
    }
}

/* ---- the cache -------------------------------------------------------------------------- */

informer_cache_t *informer_cache_new(void)
{
    informer_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->by_ns = strmap_new();
    c->by_label = strmap_new();
    c->by_owner = strmap_new();
    if (!c->by_ns || !c->by_label || !c->by_owner) {
        informer_cache_free(c);
        return NULL;
    }
    return c;
}

void informer_cache_free(informer_cache_t *c)
{
    if (!c) return;
    for (entry_t *e = c->first, *next; e; e = next) {
        next = e->next;
        json_decref(e->obj);
        free(e);
    }
    free(c->by_key.slots);
    strmap_free(c->by_ns, table_free);
    strmap_free(c->by_label, table_free);
    strmap_free(c->by_owner, table_free);
    free(c);
}

size_t informer_cache_size(const informer_cache_t *c) { return c ? c->by_key.n : 0; }

json_t *informer_cache_get(const informer_cache_t *c, const char *key)
{
    if (!c || !key) return NULL;
    long i = find_key(&c->by_key, key, fnv1a_str(key));
    return i < 0 ? NULL : c->by_key.slots[i]->obj;
}

json_t *informer_cache_put(informer_cache_t *c, const char *key, json_t *obj, int *err)
{
    if (err) *err = 0;
    uint64_t h = fnv1a_str(key);
    long i = find_key(&c->by_key, key, h);
    if (i >= 0) {
        entry_t *e = c->by_key.slots[i];
        json_t *old = e->obj;
        index_each(c, old, e, 0);
        e->obj = json_incref(obj);
        index_each(c, obj, e, 1);
        return old;
    }
    size_t len = strlen(key) + 1;
    entry_t *e = malloc(sizeof *e + len);
    if (e) {
        e->hash = h;
        memcpy(e->key, key, len);
    }
    if (!e || table_add(&c->by_key, e, 1) != 0) {
        free(e);
        if (err) *err = -1;
        return NULL;
    }
    e->seq = c->next_seq++;
    e->obj = json_incref(obj);
    e->next = NULL;
    e->prev = c->last;
    if (c->last) c->last->next = e;
    else c->first = e;
    c->last = e;
    index_each(c, obj, e, 1);
    return NULL;
}

json_t *informer_cache_remove(informer_cache_t *c, const char *key)
{
    if (!c || !key) return NULL;
    long i = find_key(&c->by_key, key, fnv1a_str(key));
    if (i < 0) return NULL;
    entry_t *e = c->by_key.slots[i];
    index_each(c, e->obj, e, 0);
    remove_at(&c->by_key, (size_t)i, 1);
    if (e->prev) e->prev->next = e->next;
    else c->first = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->last = e->prev;
    json_t *obj = e->obj;
    free(e);
    return obj;
}

/* ---- lists ---------------------------------------------------------------------------------- */

json_t *informer_cache_list(const informer_cache_t *c)
{
    json_t *a = json_array();
    if (a && c)
        for (const entry_t *e = c->first; e; e = e->next) json_array_append(a, e->obj);
    return a;
}

static int by_seq(const void *x, const void *y)
{
    const entry_t *a = *(entry_t *const *)x, *b = *(entry_t *const *)y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The objects of an index set, in the order they were first cached: a
 * set holding much of the cache is read off the ordered list (one lookup
 * an entry), a smaller one sorted. */
static json_t *set_values(const informer_cache_t *c, const strmap_t *idx, const char *value)
{
    json_t *a = json_array();
    const table_t *set = idx && value ? strmap_get(idx, value) : NULL;
    if (!a || !set || !set->n) return a;
    if (set->n * 4 >= c->by_key.n) {
        for (const entry_t *e = c->first; e; e = e->next)
            if (find_entry(set, e) >= 0) json_array_append(a, e->obj);
        return a;
    }
    entry_t **v = malloc(set->n * sizeof *v);
    if (!v) {
        json_decref(a);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < set->cap; i++)
        if (set->slots[i]) v[n++] = set->slots[i];
    qsort(v, n, sizeof *v, by_seq);
    for (size_t i = 0; i < n; i++) json_array_append(a, v[i]->obj);
    free(v);
    return a;
}

json_t *informer_cache_list_namespace(const informer_cache_t *c, const char *ns)
{
    return set_values(c, c ? c->by_ns : NULL, ns ? ns : "");
}

json_t *informer_cache_list_label(const informer_cache_t *c, const char *key, const char *value)
{
    if (!c || !key) return json_array();
    char buf[LABEL_KEY_BUF];
    char *kv = label_key(buf, key, value);
    if (!kv) return NULL;
    json_t *a = set_values(c, c->by_label, kv);
    if (kv != buf) free(kv);
    return a;
}

json_t *informer_cache_list_owner(const informer_cache_t *c, const char *uid)
{
    return set_values(c, c ? c->by_owner : NULL, uid);
}

void informer_cache_each(const informer_cache_t *c,
                         void (*fn)(const char *key, json_t *obj, void *data), void *data)
{
    if (!c) return;
    for (const entry_t *e = c->first; e; e = e->next) fn(e->key, e->obj, data);
}
