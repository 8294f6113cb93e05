/* core/controller/host.h - runs the controller and scheduler plugins inside
 * `skiff server`.
 *
 * The host loads the plugins named by --controllers and --scheduler, hands
 * each an in-process API client and one shared informer factory, and
 * campaigns for a Lease per group (kube-system/skiff-controller-manager,
 * kube-system/skiff-scheduler): a group's plugins are started while this
 * server holds its Lease and stopped when it loses it, so with several
 * servers on one store only one runs each controller. */
#ifndef SKIFF_CONTROLLER_HOST_H
#define SKIFF_CONTROLLER_HOST_H

#include <uv.h>

#include "api/apiserver.h"
#include "plugin/loader.h"

typedef struct controller_host controller_host_t;

typedef struct controller_host_opts {
    uv_loop_t *loop;
    api_server_t *api;
    const char *data_dir;
    /* "all" (every built-in controller), "none", or names separated by
     * commas ("deployment,replicaset"); a name "-x" removes x from "all". */
    const char *controllers;
    const char *scheduler; /* plugin name ("scheduler-default") or "none" */
    /* Plugin settings, "plugin.setting=value" separated by ';', applied to
     * the loaded controller and scheduler plugins of that name (until
     * profiles carry them); an unknown plugin or setting fails the start. */
    const char *settings;
    /* Controller and scheduler plugins loaded elsewhere (plugin
     * directories, --plugins: core/plugin/sources.h), run in their group
     * like the named ones. The host owns them from controller_host_start. */
    loaded_plugin_t **extra;
    size_t n_extra;
    /* Identity in the Leases; NULL: host name and a hash of data_dir, so a
     * restarted server resumes its own Lease at once. */
    const char *identity;
    int lease_duration_ms; /* 0: 15000 */
    int renew_deadline_ms; /* 0: 10000 */
    int retry_period_ms;   /* 0: 2000 */
} controller_host_opts_t;

/* Loads the plugins and starts campaigning. 0, or -1 with a message logged
 * (a named plugin that cannot be loaded fails the start; a built-in one
 * missing under "all" is only reported). */
int controller_host_start(const controller_host_opts_t *o, controller_host_t **out);
/* Names of the plugins loaded, for the log: "deployment, replicaset". */
const char *controller_host_summary(const controller_host_t *h);
/* Stops every plugin, releases the Leases; done runs when finished (the
 * plugins stay loaded until controller_host_free, after the loop ends). */
void controller_host_stop(controller_host_t *h, void (*done)(void *data), void *data);
/* Unloads the plugins; call after the loop has run to its end. */
void controller_host_free(controller_host_t *h);

#endif
