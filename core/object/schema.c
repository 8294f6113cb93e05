/* core/object/schema.c - load the built-in compact schema set into schema_type_t.
 *
 * The generated core/object/kinds/schemas.json (format in
 * core/object/kinds/README.md) is embedded in the binary. It is parsed once
 * at start into structures that live in one arena, so lookups never
 * allocate and schema_unload frees everything at once. Named types are
 * found through an open-addressing hash; fields of a type are sorted by
 * name and found by binary search. This file only builds and looks up
 * types; validation, defaults and patching read them elsewhere. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <skiff/errors.h>

#include "object/schema.h"
#include "util/hash.h"

extern const char skiff_schemas_json[];

/* ---- arena --------------------------------------------------------------- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
} arena_block_t;

typedef struct arena {
    arena_block_t *head;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    arena_block_t *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(arena_t *a)
{
    arena_block_t *b = a->head;
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- string-keyed hash (keys live in the arena) -------------------------- */

typedef struct strmap {
    const char **keys;
    void **vals;
    size_t cap, len;
} strmap_t;

static int strmap_grow(strmap_t *m, size_t want)
{
    size_t ncap = m->cap ? m->cap * 2 : 256;
    while (ncap < want)
        ncap *= 2;
    const char **nk = calloc(ncap, sizeof(*nk));
    void **nv = calloc(ncap, sizeof(*nv));
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return SKIFF_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = fnv1a_str(m->keys[i]) & (ncap - 1);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

static void *strmap_get(const strmap_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t j = fnv1a_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0)
            return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

/* key must outlive the map (arena string). */
static int strmap_put(strmap_t *m, const char *key, void *val)
{
    if ((m->len + 1) * 2 > m->cap && strmap_grow(m, 0) < 0)
        return SKIFF_ENOMEM;
    size_t j = fnv1a_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0) {
            m->vals[j] = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = key;
    m->vals[j] = val;
    m->len++;
    return 0;
}

static void strmap_free(strmap_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- the loaded set ------------------------------------------------------ */

static struct {
    int loaded;
    arena_t arena;
    strmap_t names;   /* named type -> schema_type_t* */
    strmap_t refs;    /* anonymous type reference ("[]string", "=enum") -> type */
    strmap_t strings; /* interned strings */
    schema_type_t **sorted; /* named types by name, for schema_at */
    size_t count;
} S;

static const schema_type_t T_STRING = { .kind = SCHEMA_STRING };
static const schema_type_t T_INT32 = { .kind = SCHEMA_INTEGER, .format = "int32" };
static const schema_type_t T_INT64 = { .kind = SCHEMA_INTEGER, .format = "int64" };
static const schema_type_t T_DOUBLE = { .kind = SCHEMA_NUMBER, .format = "double" };
static const schema_type_t T_BOOLEAN = { .kind = SCHEMA_BOOLEAN };
static const schema_type_t T_BYTES = { .kind = SCHEMA_BYTES, .format = "byte" };
static const schema_type_t T_ANY = { .kind = SCHEMA_ANY };

static const char *intern(const char *s)
{
    const char *v = strmap_get(&S.strings, s);
    if (v)
        return v;
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(&S.arena, n);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    if (strmap_put(&S.strings, p, p) < 0)
        return NULL;
    return p;
}

static const schema_type_t *resolve_ref(const char *ref, json_t *enums);

static const schema_type_t *builtin_scalar(const char *ref)
{
    static const struct { const char *name; const schema_type_t *t; } tab[] = {
        { "string", &T_STRING }, { "int32", &T_INT32 }, { "int64", &T_INT64 },
        { "double", &T_DOUBLE }, { "boolean", &T_BOOLEAN }, { "byte", &T_BYTES },
        { "any", &T_ANY },
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(tab[i].name, ref) == 0)
            return tab[i].t;
    return NULL;
}

static const schema_type_t *resolve_ref(const char *ref, json_t *enums)
{
    const schema_type_t *t = builtin_scalar(ref);
    if (t)
        return t;
    t = strmap_get(&S.names, ref);
    if (t)
        return t;
    t = strmap_get(&S.refs, ref);
    if (t)
        return t;

    schema_type_t *nt = NULL;
    if (strncmp(ref, "[]", 2) == 0 || strncmp(ref, "{}", 2) == 0) {
        const schema_type_t *elem = resolve_ref(ref + 2, enums);
        if (!elem)
            return NULL;
        nt = arena_alloc(&S.arena, sizeof(*nt));
        if (!nt)
            return NULL;
        nt->kind = ref[0] == '[' ? SCHEMA_ARRAY : SCHEMA_MAP;
        nt->elem = elem;
    } else if (ref[0] == '=') {
        json_t *vals = json_object_get(enums, ref + 1);
        if (!json_is_array(vals))
            return NULL;
        size_t n = json_array_size(vals);
        const char **ev = arena_alloc(&S.arena, (n + 1) * sizeof(*ev));
        nt = arena_alloc(&S.arena, sizeof(*nt));
        if (!ev || !nt)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(vals, i));
            if (!s || !(ev[i] = intern(s)))
                return NULL;
        }
        nt->kind = SCHEMA_STRING;
        nt->enum_values = ev;
    } else {
        return NULL;
    }
    const char *key = intern(ref);
    if (!key || strmap_put(&S.refs, key, nt) < 0)
        return NULL;
    return nt;
}

static int kind_from_name(const char *k, schema_kind_t *out)
{
    static const struct { const char *name; schema_kind_t kind; } tab[] = {
        { "time", SCHEMA_TIME }, { "quantity", SCHEMA_QUANTITY },
        { "int-or-string", SCHEMA_INT_OR_STRING }, { "any", SCHEMA_ANY },
        { "string", SCHEMA_STRING }, { "object", SCHEMA_OBJECT },
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (strcmp(tab[i].name, k) == 0) {
            *out = tab[i].kind;
            return 0;
        }
    }
    return SKIFF_EINVAL;
}

