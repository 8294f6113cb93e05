/* core/util/json_reaper.h - releasing JSON trees on a worker thread
 * (json_reaper.c). Freeing a pod's tree is a couple of hundred free()
 * calls; the server's event loop hands the trees it drops in bulk (the
 * watch cache's recent trees, request bodies) to the libuv thread pool
 * instead. jansson's reference counts are atomic, so a tree whose parts
 * are shared with trees the loop still holds is released safely. */
#ifndef SKIFF_JSON_REAPER_H
#define SKIFF_JSON_REAPER_H

#include <jansson.h>
#include <uv.h>

/* Releases from now on go to loop's thread pool (in batches). Without this
 * (unit tests, other commands) json_release is json_decref. */
void json_reaper_start(uv_loop_t *loop);
/* Drops a reference: now if it is not the last, else later on a worker. */
void json_release(json_t *v);
/* Hands the batch gathered so far to a worker (the loop calls it after a
 * burst of releases; a full batch goes by itself). */
void json_reaper_flush(void);
/* Releases whatever is still gathered, here and now, and stops: after the
 * loop has ended (queued batches were finished by the loop). */
void json_reaper_stop(void);

#endif
