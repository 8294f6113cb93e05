/* core/util/watch_retry.c - the retry timing of list-and-watch clients
 * (see watch_retry.h). */
#include "util/watch_retry.h"

#include <uv.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 30000
/* a watch that lasted this long was a working one, whatever ended it (a
 * refused or reset connection ends within milliseconds) */
#define WATCH_LASTED_MS 500

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static int doubled(int ms) { return ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ms * 2; }

int watch_retry_failed(watch_retry_t *r)
{
    int ms = r->backoff_ms ? r->backoff_ms : RETRY_MIN_MS;
    r->backoff_ms = doubled(ms);
    return ms;
}

void watch_retry_listed(watch_retry_t *r)
{
    r->backoff_ms = 0;
    r->listed_ms = now_ms();
    r->from_list = 1;
}

void watch_retry_watching(watch_retry_t *r)
{
    r->got = 0;
    r->started_ms = now_ms();
}

void watch_retry_event(watch_retry_t *r)
{
    r->backoff_ms = r->relist_ms = 0;
    r->got = 1;
    r->from_list = 0;
}

int watch_retry_ended(watch_retry_t *r)
{
    r->from_list = 0;
    if (r->got || now_ms() - r->started_ms >= WATCH_LASTED_MS) {
        r->backoff_ms = 0;
        return 0;
    }
    return watch_retry_failed(r);
}

int watch_retry_expired(watch_retry_t *r)
{
    if (r->from_list && now_ms() - r->listed_ms < WATCH_LASTED_MS) {
        r->relist_ms = r->relist_ms ? doubled(r->relist_ms) : RETRY_MIN_MS;
        return r->relist_ms;
    }
    r->relist_ms = 0;
    return 0;
}
