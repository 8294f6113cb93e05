/* core/http/limits.c - per-client token buckets, in-flight caps and per-user
 * watch caps, in a fixed-size table.
 *
 * The table is allocated once: a bucket array of chains keyed by a seeded
 * SipHash (so clients cannot choose keys that collide) and an LRU list of
 * entries. A new client takes a free entry or recycles the least recently
 * used one; entries holding open watches leave the LRU list while they do,
 * so their counts are never lost, and when every entry holds a watch new
 * clients are refused instead of growing the table. Nothing here allocates,
 * waits or loops over the table after limits_new(). */
#include "http/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <uv.h>

#include <skiff/errors.h>

#define LIMITS_KEY_MAX 128
#define LIMITS_DEFAULT_CLIENTS 4096
#define LIMITS_MAX_CLIENTS (1u << 24)
#define NIL 0u /* slot links are index + 1; 0 ends a list */

static const char TOO_MANY[] = "Too many requests, please try again later.";

typedef struct entry {
    char key[LIMITS_KEY_MAX];
    uint64_t hash;
    double tokens;
    uint64_t last_ms;
    uint32_t watches;
    uint32_t chain; /* next in the bucket chain, or in the free list */
    uint32_t prev, next; /* LRU neighbours; head is the most recent */
} entry_t;

struct limits {
    limits_opts_t o;
    entry_t *e;
    uint32_t n_entries;
    uint32_t *buckets;
    uint32_t mask;
    uint32_t lru_head, lru_tail, free_list;
    size_t used;
    uint64_t k0, k1;
    uint64_t (*now_ms)(void *);
    void *now_data;
    unsigned inflight_mutating, inflight_readonly, long_running;
    uint64_t refused_rate, refused_inflight, refused_watches, evictions;
};

/* --- SipHash-2-4 ------------------------------------------------------------ */

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
    v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
    v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
    v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

static uint64_t siphash(uint64_t k0, uint64_t k1, const unsigned char *p, size_t len)
{
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i <= full; i += 8) {
        uint64_t m = 0;
        if (i < full) {
            for (int j = 7; j >= 0; j--) m = (m << 8) | p[i + (size_t)j];
        } else {
            /* Last block: the tail bytes and the length's low byte on top. */
            m = (uint64_t)len << 56;
            for (size_t j = 0; j < (len & 7); j++) m |= (uint64_t)p[full + j] << (8 * j);
        }
        v[3] ^= m;
        sip_round(v);
        sip_round(v);
        v[0] ^= m;
    }
    v[2] ^= 0xff;
    for (int r = 0; r < 4; r++) sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* --- clock ------------------------------------------------------------------ */

static uint64_t default_now_ms(void *data) { return uv_hrtime() / 1000000u; }

void limits_set_clock(limits_t *l, uint64_t (*now_ms)(void *data), void *data)
{
    if (!l) return;
    l->now_ms = now_ms ? now_ms : default_now_ms;
    l->now_data = now_ms ? data : NULL;
}

/* --- life cycle -------------------------------------------------------------- */

int limits_new(const limits_opts_t *opts, limits_t **out)
{
    if (!opts || !out || !(opts->rate >= 0) || isinf(opts->rate) || isnan(opts->burst) ||
        isinf(opts->burst))
        return SKIFF_EINVAL;
    limits_t *l = calloc(1, sizeof *l);
    if (!l) return SKIFF_ENOMEM;
    l->o = *opts;
    if (l->o.burst < 1) l->o.burst = l->o.rate > 1 ? l->o.rate : 1;
    size_t n = opts->max_clients ? opts->max_clients : LIMITS_DEFAULT_CLIENTS;
    if (n > LIMITS_MAX_CLIENTS) n = LIMITS_MAX_CLIENTS;
    uint32_t nb = 16;
    while (nb < 2 * n) nb <<= 1;
    l->n_entries = (uint32_t)n;
    l->e = calloc(n, sizeof *l->e);
    l->buckets = calloc(nb, sizeof *l->buckets);
    if (!l->e || !l->buckets) {
        limits_free(l);
        return SKIFF_ENOMEM;
    }
    l->mask = nb - 1;
    for (uint32_t i = 0; i < n; i++) l->e[i].chain = i + 2 <= n ? i + 2 : NIL;
    l->free_list = 1;
    unsigned char seed[16];
    if (RAND_bytes(seed, sizeof seed) != 1) {
        /* Without entropy the table still works; only collision resistance suffers. */
        uint64_t t = uv_hrtime();
        memcpy(seed, &t, sizeof t);
        memcpy(seed + 8, &l, sizeof l < 8 ? sizeof l : 8);
    }
    memcpy(&l->k0, seed, 8);
    memcpy(&l->k1, seed + 8, 8);
    l->now_ms = default_now_ms;
    *out = l;
    return 0;
}

