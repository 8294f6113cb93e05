/* plugins/controllers/endpoints/endpoints.c - the Endpoints controller:
 * for every Service with a selector, an Endpoints object of the same name
 * listing the selected pods' addresses, as kube-controller-manager's
 * endpoint controller writes it (pkg/controller/endpoint).
 *
 * Ready pods go under subsets[].addresses, the others under
 * notReadyAddresses; addresses sharing the same resolved ports share a
 * subset. Services without a selector are left to their users. It never
 * touches pods or Services. */
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>
#include <skiff/objects.h>
#include <skiff/plugin.h>

#include "service_pods.h"

#define LABEL_MANAGED_BY "endpoints.kubernetes.io/managed-by"
#define MANAGED_BY "endpoint-controller"
#define LABEL_HEADLESS "service.kubernetes.io/headless"
#define ANN_TRIGGER "endpoints.kubernetes.io/last-change-trigger-time"
#define ANN_OVER_CAPACITY "endpoints.kubernetes.io/over-capacity"

/* Kubernetes caps an Endpoints object at 1000 addresses; EndpointSlices
 * carry the rest. */
static const skiff_setting_t ep_settings[] = {
    {"maxAddresses", SKIFF_SETTING_INT, "1000",
     "addresses in one Endpoints object at most; more are truncated and the object "
     "annotated endpoints.kubernetes.io/over-capacity (Kubernetes: 1000)"},
    {"batchPeriod", SKIFF_SETTING_DURATION, "100ms",
     "a Service is recomputed at most once in this period; pod changes in between are "
     "folded into one write (kube-controller-manager's --endpoint-updates-batch-period)"},
    {NULL},
};

static const skiff_resource_t res_services = {"", "v1", "services", NULL};
static const skiff_resource_t res_pods = {"", "v1", "pods", NULL};
static const skiff_resource_t res_endpoints = {"", "v1", "endpoints", NULL};

/* ---- building the subsets ------------------------------------------------------- */

/* The pod IP of the Service's primary family (ipFamilies[0], else the
 * clusterIP's family); without either, status.podIP. Borrowed or NULL. */
static const char *pod_ip_for(const json_t *pod, const json_t *svc)
{
    json_t *fams = json_object_get(json_object_get(svc, "spec"), "ipFamilies");
    const char *fam = json_string_value(json_array_get(fams, 0));
    if (!fam) {
        const char *cip = jstr(svc, "spec", "clusterIP", NULL);
        if (cip && *cip && strcmp(cip, "None") != 0) fam = ip_is_v6(cip) ? "IPv6" : "IPv4";
    }
    if (!fam) return jstr(pod, "status", "podIP", NULL);
    int want6 = strcmp(fam, "IPv6") == 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "podIPs"), i, e) {
        const char *ip = jstr(e, "ip", NULL);
        if (ip && ip_is_v6(ip) == want6) return ip;
    }
    const char *ip = jstr(pod, "status", "podIP", NULL);
    return ip && ip_is_v6(ip) == want6 ? ip : NULL;
}

static json_t *address_for(const json_t *pod, const json_t *svc, const char *ip)
{
    json_t *a = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "ip", ip, "targetRef", "kind", "Pod",
                          "namespace", obj_ns(pod), "name", obj_name(pod), "uid", obj_uid(pod));
    const char *node = jstr(pod, "spec", "nodeName", NULL);
    if (node && *node) json_object_set_new(a, "nodeName", json_string(node));
    const char *host = pod_hostname_for(pod, svc);
    if (host) json_object_set_new(a, "hostname", json_string(host));
    return a;
}

static char *dump(const json_t *v) { return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS); }

static int cmp_dumped(const void *a, const void *b)
{
    char *da = dump(*(json_t *const *)a), *db = dump(*(json_t *const *)b);
    int r = strcmp(da ? da : "", db ? db : "");
    free(da);
    free(db);
    return r;
}

