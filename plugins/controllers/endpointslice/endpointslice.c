/* plugins/controllers/endpointslice/endpointslice.c - the EndpointSlice
 * controller: discovery.k8s.io/v1 EndpointSlices for every Service with a
 * selector, as kube-controller-manager's endpointslice controller writes
 * them (pkg/controller/endpointslice).
 *
 * Slices are grouped by address type (the Service's IP families) and by
 * the ports the pods resolve to; each holds at most maxEndpointsPerSlice
 * endpoints. Existing slices are kept and edited in place where possible:
 * endpoints that stay stay where they are, new ones fill slices that are
 * being written anyway, and a slice that would be deleted is reused for
 * one that would be created. A Service without endpoints gets one empty
 * placeholder slice. It only writes slices labelled as its own. */
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>
#include <skiff/objects.h>
#include <skiff/plugin.h>

#include "service_pods.h"

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define LABEL_MANAGED_BY "endpointslice.kubernetes.io/managed-by"
#define MANAGED_BY "endpointslice-controller.k8s.io"
#define LABEL_HEADLESS "service.kubernetes.io/headless"
#define LABEL_ZONE "topology.kubernetes.io/zone"
#define ANN_TRIGGER "endpoints.kubernetes.io/last-change-trigger-time"

static const skiff_resource_t res_services = {"", "v1", "services", NULL};
static const skiff_resource_t res_pods = {"", "v1", "pods", NULL};
static const skiff_resource_t res_nodes = {"", "v1", "nodes", NULL};
static const skiff_resource_t res_slices = {"discovery.k8s.io", "v1", "endpointslices", NULL};

static const skiff_setting_t eps_settings[] = {
    {"maxEndpointsPerSlice", SKIFF_SETTING_INT, "100",
     "endpoints in one EndpointSlice at most (1 to 1000), as kube-controller-manager's "
     "--max-endpoints-per-slice"},
    {"batchPeriod", SKIFF_SETTING_DURATION, "100ms",
     "a Service is recomputed at most once in this period; pod changes in between are "
     "folded into one write (kube-controller-manager's --endpointslice-updates-batch-period)"},
    {NULL},
};

static skiff_informer_t *pods_inf(ctl_state_t *s) { return skiff_controller_secondary_informer(s->c, 0); }
static skiff_informer_t *slices_inf(ctl_state_t *s) { return skiff_controller_secondary_informer(s->c, 1); }
static skiff_informer_t *nodes_inf(ctl_state_t *s) { return skiff_controller_secondary_informer(s->c, 2); }

static char *dump(const json_t *v) { return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS); }

/* ---- what the Service wants ------------------------------------------------------ */

/* Address types the Service takes: its ipFamilies; else its clusterIP's
 * family; else a dual-stack policy means both, and IPv4 otherwise (what the
 * API server would have defaulted ipFamilies to on a single-stack IPv4
 * cluster). */
static void address_types(const json_t *svc, int *v4, int *v6)
{
    *v4 = *v6 = 0;
    json_t *spec = json_object_get(svc, "spec");
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(spec, "ipFamilies"), i, f) {
        const char *s = json_string_value(f);
        if (s && strcmp(s, "IPv4") == 0) *v4 = 1;
        if (s && strcmp(s, "IPv6") == 0) *v6 = 1;
    }
    if (*v4 || *v6) return;
    const char *cip = jstr(spec, "clusterIP", NULL);
    if (cip && *cip && strcmp(cip, "None") != 0) {
        *(ip_is_v6(cip) ? v6 : v4) = 1;
        return;
    }
    const char *policy = jstr(spec, "ipFamilyPolicy", NULL);
    *v4 = 1;
    if (policy && (strcmp(policy, "RequireDualStack") == 0 || strcmp(policy, "PreferDualStack") == 0))
        *v6 = 1;
}

/* The ports one pod serves for the Service, in the Service's order; a
 * port whose named targetPort the pod lacks is left out. */
