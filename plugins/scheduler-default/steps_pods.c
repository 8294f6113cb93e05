/* plugins/scheduler-default/steps_pods.c - the steps that look at other
 * pods: InterPodAffinity (required affinity and anti-affinity, existing
 * pods' anti-affinity against the incoming pod, preferred terms as a
 * score) and PodTopologySpread (DoNotSchedule as a filter with maxSkew,
 * minDomains, nodeAffinityPolicy and nodeTaintsPolicy; ScheduleAnyway as
 * a score). Counts per topology domain are built once per cycle in
 * pre_filter / pre_score, as kube-scheduler does. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "sched.h"

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* ---- topology pair counters ---------------------------------------------------------- */

static void pair_key(char *buf, size_t len, const char *k, const char *v)
{
    snprintf(buf, len, "%s\x01%s", k, v);
}

static void count_add(smap_t *m, const char *k, const char *v, intptr_t d)
{
    char key[512];
    pair_key(key, sizeof key, k, v);
    intptr_t cur = (intptr_t)smap_get(m, key);
    smap_put(m, key, (void *)(cur + d));
}

static intptr_t count_get(const smap_t *m, const char *k, const char *v)
{
    char key[512];
    pair_key(key, sizeof key, k, v);
    return (intptr_t)smap_get(m, key);
}

static const char *node_label(const skiff_sched_node_t *n, const char *key)
{
    return json_string_value(json_object_get(n->labels, key));
}

/* ---- affinity terms ----------------------------------------------------------------------- */

/* Does a PodAffinityTerm of a pod in namespace owner_ns select pod p? */
static int term_selects(const skiff_sched_cycle_t *cy, const json_t *term, const char *owner_ns,
                        const skiff_sched_pod_t *p)
{
    const json_t *nss = json_object_get(term, "namespaces");
    const json_t *nsel = json_object_get(term, "namespaceSelector");
    int ns_ok = 0;
    if (!json_array_size(nss) && !json_is_object(nsel)) {
        ns_ok = strcmp(owner_ns, p->ns) == 0;
    } else {
        size_t i;
        json_t *n;
        json_array_foreach(nss, i, n) if (strcmp(json_string_value(n) ? json_string_value(n) : "", p->ns) == 0) ns_ok = 1;
        if (!ns_ok && json_is_object(nsel)) {
            const json_t *labels = cy->namespace_labels ? cy->namespace_labels(cy->namespace_data, p->ns) : NULL;
            ns_ok = skiff_label_selector_matches(nsel, labels) == 1;
        }
    }
    if (!ns_ok) return 0;
    return skiff_label_selector_matches(json_object_get(term, "labelSelector"), p->labels) == 1;
}

static const json_t *pod_terms(const skiff_sched_pod_t *p, const char *kind, const char *when)
{
    return json_object_get(
        json_object_get(json_object_get(pod_spec(p), "affinity"), kind), when);
}

#define REQUIRED "requiredDuringSchedulingIgnoredDuringExecution"
#define PREFERRED "preferredDuringSchedulingIgnoredDuringExecution"

typedef struct ipa_state {
    smap_t affinity;          /* incoming required affinity terms: pods matching all */
    smap_t anti;              /* incoming required anti-affinity terms */
    smap_t existing_anti;     /* existing pods' required anti-affinity matching the incoming pod */
    int affinity_any;         /* any pod matched the affinity terms */
} ipa_state_t;

static void ipa_free(void *s)
{
    ipa_state_t *st = s;
    if (!st) return;
    smap_clear(&st->affinity, NULL);
    smap_clear(&st->anti, NULL);
    smap_clear(&st->existing_anti, NULL);
    free(st);
}

static int all_terms_select(const skiff_sched_cycle_t *cy, const json_t *terms, const char *ns,
                            const skiff_sched_pod_t *p)
{
    size_t i;
    json_t *t;
    json_array_foreach(terms, i, t) if (!term_selects(cy, t, ns, p)) return 0;
    return 1;
}

