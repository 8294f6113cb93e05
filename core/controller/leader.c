/* core/controller/leader.c - Lease-based leader election over the SDK client. */
#define _GNU_SOURCE /* strptime, timegm */
#include <skiff/leader.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <skiff/objects.h>


static const skiff_resource_t leases = {"coordination.k8s.io", "v1", "leases", NULL};

struct skiff_leader {
    uv_loop_t *loop;
    skiff_client_t *client;
    skiff_leader_opts_t o;
    char *ns, *name, *identity;
    uv_timer_t timer;
    int leader;
    int busy;       /* a request in flight */
    int stopping;
    uint64_t last_renew_ms; /* loop time of the last successful renewal */
    void (*done)(void *);
    void *done_data;
};

/* "2006-01-02T15:04:05.000000Z" (metav1.MicroTime) */
static void now_micro(char *buf, size_t len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%06ldZ", base, (long)tv.tv_usec);
}

/* Seconds since the epoch of a MicroTime or Time; 0 when unreadable. */
static double parse_time(const char *s)
{
    if (!s) return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) return 0;
    double frac = 0;
    if (*rest == '.') frac = strtod(rest, NULL);
    return (double)timegm(&tm) + frac;
}

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void schedule(skiff_leader_t *l, int ms);

static void set_leader(skiff_leader_t *l, int on)
{
    if (l->leader == on) return;
    l->leader = on;
    if (on && l->o.started_leading) l->o.started_leading(l->o.data);
    if (!on && l->o.stopped_leading) l->o.stopped_leading(l->o.data);
}

static void finish_stop(skiff_leader_t *l);

static void after_write(void *data, int status, json_t *obj)
{
    skiff_leader_t *l = data;
    l->busy = 0;
    if (l->stopping) {
        finish_stop(l);
        return;
    }
    if (status == 200 || status == 201) {
        l->last_renew_ms = uv_now(l->loop);
        set_leader(l, 1);
    } else if (l->leader &&
               uv_now(l->loop) - l->last_renew_ms > (uint64_t)l->o.renew_deadline_ms) {
        set_leader(l, 0); /* could not renew in time: someone else may lead now */
    }
    schedule(l, l->o.retry_period_ms);
}

static void write_lease(skiff_leader_t *l, json_t *lease, int create)
{
    l->busy = 1;
    int rc = create ? skiff_client_create(l->client, &leases, l->ns, lease, NULL, after_write, l)
                    : skiff_client_update(l->client, &leases, l->ns, lease, NULL, after_write, l);
    if (rc != 0) after_write(l, 0, NULL);
}

static void on_lease(void *data, int status, json_t *obj)
{
    skiff_leader_t *l = data;
    l->busy = 0;
    if (l->stopping) {
        finish_stop(l);
        return;
    }
    char now[40];
    now_micro(now, sizeof now);
    int dur_s = (l->o.lease_duration_ms + 999) / 1000;
    if (status == 404) {
        json_t *lease = json_pack(
            "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
            "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", l->name, "namespace",
            l->ns, "spec", "holderIdentity", l->identity, "leaseDurationSeconds", dur_s,
            "acquireTime", now, "renewTime", now, "leaseTransitions", 0);
        write_lease(l, lease, 1);
        json_decref(lease);
        return;
    }
    if (status != 200 || !obj) {
        after_write(l, status, NULL); /* counts as a failed renewal */
        return;
    }
    json_t *lease = skiff_json_copy(obj);
    json_t *spec = json_object_get(lease, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(lease, "spec", spec);
    }
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    double renewed = parse_time(json_string_value(json_object_get(spec, "renewTime")));
    json_int_t held_for = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    if (held_for <= 0) held_for = dur_s;
    int mine = holder && strcmp(holder, l->identity) == 0;
    int free_now = !holder || !*holder || renewed + (double)held_for < now_s();
    if (!mine && !free_now) {
        /* someone else holds it and renews it */
        json_decref(lease);
        set_leader(l, 0);
        schedule(l, l->o.retry_period_ms);
        return;
    }
    if (!mine) {
        json_int_t transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
        json_object_set_new(spec, "holderIdentity", json_string(l->identity));
        json_object_set_new(spec, "acquireTime", json_string(now));
        json_object_set_new(spec, "leaseTransitions", json_integer(transitions + 1));
    }
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(dur_s));
    json_object_set_new(spec, "renewTime", json_string(now));
    /* the resourceVersion read makes this an optimistic write: of two
     * candidates taking over at once, one gets a 409 */
    write_lease(l, lease, 0);
    json_decref(lease);
}

