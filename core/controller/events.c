/* core/controller/events.c - the Event recorder of skiff/objects.h: writes
 * core/v1 Events about an object the way Kubernetes' event correlator
 * (client-go tools/record) does, so that a controller that retries or
 * works in bursts does not flood the store:
 *  - a repeat of an Event (same object, type, reason and message) within
 *    ten minutes increments the count of the Event written before;
 *  - the tenth different message of the same object, type and reason
 *    within ten minutes starts one Event "(combined from similar events):
 *    <message>" that the following ones count into;
 *  - a component writes at most 25 Events about one object in a burst,
 *    then one every five minutes; occurrences over that are still counted
 *    and show in the next write.
 * One write per Event is in flight at a time: occurrences meanwhile are
 * counted and written by one patch when it ends. */
#define _GNU_SOURCE
#include <skiff/objects.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/client_rest.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/strmap.h"

enum {
    MAX_REMEMBERED = 4096,           /* entries a table keeps (Kubernetes' LRU size) */
    FOLD_WINDOW_MS = 10 * 60 * 1000, /* repeats and similar messages fold within this */
    AGGREGATE_MAX = 10,              /* the tenth different message starts the combined Event */
    SPAM_BURST = 25,                 /* Events about one object written in a burst... */
    SPAM_REFILL_MS = 5 * 60 * 1000,  /* ...then one every five minutes */
};

#define COMBINED_PREFIX "(combined from similar events): "

/* An Event written (or being written) and the occurrences it counts. */
typedef struct seen_event {
    char *ns, *name;   /* the Event written; name NULL while its create is in flight */
    int64_t count;     /* occurrences counted */
    int64_t last_ms;   /* the newest occurrence */
    char last_time[32]; /* ...as lastTimestamp */
    char *message;     /* the newest occurrence's message */
    int busy;          /* a create or patch in flight */
    int dirty;         /* occurrences that passed the spam filter wait for a patch */
    uint64_t serial;   /* which entry a write's answer is for (tables start over) */
    /* to write the Event anew when it was removed: the involved object's
     * kind, apiVersion, name, namespace and uid, the type, the reason and
     * the Event's namespace, NUL-separated in one block */
    char *ident;
} seen_event_t;

/* The different messages seen for one object, type and reason. */
typedef struct similar {
    uint64_t messages[AGGREGATE_MAX]; /* hashes of the messages */
    int n;
    int64_t last_ms;
} similar_t;

/* The token bucket of one object. */
typedef struct spam_bucket {
    double tokens;
    int64_t last_ms;
} spam_bucket_t;

struct skiff_event_recorder {
    skiff_client_t *client;
    char *component;
    char *host;
    strmap_t *seen;    /* uid|ns|name|type|reason|message (or "*|" and without message
                          for a combined Event) -> seen_event_t */
    strmap_t *similar; /* uid|ns|name|type|reason -> similar_t */
    strmap_t *spam;    /* uid|ns|name -> spam_bucket_t */
    uint64_t serial;
    int uncorrelated;  /* only exact repeats fold (skiff_event_recorder_uncorrelated) */
    int in_flight;
    int closing;
};

typedef struct pending {
    skiff_event_recorder_t *r;
    char *fold_key;
    uint64_t serial;
} pending_t;

static const skiff_resource_t events_res = {"", "v1", "events", NULL};

static void seen_free(void *v)
{
    seen_event_t *s = v;
    if (!s) return;
    free(s->ns);
    free(s->name);
    free(s->message);
    free(s->ident);
    free(s);
}

static void recorder_maybe_free(skiff_event_recorder_t *r)
{
    if (!r->closing || r->in_flight) return;
    strmap_free(r->seen, seen_free);
    strmap_free(r->similar, free);
    strmap_free(r->spam, free);
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
    r->similar = strmap_new();
    r->spam = strmap_new();
    if (!r->component || !r->host || !r->seen || !r->similar || !r->spam) {
        r->closing = 1;
        recorder_maybe_free(r);
        return NULL;
    }
    return r;
}

void skiff_event_recorder_uncorrelated(skiff_event_recorder_t *r)
{
    if (r) r->uncorrelated = 1;
}

void skiff_event_recorder_free(skiff_event_recorder_t *r)
{
    if (!r) return;
    r->closing = 1;
    recorder_maybe_free(r);
}