static int ipa_pre(void *data, const skiff_sched_cycle_t *cy, void **state,
                   skiff_sched_reasons_t *why)
{
    const skiff_sched_pod_t *pod = cy->pod;
    const json_t *aff = pod_terms(pod, "podAffinity", REQUIRED);
    const json_t *anti = pod_terms(pod, "podAntiAffinity", REQUIRED);
    int mine = json_array_size(aff) || json_array_size(anti);
    if (!mine && !cy->n_pods_with_anti_affinity) return SKIFF_SCHED_SKIP;
    ipa_state_t *st = NULL;
    for (size_t i = 0; i < cy->n_nodes; i++) {
        const skiff_sched_node_t *n = cy->nodes[i];
        if (!mine && !n->n_pods_with_anti_affinity) continue;
        for (size_t j = 0; j < n->n_pods; j++) {
            const skiff_sched_pod_t *p = n->pods[j];
            if (p == pod) continue;
            if (!st && !(st = calloc(1, sizeof *st))) return SKIFF_SCHED_OK;
            if (p->has_anti_affinity) {
                size_t k;
                json_t *t;
                json_array_foreach(pod_terms(p, "podAntiAffinity", REQUIRED), k, t) {
                    const char *v = node_label(n, str(t, "topologyKey"));
                    if (v && term_selects(cy, t, p->ns, pod))
                        count_add(&st->existing_anti, str(t, "topologyKey"), v, 1);
                }
            }
            if (!mine) continue;
            if (json_array_size(aff) && all_terms_select(cy, aff, pod->ns, p)) {
                size_t k;
                json_t *t;
                json_array_foreach(aff, k, t) {
                    const char *v = node_label(n, str(t, "topologyKey"));
                    if (v) {
                        count_add(&st->affinity, str(t, "topologyKey"), v, 1);
                        st->affinity_any = 1;
                    }
                }
            }
            size_t k;
            json_t *t;
            json_array_foreach(anti, k, t) {
                const char *v = node_label(n, str(t, "topologyKey"));
                if (v && term_selects(cy, t, pod->ns, p))
                    count_add(&st->anti, str(t, "topologyKey"), v, 1);
            }
        }
    }
    if (!mine && (!st || st->existing_anti.n == 0)) {
        ipa_free(st);
        return SKIFF_SCHED_SKIP;
    }
    if (!st && !(st = calloc(1, sizeof *st))) return SKIFF_SCHED_OK;
    *state = st;
    return SKIFF_SCHED_OK;
}

static int ipa_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                      const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    ipa_state_t *st = state;
    if (!st) return SKIFF_SCHED_OK;
    const skiff_sched_pod_t *pod = cy->pod;
    const json_t *aff = pod_terms(pod, "podAffinity", REQUIRED);
    size_t i;
    json_t *t;
    int exist = 1;
    json_array_foreach(aff, i, t) {
        const char *v = node_label(node, str(t, "topologyKey"));
        if (!v) {
            exist = -1;
            break;
        }
        if (count_get(&st->affinity, str(t, "topologyKey"), v) <= 0) exist = 0;
    }
    /* the first of a group of pods with affinity to each other may go
     * anywhere that has the topology labels, if it matches its own terms */
    if (exist == 0 && !(!st->affinity_any && all_terms_select(cy, aff, pod->ns, pod))) exist = -1;
    if (exist < 0) {
        skiff_sched_reason(why, "node(s) didn't match pod affinity rules");
        return SKIFF_SCHED_UNRESOLVABLE;
    }
    json_array_foreach(pod_terms(pod, "podAntiAffinity", REQUIRED), i, t) {
        const char *v = node_label(node, str(t, "topologyKey"));
        if (v && count_get(&st->anti, str(t, "topologyKey"), v) > 0) {
            skiff_sched_reason(why, "node(s) didn't match pod anti-affinity rules");
            return SKIFF_SCHED_UNSCHEDULABLE;
        }
    }
    if (st->existing_anti.n) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)node->labels, k, v) {
            if (json_is_string(v) && count_get(&st->existing_anti, k, json_string_value(v)) > 0) {
                skiff_sched_reason(why, "node(s) didn't satisfy existing pods anti-affinity rules");
                return SKIFF_SCHED_UNSCHEDULABLE;
            }
        }
    }
    return SKIFF_SCHED_OK;
}

/* Preferred terms: weights per topology domain, from the incoming pod's
 * preferred terms and existing pods' preferred terms towards it. */
static void add_weighted(const skiff_sched_cycle_t *cy, smap_t *m, const json_t *terms,
                         const char *owner_ns, const skiff_sched_pod_t *target,
                         const skiff_sched_node_t *n, int sign)
{
    size_t k;
    json_t *wt;
    json_array_foreach(terms, k, wt) {
        const json_t *t = json_object_get(wt, "podAffinityTerm");
        json_int_t w = json_integer_value(json_object_get(wt, "weight"));
        const char *v = node_label(n, str(t, "topologyKey"));
        if (w && v && term_selects(cy, t, owner_ns, target))
            count_add(m, str(t, "topologyKey"), v, sign * (intptr_t)w);
    }
}