static json_t *pod_ports(const json_t *svc, const json_t *pod)
{
    json_t *out = json_array();
    json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports");
    size_t i;
    json_t *sp;
    json_array_foreach(ports, i, sp) {
        int num = pod_target_port(pod, sp);
        if (num <= 0) continue;
        const char *name = jstr(sp, "name", NULL), *proto = jstr(sp, "protocol", NULL);
        json_t *p = json_pack("{s:s, s:i, s:s}", "name", name ? name : "", "port", num,
                              "protocol", proto ? proto : "TCP");
        const char *app = jstr(sp, "appProtocol", NULL);
        if (app) json_object_set_new(p, "appProtocol", json_string(app));
        json_array_append_new(out, p);
    }
    return out;
}

static json_t *pod_endpoint(const json_t *pod, const json_t *svc, const json_t *node, int v6)
{
    json_t *addrs = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "podIPs"), i, e) {
        const char *ip = jstr(e, "ip", NULL);
        if (ip && ip_is_v6(ip) == v6) json_array_append_new(addrs, json_string(ip));
    }
    const char *pip = jstr(pod, "status", "podIP", NULL);
    if (json_array_size(addrs) == 0 && pip && ip_is_v6(pip) == v6)
        json_array_append_new(addrs, json_string(pip));
    if (json_array_size(addrs) == 0) {
        json_decref(addrs);
        return NULL;
    }
    int serving = skiff_pod_is_ready(pod);
    int terminating = json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp") != NULL;
    int publish = json_is_true(json_object_get(json_object_get(svc, "spec"), "publishNotReadyAddresses"));
    /* a terminating pod is never ready unless the Service publishes all */
    int ready = publish || (serving && !terminating);
    json_t *ep = json_pack("{s:o, s:{s:b, s:b, s:b}, s:{s:s, s:s, s:s, s:s}}", "addresses", addrs,
                           "conditions", "ready", ready, "serving", serving, "terminating",
                           terminating, "targetRef", "kind", "Pod", "namespace", obj_ns(pod),
                           "name", obj_name(pod), "uid", obj_uid(pod));
    const char *node_name = jstr(pod, "spec", "nodeName", NULL);
    if (node_name && *node_name) json_object_set_new(ep, "nodeName", json_string(node_name));
    const char *zone = jstr(node, "metadata", "labels", LABEL_ZONE, NULL);
    if (zone && *zone) json_object_set_new(ep, "zone", json_string(zone));
    const char *host = pod_hostname_for(pod, svc);
    if (host) json_object_set_new(ep, "hostname", json_string(host));
    return ep;
}

static const char *endpoint_key(const json_t *ep)
{
    const char *uid = jstr(ep, "targetRef", "uid", NULL);
    if (uid && *uid) return uid;
    const char *a = json_string_value(json_array_get(json_object_get(ep, "addresses"), 0));
    return a ? a : "";
}

/* Desired endpoints: "IPv4|<ports>" -> {"v6": b, "ports": [...], "eps": {key: ep}}.
 * *missing_node is set when a pod's node is not known yet (its endpoint is
 * left out, as Kubernetes does, and the Service is looked at again). */
static json_t *desired_groups(ctl_state_t *s, const json_t *svc, const json_t *pods,
                              int v4, int v6, int *missing_node)
{
    json_t *groups = json_object();
    int publish = json_is_true(json_object_get(json_object_get(svc, "spec"), "publishNotReadyAddresses"));
    size_t i;
    json_t *pod;
    json_array_foreach((json_t *)pods, i, pod) {
        if (!pod_in_endpoints(pod, 1)) continue;
        const char *node_name = jstr(pod, "spec", "nodeName", NULL);
        json_t *node = node_name && *node_name ? skiff_informer_get(nodes_inf(s), node_name) : NULL;
        if (node_name && *node_name && !node && !publish) {
            *missing_node = 1;
            continue;
        }
        json_t *ports = pod_ports(svc, pod);
        char *psig = dump(ports);
        for (int fam6 = 0; fam6 < 2 && psig; fam6++) {
            if (!(fam6 ? v6 : v4)) continue;
            json_t *ep = pod_endpoint(pod, svc, node, fam6);
            if (!ep) continue;
            char gk[4096];
            snprintf(gk, sizeof gk, "%s|%s", fam6 ? "IPv6" : "IPv4", psig);
            json_t *g = json_object_get(groups, gk);
            if (!g) {
                g = json_pack("{s:b, s:O, s:{}}", "v6", fam6, "ports", ports, "eps");
                json_object_set_new(groups, gk, g);
            }
            json_object_set_new(json_object_get(g, "eps"), endpoint_key(ep), ep);
        }
        free(psig);
        json_decref(ports);
    }
    return groups;
}

