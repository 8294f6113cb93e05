/* skiff/loop.h - logging and the event loop: what a plugin may do on
 * ctx->loop, with timers and the thread pool.
 *
 * The server runs one libuv loop (ctx->loop) for the API server, the
 * controllers, the scheduler and every plugin. Every hook (init, start,
 * stop, reconcile, informer handlers, client callbacks) runs on that loop's
 * thread, one at a time, so plugin state needs no locks as long as it is
 * touched only from the loop. The rules:
 *
 *  - Never block the loop: no sleep(), no blocking read()/connect(), no
 *    waiting on a lock another thread holds for long. A hook that takes 50
 *    ms delays every API request by 50 ms.
 *  - Timers, sockets, pipes, child processes and file system requests are
 *    ordinary libuv handles on ctx->loop (uv_timer_init(ctx->loop, ...),
 *    uv_spawn, uv_fs_*). The plugin allocates them and owns them; stop must
 *    uv_close() every handle start opened. Memory of a closed handle may be
 *    freed only in its close callback.
 *  - Blocking or CPU-heavy work (hashing a large file, a synchronous C
 *    library) goes to the libuv thread pool with uv_queue_work() or
 *    skiff_loop_offload(): the work function runs on a pool thread and must
 *    not touch the loop, the client or any json_t shared with the loop; the
 *    after-work function runs back on the loop and may. The pool is shared
 *    by the whole server and the store's commits (UV_THREADPOOL_SIZE
 *    threads; skiff server makes it one per CPU, 2 to 4, when it is not
 *    set): keep each piece of work short.
 *  - Never call uv_run(), uv_stop(), uv_loop_close() or uv_walk() on
 *    ctx->loop, nor install signal handlers (uv_signal_*) or fork(): the
 *    server owns the loop and the process.
 *  - Stopping is asynchronous: after stop returns the loop keeps running
 *    until every handle is closed, and a plugin may be started again later
 *    (a controller that lost, then won back, its Lease).
 *
 * Logging goes through ctx->log (skiff/plugin.h), which tags each line with
 * the plugin's name and writes it to the server's log at the level the
 * server was started with (--log-level). The macros below shorten it. */
#ifndef SKIFF_LOOP_H
#define SKIFF_LOOP_H

#include <stdlib.h>

#include <skiff/errors.h>
#include <skiff/plugin.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Log lines, printf-style: skiff_log_info(ctx, "synced %d pods", n). */
#define skiff_log_error(ctx, ...) (ctx)->log((ctx), SKIFF_LOG_ERROR, __VA_ARGS__)
#define skiff_log_warn(ctx, ...) (ctx)->log((ctx), SKIFF_LOG_WARN, __VA_ARGS__)
#define skiff_log_info(ctx, ...) (ctx)->log((ctx), SKIFF_LOG_INFO, __VA_ARGS__)
#define skiff_log_debug(ctx, ...) (ctx)->log((ctx), SKIFF_LOG_DEBUG, __VA_ARGS__)

/* A libuv error code (UV_E*) as the nearest SKIFF_E* code, for hooks that
 * must return SKIFF_E* after a failed uv_* call. */
static inline int skiff_uv_error(int uv_rc)
{
    switch (uv_rc) {
    case 0: return SKIFF_OK;
    case UV_EINVAL: return SKIFF_EINVAL;
    case UV_ENOENT: return SKIFF_ENOENT;
    case UV_EEXIST: return SKIFF_EEXIST;
    case UV_ENOMEM: return SKIFF_ENOMEM;
    case UV_ETIMEDOUT: return SKIFF_ETIMEDOUT;
    case UV_ENOTSUP: return SKIFF_ENOTSUP;
    case UV_EOF:
    case UV_ECANCELED:
    case UV_EPIPE: return SKIFF_ECLOSED;
    default: return SKIFF_EIO;
    }
}

/* ---- the thread pool ---------------------------------------------------- */

/* One piece of work for the pool. work runs on a pool thread (blocking is
 * allowed there, touching the loop is not); done runs on the loop with
 * status 0, or SKIFF_ECLOSED when the work was cancelled before it ran. */
typedef void (*skiff_work_fn)(void *data);
typedef void (*skiff_work_done_fn)(void *data, int status);

typedef struct skiff_offload {
    uv_work_t req; /* first: the request's address is the struct's */
    skiff_work_fn work;
    skiff_work_done_fn done;
    void *data;
} skiff_offload_t;

static inline void skiff_offload_work_(uv_work_t *req)
{
    skiff_offload_t *o = (skiff_offload_t *)req;
    o->work(o->data);
}

static inline void skiff_offload_after_(uv_work_t *req, int status)
{
    skiff_offload_t *o = (skiff_offload_t *)req;
    if (o->done) o->done(o->data, status == UV_ECANCELED ? SKIFF_ECLOSED : skiff_uv_error(status));
    free(o);
}

/* Runs work(data) on the pool, then done(data, status) on the loop. 0, or
 * SKIFF_ENOMEM / SKIFF_EINVAL (then neither function runs). */
static inline int skiff_loop_offload(uv_loop_t *loop, skiff_work_fn work, skiff_work_done_fn done,
                                     void *data)
{
    if (loop == NULL || work == NULL) return SKIFF_EINVAL;
    skiff_offload_t *o = (skiff_offload_t *)calloc(1, sizeof *o);
    if (o == NULL) return SKIFF_ENOMEM;
    o->work = work;
    o->done = done;
    o->data = data;
    int rc = uv_queue_work(loop, &o->req, skiff_offload_work_, skiff_offload_after_);
    if (rc != 0) {
        free(o);
        return skiff_uv_error(rc);
    }
    return 0;
}

#ifdef __cplusplus
}
#endif
#endif