static int ipa_pre_score(void *data, const skiff_sched_cycle_t *cy, void **state)
{
    const skiff_sched_pod_t *pod = cy->pod;
    const json_t *pa = pod_terms(pod, "podAffinity", PREFERRED);
    const json_t *paa = pod_terms(pod, "podAntiAffinity", PREFERRED);
    int mine = json_array_size(pa) || json_array_size(paa);
    /* SKIP leaves the filter's state alone; the framework frees it */
    if (!mine && !cy->n_pods_with_anti_affinity && !cy->n_pods_with_affinity)
        return SKIFF_SCHED_SKIP;
    smap_t *m = calloc(1, sizeof *m);
    if (!m) return SKIFF_SCHED_OK;
    for (size_t i = 0; i < cy->n_nodes; i++) {
        const skiff_sched_node_t *n = cy->nodes[i];
        if (!mine && !n->n_pods_with_anti_affinity && !n->n_pods_with_affinity) continue;
        for (size_t j = 0; j < n->n_pods; j++) {
            const skiff_sched_pod_t *p = n->pods[j];
            if (p == pod) continue;
            if (mine) {
                add_weighted(cy, m, pa, pod->ns, p, n, 1);
                add_weighted(cy, m, paa, pod->ns, p, n, -1);
            }
            if (p->has_affinity) add_weighted(cy, m, pod_terms(p, "podAffinity", PREFERRED), p->ns, pod, n, 1);
            if (p->has_anti_affinity)
                add_weighted(cy, m, pod_terms(p, "podAntiAffinity", PREFERRED), p->ns, pod, n, -1);
        }
    }
    if (m->n == 0) {
        free(m);
        return SKIFF_SCHED_SKIP;
    }
    /* the state slot may hold pre_filter's: keep both */
    ipa_state_t *st = *state;
    if (!st && !(st = calloc(1, sizeof *st))) {
        smap_clear(m, NULL);
        free(m);
        return SKIFF_SCHED_OK;
    }
    smap_clear(&st->affinity, NULL);
    st->affinity = *m; /* scoring reuses the affinity map: filtering is over */
    free(m);
    *state = st;
    return SKIFF_SCHED_OK;
}

static int64_t ipa_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                         const skiff_sched_node_t *node)
{
    ipa_state_t *st = state;
    if (!st || !st->affinity.n) return 0;
    int64_t sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)node->labels, k, v)
        if (json_is_string(v)) sum += count_get(&st->affinity, k, json_string_value(v));
    return sum;
}

static void minmax_normalize(int64_t *scores, size_t n)
{
    if (!n) return;
    int64_t min = scores[0], max = scores[0];
    for (size_t i = 1; i < n; i++) {
        if (scores[i] < min) min = scores[i];
        if (scores[i] > max) max = scores[i];
    }
    for (size_t i = 0; i < n; i++)
        scores[i] = max == min ? 0 : SKIFF_SCHED_MAX_SCORE * (scores[i] - min) / (max - min);
}

static void ipa_normalize(void *data, const skiff_sched_cycle_t *cy, void *state,
                          const skiff_sched_node_t *const *nodes, int64_t *scores, size_t n)
{
    minmax_normalize(scores, n);
}

const skiff_sched_step_t step_inter_pod_affinity = {.name = "InterPodAffinity",
                                                    .pre_filter = ipa_pre,
                                                    .filter = ipa_filter,
                                                    .pre_score = ipa_pre_score,
                                                    .score = ipa_score,
                                                    .normalize = ipa_normalize,
                                                    .free_state = ipa_free};

/* ---- PodTopologySpread ------------------------------------------------------------------ */

typedef struct spread_constraint {
    const char *key;
    int64_t max_skew;
    int64_t min_domains;
    json_t *selector;          /* labelSelector plus matchLabelKeys (owned) */
    int honor_affinity;        /* nodeAffinityPolicy Honor (default) */
    int honor_taints;          /* nodeTaintsPolicy Honor (default Ignore) */
    smap_t counts;             /* domain value -> matching pods */
    size_t n_domains;
    int64_t min_match;
    int self_match;
} spread_constraint_t;

