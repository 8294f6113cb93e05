/* core/controller/informer_cache.c - an informer's local store (see
 * informer_cache.h). Each object has one entry (its key, its object, its
 * place in the order); the key table and the index sets are open-addressing
 * tables of entry pointers, so an object in three indexes costs three
 * pointer slots rather than three copies of its key.
 *
 * A packed cache keeps each object as compact JSON text instead of a tree
 * (a tree of jansson values costs about ten times its text: 1.5 KB against
 * 150 bytes for an object's metadata), leaving out what the entry already
 * says: metadata.name and namespace (the key) and apiVersion and kind when
 * they are those of the first object cached. Reads parse the text again;
 * what get returns is held until informer_cache_release_reads. */
#include "controller/informer_cache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "util/hash.h"
#include "util/strmap.h"

typedef struct entry {
    uint64_t hash; /* of key */
    uint64_t seq;  /* when first cached: the order of lists */
    /* the object; in a packed cache a parse of packed held for a reader
     * (NULL when none is) */
    json_t *obj;
    char *packed; /* a packed cache's text of the object (see pack) */
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
    int packed;
    json_t *api_version, *kind; /* a packed cache's first object's, left out of the text */
    entry_t **reads;            /* entries whose obj a get parsed, until released */
    size_t n_reads, cap_reads;
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

/* Whether a and b belong to the same index sets: the same namespace,
 * labels and ownerReferences. */
static int same_index_values(const json_t *a, const json_t *b)
{
    const json_t *ma = json_object_get(a, "metadata"), *mb = json_object_get(b, "metadata");
    const char *na = json_string_value(json_object_get(ma, "namespace"));
    const char *nb = json_string_value(json_object_get(mb, "namespace"));
    return (na == nb || (na && nb && strcmp(na, nb) == 0)) &&
           skiff_json_same(json_object_get(ma, "labels"), json_object_get(mb, "labels")) &&
           skiff_json_same(json_object_get(ma, "ownerReferences"),
                           json_object_get(mb, "ownerReferences"));
}

static void forget_in_set(const char *value, void *set, void *e)
{
    (void)value;
    table_t *t = set;
    long i = find_entry(t, e);
    if (i >= 0) remove_at(t, (size_t)i, 0);
}

/* Takes e out of every index set, for when the object it was indexed by
 * cannot be read back (a packed cache out of memory): a walk of every set,
 * where index_each visits only the object's (sets left empty stay). */
static void index_forget(informer_cache_t *c, entry_t *e)
{
    strmap_each(c->by_ns, forget_in_set, e);
    strmap_each(c->by_label, forget_in_set, e);
    strmap_each(c->by_owner, forget_in_set, e);
}

/* ---- packed objects ------------------------------------------------------------------ */

/* Leaving out of what is packed: */
#define PACK_NO_TYPE 1 /* apiVersion and kind, the cache's */
#define PACK_NO_NAME 2 /* metadata.name and namespace, the key's */

/* The namespace and name the key stands for ("ns/name" or "name"). */
static void key_parts(const char *key, const char **name, char *ns, size_t ns_len)
{
    const char *slash = strchr(key, '/');
    ns[0] = '\0';
    *name = key;
    if (slash && (size_t)(slash - key) < ns_len) {
        memcpy(ns, key, (size_t)(slash - key));
        ns[slash - key] = '\0';
        *name = slash + 1;
    }
}

static int str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && s && strcmp(json_string_value(v), s) == 0;
}

/* obj as text for entry key: one character of PACK_* flags, then compact
 * JSON without the members the flags name (malloc'd; NULL on ENOMEM). */
