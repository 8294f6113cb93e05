/* core/http/limits.h - limits on abuse: a per-client token-bucket rate
 * limiter, in-flight request caps (mutating and read-only apart) and a
 * per-user cap on watches and other long-running requests.
 *
 * Every call is O(1), allocation-free after limits_new() and never blocks:
 * the client table has a fixed size and recycles its least recently used
 * entry, so a flood of distinct clients cannot exhaust memory. A refusal
 * carries what a 429 answer needs: the Retry-After seconds and a Kubernetes
 * Status body. The body and header size limits and slow-client timeouts
 * live in the HTTP server (core/http/server.c). */
#ifndef SKIFF_HTTP_LIMITS_H
#define SKIFF_HTTP_LIMITS_H

#include <stddef.h>
#include <stdint.h>

typedef struct limits_opts {
    double rate;              /* requests per second per client; 0: no rate limit */
    double burst;             /* bucket size (requests at once); < 1 means max(1, rate) */
    size_t max_clients;       /* client table size; 0: 4096 */
    unsigned max_mutating;    /* create/update/patch/delete in flight; 0: unlimited */
    unsigned max_readonly;    /* get/list in flight (not watches); 0: unlimited */
    unsigned max_watches_per_user; /* long-running per client; 0: unlimited */
} limits_opts_t;

/* How the request counts. Kubernetes' max-in-flight filter counts the same
 * way: long-running requests (watch, exec, logs -f, proxy) are not read-only
 * in-flight requests. */
typedef enum limits_kind {
    LIMITS_READONLY = 0,
    LIMITS_MUTATING = 1,
    LIMITS_LONG_RUNNING = 2,
} limits_kind_t;

typedef enum limits_reason {
    LIMITS_OK = 0,
    LIMITS_RATE,        /* the client's bucket is empty */
    LIMITS_INFLIGHT,    /* too many requests of that kind in flight */
    LIMITS_WATCHES,     /* the client has too many watches open */
    LIMITS_TABLE_FULL,  /* every table entry holds an open watch */
} limits_reason_t;

/* What admission took; the caller keeps it (in its request) and hands it to
 * limits_release() when the request is over. Zero-initialised means "none". */
typedef struct limits_ticket {
    int active;
    limits_kind_t kind;
    uint32_t entry; /* client table slot + 1 for long-running requests */
} limits_ticket_t;

typedef struct limits_refusal {
    limits_reason_t reason;
    unsigned retry_after; /* seconds, >= 1: the Retry-After header value */
} limits_refusal_t;

typedef struct limits limits_t;

/* 0, SKIFF_EINVAL (negative rate or burst) or SKIFF_ENOMEM. */
int limits_new(const limits_opts_t *opts, limits_t **out);
void limits_free(limits_t *l);

/* Clock in milliseconds (monotonic); default uv_hrtime(). For tests. */
void limits_set_clock(limits_t *l, uint64_t (*now_ms)(void *data), void *data);

/* The client key: "user:NAME" for an authenticated user, "ip:ADDR" when
 * anonymous (username NULL, "" or "system:anonymous"). Always
 * NUL-terminated; truncated to fit. */
void limits_client_key(const char *username, const char *source_ip, char *buf, size_t len);

/* Admits one request of client key, or refuses it. Returns 0 when
 * admitted (release the ticket exactly once when the request is over), 1 when
 * refused (*why filled; nothing is held), SKIFF_EINVAL on bad arguments. */
int limits_admit(limits_t *l, const char *key, limits_kind_t kind, limits_ticket_t *ticket,
                 limits_refusal_t *why);
/* Ends what the ticket holds; a zeroed or already released ticket is ignored. */
void limits_release(limits_t *l, limits_ticket_t *ticket);

/* The Kubernetes Status for a refusal, NUL-terminated in buf:
 * {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
 *  "message":"Too many requests, please try again later.",
 *  "reason":"TooManyRequests","details":{"retryAfterSeconds":N},"code":429}
 * Returns its length, or the length needed when buf is too small. */
size_t limits_status_json(const limits_refusal_t *why, char *buf, size_t len);

typedef struct limits_stats {
    unsigned inflight_mutating, inflight_readonly, long_running;
    size_t clients; /* table entries in use */
    uint64_t refused_rate, refused_inflight, refused_watches, evictions;
} limits_stats_t;
void limits_get_stats(const limits_t *l, limits_stats_t *out);

#endif
