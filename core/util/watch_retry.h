/* core/util/watch_retry.h - when a list-and-watch client (the SDK's
 * informers, the agent's pod watch) tries again: at once after a watch
 * that worked, with exponential back-off after failures, so that a client
 * whose server is gone or compacts history as fast as it is listed waits
 * instead of looping (watch_retry.c). */
#ifndef SKIFF_UTIL_WATCH_RETRY_H
#define SKIFF_UTIL_WATCH_RETRY_H

#include <stdint.h>

typedef struct watch_retry {
    int backoff_ms;         /* the next failure's wait (0: the first) */
    int relist_ms;          /* the last wait of relists whose watch expired at once */
    int got;                /* the current watch has brought an event */
    int from_list;          /* the current watch is the list's first and has brought nothing */
    uint64_t started_ms;    /* when the current watch was asked for (monotonic) */
    uint64_t listed_ms;     /* when the last list completed (monotonic) */
} watch_retry_t;

/* The wait after a failure (a list or watch refused, an error answer):
 * 100 ms, doubling up to 30 s until something works again. */
int watch_retry_failed(watch_retry_t *r);
/* A list completed: the server answers again. */
void watch_retry_listed(watch_retry_t *r);
/* A watch is being asked for. */
void watch_retry_watching(watch_retry_t *r);
/* The watch brought an event (bookmarks included): it works. */
void watch_retry_event(watch_retry_t *r);
/* The wait before resuming a watch that ended: none if it brought
 * anything or lasted (a quiet resource's watch timing out), else the
 * failure back-off (the connection was refused or reset at once). */
int watch_retry_ended(watch_retry_t *r);
/* The wait before the relist a watch's 410 calls for: none, unless the
 * list's own watch expired before bringing anything, right after the list
 * (history compacted as fast as it is listed): then a back-off of its own. */
int watch_retry_expired(watch_retry_t *r);

#endif