static json_t *wanted_labels(const json_t *svc)
{
    json_t *l = skiff_json_copy(json_object_get(json_object_get(svc, "metadata"), "labels"));
    if (!json_is_object(l)) {
        json_decref(l);
        l = json_object();
    }
    json_object_del(l, LABEL_HEADLESS);
    if (svc_is_headless(svc)) json_object_set_new(l, LABEL_HEADLESS, json_string(""));
    json_object_set_new(l, LABEL_SERVICE_NAME, json_string(obj_name(svc)));
    json_object_set_new(l, LABEL_MANAGED_BY, json_string(MANAGED_BY));
    return l;
}

static json_t *owner_refs(const json_t *svc)
{
    return json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", "v1", "kind", "Service",
                     "name", obj_name(svc), "uid", obj_uid(svc), "controller", 1,
                     "blockOwnerDeletion", 1);
}

/* ---- planning the writes ---------------------------------------------------------------- */

/* One slice as it will be: the existing object (or NULL for a new one), its
 * address type, ports and endpoints. */
typedef struct plan_slice {
    json_t *cur;   /* borrowed from the cache; NULL: create */
    int v6;
    json_t *ports; /* owned */
    json_t *eps;   /* owned array */
    int changed;
    int remove;
} plan_slice_t;

typedef struct plan {
    plan_slice_t *v;
    size_t n, cap;
} plan_t;

static plan_slice_t *plan_add(plan_t *p)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        plan_slice_t *v = realloc(p->v, cap * sizeof *v);
        if (!v) return NULL;
        p->v = v;
        p->cap = cap;
    }
    plan_slice_t *ps = &p->v[p->n++];
    memset(ps, 0, sizeof *ps);
    return ps;
}

static void plan_free(plan_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        json_decref(p->v[i].ports);
        json_decref(p->v[i].eps);
    }
    free(p->v);
}

static int slice_is_v6(const json_t *slice)
{
    const char *t = jstr(slice, "addressType", NULL);
    return t && strcmp(t, "IPv6") == 0;
}

static int cmp_pod_name(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int r = strcmp(jstr(x, "targetRef", "name", NULL) ? jstr(x, "targetRef", "name", NULL) : "",
                   jstr(y, "targetRef", "name", NULL) ? jstr(y, "targetRef", "name", NULL) : "");
    return r ? r : strcmp(endpoint_key(x), endpoint_key(y));
}

/* Spreads one group's desired endpoints over its existing slices (of that
 * address type and ports) and new ones. */
