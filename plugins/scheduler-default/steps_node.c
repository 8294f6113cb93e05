/* plugins/scheduler-default/steps_node.c - the steps that look at one node
 * and the pod's own spec: NodeUnschedulable, NodeName, TaintToleration
 * (filter and PreferNoSchedule score), NodeAffinity (nodeSelector and
 * required affinity; preferred affinity score), NodePorts and
 * ImageLocality. Reasons are worded as kube-scheduler words them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "sched.h"

const json_t *pod_spec(const skiff_sched_pod_t *p) { return json_object_get(p->obj, "spec"); }

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* ---- tolerations -------------------------------------------------------------- */

static int tolerates_one(const json_t *t, const json_t *taint)
{
    const char *te = str(t, "effect"), *ke = str(taint, "effect");
    if (*te && strcmp(te, ke) != 0) return 0;
    const char *tk = str(t, "key");
    if (*tk && strcmp(tk, str(taint, "key")) != 0) return 0;
    const char *op = str(t, "operator");
    if (strcmp(op, "Exists") == 0) return 1;
    if (!*tk) return 0; /* an empty key needs Exists */
    return strcmp(str(t, "value"), str(taint, "value")) == 0;
}

int tolerates(const json_t *tolerations, const json_t *taint)
{
    size_t i;
    json_t *t;
    json_array_foreach(tolerations, i, t) if (tolerates_one(t, taint)) return 1;
    return 0;
}

/* ---- NodeUnschedulable --------------------------------------------------------------- */

static int unschedulable_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                                const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    if (!node->unschedulable) return SKIFF_SCHED_OK;
    json_t *taint = json_pack("{s:s,s:s}", "key", "node.kubernetes.io/unschedulable", "effect",
                              "NoSchedule");
    int ok = tolerates(json_object_get(pod_spec(cy->pod), "tolerations"), taint);
    json_decref(taint);
    if (ok) return SKIFF_SCHED_OK;
    skiff_sched_reason(why, "node(s) were unschedulable");
    return SKIFF_SCHED_UNRESOLVABLE;
}

const skiff_sched_step_t step_node_unschedulable = {.name = "NodeUnschedulable",
                                                    .filter = unschedulable_filter};

/* ---- NodeName --------------------------------------------------------------------- */

static int nodename_pre(void *data, const skiff_sched_cycle_t *cy, void **state,
                        skiff_sched_reasons_t *why)
{
    return *str(pod_spec(cy->pod), "nodeName") ? SKIFF_SCHED_OK : SKIFF_SCHED_SKIP;
}

static int nodename_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                           const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    const char *want = str(pod_spec(cy->pod), "nodeName");
    if (!*want || strcmp(want, node->name) == 0) return SKIFF_SCHED_OK;
    skiff_sched_reason(why, "node(s) didn't match the requested node name");
    return SKIFF_SCHED_UNRESOLVABLE;
}

const skiff_sched_step_t step_node_name = {.name = "NodeName", .pre_filter = nodename_pre,
                                           .filter = nodename_filter};

/* ---- TaintToleration -------------------------------------------------------------------- */

static int taint_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                        const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    const json_t *taints = node->taints;
    if (!taints) return SKIFF_SCHED_OK;
    const json_t *tol = json_object_get(pod_spec(cy->pod), "tolerations");
    size_t i;
    json_t *t;
    json_array_foreach(taints, i, t) {
        const char *e = str(t, "effect");
        if (strcmp(e, "NoSchedule") != 0 && strcmp(e, "NoExecute") != 0) continue;
        if (tolerates(tol, t)) continue;
        char msg[160];
        snprintf(msg, sizeof msg, "node(s) had untolerated taint {%s: %s}", str(t, "key"),
                 str(t, "value"));
        skiff_sched_reason(why, msg);
        return SKIFF_SCHED_UNRESOLVABLE;
    }
    return SKIFF_SCHED_OK;
}

/* Counts PreferNoSchedule taints the pod does not tolerate (tolerations
 * with an empty effect or PreferNoSchedule count). */
static int64_t taint_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                           const skiff_sched_node_t *node)
{
    const json_t *taints = node->taints;
    if (!node->n_prefer_no_schedule) return 0;
    const json_t *tol = json_object_get(pod_spec(cy->pod), "tolerations");
    json_t *prefer = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tol, i, t) {
        const char *e = str(t, "effect");
        if (!*e || strcmp(e, "PreferNoSchedule") == 0) json_array_append(prefer, t);
    }
    int64_t n = 0;
    json_array_foreach(taints, i, t) {
        if (strcmp(str(t, "effect"), "PreferNoSchedule") != 0) continue;
        if (!tolerates(prefer, t)) n++;
    }
    json_decref(prefer);
    return n;
}

/* kube-scheduler's DefaultNormalizeScore: scale to 0..100 by the maximum,
 * reversed when fewer is better. */
