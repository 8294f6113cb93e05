/* core/controller/json_intern.c - tables of shared JSON values (see
 * skiff_json_interner_t in skiff/objects.h): values by a hash of their
 * content, json_equal deciding; open addressing, rebuilt without the
 * values no one holds any more each time the table fills up. */
#include <skiff/objects.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

typedef struct interned {
    uint64_t h;
    json_t *v; /* NULL: free */
} interned_t;

struct skiff_json_interner {
    interned_t *slots;
    size_t cap, n;
};

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* Equal values (json_equal) hash alike: an object's members in any order. */
static uint64_t hash_json(const json_t *v)
{
    uint64_t h = (uint64_t)json_typeof(v) + 1;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return mix(h, fnv1a(json_string_value(v), json_string_length(v)));
    case JSON_INTEGER:
        return mix(h, (uint64_t)json_integer_value(v));
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return mix(h, bits);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)v, i, e) h = mix(h, hash_json(e));
        return h;
    }
    case JSON_OBJECT: {
        uint64_t sum = 0;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) sum += mix(fnv1a(k, strlen(k)), hash_json(e));
        return mix(h, sum);
    }
    default:
        return h;
    }
}

skiff_json_interner_t *skiff_json_interner_new(void)
{
    return calloc(1, sizeof(skiff_json_interner_t));
}

void skiff_json_interner_free(skiff_json_interner_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->cap; i++) json_decref(t->slots[i].v);
    free(t->slots);
    free(t);
}

static void place(interned_t *slots, size_t cap, uint64_t h, json_t *v)
{
    size_t i = h & (cap - 1);
    while (slots[i].v) i = (i + 1) & (cap - 1);
    slots[i].h = h;
    slots[i].v = v;
}

/* Keeps what is still held elsewhere, in a table with room for as many again. */
static int rebuild(skiff_json_interner_t *t)
{
    size_t live = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].v && t->slots[i].v->refcount > 1) live++;
    size_t cap = 1024;
    while (cap < live * 4) cap *= 2;
    /* the new table first: the old one stays whole when memory runs out */
    interned_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].v) continue;
        if (t->slots[i].v->refcount == 1) json_decref(t->slots[i].v);
        else place(slots, cap, t->slots[i].h, t->slots[i].v);
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    t->n = live;
    return 0;
}

static json_t *lookup(const skiff_json_interner_t *t, uint64_t h, const json_t *v)
{
    if (!t->cap) return NULL;
    for (size_t i = h & (t->cap - 1); t->slots[i].v; i = (i + 1) & (t->cap - 1))
        if (t->slots[i].h == h && json_equal(t->slots[i].v, (json_t *)v)) return t->slots[i].v;
    return NULL;
}

/* Puts v in the table, which takes a reference; -1 when memory runs out. */
static int insert(skiff_json_interner_t *t, uint64_t h, json_t *v)
{
    if ((t->n + 1) * 2 > t->cap && rebuild(t) != 0) return -1;
    place(t->slots, t->cap, h, json_incref(v));
    t->n++;
    return 0;
}

json_t *skiff_json_intern(skiff_json_interner_t *t, json_t *v)
{
    if (!t || !v) return v;
    uint64_t h = hash_json(v);
    json_t *s = lookup(t, h, v);
    if (s) {
        json_decref(v);
        return json_incref(s);
    }
    insert(t, h, v);
    return v;
}

json_t *skiff_json_intern_copy(skiff_json_interner_t *t, const json_t *v)
{
    if (!v) return NULL;
    if (!t) return skiff_json_copy(v);
    uint64_t h = hash_json(v);
    json_t *s = lookup(t, h, v);
    if (s) return json_incref(s);
    json_t *c = skiff_json_copy(v);
    if (c) insert(t, h, c);
    return c;
}

size_t skiff_json_interner_size(const skiff_json_interner_t *t) { return t ? t->n : 0; }
