/* core/object/patch_json.c - JSON patch (RFC 6902) with JSON pointers (RFC 6901).
 *
 * Applies add, remove, replace, move, copy and test in order to a private
 * copy of the document; the first failing operation stops the patch and the
 * message names its index (from 0), its op and the path involved. This file
 * also holds the per-thread "why did the last patch fail" flag that the
 * three formats share. It must not know about schemas or HTTP. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#include "object/patch.h"

static _Thread_local int patch_last_invalid;

int patch_last_error_is_invalid_patch(void)
{
    return patch_last_invalid;
}

json_t *patch_fail_(int invalid_patch, char *err, size_t errlen, const char *fmt, ...)
{
    patch_last_invalid = invalid_patch ? 1 : 0;
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

/* A parsed JSON pointer: unescaped reference tokens. */
typedef struct jptr {
    char **tok;
    size_t n;
} jptr_t;

static void jptr_clear(jptr_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->tok[i]);
    free(p->tok);
    p->tok = NULL;
    p->n = 0;
}

/* 0, or -1 when s is not a JSON pointer (does not start with '/', or a
 * '~' is not followed by '0' or '1'). */
static int jptr_parse(const char *s, jptr_t *p)
{
    p->tok = NULL;
    p->n = 0;
    if (s[0] == '\0')
        return 0;
    if (s[0] != '/')
        return -1;
    size_t count = 0;
    for (const char *c = s; *c; c++)
        if (*c == '/')
            count++;
    p->tok = calloc(count, sizeof(*p->tok));
    if (!p->tok)
        return -1;
    const char *c = s + 1;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        char *t = malloc(len + 1);
        if (!t)
            goto fail;
        p->tok[p->n++] = t;
        size_t o = 0;
        for (size_t k = 0; k < len; k++) {
            if (c[k] != '~') {
                t[o++] = c[k];
                continue;
            }
            if (k + 1 < len && c[k + 1] == '0')
                t[o++] = '~';
            else if (k + 1 < len && c[k + 1] == '1')
                t[o++] = '/';
            else
                goto fail;
            k++;
        }
        t[o] = '\0';
        c = end ? end + 1 : c + len;
    }
    return 0;
fail:
    jptr_clear(p);
    return -1;
}

/* RFC 6901 array index: "0" or digits without a leading zero. */
static int parse_index(const char *t, size_t *out)
{
    if (!t[0] || (t[0] == '0' && t[1]))
        return -1;
    size_t v = 0;
    for (const char *c = t; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        if (v > ((size_t)-1 - 9) / 10)
            return -1;
        v = v * 10 + (size_t)(*c - '0');
    }
    *out = v;
    return 0;
}

/* Value reached by the first `upto` tokens, or NULL. */
static json_t *jptr_get(json_t *root, const jptr_t *p, size_t upto)
{
    json_t *cur = root;
    for (size_t i = 0; i < upto && cur; i++) {
        if (json_is_object(cur)) {
            cur = json_object_get(cur, p->tok[i]);
        } else if (json_is_array(cur)) {
            size_t idx;
            if (parse_index(p->tok[i], &idx) < 0 || idx >= json_array_size(cur))
                return NULL;
            cur = json_array_get(cur, idx);
        } else {
            return NULL;
        }
    }
    return cur;
}

/* Numbers compare by value (RFC 6902 section 4.6: 1 equals 1.0). */
static int values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            json_t *w = json_object_get(b, k);
            if (!w || !values_equal(v, w))
                return 0;
        }
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* The context of one operation, for messages. */
typedef struct op_ctx {
    size_t index;
    const char *op;
    char *err;
    size_t errlen;
} op_ctx_t;

static int op_fail(const op_ctx_t *o, int invalid_patch, const char *what, const char *path)
{
    patch_fail_(invalid_patch, o->err, o->errlen, "json patch operation %zu (%s): %s \"%s\"%s",
                o->index, o->op, what, path, invalid_patch ? "" : " does not exist");
    return -1;
}

static int op_missing(const op_ctx_t *o, const char *path)
{
    return op_fail(o, 0, "path", path);
}

