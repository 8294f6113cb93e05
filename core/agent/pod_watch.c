/* core/agent/pod_watch.c - a reflector that hands pods over and keeps none. */
#include "agent/pod_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/watch_retry.h"

#define PAGE 500

static const skiff_resource_t PODS = {"", "v1", "pods", NULL};

struct pod_watch {
    uv_loop_t *loop;
    skiff_client_t *client;
    char *fs;
    pod_watch_handler_t h;
    uv_timer_t timer;
    skiff_client_watch_t *watch;
    char rv[64];
    char *cont;       /* continue token of the list in progress */
    char list_rv[64]; /* resourceVersion of the list in progress */
    int listing;      /* a list page is in flight */
    int need_list;
    int in_relist;    /* between on_relist_begin and on_relist_end */
    watch_retry_t retry;
    int stopped, timer_closed;
    int lists, watches;
};

static void start_list(pod_watch_t *w);
static void start_watch(pod_watch_t *w);

static void maybe_free(pod_watch_t *w)
{
    if (!w->stopped || w->listing || !w->timer_closed) return;
    free(w->cont);
    free(w->fs);
    free(w);
}

static void on_timer(uv_timer_t *t)
{
    pod_watch_t *w = t->data;
    if (w->stopped) return;
    if (w->need_list) start_list(w);
    else start_watch(w);
}

static void retry_after(pod_watch_t *w, int ms)
{
    if (!w->stopped) uv_timer_start(&w->timer, on_timer, (uint64_t)ms, 0);
}


static const char *meta_str(const json_t *obj, const char *f)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), f));
}

static void note_rv(pod_watch_t *w, const json_t *obj)
{
    const char *rv = meta_str(obj, "resourceVersion");
    if (rv && *rv) snprintf(w->rv, sizeof w->rv, "%s", rv);
}

static void on_list(void *data, int status, json_t *obj)
{
    pod_watch_t *w = data;
    w->listing = 0;
    if (w->stopped) {
        maybe_free(w);
        return;
    }
    if (status != 200 || !json_is_array(json_object_get(obj, "items"))) {
        /* a continue token that expired (410) means starting the list over */
        free(w->cont);
        w->cont = NULL;
        retry_after(w, watch_retry_failed(&w->retry));
        return;
    }
    if (!w->cont) { /* first page: its version is the whole list's */
        const char *rv = meta_str(obj, "resourceVersion");
        snprintf(w->list_rv, sizeof w->list_rv, "%s", rv ? rv : "");
        if (!w->in_relist && w->h.on_relist_begin) w->h.on_relist_begin(w->h.data);
        w->in_relist = 1;
    }
    size_t i;
    json_t *pod;
    json_array_foreach(json_object_get(obj, "items"), i, pod) {
        if (w->stopped) break;
        w->h.on_upsert(w->h.data, pod);
    }
    if (w->stopped) {
        maybe_free(w);
        return;
    }
    const char *cont = meta_str(obj, "continue");
    free(w->cont);
    w->cont = cont && *cont ? strdup(cont) : NULL;
    if (w->cont) {
        start_list(w);
        return;
    }
    w->in_relist = 0;
    w->need_list = 0;
    watch_retry_listed(&w->retry);
    snprintf(w->rv, sizeof w->rv, "%s", w->list_rv);
    if (w->h.on_relist_end) w->h.on_relist_end(w->h.data);
    if (!w->stopped) start_watch(w);
}

static void start_list(pod_watch_t *w)
{
    skiff_list_opts_t o = {.field_selector = w->fs, .limit = PAGE, .continue_token = w->cont};
    w->need_list = 1;
    w->listing = 1;
    w->lists += !w->cont;
    if (skiff_client_list(w->client, &PODS, NULL, &o, on_list, w) != 0) {
        w->listing = 0;
        retry_after(w, watch_retry_failed(&w->retry));
    }
}

static void on_watch(void *data, const char *type, json_t *obj)
{
    pod_watch_t *w = data;
    if (w->stopped) return;
    if (!type) {
        /* ended (timeout, closed): resume from the last version, with
         * back-off when it ended at once with nothing (the server refused
         * the connection, is gone or restarting) */
        w->watch = NULL;
        retry_after(w, watch_retry_ended(&w->retry));
        return;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        skiff_client_watch_t *cur = w->watch;
        w->watch = NULL;
        if (cur) w->client->vt->watch_cancel(cur);
        if (code == 410) { /* too old: a new list */
            w->need_list = 1;
            retry_after(w, watch_retry_expired(&w->retry));
        } else {
            retry_after(w, watch_retry_failed(&w->retry));
        }
        return;
    }
    watch_retry_event(&w->retry);
    note_rv(w, obj);
    if (strcmp(type, "DELETED") == 0) w->h.on_delete(w->h.data, obj);
    else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0)
        w->h.on_upsert(w->h.data, obj);
}

static void start_watch(pod_watch_t *w)
{
    skiff_list_opts_t o = {.field_selector = w->fs,
                           .resource_version = w->rv[0] ? w->rv : NULL,
                           .allow_bookmarks = 1};
    w->watches++;
    watch_retry_watching(&w->retry);
    if (skiff_client_watch(w->client, &PODS, NULL, &o, on_watch, w, &w->watch) != 0) {
        w->watch = NULL;
        retry_after(w, watch_retry_failed(&w->retry));
    }
}

pod_watch_t *pod_watch_start(uv_loop_t *loop, skiff_client_t *client, const char *field_selector,
                             const pod_watch_handler_t *h)
{
    pod_watch_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->fs = strdup(field_selector ? field_selector : "");
    if (!w->fs) {
        free(w);
        return NULL;
    }
    w->loop = loop;
    w->client = client;
    w->h = *h;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    start_list(w);
    return w;
}

static void on_timer_closed(uv_handle_t *t)
{
    pod_watch_t *w = t->data;
    w->timer_closed = 1;
    maybe_free(w);
}

void pod_watch_stop(pod_watch_t *w)
{
    if (!w || w->stopped) return;
    w->stopped = 1;
    if (w->watch) w->client->vt->watch_cancel(w->watch);
    w->watch = NULL;
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}

void pod_watch_stats(const pod_watch_t *w, int *lists, int *watches)
{
    if (lists) *lists = w->lists;
    if (watches) *watches = w->watches;
}