typedef struct spread_state {
    spread_constraint_t c[8];
    size_t n;
} spread_state_t;

static void spread_free(void *s)
{
    spread_state_t *st = s;
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) {
        json_decref(st->c[i].selector);
        smap_clear(&st->c[i].counts, NULL);
    }
    free(st);
}

static int node_taints_tolerated(const skiff_sched_pod_t *pod, const skiff_sched_node_t *n)
{
    const json_t *taints = n->taints;
    const json_t *tol = json_object_get(pod_spec(pod), "tolerations");
    size_t i;
    json_t *t;
    json_array_foreach(taints, i, t) {
        const char *e = str(t, "effect");
        if ((strcmp(e, "NoSchedule") == 0 || strcmp(e, "NoExecute") == 0) && !tolerates(tol, t))
            return 0;
    }
    return 1;
}

/* Builds the constraints of one kind (DoNotSchedule or ScheduleAnyway)
 * with their domain counts over the eligible nodes; NULL when none. */
static spread_state_t *spread_build(const skiff_sched_cycle_t *cy, const char *when)
{
    const skiff_sched_pod_t *pod = cy->pod;
    const json_t *list = json_object_get(pod_spec(pod), "topologySpreadConstraints");
    spread_state_t *st = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        if (strcmp(str(c, "whenUnsatisfiable"), when) != 0) continue;
        if (!st && !(st = calloc(1, sizeof *st))) return NULL;
        if (st->n == sizeof st->c / sizeof st->c[0]) break;
        spread_constraint_t *sc = &st->c[st->n++];
        sc->key = str(c, "topologyKey");
        sc->max_skew = json_integer_value(json_object_get(c, "maxSkew"));
        if (sc->max_skew <= 0) sc->max_skew = 1;
        json_t *md = json_object_get(c, "minDomains");
        sc->min_domains = json_is_integer(md) ? json_integer_value(md) : 1;
        sc->honor_affinity = strcmp(str(c, "nodeAffinityPolicy"), "Ignore") != 0;
        sc->honor_taints = strcmp(str(c, "nodeTaintsPolicy"), "Honor") == 0;
        json_t *sel = json_object_get(c, "labelSelector");
        sc->selector = sel ? skiff_json_copy(sel) : NULL;
        /* matchLabelKeys: the pod's own values join the selector */
        size_t k;
        json_t *mk;
        json_array_foreach(json_object_get(c, "matchLabelKeys"), k, mk) {
            const char *lk = json_string_value(mk);
            const char *lv = lk ? json_string_value(json_object_get(pod->labels, lk)) : NULL;
            if (!lv || !sc->selector) continue;
            json_t *ml = json_object_get(sc->selector, "matchLabels");
            if (!json_is_object(ml)) {
                ml = json_object();
                json_object_set_new(sc->selector, "matchLabels", ml);
            }
            json_object_set_new(ml, lk, json_string(lv));
        }
        sc->self_match = skiff_label_selector_matches(sc->selector, pod->labels) == 1;
    }
    if (!st) return NULL;
    for (size_t n = 0; n < cy->n_nodes; n++) {
        const skiff_sched_node_t *node = cy->nodes[n];
        /* a node counts only if it has every constraint's key */
        int all = 1;
        for (size_t j = 0; j < st->n; j++) all &= node_label(node, st->c[j].key) != NULL;
        if (!all) continue;
        for (size_t j = 0; j < st->n; j++) {
            spread_constraint_t *sc = &st->c[j];
            if (sc->honor_affinity && !pod_matches_node_selector(pod->obj, node->labels, node->name))
                continue;
            if (sc->honor_taints && !node_taints_tolerated(pod, node)) continue;
            const char *v = node_label(node, sc->key);
            intptr_t matched = 0;
            for (size_t p = 0; p < node->n_pods; p++) {
                const skiff_sched_pod_t *q = node->pods[p];
                if (q == pod || q->terminating || strcmp(q->ns, pod->ns) != 0) continue;
                if (skiff_label_selector_matches(sc->selector, q->labels) == 1) matched++;
            }
            /* stored as matched + 1, so a domain with no match is present */
            intptr_t cur = (intptr_t)smap_get(&sc->counts, v);
            if (!cur) {
                sc->n_domains++;
                cur = 1;
            }
            smap_put(&sc->counts, v, (void *)(cur + matched));
        }
    }
    for (size_t j = 0; j < st->n; j++) {
        spread_constraint_t *sc = &st->c[j];
        int64_t min = INT64_MAX;
        size_t it = 0;
        void *v;
        while (smap_next(&sc->counts, &it, NULL, &v))
            if ((int64_t)(intptr_t)v - 1 < min) min = (int64_t)(intptr_t)v - 1;
        /* fewer domains than minDomains: the global minimum is 0 */
        if (min == INT64_MAX || (int64_t)sc->n_domains < sc->min_domains) min = 0;
        sc->min_match = min;
    }
    return st;
}