static char *pack(informer_cache_t *c, const char *key, json_t *obj)
{
    if (!c->api_version && json_is_string(json_object_get(obj, "apiVersion")) &&
        json_is_string(json_object_get(obj, "kind"))) {
        c->api_version = json_incref(json_object_get(obj, "apiVersion"));
        c->kind = json_incref(json_object_get(obj, "kind"));
    }
    int flags = 0;
    json_t *top = json_object(), *meta = json_object_get(obj, "metadata");
    if (!top || json_object_update(top, obj) != 0) {
        json_decref(top);
        return NULL;
    }
    if (c->api_version && json_equal(json_object_get(obj, "apiVersion"), c->api_version) &&
        json_equal(json_object_get(obj, "kind"), c->kind)) {
        flags |= PACK_NO_TYPE;
        json_object_del(top, "apiVersion");
        json_object_del(top, "kind");
    }
    char ns[256];
    const char *name;
    key_parts(key, &name, ns, sizeof ns);
    /* a key without a namespace leaves metadata.namespace as it is */
    int ns_matches = !*ns || str_is(json_object_get(meta, "namespace"), ns);
    if (json_is_object(meta) && str_is(json_object_get(meta, "name"), name) && ns_matches) {
        json_t *m = json_copy(meta); /* shallow: the members are shared */
        if (m) {
            flags |= PACK_NO_NAME;
            json_object_del(m, "name");
            if (*ns) json_object_del(m, "namespace");
            json_object_set_new_nocheck(top, "metadata", m);
        }
    }
    /* one encoding, into the stack when it fits (a metadata view does) */
    char buf[1024];
    size_t n = json_dumpb(top, buf, sizeof buf, JSON_COMPACT);
    char *text = n ? malloc(n + 2) : NULL;
    if (text) {
        text[0] = (char)('0' + flags);
        if (n <= sizeof buf) memcpy(text + 1, buf, n);
        else json_dumpb(top, text + 1, n, JSON_COMPACT);
        text[n + 1] = '\0';
    }
    json_decref(top);
    return text;
}

/* A new tree of what pack made of entry e's object (NULL on ENOMEM). */
static json_t *unpack(const informer_cache_t *c, const entry_t *e)
{
    int flags = e->packed[0] - '0';
    /* pack wrote strings holding NUL as \u0000 */
    json_t *obj = json_loads(e->packed + 1, JSON_ALLOW_NUL, NULL);
    if (!obj) return NULL;
    if (flags & PACK_NO_TYPE) {
        json_object_set_nocheck(obj, "apiVersion", c->api_version);
        json_object_set_nocheck(obj, "kind", c->kind);
    }
    if (flags & PACK_NO_NAME) {
        char ns[256];
        const char *name;
        key_parts(e->key, &name, ns, sizeof ns);
        json_t *meta = json_object_get(obj, "metadata");
        json_object_set_new_nocheck(meta, "name", json_string(name));
        if (*ns) json_object_set_new_nocheck(meta, "namespace", json_string(ns));
    }
    return obj;
}

/* A new reference to e's object. */
static json_t *obj_ref(const informer_cache_t *c, const entry_t *e)
{
    return e->obj ? json_incref(e->obj) : unpack(c, e);
}

/* Forgets that e's obj is held for a reader and returns it (a reference
 * the caller releases). */
static json_t *take_read(informer_cache_t *c, entry_t *e)
{
    json_t *obj = e->obj;
    e->obj = NULL;
    for (size_t i = 0; obj && i < c->n_reads; i++) {
        if (c->reads[i] != e) continue;
        c->reads[i] = c->reads[--c->n_reads];
        break;
    }
    return obj;
}

void informer_cache_release_reads(informer_cache_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_reads; i++) {
        json_decref(c->reads[i]->obj);
        c->reads[i]->obj = NULL;
    }
    c->n_reads = 0;
    if (c->cap_reads > 64) {
        free(c->reads);
        c->reads = NULL;
        c->cap_reads = 0;
    }
}

/* ---- the cache -------------------------------------------------------------------------- */

informer_cache_t *informer_cache_new(int packed)
{
    informer_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->packed = packed;
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
        free(e->packed);
        free(e);
    }
    free(c->reads);
    json_decref(c->api_version);
    json_decref(c->kind);
    free(c->by_key.slots);
    strmap_free(c->by_ns, table_free);
    strmap_free(c->by_label, table_free);
    strmap_free(c->by_owner, table_free);
    free(c);
}

size_t informer_cache_size(const informer_cache_t *c) { return c ? c->by_key.n : 0; }

json_t *informer_cache_get_ref(const informer_cache_t *c, const char *key)
{
    if (!c || !key) return NULL;
    long i = find_key(&c->by_key, key, fnv1a_str(key));
    return i < 0 ? NULL : obj_ref(c, c->by_key.slots[i]);
}

