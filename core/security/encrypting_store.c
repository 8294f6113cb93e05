/* core/security/encrypting_store.c - store decorator sealing values at rest. */
#include "security/encrypting_store.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"

typedef struct enc_store {
    skiff_store_t base;
    skiff_store_t *inner;
    const encryption_t *enc;
} enc_store_t;

struct skiff_store_watch {
    enc_store_t *s;
    skiff_store_watch_t *inner;
    skiff_store_watch_cb cb;
    void *data;
    int in_call; /* inside es_watch: the inner watch may end before it returns */
    int ended;
};

typedef struct pending {
    enc_store_t *s;
    union {
        skiff_store_write_cb write;
        skiff_store_get_cb get;
        skiff_store_range_cb range;
        skiff_store_compact_cb compact;
        void (*done)(void *);
    } cb;
    void *data;
} pending_t;

static pending_t *pending_new(enc_store_t *s, void *data)
{
    pending_t *p = calloc(1, sizeof *p);
    if (p) {
        p->s = s;
        p->data = data;
    }
    return p;
}

/* A copy of kv whose value is plaintext; *to_free holds what to release.
 * A value that cannot be opened is passed on as stored (and logged): the
 * caller then sees bytes it cannot decode rather than a silent gap. */
static skiff_kv_t opened(enc_store_t *s, const skiff_kv_t *kv, char **to_free)
{
    skiff_kv_t out = *kv;
    *to_free = NULL;
    if (!kv->value || !encryption_is_sealed(kv->value, kv->value_len)) return out;
    char err[256];
    char *plain = NULL;
    size_t n = 0;
    if (encryption_open_key(s->enc, kv->key, kv->value, kv->value_len, &plain, &n, err,
                            sizeof err) != 0) {
        log_error("encryption", "cannot decrypt %s: %s", kv->key, err);
        return out;
    }
    out.value = plain;
    out.value_len = n;
    *to_free = plain;
    return out;
}

static void on_write(void *data, int status, const skiff_kv_t *kv)
{
    pending_t *p = data;
    if (kv) {
        char *tf;
        skiff_kv_t o = opened(p->s, kv, &tf);
        p->cb.write(p->data, status, &o);
        free(tf);
    } else {
        p->cb.write(p->data, status, NULL);
    }
    free(p);
}

static int seal_and(enc_store_t *s, const char *key, const char *value, size_t len, char **sealed,
                    size_t *slen)
{
    *sealed = NULL;
    *slen = len;
    return encryption_seal_key(s->enc, key, value, len, sealed, slen);
}

/* create (expect < 0) or update: seal the value, then hand it on */
static int es_write(skiff_store_t *st, const char *key, const char *value, size_t len,
                    int64_t expect, skiff_store_write_cb cb, void *data)
{
    enc_store_t *s = (enc_store_t *)st;
    char *sealed;
    size_t slen;
    int rc = seal_and(s, key, value, len, &sealed, &slen);
    if (rc != 0) return rc;
    pending_t *p = pending_new(s, data);
    if (!p) {
        free(sealed);
        return SKIFF_ENOMEM;
    }
    p->cb.write = cb;
    const char *v = sealed ? sealed : value;
    size_t n = sealed ? slen : len;
    rc = expect < 0 ? s->inner->vt->create(s->inner, key, v, n, on_write, p)
                    : s->inner->vt->update(s->inner, key, v, n, expect, on_write, p);
    free(sealed);
    if (rc != 0) free(p);
    return rc;
}

static int es_create(skiff_store_t *st, const char *key, const char *value, size_t len,
                     skiff_store_write_cb cb, void *data)
{
    return es_write(st, key, value, len, -1, cb, data);
}

static int es_update(skiff_store_t *st, const char *key, const char *value, size_t len,
                     int64_t expect, skiff_store_write_cb cb, void *data)
{
    return es_write(st, key, value, len, expect, cb, data);
}

static int es_remove(skiff_store_t *st, const char *key, int64_t expect, skiff_store_write_cb cb,
                     void *data)
{
    enc_store_t *s = (enc_store_t *)st;
    pending_t *p = pending_new(s, data);
    if (!p) return SKIFF_ENOMEM;
    p->cb.write = cb;
    int rc = s->inner->vt->remove(s->inner, key, expect, on_write, p);
    if (rc != 0) free(p);
    return rc;
}

static void on_get(void *data, int status, const skiff_kv_t *kv)
{
    pending_t *p = data;
    if (kv) {
        char *tf;
        skiff_kv_t o = opened(p->s, kv, &tf);
        p->cb.get(p->data, status, &o);
        free(tf);
    } else {
        p->cb.get(p->data, status, NULL);
    }
    free(p);
}

static int es_get(skiff_store_t *st, const char *key, int64_t rev, skiff_store_get_cb cb,
                  void *data)
{
    enc_store_t *s = (enc_store_t *)st;
    pending_t *p = pending_new(s, data);
    if (!p) return SKIFF_ENOMEM;
    p->cb.get = cb;
    int rc = s->inner->vt->get(s->inner, key, rev, on_get, p);
    if (rc != 0) free(p);
    return rc;
}

static void on_range(void *data, int status, const skiff_kv_t *kvs, size_t n, int more,
                     int64_t rev)
{
    pending_t *p = data;
    skiff_kv_t *copy = n ? malloc(n * sizeof *copy) : NULL;
    char **frees = n ? calloc(n, sizeof *frees) : NULL;
    if (n && (!copy || !frees)) {
        free(copy);
        free(frees);
        p->cb.range(p->data, SKIFF_ENOMEM, NULL, 0, 0, rev);
        free(p);
        return;
    }
    for (size_t i = 0; i < n; i++) copy[i] = opened(p->s, &kvs[i], &frees[i]);
    p->cb.range(p->data, status, copy, n, more, rev);
    for (size_t i = 0; i < n; i++) free(frees[i]);
    free(frees);
    free(copy);
    free(p);
}