static int64_t domain_count(const spread_constraint_t *sc, const char *v)
{
    intptr_t c = (intptr_t)smap_get(&sc->counts, v);
    return c > 0 ? (int64_t)c - 1 : 0;
}

static int spread_pre(void *data, const skiff_sched_cycle_t *cy, void **state,
                      skiff_sched_reasons_t *why)
{
    if (!json_array_size(json_object_get(pod_spec(cy->pod), "topologySpreadConstraints")))
        return SKIFF_SCHED_SKIP;
    spread_state_t *st = spread_build(cy, "DoNotSchedule");
    if (!st) return SKIFF_SCHED_SKIP;
    *state = st;
    return SKIFF_SCHED_OK;
}

static int spread_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                         const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    spread_state_t *st = state;
    if (!st) return SKIFF_SCHED_OK;
    for (size_t j = 0; j < st->n; j++) {
        const spread_constraint_t *sc = &st->c[j];
        const char *v = node_label(node, sc->key);
        if (!v) {
            skiff_sched_reason(why,
                               "node(s) didn't match pod topology spread constraints (missing required label)");
            return SKIFF_SCHED_UNRESOLVABLE;
        }
        int64_t skew = domain_count(sc, v) + sc->self_match - sc->min_match;
        if (skew > sc->max_skew) {
            skiff_sched_reason(why, "node(s) didn't match pod topology spread constraints");
            return SKIFF_SCHED_UNSCHEDULABLE;
        }
    }
    return SKIFF_SCHED_OK;
}

/* ScheduleAnyway: fewer matching pods in the node's domains scores higher;
 * each constraint weighs log(domains + 2), as kube-scheduler weighs it. */
static int spread_pre_score(void *data, const skiff_sched_cycle_t *cy, void **state)
{
    if (!json_array_size(json_object_get(pod_spec(cy->pod), "topologySpreadConstraints")))
        return SKIFF_SCHED_SKIP;
    spread_state_t *sc = spread_build(cy, "ScheduleAnyway");
    if (!sc) return SKIFF_SCHED_SKIP;
    /* scoring no longer needs the filter's counts: replace them */
    spread_free(*state);
    *state = sc;
    return SKIFF_SCHED_OK;
}

static int64_t spread_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                            const skiff_sched_node_t *node)
{
    spread_state_t *st = state;
    if (!st) return 0;
    double sum = 0;
    for (size_t j = 0; j < st->n; j++) {
        const spread_constraint_t *sc = &st->c[j];
        const char *v = node_label(node, sc->key);
        if (!v) return -1; /* marked: scores 0 after normalizing */
        double w = log((double)sc->n_domains + 2);
        sum += (double)domain_count(sc, v) * w + (double)(sc->max_skew - 1);
    }
    return (int64_t)(sum + 0.5);
}

static void spread_normalize(void *data, const skiff_sched_cycle_t *cy, void *state,
                             const skiff_sched_node_t *const *nodes, int64_t *scores, size_t n)
{
    int64_t min = INT64_MAX, max = 0;
    for (size_t i = 0; i < n; i++) {
        if (scores[i] < 0) continue;
        if (scores[i] < min) min = scores[i];
        if (scores[i] > max) max = scores[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (scores[i] < 0) scores[i] = 0;
        else if (max == 0) scores[i] = SKIFF_SCHED_MAX_SCORE;
        else scores[i] = SKIFF_SCHED_MAX_SCORE * (max + min - scores[i]) / max;
    }
}

const skiff_sched_step_t step_pod_topology_spread = {.name = "PodTopologySpread",
                                                     .pre_filter = spread_pre,
                                                     .filter = spread_filter,
                                                     .pre_score = spread_pre_score,
                                                     .score = spread_score,
                                                     .normalize = spread_normalize,
                                                     .free_state = spread_free};