static int cmp_address(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int r = strcmp(jstr(x, "ip", NULL), jstr(y, "ip", NULL));
    if (r) return r;
    const char *ux = jstr(x, "targetRef", "uid", NULL), *uy = jstr(y, "targetRef", "uid", NULL);
    return strcmp(ux ? ux : "", uy ? uy : "");
}

/* Sorts a JSON array in place with cmp. */
static void sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(arr);
    if (n < 2) return;
    json_t **v = malloc(n * sizeof *v);
    if (!v) return;
    for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof *v, cmp);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, v[i]);
    free(v);
}

/* Kubernetes' RepackSubsets: each address gets the set of its ports, and
 * addresses with the same set share one subset, addresses and ports in a
 * stable order. entries maps "uid ip" -> {addr, ready, ports[]}. */
static json_t *repack(json_t *entries)
{
    json_t *by_ports = json_object(); /* ports text -> subset */
    const char *k;
    json_t *e;
    json_object_foreach(entries, k, e) {
        json_t *ports = json_object_get(e, "ports");
        sort_array(ports, cmp_dumped);
        char *sig = dump(ports);
        if (!sig) continue;
        json_t *ss = json_object_get(by_ports, sig);
        if (!ss) {
            ss = json_pack("{s:[], s:[], s:O}", "addresses", "notReadyAddresses", "ports", ports);
            json_object_set_new(by_ports, sig, ss);
        }
        const char *field = json_is_true(json_object_get(e, "ready")) ? "addresses"
                                                                       : "notReadyAddresses";
        json_array_append(json_object_get(ss, field), json_object_get(e, "addr"));
        free(sig);
    }
    json_t *subsets = json_array();
    json_t *ss;
    json_object_foreach(by_ports, k, ss) {
        sort_array(json_object_get(ss, "addresses"), cmp_address);
        sort_array(json_object_get(ss, "notReadyAddresses"), cmp_address);
        if (json_array_size(json_object_get(ss, "addresses")) == 0) json_object_del(ss, "addresses");
        if (json_array_size(json_object_get(ss, "notReadyAddresses")) == 0)
            json_object_del(ss, "notReadyAddresses");
        if (json_array_size(json_object_get(ss, "ports")) == 0) json_object_del(ss, "ports");
        json_array_append(subsets, ss);
    }
    json_decref(by_ports);
    sort_array(subsets, cmp_dumped);
    return subsets;
}

static void add_entry(json_t *entries, json_t *addr, int ready, json_t *port)
{
    char key[600];
    snprintf(key, sizeof key, "%s %s", jstr(addr, "targetRef", "uid", NULL),
             jstr(addr, "ip", NULL));
    json_t *e = json_object_get(entries, key);
    if (!e) {
        e = json_pack("{s:O, s:b, s:[]}", "addr", addr, "ready", ready, "ports");
        json_object_set_new(entries, key, e);
    }
    if (port) json_array_append(json_object_get(e, "ports"), port);
}

/* The subsets for the Service's selected pods. */
static json_t *build_subsets(const json_t *svc, const json_t *pods)
{
    int publish = json_is_true(json_object_get(json_object_get(svc, "spec"), "publishNotReadyAddresses"));
    json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports");
    json_t *entries = json_object();
    size_t i;
    json_t *pod;
    json_array_foreach((json_t *)pods, i, pod) {
        if (!pod_in_endpoints(pod, publish)) continue;
        const char *ip = pod_ip_for(pod, svc);
        if (!ip || !*ip) continue;
        int ready = publish || skiff_pod_is_ready(pod);
        json_t *addr = address_for(pod, svc, ip);
        if (json_array_size(ports) == 0 && svc_is_headless(svc)) {
            add_entry(entries, addr, ready, NULL);
        } else {
            size_t j;
            json_t *sp;
            json_array_foreach(ports, j, sp) {
                int num = pod_target_port(pod, sp);
                if (num <= 0) continue; /* this pod has no such named port */
                const char *proto = jstr(sp, "protocol", NULL);
                json_t *epp = json_pack("{s:i, s:s}", "port", num, "protocol", proto ? proto : "TCP");
                const char *name = jstr(sp, "name", NULL);
                if (name && *name) json_object_set_new(epp, "name", json_string(name));
                const char *app = jstr(sp, "appProtocol", NULL);
                if (app) json_object_set_new(epp, "appProtocol", json_string(app));
                add_entry(entries, addr, ready, epp);
                json_decref(epp);
            }
        }
        json_decref(addr);
    }
    json_t *subsets = repack(entries);
    json_decref(entries);
    return subsets;
}