static int es_range(skiff_store_t *st, const char *start, const char *end, int64_t limit,
                    int64_t rev, skiff_store_range_cb cb, void *data)
{
    enc_store_t *s = (enc_store_t *)st;
    pending_t *p = pending_new(s, data);
    if (!p) return SKIFF_ENOMEM;
    p->cb.range = cb;
    int rc = s->inner->vt->range(s->inner, start, end, limit, rev, on_range, p);
    if (rc != 0) free(p);
    return rc;
}

/* The watch is over (a final status was delivered): free it, unless
 * es_watch is still on the stack, which frees it on return. */
static void watch_over(skiff_store_watch_t *w)
{
    if (w->in_call) w->ended = 1;
    else free(w);
}

static void on_events(void *data, int status, const skiff_store_event_t *ev, size_t n)
{
    skiff_store_watch_t *w = data;
    if (status != 0 || n == 0) {
        w->cb(w->data, status, ev, n);
        if (status != 0) watch_over(w); /* final: no call follows */
        return;
    }
    skiff_store_event_t *copy = malloc(n * sizeof *copy);
    char **frees = calloc(2 * n, sizeof *frees);
    if (!copy || !frees) {
        free(copy);
        free(frees);
        /* cannot decrypt these events: end the watch rather than skip them */
        w->s->inner->vt->watch_cancel(w->inner);
        w->cb(w->data, SKIFF_ENOMEM, NULL, 0);
        watch_over(w);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        copy[i] = ev[i];
        copy[i].kv = opened(w->s, &ev[i].kv, &frees[2 * i]);
        copy[i].prev = opened(w->s, &ev[i].prev, &frees[2 * i + 1]);
    }
    w->cb(w->data, 0, copy, n);
    for (size_t i = 0; i < 2 * n; i++) free(frees[i]);
    free(frees);
    free(copy);
}

static int es_watch(skiff_store_t *st, const char *prefix, int64_t after, skiff_store_watch_cb cb,
                    void *data, skiff_store_watch_t **out)
{
    enc_store_t *s = (enc_store_t *)st;
    skiff_store_watch_t *w = calloc(1, sizeof *w);
    if (!w) return SKIFF_ENOMEM;
    w->s = s;
    w->cb = cb;
    w->data = data;
    *out = w; /* known before any event: the callback may run during the call */
    w->in_call = 1;
    int rc = s->inner->vt->watch(s->inner, prefix, after, on_events, w, &w->inner);
    w->in_call = 0;
    if (rc != 0 || w->ended) {
        /* refused, or over already (its final status was delivered) */
        free(w);
        *out = NULL;
    }
    return rc;
}

static void es_watch_cancel(skiff_store_watch_t *w)
{
    if (!w) return;
    w->s->inner->vt->watch_cancel(w->inner);
    free(w);
}

static void on_compact(void *data, int status)
{
    pending_t *p = data;
    p->cb.compact(p->data, status);
    free(p);
}

static int es_compact(skiff_store_t *st, int64_t rev, skiff_store_compact_cb cb, void *data)
{
    enc_store_t *s = (enc_store_t *)st;
    pending_t *p = pending_new(s, data);
    if (!p) return SKIFF_ENOMEM;
    p->cb.compact = cb;
    int rc = s->inner->vt->compact(s->inner, rev, on_compact, p);
    if (rc != 0) free(p);
    return rc;
}

static int64_t es_revision(skiff_store_t *st)
{
    enc_store_t *s = (enc_store_t *)st;
    return s->inner->vt->revision(s->inner);
}

static int64_t es_compacted(skiff_store_t *st)
{
    enc_store_t *s = (enc_store_t *)st;
    return s->inner->vt->compacted_revision(s->inner);
}

typedef struct closing {
    enc_store_t *s;
    void (*done)(void *);
    void *data;
} closing_t;

static void on_inner_closed(void *data)
{
    closing_t *cl = data;
    void (*done)(void *) = cl->done;
    void *dd = cl->data;
    free(cl->s); /* only now: writes completing during the close still used it */
    free(cl);
    if (done) done(dd);
}

static void es_close(skiff_store_t *st, void (*done)(void *), void *data)
{
    enc_store_t *s = (enc_store_t *)st;
    closing_t *cl = malloc(sizeof *cl);
    if (!cl) {
        /* cannot wait for the inner store: keep the wrapper (a small leak
         * at shutdown beats a use-after-free) */
        s->inner->vt->close(s->inner, done, data);
        return;
    }
    cl->s = s;
    cl->done = done;
    cl->data = data;
    s->inner->vt->close(s->inner, on_inner_closed, cl);
}

static int es_open(skiff_plugin_ctx_t *ctx, const char *location, skiff_store_t **out)
{
    return SKIFF_ENOTSUP; /* made with encrypting_store_new, not opened */
}

static const skiff_store_vtable_t enc_vt = {
    .open = es_open,
    .close = es_close,
    .create = es_create,
    .update = es_update,
    .remove = es_remove,
    .get = es_get,
    .range = es_range,
    .watch = es_watch,
    .watch_cancel = es_watch_cancel,
    .compact = es_compact,
    .revision = es_revision,
    .compacted_revision = es_compacted,
};

int encrypting_store_new(skiff_store_t *inner, const encryption_t *e, skiff_store_t **out)
{
    enc_store_t *s = calloc(1, sizeof *s);
    if (!s) return SKIFF_ENOMEM;
    s->base.vt = &enc_vt;
    s->inner = inner;
    s->enc = e;
    *out = &s->base;
    return 0;
}