static void on_timer(uv_timer_t *t)
{
    skiff_leader_t *l = t->data;
    if (l->busy || l->stopping) return;
    l->busy = 1;
    if (skiff_client_get(l->client, &leases, l->ns, l->name, on_lease, l) != 0) {
        l->busy = 0;
        schedule(l, l->o.retry_period_ms);
    }
}

static void schedule(skiff_leader_t *l, int ms)
{
    if (!l->stopping) uv_timer_start(&l->timer, on_timer, (uint64_t)ms, 0);
}

int skiff_leader_start(uv_loop_t *loop, skiff_client_t *client, const skiff_leader_opts_t *o,
                       skiff_leader_t **out)
{
    if (!loop || !client || !o || !o->namespace_ || !o->name || !o->identity) return SKIFF_EINVAL;
    skiff_leader_t *l = calloc(1, sizeof *l);
    if (!l) return SKIFF_ENOMEM;
    l->loop = loop;
    l->client = client;
    l->o = *o;
    if (!l->o.lease_duration_ms) l->o.lease_duration_ms = 15000;
    if (!l->o.renew_deadline_ms) l->o.renew_deadline_ms = 10000;
    if (!l->o.retry_period_ms) l->o.retry_period_ms = 2000;
    l->ns = strdup(o->namespace_);
    l->name = strdup(o->name);
    l->identity = strdup(o->identity);
    if (!l->ns || !l->name || !l->identity) {
        free(l->ns);
        free(l->name);
        free(l->identity);
        free(l);
        return SKIFF_ENOMEM;
    }
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    schedule(l, 0);
    *out = l;
    return 0;
}

int skiff_leader_is_leader(const skiff_leader_t *l) { return l && l->leader; }

static void on_timer_closed(uv_handle_t *h)
{
    skiff_leader_t *l = h->data;
    void (*done)(void *) = l->done;
    void *dd = l->done_data;
    free(l->ns);
    free(l->name);
    free(l->identity);
    free(l);
    if (done) done(dd);
}

static void on_released(void *data, int status, json_t *obj)
{
    skiff_leader_t *l = data;
    l->busy = 0;
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

static void on_lease_for_release(void *data, int status, json_t *obj)
{
    skiff_leader_t *l = data;
    const char *holder =
        json_string_value(json_object_get(json_object_get(obj, "spec"), "holderIdentity"));
    if (status != 200 || !holder || strcmp(holder, l->identity) != 0) {
        on_released(l, 0, NULL);
        return;
    }
    /* clear the holder so a successor takes over at once */
    json_t *lease = skiff_json_copy(obj);
    json_object_set_new(json_object_get(lease, "spec"), "holderIdentity", json_string(""));
    if (skiff_client_update(l->client, &leases, l->ns, lease, NULL, on_released, l) != 0)
        on_released(l, 0, NULL);
    json_decref(lease);
}

static void finish_stop(skiff_leader_t *l)
{
    int was = l->leader;
    set_leader(l, 0);
    l->busy = 1;
    if (!was || skiff_client_get(l->client, &leases, l->ns, l->name, on_lease_for_release, l) != 0)
        on_released(l, 0, NULL);
}

void skiff_leader_stop(skiff_leader_t *l, void (*done)(void *), void *data)
{
    if (!l) return;
    l->stopping = 1;
    l->done = done;
    l->done_data = data;
    uv_timer_stop(&l->timer);
    if (!l->busy) finish_stop(l); /* else the answer in flight finishes it */
}