static void default_normalize(int64_t *scores, size_t n, int reverse)
{
    int64_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (scores[i] > max) max = scores[i];
    for (size_t i = 0; i < n; i++) {
        if (max == 0) {
            scores[i] = reverse ? SKIFF_SCHED_MAX_SCORE : 0;
            continue;
        }
        int64_t s = SKIFF_SCHED_MAX_SCORE * scores[i] / max;
        scores[i] = reverse ? SKIFF_SCHED_MAX_SCORE - s : s;
    }
}

static void taint_normalize(void *data, const skiff_sched_cycle_t *cy, void *state,
                            const skiff_sched_node_t *const *nodes, int64_t *scores, size_t n)
{
    default_normalize(scores, n, 1);
}

const skiff_sched_step_t step_taint_toleration = {.name = "TaintToleration",
                                                  .filter = taint_filter,
                                                  .score = taint_score,
                                                  .normalize = taint_normalize};

/* ---- NodeAffinity ---------------------------------------------------------------------- */

static int in_values(const json_t *values, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(values, i, x) if (strcmp(json_string_value(x) ? json_string_value(x) : "", v) == 0) return 1;
    return 0;
}

static int parse_int(const char *s, long long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno || *end ? -1 : 0;
}

static int requirement_matches(const json_t *r, const char *value, int has)
{
    const char *op = str(r, "operator");
    const json_t *values = json_object_get(r, "values");
    if (strcmp(op, "In") == 0) return has && in_values(values, value);
    if (strcmp(op, "NotIn") == 0) return !has || !in_values(values, value);
    if (strcmp(op, "Exists") == 0) return has;
    if (strcmp(op, "DoesNotExist") == 0) return !has;
    if (strcmp(op, "Gt") == 0 || strcmp(op, "Lt") == 0) {
        long long a, b;
        if (!has || json_array_size(values) != 1 || parse_int(value, &a) != 0 ||
            parse_int(json_string_value(json_array_get(values, 0)), &b) != 0)
            return 0;
        return op[0] == 'G' ? a > b : a < b;
    }
    return 0;
}

int node_selector_term_matches(const json_t *term, const json_t *node_labels,
                               const char *node_name)
{
    const json_t *exprs = json_object_get(term, "matchExpressions");
    const json_t *fields = json_object_get(term, "matchFields");
    /* an empty term selects no node */
    if (!json_array_size(exprs) && !json_array_size(fields)) return 0;
    size_t i;
    json_t *r;
    json_array_foreach(exprs, i, r) {
        const json_t *v = json_object_get(node_labels, str(r, "key"));
        if (!requirement_matches(r, json_string_value(v) ? json_string_value(v) : "", v != NULL))
            return 0;
    }
    json_array_foreach(fields, i, r) {
        if (strcmp(str(r, "key"), "metadata.name") != 0) return 0;
        if (!requirement_matches(r, node_name, 1)) return 0;
    }
    return 1;
}

int pod_matches_node_selector(const json_t *pod, const json_t *node_labels, const char *node_name)
{
    const json_t *spec = json_object_get(pod, "spec");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(spec, "nodeSelector"), k, v) {
        const char *have = json_string_value(json_object_get(node_labels, k));
        if (!have || strcmp(have, json_string_value(v) ? json_string_value(v) : "") != 0) return 0;
    }
    const json_t *req = json_object_get(
        json_object_get(json_object_get(json_object_get(spec, "affinity"), "nodeAffinity"),
                        "requiredDuringSchedulingIgnoredDuringExecution"),
        "nodeSelectorTerms");
    if (!req) return 1;
    size_t i;
    json_t *term;
    json_array_foreach(req, i, term) if (node_selector_term_matches(term, node_labels, node_name)) return 1;
    return 0;
}

static int affinity_pre(void *data, const skiff_sched_cycle_t *cy, void **state,
                        skiff_sched_reasons_t *why)
{
    const json_t *spec = pod_spec(cy->pod);
    const json_t *na = json_object_get(json_object_get(spec, "affinity"), "nodeAffinity");
    if (!json_object_size(json_object_get(spec, "nodeSelector")) &&
        !json_object_get(na, "requiredDuringSchedulingIgnoredDuringExecution"))
        return SKIFF_SCHED_SKIP;
    return SKIFF_SCHED_OK;
}

static int affinity_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                           const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    if (pod_matches_node_selector(cy->pod->obj, node->labels, node->name)) return SKIFF_SCHED_OK;
    skiff_sched_reason(why, "node(s) didn't match Pod's node affinity/selector");
    return SKIFF_SCHED_UNRESOLVABLE;
}

