/* plugins/controllers/common/workload.c - ControllerRevision history,
 * write batches, cache barriers and field readers shared by the DaemonSet
 * and StatefulSet controllers (see workload.h). Talks to the API only
 * through the skiff_client_t it is given. */
#include "workload.h"

#include "candidates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const skiff_resource_t wl_pods = {"", "v1", "pods", NULL};
const skiff_resource_t wl_pods_status = {"", "v1", "pods", "status"};
const skiff_resource_t wl_revisions = {"apps", "v1", "controllerrevisions", NULL};
const skiff_resource_t wl_nodes = {"", "v1", "nodes", NULL};
const skiff_resource_t wl_claims = {"", "v1", "persistentvolumeclaims", NULL};

/* ---- readers ------------------------------------------------------------------ */

json_t *wl_get(const json_t *obj, const char *a, const char *b)
{
    json_t *v = json_object_get(obj, a);
    return b ? json_object_get(v, b) : v;
}

const char *wl_str(const json_t *obj, const char *a, const char *b)
{
    return json_string_value(wl_get(obj, a, b));
}

int64_t wl_int(const json_t *obj, const char *a, const char *b, int64_t def)
{
    json_t *v = wl_get(obj, a, b);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

int wl_int_or_percent(const json_t *v, int total, int round_up, int def)
{
    if (json_is_integer(v)) return (int)json_integer_value(v);
    const char *s = json_string_value(v);
    if (!s || !*s) return def;
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s) return def;
    if (*end == '\0') return (int)n;
    if (strcmp(end, "%") != 0 || n < 0) return def;
    long long scaled = (long long)n * total;
    return (int)(round_up ? (scaled + 99) / 100 : scaled / 100);
}

int wl_terminating(const json_t *pod)
{
    return wl_str(pod, "metadata", "deletionTimestamp") != NULL;
}

json_t *wl_controller_ref(const json_t *owner, const char *api_version, const char *kind)
{
    return json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:b}", "apiVersion", api_version, "kind", kind,
                     "name", wl_str(owner, "metadata", "name"), "uid",
                     wl_str(owner, "metadata", "uid"), "controller", 1, "blockOwnerDeletion", 1);
}

json_t *wl_list_controlled(skiff_informer_t *inf, const char *uid)
{
    json_t *all = skiff_informer_list_owner(inf, uid);
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o)
        if (skiff_is_controlled_by(o, uid)) json_array_append(out, o);
    json_decref(all);
    return out;
}

/* "web-10" after "web-9": digit runs compare by value. */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            char *ea, *eb;
            unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
            if (x != y) return x < y ? -1 : 1;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static int cmp_name(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    const char *na = wl_str(a, "metadata", "name"), *nb = wl_str(b, "metadata", "name");
    return natural_cmp(na ? na : "", nb ? nb : "");
}

static int cmp_revision(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int64_t ra = json_integer_value(json_object_get(a, "revision"));
    int64_t rb = json_integer_value(json_object_get(b, "revision"));
    if (ra != rb) return ra < rb ? -1 : 1;
    return cmp_name(x, y);
}

/* Sorts a JSON array in place with qsort. */
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

void wl_sort_by_name(json_t *arr) { sort_array(arr, cmp_name); }

/* ---- ControllerRevisions ----------------------------------------------------------- */

json_t *wl_revision_data(const json_t *tmpl)
{
    json_t *t = skiff_json_copy(tmpl ? tmpl : json_object());
    if (!json_is_object(t)) {
        json_decref(t);
        t = json_object();
    }
    json_object_set_new(t, "$patch", json_string("replace"));
    return json_pack("{s:{s:o}}", "spec", "template", t);
}

json_t *wl_revision_template(const json_t *cr)
{
    json_t *t = wl_get(wl_get(cr, "data", "spec"), "template", NULL);
    if (!json_is_object(t)) return NULL;
    json_t *c = skiff_json_copy(t);
    json_object_del(c, "$patch");
    return c;
}

json_t *wl_revisions_of(skiff_informer_t *inf, const char *owner_uid)
{
    json_t *arr = wl_list_controlled(inf, owner_uid);
    sort_array(arr, cmp_revision);
    return arr;
}

json_t *wl_revision_find_equal(const json_t *sorted, const json_t *data)
{
    for (size_t i = json_array_size(sorted); i-- > 0;) {
        json_t *cr = json_array_get(sorted, i);
        if (json_equal(json_object_get(cr, "data"), (json_t *)data)) return cr;
    }
    return NULL;
}

int64_t wl_revision_next(const json_t *sorted)
{
    size_t n = json_array_size(sorted);
    if (!n) return 1;
    return json_integer_value(json_object_get(json_array_get(sorted, n - 1), "revision")) + 1;
}

