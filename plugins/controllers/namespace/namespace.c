/* plugins/controllers/namespace/namespace.c - the namespace controller:
 * empties a namespace being deleted, then lets it go (Kubernetes'
 * pkg/controller/namespace, same conditions and messages).
 *
 * `kubectl delete namespace x` makes the API server mark x Terminating
 * (deletionTimestamp, status.phase) and refuse new content; x stays while
 * spec.finalizers holds "kubernetes". Here, each round for such a
 * namespace reads discovery, lists every namespaced resource in x, deletes
 * what is not being deleted yet (Background propagation), lists again to
 * count what remains and which finalizers hold it, and writes the five
 * NamespaceDeletion* / Namespace*Remaining conditions to the namespace's
 * status. When nothing remains and nothing failed, "kubernetes" is taken
 * out of spec.finalizers through namespaces/x/finalize, and the API server
 * deletes the namespace. Pods on nodes stop gracefully, so a round may
 * find them still there: the namespace is looked at again after a
 * back-off, and at once when a pod in it goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>


#define NS_WORKERS 4
#define NS_FINALIZER "kubernetes"

typedef struct nsc {
    skiff_plugin_ctx_t *ctx;
    skiff_controller_t *c;
    skiff_controller_desc_t desc;
    skiff_controller_watch_t watches[1];
    int rounds; /* in flight */
    int stopping;
} nsc_t;

typedef struct round {
    nsc_t *n;
    skiff_reconcile_t *r;
    char *ns;
    json_t *remaining;  /* "resource.group" -> count */
    json_t *finalizers; /* finalizer -> count */
    json_t *errors;     /* messages */
    char *disc_error;
    int pending;
    int failed_write;   /* status or finalize write failed */
} round_t;

typedef struct pass {
    round_t *round;
    char *group, *version, *resource;
    skiff_resource_t res;
    int pending;
} pass_t;

static const skiff_resource_t namespaces_res = {"", "v1", "namespaces", NULL};
static const skiff_resource_t namespaces_status = {"", "v1", "namespaces", "status"};
static const skiff_resource_t namespaces_finalize = {"", "v1", "namespaces", "finalize"};

static json_t *meta(const json_t *o) { return json_object_get(o, "metadata"); }

static const char *meta_str(const json_t *o, const char *f)
{
    return json_string_value(json_object_get(meta(o), f));
}

static int being_deleted(const json_t *o)
{
    json_t *dt = json_object_get(meta(o), "deletionTimestamp");
    return dt && !json_is_null(dt);
}

static int has_kubernetes_finalizer(const json_t *ns)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(ns, "spec"), "finalizers"), i, v)
    {
        if (json_string_value(v) && strcmp(json_string_value(v), NS_FINALIZER) == 0) return 1;
    }
    return 0;
}

static void count(json_t *map, const char *key)
{
    json_t *v = json_object_get(map, key);
    json_object_set_new(map, key, json_integer(json_integer_value(v) + 1));
}

static void nsc_maybe_free(nsc_t *n)
{
    if (n->stopping && n->rounds == 0) free(n);
}

/* ---- the end of a round: conditions, then finalize ----------------------------------- */

static void round_free(round_t *rd, skiff_reconcile_result_t res)
{
    nsc_t *n = rd->n;
    skiff_reconcile_done(rd->r, res);
    json_decref(rd->remaining);
    json_decref(rd->finalizers);
    json_decref(rd->errors);
    free(rd->disc_error);
    free(rd->ns);
    free(rd);
    n->rounds--;
    nsc_maybe_free(n);
}

static int content_left(const round_t *rd)
{
    return json_object_size(rd->remaining) > 0 || json_array_size(rd->errors) > 0 ||
           rd->disc_error;
}

static void on_finalized(void *data, int status, json_t *obj)
{
    round_t *rd = data;
    if (status == 200 || status == 404) {
        if (status == 200 && !rd->n->stopping)
            rd->n->ctx->log(rd->n->ctx, SKIFF_LOG_INFO, "namespace %s is empty: finalized",
                            rd->ns);
        round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE});
}

