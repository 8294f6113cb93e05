/* core/controller/events.c - the Event recorder of skiff/objects.h: writes
 * core/v1 Events about an object, folding repeats into one Event whose
 * count grows (as Kubernetes' event correlator does), so a controller that
 * retries does not flood the store. */
#define _GNU_SOURCE
#include <skiff/objects.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/client_rest.h"
#include "util/log.h"
#include "util/strmap.h"

enum { MAX_REMEMBERED = 4096, FOLD_WINDOW_MS = 10 * 60 * 1000 };

typedef struct seen_event {
    char *ns, *name;   /* the Event written */
    int64_t count;
    int64_t last_ms;
} seen_event_t;

struct skiff_event_recorder {
    skiff_client_t *client;
    char *component;
    char *host;
    strmap_t *seen; /* uid|type|reason|message -> seen_event_t */
    int in_flight;
    int closing;
};

typedef struct pending {
    skiff_event_recorder_t *r;
    char *fold_key;
    json_t *event; /* kept to create anew when a folded Event vanished */
} pending_t;

static const skiff_resource_t events_res = {"", "v1", "events", NULL};

static void seen_free(void *v)
{
    seen_event_t *s = v;
    if (!s) return;
    free(s->ns);
    free(s->name);
    free(s);
}

static void recorder_maybe_free(skiff_event_recorder_t *r)
{
    if (!r->closing || r->in_flight) return;
    strmap_free(r->seen, seen_free);
    free(r->component);
    free(r->host);
    free(r);
}

skiff_event_recorder_t *skiff_event_recorder_new(skiff_client_t *client, const char *component)
{
    if (!client || !component) return NULL;
    skiff_event_recorder_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    r->client = client;
    r->component = strdup(component);
    r->host = strdup(host);
    r->seen = strmap_new();
    if (!r->component || !r->host || !r->seen) {
        r->closing = 1;
        recorder_maybe_free(r);
        return NULL;
    }
    return r;
}

void skiff_event_recorder_free(skiff_event_recorder_t *r)
{
    if (!r) return;
    r->closing = 1;
    recorder_maybe_free(r);
}

static void pending_free(pending_t *p)
{
    skiff_event_recorder_t *r = p->r;
    free(p->fold_key);
    json_decref(p->event);
    free(p);
    r->in_flight--;
    recorder_maybe_free(r);
}

static void remember(skiff_event_recorder_t *r, const char *key, const char *ns,
                     const char *name, int64_t count)
{
    if (r->closing) return;
    if (strmap_size(r->seen) >= MAX_REMEMBERED) {
        strmap_free(r->seen, seen_free);
        r->seen = strmap_new();
        if (!r->seen) return;
    }
    seen_event_t *s = calloc(1, sizeof *s);
    if (!s) return;
    s->ns = strdup(ns);
    s->name = strdup(name);
    s->count = count;
    s->last_ms = skiff_now_ms();
    if (!s->ns || !s->name) {
        seen_free(s);
        return;
    }
    seen_free(strmap_put(r->seen, key, s));
}

static void on_created(void *data, int status, json_t *obj)
{
    pending_t *p = data;
    if (status == 201 || status == 200) {
        const char *ns = json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
        const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
        if (ns && name) remember(p->r, p->fold_key, ns, name, 1);
    } else {
        log_warn(p->r->component, "cannot record event: HTTP %d", status);
    }
    pending_free(p);
}

static void create_event(pending_t *p)
{
    const char *ns = json_string_value(json_object_get(json_object_get(p->event, "metadata"), "namespace"));
    /* the Event is handed over (the server fills it in; it is not needed
     * again) and the answer is only read */
    json_t *ev = p->event;
    p->event = NULL;
    if (client_rest_create_handover(p->r->client, &events_res, ns, ev, NULL, 1, on_created, p) != 0)
        pending_free(p);
}

static void on_patched(void *data, int status, json_t *obj)
{
    (void)obj;
    pending_t *p = data;
    if (status == 404) {
        /* the folded Event was removed (or expired): write a new one */
        seen_free(strmap_remove(p->r->seen, p->fold_key));
        create_event(p);
        return;
    }
    if (status != 200) log_warn(p->r->component, "cannot update event: HTTP %d", status);
    pending_free(p);
}

/* A new core/v1 Event about obj (generateName "<name>."). */
static json_t *event_new(const skiff_event_recorder_t *r, const json_t *obj, const char *ev_ns,
                         const char *type, const char *reason, const char *msg, const char *now)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    char gen[300];
    snprintf(gen, sizeof gen, "%.240s.", name);
    json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}, s:s, s:s, s:s, s:{s:s, s:s}, s:s, "
                           "s:s, s:I, s:s, s:s}",
                           "apiVersion", "v1", "kind", "Event", "metadata", "generateName", gen,
                           "namespace", ev_ns, "involvedObject", "name", name, "reason", reason,
                           "message", msg, "type", type, "source", "component", r->component,
                           "host", r->host, "firstTimestamp", now, "lastTimestamp", now, "count",
                           (json_int_t)1, "reportingComponent", r->component,
                           "reportingInstance", r->host);
    if (!ev) return NULL;
    json_t *inv = json_object_get(ev, "involvedObject");
    static const char *const copied[][2] = {{"kind", NULL}, {"apiVersion", NULL}};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        const char *v = json_string_value(json_object_get(obj, copied[i][0]));
        if (v) json_object_set_new(inv, copied[i][0], json_string(v));
    }
    if (ns && *ns) json_object_set_new(inv, "namespace", json_string(ns));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    if (uid) json_object_set_new(inv, "uid", json_string(uid));
    if (rv) json_object_set_new(inv, "resourceVersion", json_string(rv));
    return ev;
}

void skiff_event_record(skiff_event_recorder_t *r, const json_t *obj, const char *type,
                        const char *reason, const char *fmt, ...)
{
    if (!r || r->closing || !obj || !type || !reason || !fmt) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    if (!name) return;
    /* Events about cluster-scoped objects live in "default" */
    const char *ev_ns = ns && *ns ? ns : "default";
    char now[32];
    int64_t now_ms = skiff_now_ms();
    skiff_time_format(now_ms, now, sizeof now);

    pending_t *p = calloc(1, sizeof *p);
    if (!p) return;
    p->r = r;
    r->in_flight++;
    if (asprintf(&p->fold_key, "%s|%s|%s|%s|%s|%s", uid ? uid : "", ns ? ns : "", name, type,
                 reason, msg) < 0) {
        p->fold_key = NULL;
        pending_free(p);
        return;
    }
    p->event = event_new(r, obj, ev_ns, type, reason, msg, now);
    if (!p->event) {
        pending_free(p);
        return;
    }
    seen_event_t *s = strmap_get(r->seen, p->fold_key);
    if (s && now_ms - s->last_ms < FOLD_WINDOW_MS) {
        s->count++;
        s->last_ms = now_ms;
        char patch[256];
        snprintf(patch, sizeof patch, "{\"count\":%lld,\"lastTimestamp\":\"%s\"}",
                 (long long)s->count, now);
        if (skiff_client_patch(r->client, &events_res, s->ns, s->name, SKIFF_PATCH_MERGE, patch,
                               NULL, on_patched, p) != 0)
            pending_free(p);
        return;
    }
    create_event(p);
}