/* Kubernetes' truncation to max addresses: not-ready addresses go first;
 * when the ready ones alone are too many, only ready ones are kept. Each
 * subset keeps its share of what is left, rounded up. 1 if truncated. */
static int truncate_subsets(json_t *subsets, size_t max)
{
    size_t ready = 0, not_ready = 0, i;
    json_t *ss;
    json_array_foreach(subsets, i, ss) {
        ready += json_array_size(json_object_get(ss, "addresses"));
        not_ready += json_array_size(json_object_get(ss, "notReadyAddresses"));
    }
    if (ready + not_ready <= max) return 0;
    int cut_ready = ready > max;
    size_t room = cut_ready ? max : max - ready;
    size_t total = cut_ready ? ready : not_ready;
    size_t left = room;
    json_array_foreach(subsets, i, ss) {
        json_t *a = json_object_get(ss, cut_ready ? "addresses" : "notReadyAddresses");
        size_t n = json_array_size(a);
        size_t keep = (n * room + total - 1) / total;
        if (keep > left) keep = left;
        while (json_array_size(a) > keep) json_array_remove(a, json_array_size(a) - 1);
        left -= keep;
        if (cut_ready) json_object_del(ss, "notReadyAddresses");
        if (a && json_array_size(a) == 0)
            json_object_del(ss, cut_ready ? "addresses" : "notReadyAddresses");
    }
    /* a subset left without any address says nothing */
    for (i = json_array_size(subsets); i-- > 0;) {
        ss = json_array_get(subsets, i);
        if (!json_object_get(ss, "addresses") && !json_object_get(ss, "notReadyAddresses"))
            json_array_remove(subsets, i);
    }
    return 1;
}

/* The labels the Endpoints should carry: the Service's, the headless
 * marker and the controller's own. */
static json_t *wanted_labels(const json_t *svc)
{
    json_t *l = skiff_json_copy(json_object_get(json_object_get(svc, "metadata"), "labels"));
    if (!json_is_object(l)) {
        json_decref(l);
        l = json_object();
    }
    json_object_del(l, LABEL_HEADLESS);
    if (svc_is_headless(svc)) json_object_set_new(l, LABEL_HEADLESS, json_string(""));
    json_object_set_new(l, LABEL_MANAGED_BY, json_string(MANAGED_BY));
    return l;
}

/* ---- reconcile ------------------------------------------------------------------- */

static skiff_informer_t *pods_inf(ctl_state_t *s) { return skiff_controller_secondary_informer(s->c, 0); }
static skiff_informer_t *eps_inf(ctl_state_t *s) { return skiff_controller_secondary_informer(s->c, 1); }

static int is_managed(const json_t *ep)
{
    const char *v = jstr(ep, "metadata", "labels", LABEL_MANAGED_BY, NULL);
    return v && strcmp(v, MANAGED_BY) == 0;
}

