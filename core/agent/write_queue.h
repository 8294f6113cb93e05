/* core/agent/write_queue.h - the agent's writes to the API server, with a
 * bounded number in flight.
 *
 * An entry is only (kind, key): what to send is decided when a slot frees
 * up, from the owner's state at that moment, so a key queued twice is sent
 * once and always with its latest state. Failed writes come back after a
 * delay the owner chooses. The queue knows nothing of Kubernetes objects
 * and never touches the client itself. */
#ifndef SKIFF_AGENT_WRITE_QUEUE_H
#define SKIFF_AGENT_WRITE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct write_queue write_queue_t;
typedef struct write_op write_op_t;

typedef struct write_queue_ops {
    /* Sends the request for (kind, key) through the client with
     * write_queue_client_cb as callback and op as its data. Returns 0 when
     * a request went out, 1 when there is nothing to send any more, or a
     * negative SKIFF_E* code (retried after a second). */
    int (*start)(void *owner, int kind, const char *key, write_op_t *op);
    /* The answer (status 0: none came). Returns 0 when the entry is
     * finished, or a delay in ms after which it is sent again. */
    int64_t (*done)(void *owner, int kind, const char *key, int status, json_t *obj);
} write_queue_ops_t;

/* max_in_flight: requests waiting for an answer at most (>= 1). */
write_queue_t *write_queue_new(const write_queue_ops_t *ops, void *owner, size_t max_in_flight);
/* Frees entries that are queued or waiting to retry. Requests in flight
 * must have completed first (write_queue_in_flight() == 0). */
void write_queue_free(write_queue_t *q);

/* Queues (kind, key) unless it is queued already. 0 or SKIFF_ENOMEM. */
int write_queue_add(write_queue_t *q, int kind, const char *key);
/* The same ahead of entries added with write_queue_add (heartbeats must
 * not wait behind a backlog of pod status writes); while both wait, one
 * start in four still goes to the others, so they are never starved. */
int write_queue_add_urgent(write_queue_t *q, int kind, const char *key);
/* Starts what the free slots allow. */
void write_queue_pump(write_queue_t *q);
/* Moves retries whose time has come (now_ms, monotonic) back into the
 * queue and pumps. */
void write_queue_tick(write_queue_t *q, int64_t now_ms);
/* Drops everything queued or waiting to retry (requests in flight still
 * complete). */
void write_queue_clear(write_queue_t *q);

size_t write_queue_in_flight(const write_queue_t *q);
size_t write_queue_waiting(const write_queue_t *q); /* queued + retrying */
/* Totals since creation: requests sent, and answers that were failures
 * (status 0 or >= 400) as the owner's done reported them for retry. */
void write_queue_stats(const write_queue_t *q, uint64_t *sent, uint64_t *retried);

/* The skiff_client_cb to pass with op as data. */
void write_queue_client_cb(void *op, int status, json_t *obj);

#endif