static void plan_group(plan_t *p, json_t *group, const json_t *existing, int v6, const char *psig,
                       size_t max)
{
    json_t *want = json_object_get(group, "eps");
    json_t *taken = json_object();
    size_t first = p->n;
    size_t i;
    json_t *sl;
    json_array_foreach((json_t *)existing, i, sl) {
        if (slice_is_v6(sl) != v6) continue;
        json_t *ports = json_object_get(sl, "ports");
        json_t *ports_arr = ports ? json_incref(ports) : json_array();
        char *sig = dump(ports_arr);
        int same = sig && strcmp(sig, psig) == 0;
        free(sig);
        if (!same) {
            json_decref(ports_arr);
            continue;
        }
        plan_slice_t *ps = plan_add(p);
        if (!ps) {
            json_decref(ports_arr);
            break;
        }
        ps->cur = sl;
        ps->v6 = v6;
        ps->ports = ports_arr;
        ps->eps = json_array();
        size_t j;
        json_t *ep;
        json_array_foreach(json_object_get(sl, "endpoints"), j, ep) {
            const char *k = endpoint_key(ep);
            json_t *d = json_object_get(want, k);
            if (!d || json_object_get(taken, k) || json_array_size(ps->eps) >= max) {
                ps->changed = 1;
                continue;
            }
            json_object_set_new(taken, k, json_true());
            if (!json_equal(d, ep)) ps->changed = 1;
            json_array_append(ps->eps, d);
        }
        if (json_array_size(ps->eps) == 0) ps->remove = 1;
    }
    /* what is left: new endpoints, in pod-name order */
    size_t nleft = 0;
    json_t **left = malloc((json_object_size(want) + 1) * sizeof *left);
    const char *k;
    json_t *d;
    json_object_foreach(want, k, d) {
        if (left && !json_object_get(taken, k)) left[nleft++] = d;
    }
    if (left) qsort(left, nleft, sizeof *left, cmp_pod_name);
    size_t next = 0;
    /* first slices being written anyway, then the fullest unchanged ones */
    for (int pass = 0; pass < 2 && next < nleft; pass++) {
        for (;;) {
            plan_slice_t *best = NULL;
            for (size_t s = first; s < p->n; s++) {
                plan_slice_t *ps = &p->v[s];
                if (ps->remove || json_array_size(ps->eps) >= max) continue;
                if (pass == 0 && !ps->changed) continue;
                if (!best || json_array_size(ps->eps) > json_array_size(best->eps)) best = ps;
            }
            if (!best || next >= nleft) break;
            while (next < nleft && json_array_size(best->eps) < max)
                json_array_append(best->eps, left[next++]);
            best->changed = 1;
        }
    }
    while (next < nleft) {
        plan_slice_t *ps = plan_add(p);
        if (!ps) break;
        ps->v6 = v6;
        ps->ports = json_incref(json_object_get(group, "ports"));
        ps->eps = json_array();
        ps->changed = 1;
        while (next < nleft && json_array_size(ps->eps) < max)
            json_array_append(ps->eps, left[next++]);
    }
    free(left);
    json_decref(taken);
}

/* Existing slices no group claimed (other ports, or an address type the
 * Service no longer has) are to be removed. */
static void plan_leftovers(plan_t *p, const json_t *existing)
{
    size_t i;
    json_t *sl;
    json_array_foreach((json_t *)existing, i, sl) {
        int claimed = 0;
        for (size_t s = 0; s < p->n && !claimed; s++) claimed = p->v[s].cur == sl;
        if (claimed) continue;
        plan_slice_t *ps = plan_add(p);
        if (!ps) return;
        ps->cur = sl;
        ps->v6 = slice_is_v6(sl);
        ps->ports = json_array();
        ps->eps = json_array();
        ps->remove = 1;
    }
}

/* A slice to create takes over one to remove of the same address type (the
 * type cannot change): an update instead of a create and a delete. */
static void plan_reuse(plan_t *p)
{
    for (size_t c = 0; c < p->n; c++) {
        plan_slice_t *nw = &p->v[c];
        if (nw->cur || nw->remove) continue;
        for (size_t d = 0; d < p->n; d++) {
            plan_slice_t *old = &p->v[d];
            if (!old->remove || !old->cur || old->v6 != nw->v6) continue;
            nw->cur = old->cur;
            old->cur = NULL;
            old->remove = 0;
            old->changed = 0; /* now an empty no-op */
            break;
        }
    }
}

/* With no endpoints at all a Service keeps one empty placeholder slice
 * (Kubernetes does, so that consumers can tell "no endpoints" from "not
 * processed yet"). */
static void plan_placeholder(plan_t *p, int v4)
{
    for (size_t i = 0; i < p->n; i++)
        if (!p->v[i].remove && (p->v[i].cur || p->v[i].changed)) return;
    int v6 = !v4;
    /* keep an existing empty one of the right type, or reuse any */
    plan_slice_t *reuse = NULL;
    for (size_t i = 0; i < p->n; i++) {
        plan_slice_t *ps = &p->v[i];
        if (!ps->remove || !ps->cur || ps->v6 != v6) continue;
        if (!reuse || (json_array_size(json_object_get(ps->cur, "endpoints")) == 0 &&
                       json_array_size(json_object_get(ps->cur, "ports")) == 0))
            reuse = ps;
    }
    if (reuse) {
        reuse->remove = 0;
        json_decref(reuse->ports);
        reuse->ports = json_array();
        reuse->changed = json_array_size(json_object_get(reuse->cur, "endpoints")) != 0 ||
                         json_array_size(json_object_get(reuse->cur, "ports")) != 0;
        return;
    }
    plan_slice_t *ps = plan_add(p);
    if (!ps) return;
    ps->v6 = v6;
    ps->ports = json_array();
    ps->eps = json_array();
    ps->changed = 1;
}