static void finalize(round_t *rd, json_t *ns)
{
    json_t *obj = skiff_json_copy(ns);
    json_t *spec = json_object_get(obj, "spec");
    json_t *keep = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(spec, "finalizers"), i, v)
    {
        if (!json_string_value(v) || strcmp(json_string_value(v), NS_FINALIZER) != 0)
            json_array_append(keep, v);
    }
    if (json_is_object(spec)) json_object_set_new(spec, "finalizers", keep);
    else json_decref(keep);
    skiff_write_opts_t o = {.grace_period_seconds = -1};
    int e = obj ? skiff_client_update(rd->n->ctx->client, &namespaces_finalize, NULL, obj, &o,
                                      on_finalized, rd)
                : SKIFF_ENOMEM;
    json_decref(obj);
    if (e < 0) round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE});
}

static void after_status(round_t *rd, json_t *ns)
{
    if (rd->n->stopping || rd->failed_write) {
        round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE});
        return;
    }
    if (content_left(rd)) {
        /* looked at again after a back-off, or when a pod in it goes */
        round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE});
        return;
    }
    finalize(rd, ns);
}

static void on_status_written(void *data, int status, json_t *obj)
{
    round_t *rd = data;
    if (status != 200) {
        rd->failed_write = 1;
        if (status != 409 && status != 404 && !rd->n->stopping)
            rd->n->ctx->log(rd->n->ctx, SKIFF_LOG_WARN,
                            "namespace %s: writing its status failed (%d): %s", rd->ns, status,
                            json_string_value(json_object_get(obj, "message")) ?: "no answer");
        after_status(rd, NULL);
        return;
    }
    after_status(rd, obj);
}

/* "a, b, c" of the sorted strings of arr (new string). */
static char *join_sorted(json_t *arr)
{
    size_t n = json_array_size(arr), len = 1;
    const char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(arr, i));
        len += strlen(v[i] ? v[i] : "") + 2;
    }
    for (size_t i = 1; i < n; i++) /* few entries: insertion sort */
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            const char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    char *out = malloc(len);
    if (out) {
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (i) strcat(out, ", ");
            strcat(out, v[i]);
        }
    }
    free(v);
    return out;
}

/* map "key" -> count as "key<mid><count><tail>" strings, sorted and joined. */
static char *join_counts(json_t *map, const char *mid, const char *tail)
{
    json_t *parts = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v)
    {
        char buf[600];
        snprintf(buf, sizeof buf, "%s%s%lld%s", k, mid, (long long)json_integer_value(v), tail);
        json_array_append_new(parts, json_string(buf));
    }
    char *s = join_sorted(parts);
    json_decref(parts);
    return s;
}

/* Sets the five conditions on ns (a copy) as Kubernetes' namespace
 * controller words them; 1 when something changed. */
static int set_conditions(round_t *rd, json_t *ns)
{
    int changed = 0;
    char msg[4096];
    if (rd->disc_error) {
        snprintf(msg, sizeof msg,
                 "Discovery failed for some groups: unable to retrieve the complete list of "
                 "server APIs: %s",
                 rd->disc_error);
        changed |= skiff_condition_set(ns, "NamespaceDeletionDiscoveryFailure", "True",
                                       "DiscoveryFailed", msg, 0) == 1;
    } else {
        changed |= skiff_condition_set(ns, "NamespaceDeletionDiscoveryFailure", "False",
                                       "ResourcesDiscovered",
                                       "All resources successfully discovered", 0) == 1;
    }
    changed |= skiff_condition_set(ns, "NamespaceDeletionGroupVersionParsingFailure", "False",
                                   "ParsedGroupVersions",
                                   "All legacy kube types successfully parsed", 0) == 1;
    if (json_array_size(rd->errors)) {
        char *all = join_sorted(rd->errors);
        snprintf(msg, sizeof msg, "Failed to delete all resource types, %zu remaining: %s",
                 json_array_size(rd->errors), all ? all : "");
        free(all);
        changed |= skiff_condition_set(ns, "NamespaceDeletionContentFailure", "True",
                                       "ContentDeletionFailed", msg, 0) == 1;
    } else {
        changed |= skiff_condition_set(ns, "NamespaceDeletionContentFailure", "False",
                                       "ContentDeleted",
                                       "All content successfully deleted, may be waiting on "
                                       "finalization",
                                       0) == 1;
    }
    if (json_object_size(rd->remaining)) {
        char *all = join_counts(rd->remaining, " has ", " resource instances");
        snprintf(msg, sizeof msg, "Some resources are remaining: %s", all ? all : "");
        free(all);
        changed |= skiff_condition_set(ns, "NamespaceContentRemaining", "True",
                                       "SomeResourcesRemain", msg, 0) == 1;
    } else {
        changed |= skiff_condition_set(ns, "NamespaceContentRemaining", "False", "ContentRemoved",
                                       "All content successfully removed", 0) == 1;
    }
    if (json_object_size(rd->finalizers)) {
        char *all = join_counts(rd->finalizers, " in ", " resource instances");
        snprintf(msg, sizeof msg, "Some content in the namespace has finalizers remaining: %s",
                 all ? all : "");
        free(all);
        changed |= skiff_condition_set(ns, "NamespaceFinalizersRemaining", "True",
                                       "SomeFinalizersRemain", msg, 0) == 1;
    } else {
        changed |= skiff_condition_set(ns, "NamespaceFinalizersRemaining", "False",
                                       "ContentHasNoFinalizers",
                                       "All content-preserving finalizers finished", 0) == 1;
    }
    json_t *st = json_object_get(ns, "status");
    const char *phase = json_string_value(json_object_get(st, "phase"));
    if (json_is_object(st) && (!phase || strcmp(phase, "Terminating") != 0)) {
        json_object_set_new(st, "phase", json_string("Terminating"));
        changed = 1;
    }
    return changed;
}