static void ep_reconcile(skiff_reconcile_t *r)
{
    ctl_state_t *s = r->data;
    if (!expectations_met(s, r->key, eps_inf(s), r->ns)) {
        /* our last write is not in the cache yet: look again shortly */
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, 50});
        return;
    }
    json_t *svc = skiff_informer_get(skiff_controller_informer(s->c), r->key);
    json_t *cur = skiff_informer_get(eps_inf(s), r->key);
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
    if (!svc) {
        /* the Service is gone: so are the endpoints this controller wrote */
        trigger_forget(&s->tracker, r->key);
        ctl_sync_forget(s, r->key);
        if (cur && is_managed(cur)) batch_delete(b, &res_endpoints, r->ns, r->name);
        batch_finish(b);
        return;
    }
    if (!svc_selector(svc)) {
        trigger_forget(&s->tracker, r->key);
        ctl_sync_forget(s, r->key);
        batch_finish(b);
        return;
    }
    json_t *pods = svc_selected_pods(svc, pods_inf(s));
    int64_t trigger = trigger_time(&s->tracker, r->key, svc, pods);
    json_t *subsets = build_subsets(svc, pods);
    json_decref(pods);
    int truncated = truncate_subsets(subsets, (size_t)s->max_per_slice);
    json_t *labels = wanted_labels(svc);

    json_t *cur_subsets = json_object_get(cur, "subsets");
    int same_subsets = json_equal(subsets, cur_subsets) ||
                       (json_array_size(subsets) == 0 && json_array_size(cur_subsets) == 0);
    json_t *cur_ann = json_object_get(json_object_get(cur, "metadata"), "annotations");
    int cap_ok = (json_object_get(cur_ann, ANN_OVER_CAPACITY) != NULL) == truncated;
    if (cur && same_subsets && cap_ok &&
        json_equal(labels, json_object_get(json_object_get(cur, "metadata"), "labels"))) {
        json_decref(subsets);
        json_decref(labels);
        batch_finish(b);
        return;
    }

    json_t *ep = cur ? skiff_json_copy(cur)
                     : json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                                 "Endpoints", "metadata", "name", r->name, "namespace", r->ns);
    json_t *meta = json_object_get(ep, "metadata");
    json_object_set_new(meta, "labels", labels);
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
    if (truncated) json_object_set_new(ann, ANN_OVER_CAPACITY, json_string("truncated"));
    else json_object_del(ann, ANN_OVER_CAPACITY);
    if (json_object_size(ann) == 0) json_object_del(meta, "annotations");
    if (json_array_size(subsets)) json_object_set(ep, "subsets", subsets);
    else json_object_del(ep, "subsets");
    json_decref(subsets);
    if (cur) batch_update(b, &res_endpoints, r->ns, ep);
    else batch_create(b, &res_endpoints, r->ns, ep);
    json_decref(ep);
    batch_finish(b);
}

/* ---- events to Service keys ------------------------------------------------------- */

/* Endpoints belong to the Service of the same name. */
static int endpoints_service_key(const json_t *ep, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", obj_ns(ep), obj_name(ep));
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* ---- plugin ------------------------------------------------------------------------ */

static int ep_start(skiff_plugin_ctx_t *ctx)
{
    ctl_state_t *s = ctl_state_new(ctx);
    if (!s) return SKIFF_ENOMEM;
    const char *max = ctx->setting ? ctx->setting(ctx, "maxAddresses") : NULL;
    s->max_per_slice = max ? atoi(max) : 1000;
    if (s->max_per_slice < 1) {
        if (ctx->log) ctx->log(ctx, SKIFF_LOG_ERROR, "maxAddresses must be at least 1, not %s", max);
        ctl_state_unref(s);
        return SKIFF_EINVAL;
    }
    if (ctl_read_batch_period(s) != 0) {
        ctl_state_unref(s);
        return SKIFF_EINVAL;
    }
    s->service_key = endpoints_service_key;
    /* pod and Endpoints events are sorted by ctl_watch's handlers */
    s->watches[0] = (skiff_controller_watch_t){.resource = res_pods, .map = map_nothing};
    s->watches[1] = (skiff_controller_watch_t){.resource = res_endpoints, .map = map_nothing};
    s->desc = (skiff_controller_desc_t){
        .name = "endpoints",
        .primary = res_services,
        .primary_kind = "Service",
        .primary_api_version = "v1",
        .secondary = s->watches,
        .n_secondary = 2,
        .reconcile = ep_reconcile,
        .workers = 5,
        .data = s,
    };
    return ctl_start(s, ctx);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-endpoints",
    .version = "1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "Endpoints for every Service with a selector, from the pods it selects",
    .settings = ep_settings,
    .start = ep_start,
    .stop = ctl_stop,
};
