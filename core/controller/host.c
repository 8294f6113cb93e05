/* core/controller/host.c - loads the controller and scheduler plugins,
 * gives them an in-process client and shared informers, and runs each
 * group only while this server holds the group's Lease. */
#define _GNU_SOURCE
#include "controller/host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skiff/controller.h>
#include <skiff/leader.h>

#include "api/client_inproc.h"
#include "plugin/loader.h"
#include "plugin/registry.h"
#include "util/log.h"

/* The controllers "all" stands for, each the plugin controller-NAME. */
static const char *const builtin_controllers[] = {
    "namespace", "garbage-collector", "serviceaccount", "replicaset", "deployment",
    "daemonset", "statefulset",       "job",            "cronjob",    "endpoints",
    "endpointslice", NULL,
};

typedef struct group {
    struct controller_host *h;
    const char *lease;       /* Lease name */
    const char *component;   /* ctx->component */
    loaded_plugin_t **plugins;
    size_t n;
    skiff_leader_t *leader;
    int leading;
} group_t;

struct controller_host {
    controller_host_opts_t o;
    char identity[320];
    skiff_client_t *client;
    skiff_informer_factory_t *informers;
    group_t controllers, scheduler;
    char summary[1024];
    int pending_stops;
    void (*done)(void *data);
    void *done_data;
};

#define STANDBY_REASON "another server holds the Lease, or it is being taken"

static void start_group(void *data)
{
    group_t *g = data;
    g->leading = 1;
    if (g->n) log_info("controllers", "leading %s: starting %zu plugin(s)", g->lease, g->n);
    for (size_t i = 0; i < g->n; i++) {
        char err[1024];
        if (g->plugins[i]->state == PLUGIN_FAILED) continue;
        if (plugin_start(g->plugins[i], err, sizeof err) != 0) {
            log_error("controllers", "%s; the rest of the cluster keeps running", err);
            plugin_registry_note(g->plugins[i], PLUGIN_REC_FAILED, err);
        } else {
            plugin_registry_note(g->plugins[i], PLUGIN_REC_STARTED, NULL);
        }
    }
}

static void stop_group(void *data)
{
    group_t *g = data;
    if (!g->leading) return;
    g->leading = 0;
    if (g->n) log_info("controllers", "no longer leading %s: stopping its plugins", g->lease);
    for (size_t i = g->n; i-- > 0;) {
        if (g->plugins[i]->state == PLUGIN_FAILED) continue;
        plugin_stop(g->plugins[i]);
        plugin_registry_note(g->plugins[i], PLUGIN_REC_STANDBY, STANDBY_REASON);
    }
}

static void attach(controller_host_t *h, group_t *g, loaded_plugin_t *p);
static loaded_plugin_t *find_loaded(controller_host_t *h, const char *name);

static int load_one(controller_host_t *h, group_t *g, const char *file, int required)
{
    char err[1024];
    loaded_plugin_t *p = plugin_load(file, h->o.loop, h->o.data_dir, err, sizeof err);
    if (!p) {
        if (required) log_error("controllers", "%s", err);
        else log_warn("controllers", "%s; skipped", err);
        plugin_registry_add(file, NULL, NULL, PLUGIN_ORIGIN_BUILTIN, PLUGIN_REC_FAILED, err);
        return required ? -1 : 0;
    }
    loaded_plugin_t *first = find_loaded(h, p->name);
    if (first) {
        /* a plugin folder (or --plugins) brought a plugin of this name first */
        log_info("controllers", "%s: using the plugin %s loaded from %s", file, p->name,
                 first->path);
        plugin_unload(p);
        return 0;
    }
    skiff_plugin_kind_t want = g == &h->scheduler ? SKIFF_PLUGIN_SCHEDULER : SKIFF_PLUGIN_CONTROLLER;
    if (p->desc->kind != want) {
        log_error("controllers", "plugin %s (%s) is not a %s plugin", p->name, p->path,
                  want == SKIFF_PLUGIN_SCHEDULER ? "scheduler" : "controller");
        plugin_unload(p);
        return -1;
    }
    loaded_plugin_t **n = realloc(g->plugins, (g->n + 1) * sizeof *n);
    if (!n) {
        plugin_unload(p);
        return -1;
    }
    g->plugins = n;
    g->plugins[g->n++] = p;
    plugin_registry_add(p->name, p->path, p, plugin_registry_origin_of(p->path),
                        PLUGIN_REC_STANDBY, STANDBY_REASON);
    attach(h, g, p);
    return 0;
}

