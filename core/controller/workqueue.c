/* core/controller/workqueue.c - the controllers' work queue: string keys,
 * de-duplicated while they wait, never handed out twice at once, delayed
 * adds and per-key exponential back-off behind an optional token bucket,
 * with client-go's workqueue semantics (dirty / processing sets).
 *
 * It only orders keys; it knows nothing of objects or reconciles. Time is
 * the loop's clock (uv_now). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>

typedef struct wq_node {
    struct wq_node *next;
    char key[];
} wq_node_t;

typedef struct wq_delayed {
    uint64_t when;
    char *key;
} wq_delayed_t;

struct skiff_workqueue {
    uv_loop_t *loop;
    int64_t base_ms, max_ms;
    double qps;
    double burst;
    double tokens;
    uint64_t tokens_at;
    void (*on_ready)(void *data);
    void *data;
    wq_node_t *head, *tail; /* waiting, in order */
    size_t len;
    json_t *dirty;      /* key -> true: waiting (or to re-run after processing) */
    json_t *processing; /* key -> integer: node address handed out by get */
    json_t *failures;   /* key -> integer */
    json_t *delay_when; /* key -> earliest pending add_after time */
    wq_delayed_t *heap;
    size_t heap_len, heap_cap;
    uv_idle_t idle;
    uv_timer_t timer;
    int shut;
    int closing;
};

/* ---- delayed keys: a min-heap on time ------------------------------------- */

static void heap_swap(wq_delayed_t *a, wq_delayed_t *b)
{
    wq_delayed_t t = *a;
    *a = *b;
    *b = t;
}

static int heap_push(skiff_workqueue_t *q, uint64_t when, const char *key)
{
    if (q->heap_len == q->heap_cap) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 16;
        wq_delayed_t *h = realloc(q->heap, cap * sizeof *h);
        if (!h) return SKIFF_ENOMEM;
        q->heap = h;
        q->heap_cap = cap;
    }
    char *k = strdup(key);
    if (!k) return SKIFF_ENOMEM;
    size_t i = q->heap_len++;
    q->heap[i].when = when;
    q->heap[i].key = k;
    while (i > 0 && q->heap[(i - 1) / 2].when > q->heap[i].when) {
        heap_swap(&q->heap[(i - 1) / 2], &q->heap[i]);
        i = (i - 1) / 2;
    }
    return 0;
}

static wq_delayed_t heap_pop(skiff_workqueue_t *q)
{
    wq_delayed_t top = q->heap[0];
    q->heap[0] = q->heap[--q->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->heap_len && q->heap[l].when < q->heap[m].when) m = l;
        if (r < q->heap_len && q->heap[r].when < q->heap[m].when) m = r;
        if (m == i) break;
        heap_swap(&q->heap[i], &q->heap[m]);
        i = m;
    }
    return top;
}

static void arm_timer(skiff_workqueue_t *q);

static void on_timer(uv_timer_t *t)
{
    skiff_workqueue_t *q = t->data;
    uint64_t now = uv_now(q->loop);
    while (q->heap_len && q->heap[0].when <= now) {
        wq_delayed_t d = heap_pop(q);
        json_t *w = json_object_get(q->delay_when, d.key);
        /* an entry replaced by an earlier one for the same key is stale */
        if (w && (uint64_t)json_integer_value(w) == d.when) {
            json_object_del(q->delay_when, d.key);
            skiff_workqueue_add(q, d.key);
        }
        free(d.key);
    }
    arm_timer(q);
}

static void arm_timer(skiff_workqueue_t *q)
{
    if (q->closing) return;
    if (!q->heap_len) {
        uv_timer_stop(&q->timer);
        return;
    }
    uint64_t now = uv_now(q->loop);
    uint64_t when = q->heap[0].when;
    uv_timer_start(&q->timer, on_timer, when > now ? when - now : 0, 0);
}

/* ---- readiness -------------------------------------------------------------------- */

static void on_idle(uv_idle_t *h)
{
    skiff_workqueue_t *q = h->data;
    uv_idle_stop(&q->idle);
    if (q->on_ready && q->len && !q->shut) q->on_ready(q->data);
}