json_t *informer_cache_get(informer_cache_t *c, const char *key)
{
    if (!c || !key) return NULL;
    long i = find_key(&c->by_key, key, fnv1a_str(key));
    if (i < 0) return NULL;
    entry_t *e = c->by_key.slots[i];
    if (e->obj || !c->packed) return e->obj;
    if (c->n_reads == c->cap_reads) {
        size_t cap = c->cap_reads ? c->cap_reads * 2 : 8;
        entry_t **p = realloc(c->reads, cap * sizeof *p);
        if (!p) return NULL;
        c->reads = p;
        c->cap_reads = cap;
    }
    e->obj = unpack(c, e);
    if (e->obj) c->reads[c->n_reads++] = e;
    return e->obj;
}

/* The object entry e holds, as a reference the caller owns: a packed
 * cache's read (no longer held for readers) or a new parse of its text. */
static json_t *take_obj(informer_cache_t *c, entry_t *e)
{
    if (!c->packed) {
        json_t *obj = e->obj;
        e->obj = NULL;
        return obj;
    }
    json_t *obj = take_read(c, e);
    return obj ? obj : unpack(c, e);
}

/* What an entry for key is to hold of obj, made before anything changes:
 * a packed cache's text of it in *text (NULL otherwise). -1 on ENOMEM. */
static int pack_for(informer_cache_t *c, const char *key, json_t *obj, char **text)
{
    *text = c->packed ? pack(c, key, obj) : NULL;
    return c->packed && !*text ? -1 : 0;
}

/* Makes obj the object of entry e, which holds no tree (new, or its
 * object taken): the text pack_for made in a packed cache. */
static void hold_obj(informer_cache_t *c, entry_t *e, json_t *obj, char *text)
{
    if (c->packed) {
        free(e->packed);
        e->packed = text;
    } else {
        e->obj = json_incref(obj);
    }
}

json_t *informer_cache_put(informer_cache_t *c, const char *key, json_t *obj, int *err)
{
    if (err) *err = 0;
    uint64_t h = fnv1a_str(key);
    long i = find_key(&c->by_key, key, h);
    if (i >= 0) {
        entry_t *e = c->by_key.slots[i];
        char *text;
        if (pack_for(c, key, obj, &text) != 0) {
            if (err) *err = -1;
            return NULL;
        }
        json_t *old = take_obj(c, e);
        hold_obj(c, e, obj, text);
        /* the indexes follow what the entry held before and holds now
         * (most updates, a status written, move nothing) */
        if (old && same_index_values(old, obj)) return old;
        if (old) index_each(c, old, e, 0);
        else index_forget(c, e);
        index_each(c, obj, e, 1);
        return old;
    }
    size_t len = strlen(key) + 1;
    char *text = NULL;
    entry_t *e = pack_for(c, key, obj, &text) == 0 ? malloc(sizeof *e + len) : NULL;
    if (e) {
        e->hash = h; /* the key table places it by hash */
        e->obj = NULL;
        e->packed = NULL;
        memcpy(e->key, key, len);
    }
    if (!e || table_add(&c->by_key, e, 1) != 0) {
        free(text);
        free(e);
        if (err) *err = -1;
        return NULL;
    }
    hold_obj(c, e, obj, text);
    e->seq = c->next_seq++;
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
    json_t *obj = take_obj(c, e);
    if (obj) index_each(c, obj, e, 0);
    else index_forget(c, e);
    remove_at(&c->by_key, (size_t)i, 1);
    if (e->prev) e->prev->next = e->next;
    else c->first = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->last = e->prev;
    free(e->packed);
    free(e);
    return obj;
}

/* ---- lists ---------------------------------------------------------------------------------- */

/* Appends e's object to a (0, or -1 when it could not be read). */
static int append(const informer_cache_t *c, json_t *a, const entry_t *e)
{
    json_t *o = obj_ref(c, e);
    return o ? json_array_append_new(a, o) : -1;
}

json_t *informer_cache_list(const informer_cache_t *c)
{
    json_t *a = json_array();
    if (a && c)
        for (const entry_t *e = c->first; e; e = e->next) append(c, a, e);
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
            if (find_entry(set, e) >= 0) append(c, a, e);
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
    for (size_t i = 0; i < n; i++) append(c, a, v[i]);
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
    for (const entry_t *e = c->first; e; e = e->next) {
        json_t *o = obj_ref(c, e);
        if (o) fn(e->key, o, data);
        json_decref(o);
    }
}

void informer_cache_each_key(const informer_cache_t *c,
                             void (*fn)(const char *key, void *data), void *data)
{
    if (!c) return;
    for (const entry_t *e = c->first; e; e = e->next) fn(e->key, data);
}
