/* core/util/json_reaper.c - JSON trees released on the libuv thread pool
 * (see json_reaper.h). Only the loop's thread calls these functions. */
#include "util/json_reaper.h"

#include <stdlib.h>

#define BATCH 256

typedef struct reap_batch {
    uv_work_t work;
    size_t n;
    json_t *trees[BATCH];
} reap_batch_t;

static uv_loop_t *reap_loop;
static reap_batch_t *gathering;

static void reap_work(uv_work_t *w)
{
    reap_batch_t *b = w->data;
    for (size_t i = 0; i < b->n; i++) json_decref(b->trees[i]);
    b->n = 0;
}

static void reap_done(uv_work_t *w, int status)
{
    reap_batch_t *b = w->data;
    /* cancelled: the loop is closing; release here */
    if (status != 0) reap_work(w);
    free(b);
}

void json_reaper_start(uv_loop_t *loop) { reap_loop = loop; }

void json_reaper_flush(void)
{
    reap_batch_t *b = gathering;
    if (!b || !b->n) return;
    gathering = NULL;
    b->work.data = b;
    if (uv_queue_work(reap_loop, &b->work, reap_work, reap_done) != 0) {
        reap_work(&b->work);
        free(b);
    }
}

void json_release(json_t *v)
{
    if (!v) return;
    /* shared further (or a constant): only the count moves */
    if (!reap_loop || __atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE) != 1) {
        json_decref(v);
        return;
    }
    if (!gathering) {
        gathering = malloc(sizeof *gathering);
        if (!gathering) {
            json_decref(v);
            return;
        }
        gathering->n = 0;
    }
    gathering->trees[gathering->n++] = v;
    if (gathering->n == BATCH) json_reaper_flush();
}

void json_reaper_stop(void)
{
    reap_batch_t *b = gathering;
    gathering = NULL;
    reap_loop = NULL;
    if (!b) return;
    b->work.data = b;
    reap_work(&b->work);
    free(b);
}