static void round_report(round_t *rd)
{
    if (rd->n->stopping) {
        round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    json_t *cur = skiff_informer_get(skiff_controller_informer(rd->n->c), rd->ns);
    if (!cur || !being_deleted(cur)) {
        round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    json_t *ns = skiff_json_copy(cur);
    if (!ns) {
        round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE});
        return;
    }
    if (!json_is_object(json_object_get(ns, "status")))
        json_object_set_new(ns, "status", json_object());
    if (!set_conditions(rd, ns)) {
        after_status(rd, ns);
        json_decref(ns);
        return;
    }
    skiff_write_opts_t o = {.grace_period_seconds = -1};
    int e = skiff_client_update(rd->n->ctx->client, &namespaces_status, NULL, ns, &o,
                                on_status_written, rd);
    json_decref(ns);
    if (e < 0) round_free(rd, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE});
}

static void round_step_done(round_t *rd)
{
    if (--rd->pending == 0) round_report(rd);
}

/* ---- one resource: list, delete, list again ---------------------------------------------- */

static void pass_free(pass_t *p)
{
    round_t *rd = p->round;
    free(p->group);
    free(p->version);
    free(p->resource);
    free(p);
    round_step_done(rd);
}

static void add_error(round_t *rd, const char *fmt, const char *a, const char *b, int status,
                      json_t *st)
{
    char buf[1024], tail[600] = "";
    const char *m = json_string_value(json_object_get(st, "message"));
    if (status > 0) snprintf(tail, sizeof tail, ": status %d%s%s", status, m ? ", " : "", m ? m : "");
    else snprintf(tail, sizeof tail, ": no answer");
    snprintf(buf, sizeof buf, fmt, a, b);
    strncat(buf, tail, sizeof buf - strlen(buf) - 1);
    json_array_append_new(rd->errors, json_string(buf));
}

static void gvr_string(const pass_t *p, char *buf, size_t len)
{
    /* as Kubernetes prints a GroupVersionResource: "apps/v1, Resource=deployments" */
    snprintf(buf, len, "%s/%s, Resource=%s", p->group, p->version, p->resource);
}

/* What a list after the deletes still holds: counted by resource and by
 * finalizer. Ends the pass. */
static void count_remaining(pass_t *p, json_t *list)
{
    round_t *rd = p->round;
    char gvr[512];
    gvr_string(p, gvr, sizeof gvr);
    size_t n = json_array_size(json_object_get(list, "items"));
    if (n == 0) {
        pass_free(p);
        return;
    }
    char key[600];
    snprintf(key, sizeof key, "%s.%s", p->resource, p->group);
    json_object_set_new(rd->remaining, key, json_integer((json_int_t)n));
    int any_finalizer = 0, graceful = 0;
    size_t i, j;
    json_t *it, *f;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        json_array_foreach(json_object_get(meta(it), "finalizers"), j, f)
        {
            if (json_string_value(f)) {
                count(rd->finalizers, json_string_value(f));
                any_finalizer = 1;
            }
        }
        /* a pod stopping on its node: its grace period is the estimate */
        if (!p->group[0] && strcmp(p->resource, "pods") == 0 && being_deleted(it)) graceful = 1;
    }
    if (!any_finalizer && !graceful) {
        /* deleted, yet nothing holds it: say so, as Kubernetes does */
        char msg[1024];
        snprintf(msg, sizeof msg, "unexpected items still remain in namespace: %s for gvr: %s",
                 rd->ns, gvr);
        json_array_append_new(rd->errors, json_string(msg));
    }
    pass_free(p);
}