json_t *wl_revision_new(const json_t *owner, const char *api_version, const char *kind,
                        const json_t *tmpl, const json_t *data, int64_t revision,
                        const char *hash)
{
    const char *owner_name = wl_str(owner, "metadata", "name");
    char name[300];
    /* as Kubernetes: the prefix is cut so the name stays a valid one */
    snprintf(name, sizeof name, "%.*s-%s", 223, owner_name ? owner_name : "", hash);
    json_t *labels = skiff_json_copy(wl_get(tmpl, "metadata", "labels"));
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    json_object_set_new(labels, "controller-revision-hash", json_string(hash));
    json_t *cr = json_pack("{s:s, s:s, s:{s:s, s:s?, s:o, s:[o]}, s:O, s:I}", "apiVersion",
                           "apps/v1", "kind", "ControllerRevision", "metadata", "name", name,
                           "namespace", wl_str(owner, "metadata", "namespace"), "labels", labels,
                           "ownerReferences", wl_controller_ref(owner, api_version, kind), "data",
                           data, "revision", (json_int_t)revision);
    /* the owner's annotations go along (kubernetes.io/change-cause for
     * `kubectl rollout history`) */
    json_t *ann = wl_get(owner, "metadata", "annotations");
    if (cr && json_is_object(ann) && json_object_size(ann)) {
        json_t *copy = skiff_json_copy(ann);
        json_object_del(copy, "kubectl.kubernetes.io/last-applied-configuration");
        json_object_del(copy, "deprecated.daemonset.template.generation");
        json_object_set_new(json_object_get(cr, "metadata"), "annotations", copy);
    }
    return cr;
}

/* ---- batches of writes --------------------------------------------------------------- */

typedef struct batch_item {
    wl_batch_t *b;
    int res_class;
    int is_delete;
    int exists_ok;
    wl_batch_item_cb cb;
    void *item;
} batch_item_t;

wl_batch_t *wl_batch_new(skiff_client_t *client, void (*done)(wl_batch_t *b), void *data)
{
    wl_batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->client = client;
    b->done = done;
    b->data = data;
    return b;
}

static void maybe_done(wl_batch_t *b)
{
    if (b->sealed && b->pending == 0 && b->done) {
        void (*done)(wl_batch_t *) = b->done;
        b->done = NULL;
        done(b);
    }
}

static void on_answer(void *data, int status, json_t *obj)
{
    batch_item_t *it = data;
    wl_batch_t *b = it->b;
    int ok = status >= 200 && status < 300;
    if (ok) {
        const char *rv = wl_str(obj, "metadata", "resourceVersion");
        int64_t v = rv ? strtoll(rv, NULL, 10) : 0;
        if (v > b->max_rv[it->res_class]) b->max_rv[it->res_class] = v;
    } else if (!(it->is_delete && status == 404) && !(it->exists_ok && status == 409)) {
        b->failures++;
        if (status == 409) b->conflicts++;
    }
    if (it->cb) it->cb(b, it->item, status, obj);
    free(it->item);
    free(it);
    b->pending--;
    maybe_done(b);
}

static batch_item_t *item_new(wl_batch_t *b, int res_class, wl_batch_item_cb cb, void *item)
{
    batch_item_t *it = calloc(1, sizeof *it);
    if (!it) {
        b->failures++;
        free(item);
        return NULL;
    }
    *it = (batch_item_t){b, res_class, 0, 0, cb, item};
    b->pending++;
    return it;
}

static void sent(batch_item_t *it, int rc)
{
    if (rc == 0) return;
    /* refused before it left: answer it as a failure */
    on_answer(it, 0, NULL);
}

void wl_batch_create(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                     json_t *obj, wl_batch_item_cb cb, void *item)
{
    batch_item_t *it = item_new(b, res_class, cb, item);
    if (it) sent(it, skiff_client_create(b->client, r, ns, obj, NULL, on_answer, it));
}

void wl_batch_ensure(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                     json_t *obj, wl_batch_item_cb cb, void *item)
{
    batch_item_t *it = item_new(b, res_class, cb, item);
    if (!it) return;
    it->exists_ok = 1;
    sent(it, skiff_client_create(b->client, r, ns, obj, NULL, on_answer, it));
}

void wl_batch_delete(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                     const char *name, int64_t grace, wl_batch_item_cb cb, void *item)
{
    batch_item_t *it = item_new(b, res_class, cb, item);
    if (!it) return;
    it->is_delete = 1;
    skiff_write_opts_t o = {.grace_period_seconds = grace};
    sent(it, skiff_client_delete(b->client, r, ns, name, grace < 0 ? NULL : &o, on_answer, it));
}