static int affinity_pre_score(void *data, const skiff_sched_cycle_t *cy, void **state)
{
    const json_t *pref = json_object_get(
        json_object_get(json_object_get(pod_spec(cy->pod), "affinity"), "nodeAffinity"),
        "preferredDuringSchedulingIgnoredDuringExecution");
    return json_array_size(pref) ? SKIFF_SCHED_OK : SKIFF_SCHED_SKIP;
}

static int64_t affinity_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                              const skiff_sched_node_t *node)
{
    const json_t *pref = json_object_get(
        json_object_get(json_object_get(pod_spec(cy->pod), "affinity"), "nodeAffinity"),
        "preferredDuringSchedulingIgnoredDuringExecution");
    int64_t sum = 0;
    size_t i;
    json_t *t;
    json_array_foreach(pref, i, t) {
        json_int_t w = json_integer_value(json_object_get(t, "weight"));
        if (w && node_selector_term_matches(json_object_get(t, "preference"), node->labels,
                                            node->name))
            sum += w;
    }
    return sum;
}

static void affinity_normalize(void *data, const skiff_sched_cycle_t *cy, void *state,
                               const skiff_sched_node_t *const *nodes, int64_t *scores, size_t n)
{
    default_normalize(scores, n, 0);
}

const skiff_sched_step_t step_node_affinity = {.name = "NodeAffinity",
                                               .pre_filter = affinity_pre,
                                               .filter = affinity_filter,
                                               .pre_score = affinity_pre_score,
                                               .score = affinity_score,
                                               .normalize = affinity_normalize};

/* ---- NodePorts -------------------------------------------------------------------------- */

static int ports_pre(void *data, const skiff_sched_cycle_t *cy, void **state,
                     skiff_sched_reasons_t *why)
{
    return cy->pod->n_ports ? SKIFF_SCHED_OK : SKIFF_SCHED_SKIP;
}

static int ports_conflict(const skiff_sched_port_t *a, const skiff_sched_port_t *b)
{
    if (a->port != b->port || strcmp(a->protocol, b->protocol) != 0) return 0;
    return strcmp(a->host_ip, "0.0.0.0") == 0 || strcmp(b->host_ip, "0.0.0.0") == 0 ||
           strcmp(a->host_ip, b->host_ip) == 0;
}

static int ports_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                        const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    for (size_t i = 0; i < node->n_pods; i++) {
        const skiff_sched_pod_t *p = node->pods[i];
        for (size_t a = 0; a < p->n_ports; a++)
            for (size_t b = 0; b < cy->pod->n_ports; b++)
                if (ports_conflict(&p->ports[a], &cy->pod->ports[b])) {
                    skiff_sched_reason(why,
                                       "node(s) didn't have free ports for the requested pod ports");
                    return SKIFF_SCHED_UNSCHEDULABLE;
                }
    }
    return SKIFF_SCHED_OK;
}

const skiff_sched_step_t step_node_ports = {.name = "NodePorts", .pre_filter = ports_pre,
                                            .filter = ports_filter};

/* ---- ImageLocality -------------------------------------------------------------------------- */

/* kube-scheduler's bounds: below 23 MB scores 0, above 1000 MB per
 * container scores 100. */
#define IMG_MIN (23LL * 1024 * 1024)
#define IMG_MAX_PER_CONTAINER (1000LL * 1024 * 1024)

static void normalized_image(const char *image, char *buf, size_t len)
{
    const char *slash = strrchr(image, '/');
    const char *last = slash ? slash + 1 : image;
    if (strchr(image, '@') || strchr(last, ':')) snprintf(buf, len, "%s", image);
    else snprintf(buf, len, "%s:latest", image);
}

static int64_t image_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                           const skiff_sched_node_t *node)
{
    const json_t *images = node->images;
    if (!images) return 0;
    const json_t *containers = json_object_get(pod_spec(cy->pod), "containers");
    int64_t sum = 0;
    size_t i, j, k;
    json_t *c, *img, *nm;
    json_array_foreach(containers, i, c) {
        char want[512];
        normalized_image(str(c, "image"), want, sizeof want);
        json_array_foreach(images, j, img) {
            int hit = 0;
            json_array_foreach(json_object_get(img, "names"), k, nm) {
                char have[512];
                normalized_image(json_string_value(nm) ? json_string_value(nm) : "", have, sizeof have);
                if (strcmp(have, want) == 0) hit = 1;
            }
            if (hit) {
                sum += json_integer_value(json_object_get(img, "sizeBytes"));
                break;
            }
        }
    }
    int64_t max = IMG_MAX_PER_CONTAINER * (int64_t)(json_array_size(containers) ? json_array_size(containers) : 1);
    if (sum < IMG_MIN) sum = IMG_MIN;
    if (sum > max) sum = max;
    return SKIFF_SCHED_MAX_SCORE * (sum - IMG_MIN) / (max - IMG_MIN);
}

const skiff_sched_step_t step_image_locality = {.name = "ImageLocality", .score = image_score};