/* ---- writing ---------------------------------------------------------------------------- */

static json_t *slice_object(const plan_slice_t *ps, const json_t *svc, int64_t trigger)
{
    json_t *sl;
    if (ps->cur) {
        sl = skiff_json_copy(ps->cur);
    } else {
        char gen[64];
        snprintf(gen, sizeof gen, "%.57s-", obj_name(svc));
        sl = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "apiVersion", "discovery.k8s.io/v1",
                       "kind", "EndpointSlice", "metadata", "generateName", gen, "namespace",
                       obj_ns(svc), "addressType", ps->v6 ? "IPv6" : "IPv4");
    }
    json_t *meta = json_object_get(sl, "metadata");
    json_object_set_new(meta, "labels", wanted_labels(svc));
    json_object_set_new(meta, "ownerReferences", owner_refs(svc));
    json_t *ann = json_object_get(meta, "annotations");
    if (!json_is_object(ann)) {
        ann = json_object();
        json_object_set_new(meta, "annotations", ann);
    }
    if (trigger >= 0) {
        char buf[40];
        skiff_time_format(trigger, buf, sizeof buf);
        json_object_set_new(ann, ANN_TRIGGER, json_string(buf));
    } else {
        json_object_del(ann, ANN_TRIGGER);
    }
    if (json_object_size(ann) == 0) json_object_del(meta, "annotations");
    json_object_set(sl, "endpoints", ps->eps);
    if (json_array_size(ps->ports)) json_object_set(sl, "ports", ps->ports);
    else json_object_del(sl, "ports");
    return sl;
}

static int slice_meta_current(const json_t *cur, const json_t *svc)
{
    json_t *meta = json_object_get(cur, "metadata");
    json_t *labels = wanted_labels(svc);
    json_t *refs = owner_refs(svc);
    int ok = json_equal(labels, json_object_get(meta, "labels")) &&
             json_equal(refs, json_object_get(meta, "ownerReferences"));
    json_decref(labels);
    json_decref(refs);
    return ok;
}

/* Managed slices of the Service (by its name label) in its namespace. */
static json_t *service_slices(ctl_state_t *s, const char *ns, const char *name)
{
    json_t *out = json_array();
    json_t *all = skiff_informer_list_label(slices_inf(s), LABEL_SERVICE_NAME, name);
    size_t i;
    json_t *sl;
    json_array_foreach(all, i, sl) {
        const char *m = jstr(sl, "metadata", "labels", LABEL_MANAGED_BY, NULL);
        if (strcmp(obj_ns(sl), ns) == 0 && m && strcmp(m, MANAGED_BY) == 0)
            json_array_append(out, sl);
    }
    json_decref(all);
    return out;
}