void wl_batch_patch(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                    const char *name, skiff_patch_type_t type, const char *patch,
                    wl_batch_item_cb cb, void *item)
{
    batch_item_t *it = item_new(b, res_class, cb, item);
    if (it) sent(it, skiff_client_patch(b->client, r, ns, name, type, patch, NULL, on_answer, it));
}

void wl_batch_seal(wl_batch_t *b)
{
    b->sealed = 1;
    maybe_done(b);
}

void wl_batch_free(wl_batch_t *b) { free(b); }

/* ---- the revision of the current template ----------------------------------------- */

/* What a revision create needs should its name be taken (freed by the batch). */
typedef struct revision_item {
    const skiff_resource_t *status_res;
    int64_t collision_count;
    char *name;
    char ns[]; /* then the name */
} revision_item_t;

static void on_revision_created(wl_batch_t *b, void *data, int status, json_t *obj)
{
    (void)obj;
    revision_item_t *it = data;
    if (status != 409) return;
    /* the name is taken by other data (no equal revision is ours): the
     * next name mixes in a bigger collisionCount */
    char patch[96];
    snprintf(patch, sizeof patch, "{\"status\":{\"collisionCount\":%lld}}",
             (long long)it->collision_count + 1);
    wl_batch_patch(b, WL_RES_OTHER, it->status_res, it->ns, it->name, SKIFF_PATCH_MERGE, patch,
                   NULL, NULL);
}

json_t *wl_revision_ensure(wl_batch_t *b, const json_t *owner, const char *kind,
                           const skiff_resource_t *status_res, const json_t *tmpl,
                           const json_t *data, const json_t *revs)
{
    const char *ns = wl_str(owner, "metadata", "namespace");
    json_t *cur = wl_revision_find_equal(revs, data);
    int64_t next = wl_revision_next(revs);
    if (cur && json_integer_value(json_object_get(cur, "revision")) >= next - 1) return cur;
    if (cur) {
        /* an older template came back (rollout undo): it becomes the newest */
        char patch[64];
        snprintf(patch, sizeof patch, "{\"revision\":%lld}", (long long)next);
        wl_batch_patch(b, WL_RES_REVISIONS, &wl_revisions, ns, wl_str(cur, "metadata", "name"),
                       SKIFF_PATCH_MERGE, patch, NULL, NULL);
        return NULL;
    }
    int64_t cc = wl_int(json_object_get(owner, "status"), "collisionCount", NULL, 0);
    char hash[16];
    skiff_json_hash(data, (uint32_t)cc, hash, sizeof hash);
    json_t *cr = wl_revision_new(owner, "apps/v1", kind, tmpl, data, next, hash);
    const char *name = wl_str(owner, "metadata", "name");
    size_t nl = strlen(ns ? ns : "") + 1, ml = strlen(name ? name : "") + 1;
    revision_item_t *it = malloc(sizeof *it + nl + ml);
    if (it) {
        it->status_res = status_res;
        it->collision_count = cc;
        memcpy(it->ns, ns ? ns : "", nl);
        it->name = it->ns + nl;
        memcpy(it->name, name ? name : "", ml);
    }
    wl_batch_create(b, WL_RES_REVISIONS, &wl_revisions, ns, cr, it ? on_revision_created : NULL,
                    it);
    json_decref(cr);
    return NULL;
}

/* ---- adoption and release ------------------------------------------------------------ */

static void patch_refs(wl_batch_t *b, const char *ns, const json_t *pod, json_t *refs)
{
    json_t *patch = json_pack("{s:{s:O, s:s?}}", "metadata", "ownerReferences", refs, "uid",
                              wl_str(pod, "metadata", "uid"));
    char *text = json_dumps(patch, JSON_COMPACT);
    if (text)
        wl_batch_patch(b, WL_RES_PODS, &wl_pods, ns, wl_str(pod, "metadata", "name"),
                       SKIFF_PATCH_MERGE, text, NULL, NULL);
    free(text);
    json_decref(patch);
}

