/* plugins/controllers/garbage-collector/uid_index.c - the collector's uid
 * index (see uid_index.h): one malloc'd node per object, in an
 * open-addressing table (linear probing, removal by backward shift). */
#include "uid_index.h"

#include <stdlib.h>
#include <string.h>

struct uid_index {
    gc_node_t **slots;
    size_t n, cap; /* cap: 0 or a power of two */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

uid_index_t *uid_index_new(void) { return calloc(1, sizeof(uid_index_t)); }

void uid_index_free(uid_index_t *x)
{
    if (!x) return;
    for (size_t i = 0; i < x->cap; i++) free(x->slots[i]);
    free(x->slots);
    free(x);
}

size_t uid_index_size(const uid_index_t *x) { return x ? x->n : 0; }

static long find(const uid_index_t *x, const char *uid, uint64_t h)
{
    if (!x->cap) return -1;
    for (size_t i = (size_t)h & (x->cap - 1); x->slots[i]; i = (i + 1) & (x->cap - 1))
        if (x->slots[i]->hash == h && strcmp(x->slots[i]->text, uid) == 0) return (long)i;
    return -1;
}

static void place(gc_node_t **slots, size_t cap, gc_node_t *n)
{
    size_t i = (size_t)n->hash & (cap - 1);
    while (slots[i]) i = (i + 1) & (cap - 1);
    slots[i] = n;
}

static int resize(uid_index_t *x, size_t cap)
{
    gc_node_t **slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < x->cap; i++)
        if (x->slots[i]) place(slots, cap, x->slots[i]);
    free(x->slots);
    x->slots = slots;
    x->cap = cap;
    return 0;
}

const gc_node_t *uid_index_get(const uid_index_t *x, const char *uid)
{
    if (!x || !uid) return NULL;
    long i = find(x, uid, hash_str(uid));
    return i < 0 ? NULL : x->slots[i];
}

int uid_index_put(uid_index_t *x, const char *uid, uint32_t res, const char *key, int flags)
{
    uint64_t h = hash_str(uid);
    long i = find(x, uid, h);
    if (i >= 0) {
        gc_node_t *n = x->slots[i];
        if (n->res == res && n->flags == (uint8_t)flags && strcmp(gc_node_key(n), key) == 0)
            return 0;
    }
    size_t ul = strlen(uid) + 1, kl = strlen(key) + 1;
    if (ul > UINT16_MAX) return -1;
    gc_node_t *n = malloc(sizeof *n + ul + kl);
    if (!n) return -1;
    n->hash = h;
    n->res = res;
    n->flags = (uint8_t)flags;
    n->key_at = (uint16_t)ul;
    memcpy(n->text, uid, ul);
    memcpy(n->text + ul, key, kl);
    if (i >= 0) {
        free(x->slots[i]);
        x->slots[i] = n;
        return 0;
    }
    if ((x->n + 1) * 4 > x->cap * 3 && resize(x, x->cap ? x->cap * 2 : 64) != 0) {
        free(n);
        return -1;
    }
    place(x->slots, x->cap, n);
    x->n++;
    return 0;
}

void uid_index_del(uid_index_t *x, const char *uid)
{
    long found = x && uid ? find(x, uid, hash_str(uid)) : -1;
    if (found < 0) return;
    size_t mask = x->cap - 1, i = (size_t)found, j = i;
    free(x->slots[i]);
    x->slots[i] = NULL;
    x->n--;
    for (;;) {
        j = (j + 1) & mask;
        if (!x->slots[j]) break;
        size_t k = (size_t)x->slots[j]->hash & mask;
        /* the node stays when its home lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        x->slots[i] = x->slots[j];
        x->slots[j] = NULL;
        i = j;
    }
    if (x->cap > 64 && x->n * 8 < x->cap) resize(x, x->cap / 4);
}