/* Insert value (reference stolen) at p. */
static int do_add(json_t **root, const jptr_t *p, const char *path, json_t *value, const op_ctx_t *o)
{
    if (p->n == 0) {
        json_decref(*root);
        *root = value;
        return 0;
    }
    json_t *parent = jptr_get(*root, p, p->n - 1);
    const char *last = p->tok[p->n - 1];
    if (json_is_object(parent)) {
        if (json_object_set_new(parent, last, value) < 0)
            return op_fail(o, 1, "cannot set key at path", path);
        return 0;
    }
    if (json_is_array(parent)) {
        size_t idx, size = json_array_size(parent);
        if (strcmp(last, "-") == 0) {
            idx = size;
        } else if (parse_index(last, &idx) < 0 || idx > size) {
            json_decref(value);
            patch_fail_(0, o->err, o->errlen,
                        "json patch operation %zu (%s): path \"%s\": index \"%s\" is out of "
                        "range for an array of %zu items",
                        o->index, o->op, path, last, size);
            return -1;
        }
        json_array_insert_new(parent, idx, value);
        return 0;
    }
    json_decref(value);
    return op_missing(o, path);
}

/* Detach the value at p; *out receives it (a new reference) when not NULL. */
static int do_remove(json_t *root, const jptr_t *p, const char *path, json_t **out, const op_ctx_t *o)
{
    if (p->n == 0) {
        patch_fail_(0, o->err, o->errlen,
                    "json patch operation %zu (%s): the whole document cannot be removed",
                    o->index, o->op);
        return -1;
    }
    json_t *parent = jptr_get(root, p, p->n - 1);
    const char *last = p->tok[p->n - 1];
    json_t *v = NULL;
    if (json_is_object(parent)) {
        v = json_object_get(parent, last);
        if (!v)
            return op_missing(o, path);
        if (out)
            *out = json_incref(v);
        json_object_del(parent, last);
        return 0;
    }
    if (json_is_array(parent)) {
        size_t idx;
        if (parse_index(last, &idx) < 0 || idx >= json_array_size(parent))
            return op_missing(o, path);
        if (out)
            *out = json_incref(json_array_get(parent, idx));
        json_array_remove(parent, idx);
        return 0;
    }
    return op_missing(o, path);
}

static int do_replace(json_t **root, const jptr_t *p, const char *path, json_t *value,
                      const op_ctx_t *o)
{
    if (p->n == 0) {
        json_decref(*root);
        *root = value;
        return 0;
    }
    json_t *parent = jptr_get(*root, p, p->n - 1);
    const char *last = p->tok[p->n - 1];
    if (json_is_object(parent) && json_object_get(parent, last)) {
        json_object_set_new(parent, last, value);
        return 0;
    }
    size_t idx;
    if (json_is_array(parent) && parse_index(last, &idx) == 0 && idx < json_array_size(parent)) {
        json_array_set_new(parent, idx, value);
        return 0;
    }
    json_decref(value);
    return op_missing(o, path);
}

/* 1 when a is a proper prefix of b (a move into its own child). */
static int jptr_proper_prefix(const jptr_t *a, const jptr_t *b)
{
    if (a->n >= b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->tok[i], b->tok[i]) != 0)
            return 0;
    return 1;
}

static const char *const known_ops[] = {"add", "remove", "replace", "move", "copy", "test", NULL};