void limits_free(limits_t *l)
{
    if (!l) return;
    free(l->e);
    free(l->buckets);
    free(l);
}

/* --- the table --------------------------------------------------------------- */

static entry_t *E(limits_t *l, uint32_t link) { return &l->e[link - 1]; }

static void lru_unlink(limits_t *l, uint32_t s)
{
    entry_t *x = E(l, s);
    if (x->prev) E(l, x->prev)->next = x->next;
    else l->lru_head = x->next;
    if (x->next) E(l, x->next)->prev = x->prev;
    else l->lru_tail = x->prev;
    x->prev = x->next = NIL;
}

static void lru_push_head(limits_t *l, uint32_t s)
{
    entry_t *x = E(l, s);
    x->prev = NIL;
    x->next = l->lru_head;
    if (l->lru_head) E(l, l->lru_head)->prev = s;
    l->lru_head = s;
    if (!l->lru_tail) l->lru_tail = s;
}

static void chain_remove(limits_t *l, uint32_t s)
{
    uint32_t *pp = &l->buckets[E(l, s)->hash & l->mask];
    while (*pp && *pp != s) pp = &E(l, *pp)->chain;
    if (*pp) *pp = E(l, s)->chain;
    E(l, s)->chain = NIL;
}

/* Long keys keep a prefix and the hash of the whole key, so the table's
 * memory does not depend on what clients send. */
static void normalise_key(const limits_t *l, const char *key, char *out, uint64_t *hash)
{
    size_t n = strlen(key);
    if (n < LIMITS_KEY_MAX) {
        memcpy(out, key, n + 1);
    } else {
        uint64_t h = siphash(l->k0, l->k1, (const unsigned char *)key, n);
        size_t keep = LIMITS_KEY_MAX - 18;
        memcpy(out, key, keep);
        snprintf(out + keep, 18, "#%016llx", (unsigned long long)h);
        n = LIMITS_KEY_MAX - 1;
    }
    *hash = siphash(l->k0, l->k1, (const unsigned char *)out, n);
}

/* The slot link of key, created (taking a free or the least recently used
 * entry) when missing; NIL when every entry is pinned by open watches. */
static uint32_t lookup(limits_t *l, const char *key, uint64_t now)
{
    char k[LIMITS_KEY_MAX];
    uint64_t h;
    normalise_key(l, key, k, &h);
    uint32_t *bucket = &l->buckets[h & l->mask];
    for (uint32_t s = *bucket; s; s = E(l, s)->chain) {
        entry_t *x = E(l, s);
        if (x->hash == h && strcmp(x->key, k) == 0) {
            if (x->watches == 0) {
                lru_unlink(l, s);
                lru_push_head(l, s);
            }
            return s;
        }
    }
    uint32_t s;
    if (l->free_list) {
        s = l->free_list;
        l->free_list = E(l, s)->chain;
        l->used++;
    } else if (l->lru_tail) {
        s = l->lru_tail;
        lru_unlink(l, s);
        chain_remove(l, s);
        l->evictions++;
    } else {
        return NIL;
    }
    entry_t *x = E(l, s);
    memset(x, 0, sizeof *x);
    memcpy(x->key, k, sizeof k);
    x->hash = h;
    x->tokens = l->o.burst;
    x->last_ms = now;
    x->chain = *bucket;
    *bucket = s;
    lru_push_head(l, s);
    return s;
}

/* --- admission --------------------------------------------------------------- */

static int refuse(limits_refusal_t *why, limits_reason_t r, unsigned retry_after)
{
    if (why) {
        why->reason = r;
        why->retry_after = retry_after ? retry_after : 1;
    }
    return 1;
}

void limits_client_key(const char *username, const char *source_ip, char *buf, size_t len)
{
    if (!buf || !len) return;
    if (username && *username && strcmp(username, "system:anonymous") != 0)
        snprintf(buf, len, "user:%s", username);
    else
        snprintf(buf, len, "ip:%s", source_ip ? source_ip : "");
}