void skiff_workqueue_kick(skiff_workqueue_t *q)
{
    if (!q || q->closing || q->shut) return;
    uv_idle_start(&q->idle, on_idle);
}

/* ---- life cycle --------------------------------------------------------------------- */

int skiff_workqueue_new(uv_loop_t *loop, const skiff_workqueue_opts_t *opts,
                        void (*on_ready)(void *data), void *data, skiff_workqueue_t **out)
{
    if (!loop || !out) return SKIFF_EINVAL;
    skiff_workqueue_t *q = calloc(1, sizeof *q);
    if (!q) return SKIFF_ENOMEM;
    q->loop = loop;
    q->base_ms = opts && opts->base_delay_ms > 0 ? opts->base_delay_ms : 5;
    q->max_ms = opts && opts->max_delay_ms > 0 ? opts->max_delay_ms : 1000 * 1000;
    q->qps = opts && opts->qps > 0 ? opts->qps : 0;
    q->burst = opts && opts->burst > 0 ? opts->burst : 1;
    q->tokens = q->burst;
    q->tokens_at = uv_now(loop);
    q->on_ready = on_ready;
    q->data = data;
    q->dirty = json_object();
    q->processing = json_object();
    q->failures = json_object();
    q->delay_when = json_object();
    if (!q->dirty || !q->processing || !q->failures || !q->delay_when) goto fail;
    uv_idle_init(loop, &q->idle);
    q->idle.data = q;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    *out = q;
    return 0;
fail:
    json_decref(q->dirty);
    json_decref(q->processing);
    json_decref(q->failures);
    json_decref(q->delay_when);
    free(q);
    return SKIFF_ENOMEM;
}

static void drop_waiting(skiff_workqueue_t *q)
{
    while (q->head) {
        wq_node_t *n = q->head;
        q->head = n->next;
        free(n);
    }
    q->tail = NULL;
    q->len = 0;
    json_object_clear(q->dirty);
    while (q->heap_len) free(heap_pop(q).key);
    json_object_clear(q->delay_when);
}

void skiff_workqueue_shut_down(skiff_workqueue_t *q)
{
    if (!q || q->shut) return;
    q->shut = 1;
    drop_waiting(q);
    uv_timer_stop(&q->timer);
    uv_idle_stop(&q->idle);
}

static void on_closed(uv_handle_t *h)
{
    skiff_workqueue_t *q = h->data;
    if (++q->closing < 3) return; /* the idle and the timer */
    /* keys still handed out */
    const char *k;
    json_t *v;
    json_object_foreach(q->processing, k, v) free((void *)(uintptr_t)json_integer_value(v));
    json_decref(q->dirty);
    json_decref(q->processing);
    json_decref(q->failures);
    json_decref(q->delay_when);
    free(q->heap);
    free(q);
}

void skiff_workqueue_free(skiff_workqueue_t *q)
{
    if (!q || q->closing) return;
    skiff_workqueue_shut_down(q);
    q->closing = 1;
    uv_close((uv_handle_t *)&q->idle, on_closed);
    uv_close((uv_handle_t *)&q->timer, on_closed);
}

/* ---- keys ---------------------------------------------------------------------------------- */

static int enqueue(skiff_workqueue_t *q, const char *key)
{
    size_t n = strlen(key);
    wq_node_t *node = malloc(sizeof *node + n + 1);
    if (!node) return SKIFF_ENOMEM;
    node->next = NULL;
    memcpy(node->key, key, n + 1);
    if (q->tail) q->tail->next = node;
    else q->head = node;
    q->tail = node;
    q->len++;
    skiff_workqueue_kick(q);
    return 0;
}

int skiff_workqueue_add(skiff_workqueue_t *q, const char *key)
{
    if (!q || !key) return SKIFF_EINVAL;
    if (q->shut) return SKIFF_ECLOSED;
    if (json_object_get(q->dirty, key)) return 0;
    if (json_object_set_new_nocheck(q->dirty, key, json_true()) != 0) return SKIFF_ENOMEM;
    /* being processed: done() queues it again */
    if (json_object_get(q->processing, key)) return 0;
    int e = enqueue(q, key);
    if (e < 0) json_object_del(q->dirty, key);
    return e;
}

