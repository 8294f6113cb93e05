/* core/util/strmap.c - chained string hash map with power-of-two buckets;
 * keys copied into their nodes, or borrowed from the values. */
#include "util/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

typedef struct strmap_node {
    struct strmap_node *next;
    uint64_t hash;
    void *value;
    const char *key; /* copy (after the node) or borrowed */
} strmap_node_t;

struct strmap {
    strmap_node_t **buckets;
    size_t nbuckets;
    size_t size;
    int borrowed;
};

strmap_t *strmap_new(void)
{
    strmap_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nbuckets = 64;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (!m->buckets) { free(m); return NULL; }
    return m;
}

strmap_t *strmap_new_borrowed(void)
{
    strmap_t *m = strmap_new();
    if (m) m->borrowed = 1;
    return m;
}

void strmap_free(strmap_t *m, void (*free_value)(void *))
{
    if (!m) return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_node_t *n = m->buckets[i];
        while (n) {
            strmap_node_t *next = n->next;
            if (free_value) free_value(n->value);
            free(n);
            n = next;
        }
    }
    free(m->buckets);
    free(m);
}

static strmap_node_t **find_slot(const strmap_t *m, const char *key, uint64_t h)
{
    strmap_node_t **p = &m->buckets[h & (m->nbuckets - 1)];
    while (*p && !((*p)->hash == h && strcmp((*p)->key, key) == 0)) p = &(*p)->next;
    return p;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    strmap_node_t **p = find_slot(m, key, fnv1a_str(key));
    return *p ? (*p)->value : NULL;
}

static void grow(strmap_t *m)
{
    size_t nb = m->nbuckets * 2;
    strmap_node_t **b = calloc(nb, sizeof *b);
    if (!b) return; /* keep working with longer chains */
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_node_t *n = m->buckets[i];
        while (n) {
            strmap_node_t *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

void *strmap_put(strmap_t *m, const char *key, void *value)
{
    uint64_t h = fnv1a_str(key);
    strmap_node_t **p = find_slot(m, key, h);
    if (*p) {
        void *old = (*p)->value;
        (*p)->value = value;
        if (m->borrowed) (*p)->key = key;
        return old;
    }
    size_t len = m->borrowed ? 0 : strlen(key) + 1;
    strmap_node_t *n = malloc(sizeof *n + len);
    if (!n) return NULL;
    if (m->borrowed) {
        n->key = key;
    } else {
        memcpy(n + 1, key, len);
        n->key = (const char *)(n + 1);
    }
    n->hash = h;
    n->value = value;
    n->next = NULL;
    *p = n;
    if (++m->size > m->nbuckets) grow(m);
    return NULL;
}

void *strmap_remove(strmap_t *m, const char *key)
{
    strmap_node_t **p = find_slot(m, key, fnv1a_str(key));
    if (!*p) return NULL;
    strmap_node_t *n = *p;
    void *v = n->value;
    *p = n->next;
    free(n);
    m->size--;
    return v;
}

size_t strmap_size(const strmap_t *m) { return m->size; }

void strmap_each(const strmap_t *m, void (*fn)(const char *, void *, void *), void *data)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (strmap_node_t *n = m->buckets[i]; n; n = n->next) fn(n->key, n->value, data);
}
