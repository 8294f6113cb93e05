/* core/agent/pod_watch.h - list and watch of pods that keeps nothing:
 * every object is handed to the owner and dropped, so the owner keeps only
 * what it needs of the pods it cares about (a shared informer would hold
 * every bound pod of the cluster in memory).
 *
 * Like client-go's reflector: a paginated list, then a watch from the
 * list's resourceVersion with bookmarks, resumed from the last version
 * seen when it ends; a 410 (version compacted) lists again, between
 * on_relist_begin and on_relist_end so the owner can forget what the new
 * list no longer has. Reads only. */
#ifndef SKIFF_AGENT_POD_WATCH_H
#define SKIFF_AGENT_POD_WATCH_H

#include <jansson.h>
#include <skiff/client.h>
#include <uv.h>

typedef struct pod_watch pod_watch_t;

typedef struct pod_watch_handler {
    void (*on_relist_begin)(void *data);
    void (*on_upsert)(void *data, json_t *pod); /* listed, added or modified (borrowed) */
    void (*on_delete)(void *data, json_t *pod);
    void (*on_relist_end)(void *data);
    void *data;
} pod_watch_handler_t;

/* Starts listing pods matching field_selector (copied) at once. NULL when
 * out of memory. */
pod_watch_t *pod_watch_start(uv_loop_t *loop, skiff_client_t *client, const char *field_selector,
                             const pod_watch_handler_t *h);
/* No handler runs after this; the memory goes once a list in flight has
 * been answered and the timer closed (the loop must run). */
void pod_watch_stop(pod_watch_t *w);
/* Lists and watches started so far (for logs and tests). */
void pod_watch_stats(const pod_watch_t *w, int *lists, int *watches);

#endif
