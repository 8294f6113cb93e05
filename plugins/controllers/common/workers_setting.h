/* plugins/controllers/common/workers_setting.h - the `workers` setting of
 * a controller plugin (how many of its objects it syncs at once, as
 * kube-controller-manager's --concurrent-*-syncs): read, checked and
 * logged the same way by every controller that has one. Its default is
 * the one the plugin's settings table declares. Header only. */
#ifndef SKIFF_CONTROLLERS_WORKERS_SETTING_H
#define SKIFF_CONTROLLERS_WORKERS_SETTING_H

#include <errno.h>
#include <stdlib.h>

#include <skiff/plugin.h>

/* More syncs at once than this is a mistake, not a tuning. */
#define CONTROLLER_WORKERS_MAX 1024

/* The setting's value, or -1 after logging why it is refused. */
static inline int controller_workers_setting(skiff_plugin_ctx_t *ctx)
{
    const char *w = ctx->setting(ctx, "workers");
    char *end = NULL;
    errno = 0;
    long n = w ? strtol(w, &end, 10) : 0;
    if (!w || errno || end == w || *end || n < 1 || n > CONTROLLER_WORKERS_MAX) {
        ctx->log(ctx, SKIFF_LOG_ERROR, "workers must be a whole number from 1 to %d, not %s",
                 CONTROLLER_WORKERS_MAX, w ? w : "(unset)");
        return -1;
    }
    return (int)n;
}

#endif