/* A plugin loaded by core/plugin/sources.c: the host owns it from here. */
static int adopt(controller_host_t *h, loaded_plugin_t *p)
{
    group_t *g = p->desc->kind == SKIFF_PLUGIN_SCHEDULER ? &h->scheduler : &h->controllers;
    loaded_plugin_t **n = realloc(g->plugins, (g->n + 1) * sizeof *n);
    if (!n) {
        plugin_registry_note(p, PLUGIN_REC_FAILED, "out of memory");
        plugin_registry_forget(p);
        plugin_unload(p);
        return -1;
    }
    g->plugins = n;
    g->plugins[g->n++] = p;
    plugin_registry_note(p, PLUGIN_REC_STANDBY, STANDBY_REASON);
    attach(h, g, p);
    return 0;
}

static void attach(controller_host_t *h, group_t *g, loaded_plugin_t *p)
{
    p->ctx.client = h->client;
    p->ctx.informers = h->informers;
    p->ctx.component = g->component;
    size_t used = strlen(h->summary);
    snprintf(h->summary + used, sizeof h->summary - used, "%s%s", used ? ", " : "", p->name);
}

static int listed(const char *list, const char *name, int negated)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (negated ? (t[0] == '-' && strcmp(t + 1, name) == 0) : strcmp(t, name) == 0) return 1;
    }
    return 0;
}

static int load_controllers(controller_host_t *h)
{
    const char *list = h->o.controllers ? h->o.controllers : "all";
    if (strcmp(list, "none") == 0 || !*list) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    int all = listed(list, "all", 0);
    char *save = NULL;
    /* named ones first, in the order given; they must load */
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (!*t || *t == '-' || strcmp(t, "all") == 0) continue;
        char file[300];
        /* a path, or a Lua script ("website.lua"), is taken as it is */
        int as_is = strchr(t, '/') || (strlen(t) > 4 && !strcmp(t + strlen(t) - 4, ".lua"));
        snprintf(file, sizeof file, as_is ? "%s" : "controller-%s", t);
        if (load_one(h, &h->controllers, file, 1) != 0) return -1;
    }
    if (!all) return 0;
    for (const char *const *b = builtin_controllers; *b; b++) {
        if (listed(list, *b, 1) || listed(list, *b, 0)) continue;
        char file[300];
        snprintf(file, sizeof file, "controller-%s", *b);
        if (load_one(h, &h->controllers, file, 0) != 0) return -1;
    }
    return 0;
}

static loaded_plugin_t *find_loaded(controller_host_t *h, const char *name)
{
    group_t *groups[] = {&h->controllers, &h->scheduler};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < groups[i]->n; j++)
            if (strcmp(groups[i]->plugins[j]->name, name) == 0) return groups[i]->plugins[j];
    return NULL;
}

static int apply_settings(controller_host_t *h)
{
    if (!h->o.settings || !*h->o.settings) return 0;
    char *buf = strdup(h->o.settings);
    if (!buf) return -1;
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ";", &save); t && rc == 0; t = strtok_r(NULL, ";", &save)) {
        while (*t == ' ') t++;
        if (!*t) continue;
        char *eq = strchr(t, '='), *dot = strchr(t, '.');
        if (!eq || !dot || dot > eq) {
            log_error("controllers", "--plugin-settings: \"%s\" is not plugin.setting=value", t);
            rc = -1;
            break;
        }
        *dot = *eq = '\0';
        loaded_plugin_t *p = find_loaded(h, t);
        char err[512];
        if (!p) {
            log_error("controllers", "--plugin-settings: no plugin %s is loaded (loaded: %s)", t,
                      controller_host_summary(h));
            rc = -1;
        } else if (plugin_set_setting(p, dot + 1, eq + 1, err, sizeof err) != 0) {
            log_error("controllers", "--plugin-settings: %s", err);
            rc = -1;
        }
    }
    free(buf);
    return rc;
}