int skiff_workqueue_add_after(skiff_workqueue_t *q, const char *key, int64_t delay_ms)
{
    if (!q || !key) return SKIFF_EINVAL;
    if (q->shut) return SKIFF_ECLOSED;
    if (delay_ms <= 0) return skiff_workqueue_add(q, key);
    uint64_t when = uv_now(q->loop) + (uint64_t)delay_ms;
    json_t *w = json_object_get(q->delay_when, key);
    if (w && (uint64_t)json_integer_value(w) <= when) return 0;
    if (json_object_set_new_nocheck(q->delay_when, key, json_integer((json_int_t)when)) != 0)
        return SKIFF_ENOMEM;
    int e = heap_push(q, when, key);
    if (e < 0) {
        json_object_del(q->delay_when, key);
        return e;
    }
    arm_timer(q);
    return 0;
}

/* Reserves one token: how long until it is ours (0 when one is there). */
static int64_t bucket_wait(skiff_workqueue_t *q)
{
    if (q->qps <= 0) return 0;
    uint64_t now = uv_now(q->loop);
    q->tokens += (double)(now - q->tokens_at) * q->qps / 1000.0;
    if (q->tokens > q->burst) q->tokens = q->burst;
    q->tokens_at = now;
    q->tokens -= 1;
    if (q->tokens >= 0) return 0;
    return (int64_t)ceil(-q->tokens * 1000.0 / q->qps);
}

int64_t skiff_workqueue_add_rate_limited(skiff_workqueue_t *q, const char *key)
{
    if (!q || !key) return SKIFF_EINVAL;
    if (q->shut) return SKIFF_ECLOSED;
    json_t *f = json_object_get(q->failures, key);
    int64_t n = f ? json_integer_value(f) : 0;
    int64_t d = q->base_ms;
    for (int64_t i = 0; i < n && d < q->max_ms; i++) d *= 2;
    if (d > q->max_ms) d = q->max_ms;
    if (json_object_set_new_nocheck(q->failures, key, json_integer(n + 1)) != 0)
        return SKIFF_ENOMEM;
    int64_t b = bucket_wait(q);
    if (b > d) d = b;
    int e = skiff_workqueue_add_after(q, key, d);
    return e < 0 ? e : d;
}

void skiff_workqueue_forget(skiff_workqueue_t *q, const char *key)
{
    if (q && key) json_object_del(q->failures, key);
}

int skiff_workqueue_num_requeues(const skiff_workqueue_t *q, const char *key)
{
    json_t *f = q && key ? json_object_get(q->failures, key) : NULL;
    return f ? (int)json_integer_value(f) : 0;
}

int skiff_workqueue_get(skiff_workqueue_t *q, const char **key)
{
    if (!q || !key) return SKIFF_EINVAL;
    if (q->shut) return SKIFF_ECLOSED;
    wq_node_t *n = q->head;
    if (!n) return SKIFF_ENOENT;
    if (json_object_set_new_nocheck(q->processing, n->key,
                                    json_integer((json_int_t)(uintptr_t)n)) != 0)
        return SKIFF_ENOMEM;
    q->head = n->next;
    if (!q->head) q->tail = NULL;
    q->len--;
    json_object_del(q->dirty, n->key);
    *key = n->key;
    return 0;
}

void skiff_workqueue_done(skiff_workqueue_t *q, const char *key)
{
    if (!q || !key) return;
    json_t *p = json_object_get(q->processing, key);
    if (!p) return;
    wq_node_t *n = (wq_node_t *)(uintptr_t)json_integer_value(p);
    /* added while processed: it runs once more, now */
    if (!q->shut && json_object_get(q->dirty, n->key)) {
        if (enqueue(q, n->key) < 0) json_object_del(q->dirty, n->key);
    }
    json_object_del(q->processing, n->key);
    free(n);
}

size_t skiff_workqueue_len(const skiff_workqueue_t *q) { return q ? q->len : 0; }