static void eps_reconcile(skiff_reconcile_t *r)
{
    ctl_state_t *s = r->data;
    if (!expectations_met(s, r->key, slices_inf(s), r->ns)) {
        /* our last writes are not in the cache yet: acting now would
         * create slices twice */
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, 50});
        return;
    }
    json_t *svc = skiff_informer_get(skiff_controller_informer(s->c), r->key);
    int64_t wait = svc && svc_selector(svc) ? ctl_sync_wait(s, r->key) : 0;
    if (wait > 0) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, wait});
        return;
    }
    write_batch_t *b = batch_new(r, s);
    if (!b) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    json_t *existing = service_slices(s, r->ns, r->name);
    if (!svc || !svc_selector(svc)) {
        trigger_forget(&s->tracker, r->key);
        ctl_sync_forget(s, r->key);
        /* a deleted Service's slices go (the garbage collector would take
         * them through their owner too); a Service without selector keeps
         * whatever it has */
        size_t i;
        json_t *sl;
        if (!svc)
            json_array_foreach(existing, i, sl) batch_delete(b, &res_slices, r->ns, obj_name(sl));
        json_decref(existing);
        batch_finish(b);
        return;
    }
    int v4, v6, missing_node = 0;
    address_types(svc, &v4, &v6);
    json_t *pods = svc_selected_pods(svc, pods_inf(s));
    int64_t trigger = trigger_time(&s->tracker, r->key, svc, pods);
    json_t *groups = desired_groups(s, svc, pods, v4, v6, &missing_node);
    json_decref(pods);

    plan_t p = {0};
    size_t max = s->max_per_slice > 0 ? (size_t)s->max_per_slice : 100;
    const char *gk;
    json_t *g;
    json_object_foreach(groups, gk, g) {
        const char *psig = strchr(gk, '|') + 1;
        plan_group(&p, g, existing, json_is_true(json_object_get(g, "v6")), psig, max);
    }
    plan_leftovers(&p, existing);
    plan_reuse(&p);
    plan_placeholder(&p, v4);

    /* creates first, then updates, then deletes: traffic never loses a
     * ready endpoint in between */
    for (int phase = 0; phase < 3; phase++) {
        for (size_t i = 0; i < p.n; i++) {
            plan_slice_t *ps = &p.v[i];
            if (phase == 0 && !ps->cur && ps->changed && !ps->remove) {
                json_t *obj = slice_object(ps, svc, trigger);
                batch_create(b, &res_slices, r->ns, obj);
                json_decref(obj);
            } else if (phase == 1 && ps->cur && !ps->remove &&
                       (ps->changed || !slice_meta_current(ps->cur, svc))) {
                json_t *obj = slice_object(ps, svc, trigger);
                batch_update(b, &res_slices, r->ns, obj);
                json_decref(obj);
            } else if (phase == 2 && ps->cur && ps->remove) {
                batch_delete(b, &res_slices, r->ns, obj_name(ps->cur));
            }
        }
    }
    plan_free(&p);
    json_decref(groups);
    json_decref(existing);
    if (missing_node) b->requeue_after_ms = 1000;
    batch_finish(b);
}

/* ---- events to Service keys ---------------------------------------------------------------- */

/* A slice belongs to the Service its kubernetes.io/service-name names. */
static int slice_service_key(const json_t *sl, char *buf, size_t len)
{
    const char *svc = jstr(sl, "metadata", "labels", LABEL_SERVICE_NAME, NULL);
    if (!svc) return -1;
    int n = snprintf(buf, len, "%s/%s", obj_ns(sl), svc);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Zones are read from the cache when a Service is synced; a node's
 * arrival is caught by the retry of a Service that missed it. */
static void map_node(void *data, skiff_controller_t *c, json_t *node) {}

/* ---- plugin ---------------------------------------------------------------------------------- */

static int eps_start(skiff_plugin_ctx_t *ctx)
{
    ctl_state_t *s = ctl_state_new(ctx);
    if (!s) return SKIFF_ENOMEM;
    const char *max = ctx->setting ? ctx->setting(ctx, "maxEndpointsPerSlice") : NULL;
    s->max_per_slice = max ? atoi(max) : 100;
    if (s->max_per_slice < 1 || s->max_per_slice > 1000) {
        if (ctx->log)
            ctx->log(ctx, SKIFF_LOG_ERROR, "maxEndpointsPerSlice must be 1 to 1000, not %s", max);
        ctl_state_unref(s);
        return SKIFF_EINVAL;
    }
    if (ctl_read_batch_period(s) != 0) {
        ctl_state_unref(s);
        return SKIFF_EINVAL;
    }
    s->service_key = slice_service_key;
    /* pod and slice events are sorted by ctl_watch's handlers */
    s->watches[0] = (skiff_controller_watch_t){.resource = res_pods, .map = map_nothing};
    s->watches[1] = (skiff_controller_watch_t){
        .resource = res_slices,
        .opts = {.label_selector = LABEL_MANAGED_BY "=" MANAGED_BY},
        .map = map_nothing};
    s->watches[2] = (skiff_controller_watch_t){.resource = res_nodes, .map = map_node};
    s->desc = (skiff_controller_desc_t){
        .name = "endpointslice",
        .primary = res_services,
        .primary_kind = "Service",
        .primary_api_version = "v1",
        .secondary = s->watches,
        .n_secondary = 3,
        .reconcile = eps_reconcile,
        .workers = 5,
        .data = s,
    };
    return ctl_start(s, ctx);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-endpointslice",
    .version = "1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "EndpointSlices (discovery.k8s.io/v1) for every Service with a selector",
    .settings = eps_settings,
    .start = eps_start,
    .stop = ctl_stop,
};
