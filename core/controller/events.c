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
    if (client_rest_create_ex(p->r->client, &events_res, ns, ev, NULL, 1, NULL, 1, on_created, p) != 0)
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

/* A message cut to the buffer may end inside a UTF-8 sequence: drop the
 * partial character (Events are JSON, which must be valid UTF-8). */
static void cut_at_character(char *msg)
{
    size_t n = strlen(msg), i = n;
    while (i > 0 && ((unsigned char)msg[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)msg[i - 1];
    size_t len = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (i - 1 + len > n) msg[i - 1] = '\0';
}

static void set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new_nocheck(o, key, json_string(v));
}

/* A new core/v1 Event about obj (generateName "<name>."), built member by
 * member in the order the server stores it (json_pack parsing its format
 * string was a quarter of an Event's cost to the scheduler). */
static json_t *event_new(const skiff_event_recorder_t *r, const json_t *obj, const char *ev_ns,
                         const char *type, const char *reason, const char *msg, const char *now)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *api_version = json_string_value(json_object_get(obj, "apiVersion"));
    char gen[300];
    snprintf(gen, sizeof gen, "%.240s.", name);
    json_t *ev = json_object(), *em = json_object(), *inv = json_object(), *src = json_object();
    if (!ev || !em || !inv || !src) {
        json_decref(ev);
        json_decref(em);
        json_decref(inv);
        json_decref(src);
        return NULL;
    }
    set_str(ev, "kind", "Event");
    set_str(ev, "apiVersion", "v1");
    set_str(em, "generateName", gen);
    set_str(em, "namespace", ev_ns);
    json_object_set_new_nocheck(ev, "metadata", em);
    if (kind) set_str(inv, "kind", kind);
    if (ns && *ns) set_str(inv, "namespace", ns);
    set_str(inv, "name", name);
    if (uid) set_str(inv, "uid", uid);
    if (api_version) set_str(inv, "apiVersion", api_version);
    if (rv) set_str(inv, "resourceVersion", rv);
    json_object_set_new_nocheck(ev, "involvedObject", inv);
    set_str(ev, "reason", reason);
    json_t *m = json_string(msg);
    if (!m) { /* not UTF-8: no Event, as when the message cannot be sent */
        json_decref(ev);
        return NULL;
    }
    json_object_set_new_nocheck(ev, "message", m);
    set_str(src, "component", r->component);
    set_str(src, "host", r->host);
    json_object_set_new_nocheck(ev, "source", src);
    set_str(ev, "firstTimestamp", now);
    set_str(ev, "lastTimestamp", now);
    json_object_set_new_nocheck(ev, "count", json_integer(1));
    set_str(ev, "type", type);
    set_str(ev, "reportingComponent", r->component);
    set_str(ev, "reportingInstance", r->host);
    return ev;
}

void skiff_event_record(skiff_event_recorder_t *r, const json_t *obj, const char *type,
                        const char *reason, const char *fmt, ...)
{
    if (!r || r->closing || !obj || !type || !reason || !fmt) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int full = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (full >= (int)sizeof msg) cut_at_character(msg);
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