/* A write in flight for s (its create or patch): s is busy until the
 * answer. NULL when out of memory (nothing changed). */
static pending_t *pending_new(skiff_event_recorder_t *r, const char *fold_key, seen_event_t *s)
{
    pending_t *p = calloc(1, sizeof *p);
    if (!p || !(p->fold_key = strdup(fold_key))) {
        free(p);
        return NULL;
    }
    p->r = r;
    p->serial = s->serial;
    r->in_flight++;
    s->busy = 1;
    s->dirty = 0;
    return p;
}

static void pending_free(pending_t *p)
{
    skiff_event_recorder_t *r = p->r;
    free(p->fold_key);
    free(p);
    r->in_flight--;
    recorder_maybe_free(r);
}

/* *map, emptied first when it holds MAX_REMEMBERED entries (Kubernetes
 * keeps the 4,096 most recent in an LRU; starting over costs at most a
 * fold missed). NULL when out of memory. */
static strmap_t *bounded(strmap_t **map, void (*free_value)(void *))
{
    if (*map && strmap_size(*map) < MAX_REMEMBERED) return *map;
    strmap_free(*map, free_value);
    *map = strmap_new();
    return *map;
}

/* The entry of key in *map (emptied first when full, see bounded), made
 * zeroed when there is none (*made set). NULL when out of memory. */
static void *table_entry(strmap_t **map, const char *key, size_t size, int *made)
{
    strmap_t *m = bounded(map, free);
    void *e = m ? strmap_get(m, key) : NULL;
    *made = 0;
    if (e || !m) return e;
    e = calloc(1, size);
    if (!e) return NULL;
    strmap_put(m, key, e);
    if (strmap_get(m, key) != e) { /* out of memory */
        free(e);
        return NULL;
    }
    *made = 1;
    return e;
}

/* Whether the spam filter lets one more Event about this object through. */
static int spam_allows(skiff_event_recorder_t *r, const char *key, int64_t now_ms)
{
    int made;
    spam_bucket_t *b = table_entry(&r->spam, key, sizeof *b, &made);
    if (!b) return 1;
    if (made) {
        b->tokens = SPAM_BURST;
        b->last_ms = now_ms;
    }
    b->tokens += (double)(now_ms - b->last_ms) / SPAM_REFILL_MS;
    if (b->tokens > SPAM_BURST) b->tokens = SPAM_BURST;
    b->last_ms = now_ms;
    if (b->tokens < 1) return 0;
    b->tokens -= 1;
    return 1;
}

/* Whether msg is (at least) the tenth different message of its object,
 * type and reason within the window: it then goes into the combined Event. */
static int aggregate(skiff_event_recorder_t *r, const char *key, const char *msg, int64_t now_ms)
{
    int made;
    similar_t *a = table_entry(&r->similar, key, sizeof *a, &made);
    if (!a) return 0;
    if (now_ms - a->last_ms > FOLD_WINDOW_MS) a->n = 0;
    a->last_ms = now_ms;
    uint64_t h = fnv1a_str(msg);
    int known = 0;
    for (int i = 0; i < a->n && !known; i++) known = a->messages[i] == h;
    if (!known) a->messages[a->n++] = h;
    if (a->n < AGGREGATE_MAX) return 0;
    a->n--; /* keep the set below the threshold: the next new message aggregates too */
    return 1;
}

static void write_event(skiff_event_recorder_t *r, const char *fold_key, seen_event_t *s);
static void create_anew(skiff_event_recorder_t *r, const char *fold_key, seen_event_t *s);

/* The entry a write's answer is for, or NULL when its table started over. */
static seen_event_t *answered(pending_t *p)
{
    seen_event_t *s = p->r->seen ? strmap_get(p->r->seen, p->fold_key) : NULL;
    return s && s->serial == p->serial ? s : NULL;
}

static void on_created(void *data, int status, json_t *obj)
{
    pending_t *p = data;
    skiff_event_recorder_t *r = p->r;
    seen_event_t *s = answered(p);
    if (status == 201 || status == 200) {
        const char *ns = json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
        const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
        if (s && !s->name && ns && name) {
            s->ns = strdup(ns);
            s->name = strdup(name);
            s->busy = 0;
            if (!s->ns || !s->name) seen_free(strmap_remove(r->seen, p->fold_key));
            else if (s->dirty && !r->closing) write_event(r, p->fold_key, s);
        }
    } else {
        log_warn(r->component, "cannot record event: HTTP %d", status);
        if (s && !s->name) seen_free(strmap_remove(r->seen, p->fold_key));
    }
    pending_free(p);
}

