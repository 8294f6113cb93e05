/* core/api/event_ttl.c - Events expire a set time after their last write,
 * as kube-apiserver's --event-ttl makes etcd drop them: a timer sweeps the
 * Events cache and removes from the store each Event not written for the
 * TTL, on condition that it is still the version seen (an Event updated
 * meanwhile, a repeat counted, lives on). Watchers see the removals as
 * DELETED. The clock is the server's own: after a restart every Event
 * has a whole TTL again. */
#include "api/event_ttl.h"

#include <stdlib.h>

#include "api/apiserver_int.h"

/* Removals a sweep starts at most: a backlog goes over several sweeps
 * instead of flooding the store at once. */
#define SWEEP_MAX 5000

typedef struct expired {
    char key[512];
    int64_t rev;
} expired_t;

typedef struct sweep {
    const kind_def_t *kind;
    int64_t now, ttl;
    expired_t *found;
    size_t n, max;
} sweep_t;

static void collect(cache_obj_t *o, void *data)
{
    sweep_t *sw = data;
    if (sw->n == sw->max || sw->now - o->written_ms < sw->ttl) return;
    expired_t *e = &sw->found[sw->n];
    if (api_object_key(e->key, sizeof e->key, sw->kind->group, sw->kind->resource, o->ns,
                       o->name) != 0)
        return;
    e->rev = o->rev;
    sw->n++;
}

static void on_removed(void *data, int status, const skiff_kv_t *kv)
{
    (void)status; /* gone already, or written again: either way nothing to do */
    (void)kv;
    api_server_t *s = data;
    s->event_ttl_removing--;
    api_server_release(s);
}

static void on_sweep(uv_timer_t *t)
{
    api_server_t *s = t->data;
    /* one sweep's removals at a time: the cache shows them once committed */
    if (s->closing || s->event_ttl_removing > 0) return;
    const kind_def_t *k = registry_find_resource("", "v1", "events");
    watch_cache_t *c = k ? api_cache_for(s, k) : NULL;
    if (!c) return;
    size_t events = watch_cache_size(c);
    if (!events) return;
    sweep_t sw = {.kind = k, .now = cache_clock_ms(), .ttl = s->event_ttl_ms,
                  .max = events < SWEEP_MAX ? events : SWEEP_MAX};
    sw.found = malloc(sw.max * sizeof *sw.found);
    if (!sw.found) return;
    watch_cache_each(c, collect, &sw);
    for (size_t i = 0; i < sw.n; i++) {
        api_server_hold(s);
        s->event_ttl_removing++;
        if (s->store->vt->remove(s->store, sw.found[i].key, sw.found[i].rev, on_removed, s) != 0) {
            s->event_ttl_removing--;
            api_server_release(s);
        }
    }
    free(sw.found);
}

void api_event_ttl_init(api_server_t *s, int64_t ttl_ms)
{
    uv_timer_init(s->loop, &s->event_ttl_timer);
    s->event_ttl_timer.data = s;
    s->event_ttl_ms = ttl_ms;
    if (ttl_ms <= 0) return;
    /* a quarter of the TTL between sweeps, within 1 s to 1 min: an Event
     * outlives its TTL by at most that much */
    int64_t every = ttl_ms / 4;
    if (every < 1000) every = 1000;
    if (every > 60000) every = 60000;
    uv_timer_start(&s->event_ttl_timer, on_sweep, (uint64_t)every, (uint64_t)every);
}

void api_event_ttl_close(api_server_t *s, uv_close_cb cb)
{
    uv_timer_stop(&s->event_ttl_timer);
    uv_close((uv_handle_t *)&s->event_ttl_timer, cb);
}
