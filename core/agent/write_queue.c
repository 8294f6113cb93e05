/* core/agent/write_queue.c - bounded, de-duplicated writes with retries. */
#include "agent/write_queue.h"

#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>
#include <uv.h>

#include "util/strmap.h"

struct write_op {
    write_queue_t *q;
    write_op_t *next;
    int kind;
    int urgent;
    int in_flight;
    int64_t due_ms; /* retries: when to queue again */
    char ident[];   /* "kind\x1fkey": the de-duplication key; the key follows the separator */
};

struct write_queue {
    const write_queue_ops_t *ops;
    void *owner;
    size_t max_in_flight, in_flight, queued, retrying;
    write_op_t *head[2], *tail[2]; /* FIFOs of queued ops: [1] urgent, [0] the rest */
    write_op_t *retry;       /* unsorted list of ops waiting for their due time */
    strmap_t *pending;       /* ident -> op, for queued ops only */
    uint64_t sent, retried;
    unsigned urgent_run; /* urgent entries started in a row while others waited */
    int pumping;
};

/* While both kinds wait, one start in URGENT_SHARE goes to a non-urgent
 * entry: urgent writes come first without starving the rest when the
 * server cannot keep up with them alone. */
#define URGENT_SHARE 4

static const char *op_key(const write_op_t *op)
{
    return strchr(op->ident, '\x1f') + 1;
}

static int64_t now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

write_queue_t *write_queue_new(const write_queue_ops_t *ops, void *owner, size_t max_in_flight)
{
    write_queue_t *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->ops = ops;
    q->owner = owner;
    q->max_in_flight = max_in_flight ? max_in_flight : 1;
    q->pending = strmap_new();
    if (!q->pending) {
        free(q);
        return NULL;
    }
    return q;
}

static void free_list(write_op_t *op)
{
    while (op) {
        write_op_t *next = op->next;
        free(op);
        op = next;
    }
}

void write_queue_clear(write_queue_t *q)
{
    for (int u = 0; u < 2; u++) {
        free_list(q->head[u]);
        q->head[u] = q->tail[u] = NULL;
    }
    free_list(q->retry);
    q->retry = NULL;
    q->queued = q->retrying = 0;
    strmap_free(q->pending, NULL);
    q->pending = strmap_new();
}

void write_queue_free(write_queue_t *q)
{
    if (!q) return;
    write_queue_clear(q);
    strmap_free(q->pending, NULL);
    free(q);
}

static void enqueue(write_queue_t *q, write_op_t *op)
{
    int u = op->urgent;
    op->next = NULL;
    if (q->tail[u]) q->tail[u]->next = op;
    else q->head[u] = op;
    q->tail[u] = op;
    q->queued++;
    strmap_put(q->pending, op->ident, op);
}

static int add(write_queue_t *q, int kind, const char *key, int urgent)
{
    char ident[512];
    int n = snprintf(ident, sizeof ident, "%d\x1f%s", kind, key);
    if (n < 0 || (size_t)n >= sizeof ident) return SKIFF_EINVAL;
    if (strmap_get(q->pending, ident)) return 0;
    write_op_t *op = calloc(1, sizeof *op + (size_t)n + 1);
    if (!op) return SKIFF_ENOMEM;
    op->q = q;
    op->kind = kind;
    op->urgent = urgent;
    memcpy(op->ident, ident, (size_t)n + 1);
    enqueue(q, op);
    return 0;
}

int write_queue_add(write_queue_t *q, int kind, const char *key)
{
    return add(q, kind, key, 0);
}

int write_queue_add_urgent(write_queue_t *q, int kind, const char *key)
{
    return add(q, kind, key, 1);
}

static void retry_later(write_queue_t *q, write_op_t *op, int64_t delay_ms)
{
    /* a newer entry for the same key already queued makes this one moot */
    if (strmap_get(q->pending, op->ident)) {
        free(op);
        return;
    }
    op->due_ms = now_ms() + delay_ms;
    op->next = q->retry;
    q->retry = op;
    q->retrying++;
    q->retried++;
}

void write_queue_pump(write_queue_t *q)
{
    if (q->pumping) return; /* start() may complete at once and call back in */
    q->pumping = 1;
    while ((q->head[1] || q->head[0]) && q->in_flight < q->max_in_flight) {
        int u = q->head[1] ? 1 : 0;
        if (u && q->head[0] && q->urgent_run + 1 >= URGENT_SHARE) u = 0;
        q->urgent_run = u && q->head[0] ? q->urgent_run + 1 : 0;
        write_op_t *op = q->head[u];
        q->head[u] = op->next;
        if (!q->head[u]) q->tail[u] = NULL;
        q->queued--;
        strmap_remove(q->pending, op->ident);
        op->in_flight = 1;
        q->in_flight++;
        int rc = q->ops->start(q->owner, op->kind, op_key(op), op);
        if (rc == 0) {
            q->sent++;
            continue;
        }
        q->in_flight--;
        op->in_flight = 0;
        if (rc > 0) free(op);
        else retry_later(q, op, 1000);
    }
    q->pumping = 0;
}

void write_queue_client_cb(void *data, int status, json_t *obj)
{
    write_op_t *op = data;
    write_queue_t *q = op->q;
    q->in_flight--;
    op->in_flight = 0;
    int64_t again = q->ops->done(q->owner, op->kind, op_key(op), status, obj);
    if (again > 0) retry_later(q, op, again);
    else free(op);
    write_queue_pump(q);
}

void write_queue_tick(write_queue_t *q, int64_t now)
{
    write_op_t **pp = &q->retry;
    while (*pp) {
        write_op_t *op = *pp;
        if (op->due_ms > now) {
            pp = &op->next;
            continue;
        }
        *pp = op->next;
        q->retrying--;
        if (strmap_get(q->pending, op->ident)) free(op);
        else enqueue(q, op);
    }
    write_queue_pump(q);
}

size_t write_queue_in_flight(const write_queue_t *q)
{
    return q->in_flight;
}

size_t write_queue_waiting(const write_queue_t *q)
{
    return q->queued + q->retrying;
}

void write_queue_stats(const write_queue_t *q, uint64_t *sent, uint64_t *retried)
{
    if (sent) *sent = q->sent;
    if (retried) *retried = q->retried;
}