int wl_claim_pods(wl_batch_t *b, skiff_informer_t *pods, const json_t *owner,
                  const char *api_version, const char *kind,
                  int (*accept)(const json_t *pod, void *data), void *data)
{
    const char *ns = wl_str(owner, "metadata", "namespace");
    const char *uid = wl_str(owner, "metadata", "uid");
    const json_t *sel = wl_get(owner, "spec", "selector");
    if (!ns || !uid || !json_is_object(sel)) return 0;
    json_t *all = wl_candidates(pods, ns, uid, sel);
    int n = 0;
    size_t i;
    json_t *pod;
    json_array_foreach(all, i, pod)
    {
        const json_t *labels = wl_get(pod, "metadata", "labels");
        int matches = skiff_label_selector_matches(sel, labels) == 1;
        json_t *ctl = skiff_controller_ref(pod);
        json_t *refs = wl_get(pod, "metadata", "ownerReferences");
        if (!ctl && matches && !wl_terminating(pod) && (!accept || accept(pod, data))) {
            json_t *nrefs = json_is_array(refs) ? json_copy(refs) : json_array();
            json_array_append_new(nrefs, wl_controller_ref(owner, api_version, kind));
            patch_refs(b, ns, pod, nrefs);
            json_decref(nrefs);
            n++;
        } else if (ctl && !matches && !wl_terminating(pod) &&
                   strcmp(wl_str(ctl, "uid", NULL) ? wl_str(ctl, "uid", NULL) : "", uid) == 0) {
            json_t *nrefs = json_array();
            size_t j;
            json_t *r;
            json_array_foreach(refs, j, r)
            {
                const char *ru = wl_str(r, "uid", NULL);
                if (!ru || strcmp(ru, uid) != 0) json_array_append(nrefs, r);
            }
            patch_refs(b, ns, pod, nrefs);
            json_decref(nrefs);
            n++;
        }
    }
    json_decref(all);
    return n;
}

static void enqueue_key(skiff_controller_t *c, const char *ns, const char *name)
{
    char key[512];
    int n = snprintf(key, sizeof key, "%s/%s", ns ? ns : "", name ? name : "");
    if (n > 0 && (size_t)n < sizeof key && name) skiff_controller_enqueue(c, key);
}

void wl_map_pod(skiff_controller_t *c, json_t *pod, const char *kind)
{
    const char *ns = wl_str(pod, "metadata", "namespace");
    json_t *ctl = skiff_controller_ref(pod);
    if (ctl) {
        const char *k = wl_str(ctl, "kind", NULL);
        if (k && strcmp(k, kind) == 0) enqueue_key(c, ns, wl_str(ctl, "name", NULL));
        return;
    }
    if (wl_terminating(pod)) return;
    json_t *owners = skiff_informer_list_namespace(skiff_controller_informer(c), ns ? ns : "");
    size_t i;
    json_t *o;
    json_array_foreach(owners, i, o)
    {
        const json_t *sel = wl_get(o, "spec", "selector");
        if (json_is_object(sel) &&
            skiff_label_selector_matches(sel, wl_get(pod, "metadata", "labels")) == 1)
            enqueue_key(c, ns, wl_str(o, "metadata", "name"));
    }
    json_decref(owners);
}

/* ---- cache barriers ------------------------------------------------------------------ */

#define BARRIER_MAX_AGE_MS 30000

struct wl_barriers {
    json_t *keys; /* key -> [rv per class..., time ms] */
};

wl_barriers_t *wl_barriers_new(void)
{
    wl_barriers_t *bs = calloc(1, sizeof *bs);
    if (bs && !(bs->keys = json_object())) {
        free(bs);
        return NULL;
    }
    return bs;
}

void wl_barriers_free(wl_barriers_t *bs)
{
    if (!bs) return;
    json_decref(bs->keys);
    free(bs);
}

void wl_barriers_note(wl_barriers_t *bs, const char *key, const wl_batch_t *b)
{
    json_t *e = json_object_get(bs->keys, key);
    if (!e) {
        e = json_array();
        for (int i = 0; i <= WL_RES_N; i++) json_array_append_new(e, json_integer(0));
        json_object_set_new(bs->keys, key, e);
    }
    int any = 0;
    for (int i = 0; i < WL_RES_N; i++) {
        if (b->max_rv[i] > json_integer_value(json_array_get(e, i))) {
            json_array_set_new(e, i, json_integer(b->max_rv[i]));
            any = 1;
        }
    }
    if (any) json_array_set_new(e, WL_RES_N, json_integer(skiff_now_ms()));
}

void wl_barriers_forget(wl_barriers_t *bs, const char *key) { json_object_del(bs->keys, key); }

int wl_barriers_passed(wl_barriers_t *bs, const char *key, skiff_informer_t *const *informers)
{
    json_t *e = json_object_get(bs->keys, key);
    if (!e) return 1;
    if (skiff_now_ms() - json_integer_value(json_array_get(e, WL_RES_N)) > BARRIER_MAX_AGE_MS) {
        wl_barriers_forget(bs, key);
        return 1;
    }
    for (int i = 0; i < WL_RES_N; i++) {
        int64_t want = json_integer_value(json_array_get(e, i));
        if (!want || !informers[i]) continue;
        const char *rv = skiff_informer_resource_version(informers[i]);
        if (!rv || strtoll(rv, NULL, 10) < want) return 0;
    }
    wl_barriers_forget(bs, key);
    return 1;
}