static void on_verify_list(void *data, int status, json_t *list)
{
    pass_t *p = data;
    if (status != 200) {
        char gvr[512];
        gvr_string(p, gvr, sizeof gvr);
        add_error(p->round, "failed to list %s in namespace %s", gvr, p->round->ns, status, list);
        pass_free(p);
        return;
    }
    count_remaining(p, list);
}

static void verify(pass_t *p)
{
    skiff_list_opts_t o = {0};
    if (skiff_client_list(p->round->n->ctx->client, &p->res, p->round->ns, &o, on_verify_list, p) < 0) {
        json_array_append_new(p->round->errors, json_string("out of memory"));
        pass_free(p);
    }
}

static void pass_call_done(pass_t *p)
{
    if (--p->pending > 0) return;
    if (p->round->n->stopping) pass_free(p);
    else verify(p);
}

typedef struct del_call {
    pass_t *p;
    char *name;
} del_call_t;

static void on_deleted(void *data, int status, json_t *obj)
{
    del_call_t *d = data;
    pass_t *p = d->p;
    /* 404: gone already; 409: changed meanwhile (the next list sees it) */
    if (status != 200 && status != 202 && status != 404 && status != 409 && !p->round->n->stopping) {
        char gvr[512];
        gvr_string(p, gvr, sizeof gvr);
        add_error(p->round, "failed to delete %s %s", gvr, d->name, status, obj);
    }
    free(d->name);
    free(d);
    pass_call_done(p);
}

static void on_first_list(void *data, int status, json_t *list)
{
    pass_t *p = data;
    round_t *rd = p->round;
    if (rd->n->stopping) {
        pass_free(p);
        return;
    }
    if (status != 200) {
        char gvr[512];
        gvr_string(p, gvr, sizeof gvr);
        add_error(rd, "failed to list %s in namespace %s", gvr, rd->ns, status, list);
        pass_free(p);
        return;
    }
    if (json_array_size(json_object_get(list, "items")) == 0) {
        pass_free(p);
        return;
    }
    size_t i;
    json_t *it;
    int to_delete = 0;
    json_array_foreach(json_object_get(list, "items"), i, it) to_delete += !being_deleted(it);
    if (!to_delete) {
        /* everything is on its way out already: this list is the count */
        count_remaining(p, list);
        return;
    }
    p->pending = 1; /* held while the deletes are issued */
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        const char *name = meta_str(it, "name");
        if (!name || being_deleted(it)) continue;
        del_call_t *d = calloc(1, sizeof *d);
        if (!d || !(d->name = strdup(name))) {
            free(d);
            continue;
        }
        d->p = p;
        /* Background: the garbage collector takes the dependents, which
         * are in this namespace and deleted here anyway */
        skiff_write_opts_t o = {.propagation_policy = "Background", .grace_period_seconds = -1};
        p->pending++;
        if (skiff_client_delete(rd->n->ctx->client, &p->res, rd->ns, name, &o, on_deleted, d) < 0) {
            p->pending--;
            free(d->name);
            free(d);
        }
    }
    pass_call_done(p);
}

static void start_pass(round_t *rd, const json_t *res)
{
    pass_t *p = calloc(1, sizeof *p);
    if (!p) return;
    p->round = rd;
    p->group = strdup(json_string_value(json_object_get(res, "group")));
    p->version = strdup(json_string_value(json_object_get(res, "version")));
    p->resource = strdup(json_string_value(json_object_get(res, "resource")));
    rd->pending++;
    if (!p->group || !p->version || !p->resource) {
        pass_free(p);
        return;
    }
    p->res = (skiff_resource_t){p->group, p->version, p->resource, NULL};
    skiff_list_opts_t o = {0};
    if (skiff_client_list(rd->n->ctx->client, &p->res, rd->ns, &o, on_first_list, p) < 0) {
        json_array_append_new(rd->errors, json_string("out of memory"));
        pass_free(p);
    }
}

