/* plugins/controllers/common/workers_setting.h - the `workers` setting of
 * a controller plugin (how many of its objects it syncs at once, as
 * kube-controller-manager's --concurrent-*-syncs): read, checked and
 * logged the same way by every controller that has one. Header only. */
#ifndef SKIFF_CONTROLLERS_WORKERS_SETTING_H
#define SKIFF_CONTROLLERS_WORKERS_SETTING_H

#include <stdlib.h>

#include <skiff/plugin.h>

/* The setting's value (def when unset), or -1 after logging why it is
 * refused. */
static inline int controller_workers_setting(skiff_plugin_ctx_t *ctx, int def)
{
    const char *w = ctx->setting(ctx, "workers");
    int n = w ? atoi(w) : def;
    if (n < 1) {
        ctx->log(ctx, SKIFF_LOG_ERROR, "workers must be a positive number, not %s", w);
        return -1;
    }
    return n;
}

#endif