static void default_identity(controller_host_t *h)
{
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    uint32_t hash = 2166136261u;
    for (const char *p = h->o.data_dir ? h->o.data_dir : ""; *p; p++) {
        hash ^= (unsigned char)*p;
        hash *= 16777619u;
    }
    snprintf(h->identity, sizeof h->identity, "%.250s_%08x", host, hash);
}

static int campaign(controller_host_t *h, group_t *g)
{
    if (!g->n) return 0;
    skiff_leader_opts_t lo = {.namespace_ = "kube-system",
                              .name = g->lease,
                              .identity = h->identity,
                              .lease_duration_ms = h->o.lease_duration_ms,
                              .renew_deadline_ms = h->o.renew_deadline_ms,
                              .retry_period_ms = h->o.retry_period_ms,
                              .started_leading = start_group,
                              .stopped_leading = stop_group,
                              .data = g};
    int rc = skiff_leader_start(h->o.loop, h->client, &lo, &g->leader);
    if (rc != 0) log_error("controllers", "cannot campaign for %s: %s", g->lease, skiff_strerror(rc));
    return rc == 0 ? 0 : -1;
}

int controller_host_start(const controller_host_opts_t *o, controller_host_t **out)
{
    controller_host_t *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->o = *o;
    *out = h;
    if (o->identity) snprintf(h->identity, sizeof h->identity, "%s", o->identity);
    else default_identity(h);
    h->controllers = (group_t){.h = h, .lease = "skiff-controller-manager",
                               .component = "skiff-controller-manager"};
    h->scheduler = (group_t){.h = h, .lease = "skiff-scheduler", .component = "default-scheduler"};
    h->client = client_inproc_new(o->loop, o->api);
    if (!h->client || skiff_informer_factory_new(o->loop, h->client, &h->informers) != 0) {
        log_error("controllers", "out of memory");
        return -1;
    }
    /* plugins from folders and --plugins first: they take their names */
    for (size_t i = 0; i < o->n_extra; i++) adopt(h, o->extra[i]);
    if (load_controllers(h) != 0) return -1;
    const char *sched = o->scheduler ? o->scheduler : "scheduler-default";
    if (strcmp(sched, "none") != 0 && *sched &&
        load_one(h, &h->scheduler, sched, strcmp(sched, "scheduler-default") != 0) != 0)
        return -1;
    if (apply_settings(h) != 0) return -1;
    if (campaign(h, &h->controllers) != 0 || campaign(h, &h->scheduler) != 0) return -1;
    return 0;
}

const char *controller_host_summary(const controller_host_t *h)
{
    return h && h->summary[0] ? h->summary : "none";
}

static void after_informers_freed(controller_host_t *h)
{
    if (h->client) h->client->vt->free(h->client);
    h->client = NULL;
    if (h->done) h->done(h->done_data);
}

static void on_leader_stopped(void *data)
{
    controller_host_t *h = data;
    if (--h->pending_stops > 0) return;
    /* every plugin is stopped: nothing uses the informers any more */
    skiff_informer_factory_free(h->informers);
    h->informers = NULL;
    after_informers_freed(h);
}

void controller_host_stop(controller_host_t *h, void (*done)(void *data), void *data)
{
    if (!h) {
        if (done) done(data);
        return;
    }
    h->done = done;
    h->done_data = data;
    h->pending_stops = 1;
    group_t *groups[] = {&h->scheduler, &h->controllers};
    for (size_t i = 0; i < 2; i++) {
        group_t *g = groups[i];
        /* stop the plugins first, then release the Lease for a successor */
        stop_group(g);
        if (g->leader) {
            h->pending_stops++;
            skiff_leader_stop(g->leader, on_leader_stopped, h);
            g->leader = NULL;
        }
    }
    on_leader_stopped(h);
}

void controller_host_free(controller_host_t *h)
{
    if (!h) return;
    /* informers left by a stop that did not finish go first: their
     * transforms and handlers are the plugins' code */
    if (h->informers) skiff_informer_factory_free(h->informers);
    h->informers = NULL;
    group_t *groups[] = {&h->scheduler, &h->controllers};
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < groups[i]->n; j++) plugin_unload(groups[i]->plugins[j]);
        free(groups[i]->plugins);
    }
    if (h->client) h->client->vt->free(h->client);
    free(h);
}