static int field_cmp(const void *a, const void *b)
{
    return strcmp(((const schema_field_t *)a)->name, ((const schema_field_t *)b)->name);
}

static int fill_fields(schema_type_t *t, json_t *fields, json_t *enums)
{
    size_t n = json_array_size(fields);
    schema_field_t *fs = arena_alloc(&S.arena, (n ? n : 1) * sizeof(*fs));
    if (!fs)
        return SKIFF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "n"));
        const char *ref = json_string_value(json_object_get(f, "t"));
        if (!name || !ref)
            return SKIFF_EINVAL;
        fs[i].name = intern(name);
        fs[i].type = resolve_ref(ref, enums);
        if (!fs[i].name || !fs[i].type)
            return SKIFF_EINVAL;
        fs[i].required = json_integer_value(json_object_get(f, "r")) != 0;
        const char *s;
        if ((s = json_string_value(json_object_get(f, "ps"))))
            fs[i].patch_strategy = intern(s);
        if ((s = json_string_value(json_object_get(f, "pk"))))
            fs[i].patch_merge_key = intern(s);
        if ((s = json_string_value(json_object_get(f, "lt"))))
            fs[i].list_type = intern(s);
        if ((s = json_string_value(json_object_get(f, "d"))))
            fs[i].description = intern(s);
        json_t *lk = json_object_get(f, "lk");
        if (json_is_array(lk)) {
            size_t m = json_array_size(lk);
            const char **keys = arena_alloc(&S.arena, (m + 1) * sizeof(*keys));
            if (!keys)
                return SKIFF_ENOMEM;
            for (size_t j = 0; j < m; j++)
                if (!(keys[j] = intern(json_string_value(json_array_get(lk, j)) ?: "")))
                    return SKIFF_ENOMEM;
            fs[i].list_map_keys = keys;
        }
    }
    qsort(fs, n, sizeof(*fs), field_cmp);
    t->fields = fs;
    t->nfields = n;
    return 0;
}

static int type_cmp(const void *a, const void *b)
{
    return strcmp((*(schema_type_t *const *)a)->name, (*(schema_type_t *const *)b)->name);
}

static int load_json(const char *text)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    if (!root)
        return SKIFF_EINVAL;
    int rc = SKIFF_EINVAL;
    json_t *types = json_object_get(root, "types");
    json_t *enums = json_object_get(root, "enums");
    if (json_integer_value(json_object_get(root, "format")) != 1 || !json_is_object(types))
        goto out;

    /* Pass 1: every named type exists before any field refers to it. */
    size_t n = json_object_size(types);
    /* Size the tables once: growing them while loading costs more than
     * the parse (about 10 distinct strings per type). */
    if (strmap_grow(&S.names, n * 2) < 0 || strmap_grow(&S.strings, n * 24) < 0 ||
        strmap_grow(&S.refs, n) < 0) {
        rc = SKIFF_ENOMEM;
        goto out;
    }
    S.sorted = calloc(n ? n : 1, sizeof(*S.sorted));
    if (!S.sorted) {
        rc = SKIFF_ENOMEM;
        goto out;
    }
    const char *name;
    json_t *def;
    json_object_foreach(types, name, def) {
        schema_type_t *t = arena_alloc(&S.arena, sizeof(*t));
        if (!t || !(t->name = intern(name))) {
            rc = SKIFF_ENOMEM;
            goto out;
        }
        const char *k = json_string_value(json_object_get(def, "k"));
        if (json_object_get(def, "f"))
            t->kind = SCHEMA_OBJECT;
        else if (!k || kind_from_name(k, &t->kind) < 0)
            goto out;
        const char *fmt = json_string_value(json_object_get(def, "fmt"));
        if (fmt)
            t->format = intern(fmt);
        const char *d = json_string_value(json_object_get(def, "d"));
        if (d)
            t->description = intern(d);
        if (strmap_put(&S.names, t->name, t) < 0) {
            rc = SKIFF_ENOMEM;
            goto out;
        }
        S.sorted[S.count++] = t;
    }
    /* Pass 2: fields. */
    for (size_t i = 0; i < S.count; i++) {
        schema_type_t *t = S.sorted[i];
        if (t->kind != SCHEMA_OBJECT)
            continue;
        rc = fill_fields(t, json_object_get(json_object_get(types, t->name), "f"), enums);
        if (rc < 0)
            goto out;
    }
    qsort(S.sorted, S.count, sizeof(*S.sorted), type_cmp);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int schema_load_builtin(void)
{
    if (S.loaded)
        return 0;
    int rc = load_json(skiff_schemas_json);
    if (rc < 0) {
        schema_unload();
        return rc;
    }
    S.loaded = 1;
    return 0;
}

void schema_unload(void)
{
    strmap_free(&S.names);
    strmap_free(&S.refs);
    strmap_free(&S.strings);
    free(S.sorted);
    arena_free(&S.arena);
    memset(&S, 0, sizeof(S));
}

const schema_type_t *schema_lookup(const char *name)
{
    if (!name)
        return NULL;
    return strmap_get(&S.names, name);
}

size_t schema_count(void)
{
    return S.count;
}

const schema_type_t *schema_at(size_t i)
{
    return i < S.count ? S.sorted[i] : NULL;
}

const schema_field_t *schema_field(const schema_type_t *t, const char *name)
{
    if (!t || !name || t->kind != SCHEMA_OBJECT)
        return NULL;
    size_t lo = 0, hi = t->nfields;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, t->fields[mid].name);
        if (c == 0)
            return &t->fields[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