static int apply_one(json_t **root, const json_t *opv, size_t index, char *err, size_t errlen)
{
    op_ctx_t o = {index, "?", err, errlen};
    if (!json_is_object(opv)) {
        patch_fail_(1, err, errlen, "json patch operation %zu: must be an object", index);
        return -1;
    }
    const char *op = json_string_value(json_object_get(opv, "op"));
    if (!op) {
        patch_fail_(1, err, errlen, "json patch operation %zu: missing \"op\" (a string)", index);
        return -1;
    }
    int known = 0;
    for (size_t i = 0; known_ops[i]; i++)
        if (strcmp(op, known_ops[i]) == 0)
            known = 1;
    if (!known) {
        patch_fail_(1, err, errlen,
                    "json patch operation %zu: unknown op \"%.40s\" (want add, remove, replace, "
                    "move, copy or test)",
                    index, op);
        return -1;
    }
    o.op = op;
    const char *path = json_string_value(json_object_get(opv, "path"));
    if (!path) {
        patch_fail_(1, err, errlen, "json patch operation %zu (%s): missing \"path\" (a string)",
                    index, op);
        return -1;
    }
    int needs_from = !strcmp(op, "move") || !strcmp(op, "copy");
    int needs_value = !strcmp(op, "add") || !strcmp(op, "replace") || !strcmp(op, "test");
    const char *from = json_string_value(json_object_get(opv, "from"));
    json_t *value = json_object_get(opv, "value");
    if (needs_from && !from) {
        patch_fail_(1, err, errlen, "json patch operation %zu (%s): missing \"from\" (a string)",
                    index, op);
        return -1;
    }
    if (needs_value && !value) {
        patch_fail_(1, err, errlen, "json patch operation %zu (%s): missing \"value\"", index, op);
        return -1;
    }

    jptr_t p = {0}, f = {0};
    int rc = -1;
    if (jptr_parse(path, &p) < 0) {
        op_fail(&o, 1, "invalid JSON pointer", path);
        return -1;
    }
    if (needs_from && jptr_parse(from, &f) < 0) {
        op_fail(&o, 1, "invalid JSON pointer in \"from\":", from);
        goto out;
    }

    if (!strcmp(op, "add")) {
        json_t *v = skiff_json_copy(value);
        rc = v ? do_add(root, &p, path, v, &o) : op_fail(&o, 1, "out of memory at", path);
    } else if (!strcmp(op, "remove")) {
        rc = do_remove(*root, &p, path, NULL, &o);
    } else if (!strcmp(op, "replace")) {
        json_t *v = skiff_json_copy(value);
        rc = v ? do_replace(root, &p, path, v, &o) : op_fail(&o, 1, "out of memory at", path);
    } else if (!strcmp(op, "move")) {
        if (jptr_proper_prefix(&f, &p)) {
            patch_fail_(0, err, errlen,
                        "json patch operation %zu (move): \"from\" \"%s\" cannot be moved into "
                        "its own child \"%s\"",
                        index, from, path);
            goto out;
        }
        if (!jptr_get(*root, &f, f.n)) {
            patch_fail_(0, err, errlen,
                        "json patch operation %zu (move): from \"%s\" does not exist", index, from);
            goto out;
        }
        if (f.n == 0) {
            rc = 0; /* moving the root onto itself: "" is a prefix of every other path */
            goto out;
        }
        json_t *v = NULL;
        if (do_remove(*root, &f, from, &v, &o) < 0)
            goto out;
        rc = do_add(root, &p, path, v, &o);
    } else if (!strcmp(op, "copy")) {
        json_t *src = jptr_get(*root, &f, f.n);
        if (!src) {
            patch_fail_(0, err, errlen,
                        "json patch operation %zu (copy): from \"%s\" does not exist", index, from);
            goto out;
        }
        json_t *v = skiff_json_copy(src);
        rc = v ? do_add(root, &p, path, v, &o) : op_fail(&o, 1, "out of memory at", path);
    } else { /* test */
        json_t *cur = jptr_get(*root, &p, p.n);
        if (!cur) {
            op_missing(&o, path);
            goto out;
        }
        if (!values_equal(cur, value)) {
            char *have = json_dumps(cur, JSON_COMPACT | JSON_ENCODE_ANY);
            char *want = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            patch_fail_(0, err, errlen,
                        "json patch operation %zu (test): value at path \"%s\" is %.60s%s, not "
                        "%.60s%s",
                        index, path, have ? have : "?", have && strlen(have) > 60 ? "..." : "",
                        want ? want : "?", want && strlen(want) > 60 ? "..." : "");
            free(have);
            free(want);
            goto out;
        }
        rc = 0;
    }
out:
    jptr_clear(&p);
    jptr_clear(&f);
    return rc;
}

json_t *patch_json_apply(const json_t *doc, const json_t *patch, char *err, size_t errlen)
{
    patch_last_invalid = 0;
    if (!doc)
        return patch_fail_(1, err, errlen, "json patch: no document to patch");
    if (!json_is_array(patch))
        return patch_fail_(1, err, errlen,
                           "json patch: the patch must be a JSON array of operations");
    json_t *root = skiff_json_copy(doc);
    if (!root)
        return patch_fail_(1, err, errlen, "json patch: out of memory");
    size_t i;
    json_t *opv;
    json_array_foreach(patch, i, opv) {
        if (apply_one(&root, opv, i, err, errlen) < 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}