static void on_patched(void *data, int status, json_t *obj)
{
    (void)obj;
    pending_t *p = data;
    skiff_event_recorder_t *r = p->r;
    seen_event_t *s = answered(p);
    if (status == 404) {
        /* the Event was removed (or expired): write it anew, with its count */
        if (s && !r->closing) create_anew(r, p->fold_key, s);
        else if (s) seen_free(strmap_remove(r->seen, p->fold_key));
    } else {
        if (status != 200) log_warn(r->component, "cannot update event: HTTP %d", status);
        if (s) {
            s->busy = 0;
            if (s->dirty && !r->closing) write_event(r, p->fold_key, s);
        }
    }
    pending_free(p);
}

/* Writes s's count, newest time and message to its Event (which exists). */
static void write_event(skiff_event_recorder_t *r, const char *fold_key, seen_event_t *s)
{
    json_t *patch = json_object();
    json_t *count = json_integer(s->count), *last = json_string(s->last_time);
    json_t *msg = json_string(s->message);
    if (!patch || !count || !last || !msg) {
        json_decref(patch), json_decref(count), json_decref(last), json_decref(msg);
        return;
    }
    json_object_set_new_nocheck(patch, "count", count);
    json_object_set_new_nocheck(patch, "lastTimestamp", last);
    json_object_set_new_nocheck(patch, "message", msg);
    char *body = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    pending_t *p = body ? pending_new(r, fold_key, s) : NULL;
    if (!p) {
        free(body);
        return;
    }
    if (skiff_client_patch(r->client, &events_res, s->ns, s->name, SKIFF_PATCH_MERGE, body, NULL,
                           on_patched, p) != 0) {
        s->busy = 0;
        pending_free(p);
    }
    free(body);
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

/* The object an Event is about. */
typedef struct involved {
    const char *kind, *api_version, *name, *ns, *uid, *rv;
} involved_t;

/* A new core/v1 Event about inv (generateName "<name>."), built member by
 * member in the order the server stores it (json_pack parsing its format
 * string was a quarter of an Event's cost to the scheduler). */
static json_t *event_new(const skiff_event_recorder_t *r, const involved_t *in, const char *ev_ns,
                         const char *type, const char *reason, const char *msg, const char *first,
                         const char *last, int64_t count)
{
    char gen[300];
    snprintf(gen, sizeof gen, "%.240s.", in->name);
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
    if (in->kind && *in->kind) set_str(inv, "kind", in->kind);
    if (in->ns && *in->ns) set_str(inv, "namespace", in->ns);
    set_str(inv, "name", in->name);
    if (in->uid && *in->uid) set_str(inv, "uid", in->uid);
    if (in->api_version && *in->api_version) set_str(inv, "apiVersion", in->api_version);
    if (in->rv) set_str(inv, "resourceVersion", in->rv);
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
    set_str(ev, "firstTimestamp", first);
    set_str(ev, "lastTimestamp", last);
    json_object_set_new_nocheck(ev, "count", json_integer(count));
    set_str(ev, "type", type);
    set_str(ev, "reportingComponent", r->component);
    set_str(ev, "reportingInstance", r->host);
    return ev;
}

/* Sends ev (handed over) as a create for s; on failure s leaves the table. */
static void create_event(skiff_event_recorder_t *r, const char *fold_key, seen_event_t *s,
                         json_t *ev, const char *ev_ns)
{
    pending_t *p = ev ? pending_new(r, fold_key, s) : NULL;
    if (!p) {
        json_decref(ev);
        seen_free(strmap_remove(r->seen, fold_key));
        return;
    }
    /* the Event is handed over (the server fills it in; it is not needed
     * again) and the answer is only read */
    if (client_rest_create_ex(r->client, &events_res, ev_ns, ev, NULL, 1, NULL, 1, on_created, p) != 0) {
        seen_free(strmap_remove(r->seen, fold_key));
        pending_free(p);
    }
}

/* The Event of s was removed while occurrences were still counted into
 * it: a new one with the count so far (Kubernetes' recorder does the same). */
static void create_anew(skiff_event_recorder_t *r, const char *fold_key, seen_event_t *s)
{
    const char *f[8];
    const char *at = s->ident;
    for (int i = 0; i < 8; i++) {
        f[i] = at;
        at += strlen(at) + 1;
    }
    involved_t in = {f[0], f[1], f[2], f[3], f[4], NULL};
    free(s->ns);
    free(s->name);
    s->ns = s->name = NULL;
    json_t *ev = event_new(r, &in, f[7], f[5], f[6], s->message, s->last_time, s->last_time,
                           s->count);
    create_event(r, fold_key, s, ev, f[7]);
}

/* "kind\0apiVersion\0name\0ns\0uid\0type\0reason\0ev_ns\0" in one block. */
static char *ident_new(const involved_t *in, const char *type, const char *reason,
                       const char *ev_ns)
{
    const char *f[8] = {in->kind, in->api_version, in->name, in->ns, in->uid, type, reason, ev_ns};
    size_t n = 0;
    for (int i = 0; i < 8; i++) n += strlen(f[i] ? f[i] : "") + 1;
    char *b = malloc(n), *at = b;
    if (!b) return NULL;
    for (int i = 0; i < 8; i++) {
        size_t len = strlen(f[i] ? f[i] : "") + 1;
        memcpy(at, f[i] ? f[i] : "", len);
        at += len;
    }
    return b;
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
    involved_t in = {json_string_value(json_object_get(obj, "kind")),
                     json_string_value(json_object_get(obj, "apiVersion")),
                     json_string_value(json_object_get(meta, "name")),
                     json_string_value(json_object_get(meta, "namespace")),
                     json_string_value(json_object_get(meta, "uid")),
                     json_string_value(json_object_get(meta, "resourceVersion"))};
    const char *name = in.name, *ns = in.ns, *uid = in.uid;
    if (!name) return;
    /* Events about cluster-scoped objects live in "default" */
    const char *ev_ns = ns && *ns ? ns : "default";
    int64_t now_ms = skiff_now_ms();

    /* the object; with its type and reason, the similar Events; with the
     * message too, one Event */
    char obj_key[1024], similar_key[1200];
    snprintf(obj_key, sizeof obj_key, "%s|%s|%s", uid ? uid : "", ns ? ns : "", name);
    snprintf(similar_key, sizeof similar_key, "%s|%s|%s", obj_key, type, reason);
    char *key = NULL, *combined = NULL;
    const char *text = msg;
    if (!r->uncorrelated && aggregate(r, similar_key, msg, now_ms)) {
        /* "*|<similar key>": the combined Event of them all */
        if (asprintf(&combined, COMBINED_PREFIX "%s", msg) < 0) return;
        text = combined;
        if (asprintf(&key, "*|%s", similar_key) < 0) {
            free(combined);
            return;
        }
    } else if (asprintf(&key, "%s|%s", similar_key, msg) < 0) {
        return;
    }
    int allowed = r->uncorrelated || spam_allows(r, obj_key, now_ms);

    strmap_t *seen = bounded(&r->seen, seen_free);
    seen_event_t *s = seen ? strmap_get(seen, key) : NULL;
    if (s && now_ms - s->last_ms >= FOLD_WINDOW_MS && !s->busy) {
        seen_free(strmap_remove(seen, key));
        s = NULL;
    }
    if (s) {
        /* counted now; written when the spam filter lets an occurrence through */
        char *m = strdup(text);
        if (m) {
            free(s->message);
            s->message = m;
        }
        s->count++;
        s->last_ms = now_ms;
        skiff_time_format(now_ms, s->last_time, sizeof s->last_time);
        if (allowed) s->dirty = 1;
        if (s->dirty && !s->busy && s->name) write_event(r, key, s);
        goto done;
    }
    if (!allowed || !seen) goto done;
    s = calloc(1, sizeof *s);
    if (!s || !(s->message = strdup(text)) || !(s->ident = ident_new(&in, type, reason, ev_ns))) {
        seen_free(s);
        goto done;
    }
    s->count = 1;
    s->last_ms = now_ms;
    s->serial = ++r->serial;
    skiff_time_format(now_ms, s->last_time, sizeof s->last_time);
    strmap_put(seen, key, s);
    if (strmap_get(seen, key) != s) { /* out of memory */
        seen_free(s);
        goto done;
    }
    create_event(r, key, s,
                 event_new(r, &in, ev_ns, type, reason, text, s->last_time, s->last_time, 1),
                 ev_ns);
done:
    free(key);
    free(combined);
}