int limits_admit(limits_t *l, const char *key, limits_kind_t kind, limits_ticket_t *ticket,
                 limits_refusal_t *why)
{
    if (!l || !key || !ticket || (unsigned)kind > LIMITS_LONG_RUNNING) return SKIFF_EINVAL;
    memset(ticket, 0, sizeof *ticket);
    if (why) memset(why, 0, sizeof *why);
    /* In-flight caps first: they need no table entry. Kubernetes answers
     * these with Retry-After: 1. */
    if (kind == LIMITS_MUTATING && l->o.max_mutating &&
        l->inflight_mutating >= l->o.max_mutating) {
        l->refused_inflight++;
        return refuse(why, LIMITS_INFLIGHT, 1);
    }
    if (kind == LIMITS_READONLY && l->o.max_readonly &&
        l->inflight_readonly >= l->o.max_readonly) {
        l->refused_inflight++;
        return refuse(why, LIMITS_INFLIGHT, 1);
    }
    int need_watch = kind == LIMITS_LONG_RUNNING && l->o.max_watches_per_user;
    uint32_t s = NIL;
    if (l->o.rate > 0 || need_watch) {
        uint64_t now = l->now_ms(l->now_data);
        s = lookup(l, key, now);
        if (!s) {
            l->refused_watches++;
            return refuse(why, LIMITS_TABLE_FULL, 1);
        }
        entry_t *x = E(l, s);
        if (need_watch && x->watches >= l->o.max_watches_per_user) {
            l->refused_watches++;
            return refuse(why, LIMITS_WATCHES, 1);
        }
        if (l->o.rate > 0) {
            if (now > x->last_ms) {
                x->tokens += (double)(now - x->last_ms) * l->o.rate / 1000.0;
                if (x->tokens > l->o.burst) x->tokens = l->o.burst;
            }
            x->last_ms = now > x->last_ms ? now : x->last_ms;
            /* The slack absorbs rounding: 500 ms at 2/s is one whole token. */
            if (x->tokens < 1.0 - 1e-9) {
                double wait = (1.0 - x->tokens) / l->o.rate;
                l->refused_rate++;
                return refuse(why, LIMITS_RATE,
                              wait > 1e6 ? 1000000u : (unsigned)ceil(wait - 1e-9));
            }
            x->tokens = x->tokens > 1.0 ? x->tokens - 1.0 : 0.0;
        }
    }
    switch (kind) {
    case LIMITS_MUTATING: l->inflight_mutating++; break;
    case LIMITS_READONLY: l->inflight_readonly++; break;
    case LIMITS_LONG_RUNNING:
        l->long_running++;
        if (need_watch) {
            entry_t *x = E(l, s);
            /* Pinned: out of the LRU list until its last watch ends. */
            if (x->watches++ == 0) lru_unlink(l, s);
            ticket->entry = s;
        }
        break;
    }
    ticket->active = 1;
    ticket->kind = kind;
    return 0;
}

void limits_release(limits_t *l, limits_ticket_t *ticket)
{
    if (!l || !ticket || !ticket->active) return;
    switch (ticket->kind) {
    case LIMITS_MUTATING:
        if (l->inflight_mutating) l->inflight_mutating--;
        break;
    case LIMITS_READONLY:
        if (l->inflight_readonly) l->inflight_readonly--;
        break;
    case LIMITS_LONG_RUNNING:
        if (l->long_running) l->long_running--;
        if (ticket->entry && ticket->entry <= l->n_entries) {
            entry_t *x = E(l, ticket->entry);
            if (x->watches && --x->watches == 0) lru_push_head(l, ticket->entry);
        }
        break;
    }
    memset(ticket, 0, sizeof *ticket);
}

size_t limits_status_json(const limits_refusal_t *why, char *buf, size_t len)
{
    unsigned secs = why && why->retry_after ? why->retry_after : 1;
    int n = snprintf(buf, len,
                     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                     "\"status\":\"Failure\",\"message\":\"%s\",\"reason\":\"TooManyRequests\","
                     "\"details\":{\"retryAfterSeconds\":%u},\"code\":429}",
                     TOO_MANY, secs);
    return n < 0 ? 0 : (size_t)n;
}

void limits_get_stats(const limits_t *l, limits_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!l) return;
    out->inflight_mutating = l->inflight_mutating;
    out->inflight_readonly = l->inflight_readonly;
    out->long_running = l->long_running;
    out->clients = l->used;
    out->refused_rate = l->refused_rate;
    out->refused_inflight = l->refused_inflight;
    out->refused_watches = l->refused_watches;
    out->evictions = l->evictions;
}