static int deletable(const json_t *res)
{
    return json_is_true(json_object_get(res, "namespaced")) &&
           json_is_true(json_object_get(res, "preferred")) &&
           skiff_resource_has_verb(res, "list") && skiff_resource_has_verb(res, "delete") &&
           json_string_value(json_object_get(res, "group")) &&
           json_string_value(json_object_get(res, "version")) &&
           json_string_value(json_object_get(res, "resource"));
}

static void on_discovered(void *data, json_t *resources, const char *error)
{
    round_t *rd = data;
    if (error) rd->disc_error = strdup(error);
    rd->pending = 1; /* held while the passes start */
    if (!rd->n->stopping) {
        size_t i;
        json_t *res;
        json_array_foreach(resources, i, res) if (deletable(res)) start_pass(rd, res);
    }
    round_step_done(rd);
}

/* ---- the reconcile ----------------------------------------------------------------------------- */

static void reconcile(skiff_reconcile_t *r)
{
    nsc_t *n = r->data;
    json_t *ns = skiff_informer_get(skiff_controller_informer(n->c), r->name);
    if (!ns || !being_deleted(ns) || !has_kubernetes_finalizer(ns)) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    round_t *rd = calloc(1, sizeof *rd);
    if (rd) {
        rd->n = n;
        rd->r = r;
        rd->ns = strdup(r->name);
        rd->remaining = json_object();
        rd->finalizers = json_object();
        rd->errors = json_array();
    }
    if (!rd || !rd->ns || !rd->remaining || !rd->finalizers || !rd->errors) {
        if (rd) {
            free(rd->ns);
            json_decref(rd->remaining);
            json_decref(rd->finalizers);
            json_decref(rd->errors);
            free(rd);
        }
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    n->rounds++;
    int e = skiff_discover_resources(n->ctx->client, on_discovered, rd);
    if (e < 0) {
        rd->disc_error = strdup(skiff_strerror(e));
        rd->pending = 1;
        round_step_done(rd);
    }
}

/* A pod leaving (or starting to leave) a terminating namespace may be the
 * last thing it waits for. */
static void map_pod(void *data, skiff_controller_t *c, json_t *pod)
{
    const char *ns = meta_str(pod, "namespace");
    json_t *nsobj = ns ? skiff_informer_get(skiff_controller_informer(c), ns) : NULL;
    if (nsobj && being_deleted(nsobj)) skiff_controller_enqueue(c, ns);
}

static int ns_start(skiff_plugin_ctx_t *ctx)
{
    if (!ctx->client || !ctx->informers) return SKIFF_EINVAL;
    nsc_t *n = calloc(1, sizeof *n);
    if (!n) return SKIFF_ENOMEM;
    n->ctx = ctx;
    n->watches[0] = (skiff_controller_watch_t){.resource = {"", "v1", "pods", NULL},
                                                .map = map_pod};
    n->desc = (skiff_controller_desc_t){
        .name = "namespace",
        .primary = namespaces_res,
        .primary_kind = "Namespace",
        .primary_cluster_scoped = 1,
        .secondary = n->watches,
        .n_secondary = 1,
        .reconcile = reconcile,
        .workers = NS_WORKERS,
        /* content left: look again after 0.25 s, doubling up to 5 s */
        .queue = {.base_delay_ms = 250, .max_delay_ms = 5000},
        .data = n,
    };
    skiff_controller_transform_t pods_view = skiff_pod_view_transform(0);
    int e = skiff_controller_new_transformed(ctx, ctx->informers, &n->desc, &pods_view, 1, &n->c);
    if (e == 0) e = skiff_controller_start(n->c);
    if (e != 0) {
        if (n->c) {
            skiff_controller_free(n->c);
            n->stopping = 1;
            nsc_maybe_free(n);
        } else {
            free(n);
        }
        return e;
    }
    ctx->plugin_data = n;
    return 0;
}

static void ns_stop(skiff_plugin_ctx_t *ctx)
{
    nsc_t *n = ctx->plugin_data;
    if (!n) return;
    ctx->plugin_data = NULL;
    n->stopping = 1;
    skiff_controller_free(n->c);
    nsc_maybe_free(n);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-namespace",
    .version = "1.0.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "empties a namespace being deleted, then removes its kubernetes finalizer",
    .start = ns_start,
    .stop = ns_stop,
};
