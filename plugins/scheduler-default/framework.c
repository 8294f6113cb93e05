/* plugins/scheduler-default/framework.c - runs one scheduling cycle over
 * the steps of a profile (pre_filter, filter with early exit and node
 * sampling, pre_score, score, normalize, weights), parses the profile
 * from the plugin's settings, and words the FailedScheduling message the
 * way kube-scheduler does. No API calls here. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

/* ---- profile ------------------------------------------------------------------------ */

static const skiff_sched_step_t *const all_filters[] = {
    /* kube-scheduler's default order: cheap, unresolvable checks first */
    &step_node_unschedulable, &step_node_name,     &step_taint_toleration,
    &step_node_affinity,      &step_node_ports,    &step_node_resources_fit,
    &step_pod_topology_spread, &step_inter_pod_affinity,
};

static const skiff_sched_step_t *const all_scores[] = {
    &step_least_allocated, &step_most_allocated,  &step_balanced_allocation,
    &step_node_affinity,   &step_inter_pod_affinity, &step_pod_topology_spread,
    &step_taint_toleration, &step_image_locality,
};

/* kube-scheduler's default score weights (NodeResourcesFit stands for the
 * scoring strategy's step) */
#define DEFAULT_SCORES                                                                    \
    "NodeResourcesFit:1,BalancedAllocation:1,ImageLocality:1,InterPodAffinity:2,"        \
    "NodeAffinity:2,PodTopologySpread:2,TaintToleration:3"

static const skiff_sched_step_t *find_step(const skiff_sched_step_t *const *list, size_t n,
                                           const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i]->name, name) == 0) return list[i];
    return NULL;
}

static void trim(char **s)
{
    while (**s == ' ') (*s)++;
    char *e = *s + strlen(*s);
    while (e > *s && e[-1] == ' ') *--e = '\0';
}

/* A step of another plugin, "plugin/Step", checked for the hook its
 * list needs. */
static const skiff_sched_step_t *plugin_step(const char *what, const char *name, int scoring,
                                             step_resolver_t resolve, void *data, char *err,
                                             size_t errlen)
{
    const char *slash = strchr(name, '/');
    if (!slash || slash == name || !slash[1]) return NULL;
    if (!resolve) {
        snprintf(err, errlen, "%s: \"%s\": steps of other plugins are not available here", what,
                 name);
        return NULL;
    }
    char plugin[256], why[512] = "";
    snprintf(plugin, sizeof plugin, "%.*s", (int)(slash - name), name);
    const skiff_sched_step_t *s = resolve(data, plugin, slash + 1, why, sizeof why);
    if (!s) {
        snprintf(err, errlen, "%s: \"%s\": %s", what, name, why[0] ? why : "not found");
        return NULL;
    }
    if (scoring ? !s->score : !s->filter && !s->pre_filter) {
        snprintf(err, errlen, "%s: step %s has no %s hook", what, name,
                 scoring ? "score" : "filter");
        return NULL;
    }
    return s;
}

int profile_parse(sched_profile_t *p, const char *filters, const char *scores,
                  const char *strategy, char *err, size_t errlen)
{
    return profile_parse_with(p, filters, scores, strategy, NULL, NULL, err, errlen);
}

/* steps a profile holds: the size of sched_profile_t's arrays */
#define MAX_STEPS (sizeof ((sched_profile_t *)0)->filters / sizeof *((sched_profile_t *)0)->filters)

int profile_parse_with(sched_profile_t *p, const char *filters, const char *scores,
                       const char *strategy, step_resolver_t resolve, void *resolve_data,
                       char *err, size_t errlen)
{
    err[0] = '\0';
    memset(p, 0, sizeof *p);
    const skiff_sched_step_t *fit_score = &step_least_allocated;
    if (strategy && *strategy) {
        if (strcmp(strategy, "MostAllocated") == 0) fit_score = &step_most_allocated;
        else if (strcmp(strategy, "LeastAllocated") != 0) {
            snprintf(err, errlen,
                     "scoring-strategy: \"%s\" is not LeastAllocated or MostAllocated", strategy);
            return -1;
        }
    }
    size_t nf = sizeof all_filters / sizeof *all_filters;
    if (!filters || !*filters || strcmp(filters, "all") == 0 || strcmp(filters, "*") == 0) {
        for (size_t i = 0; i < nf; i++) p->filters[p->n_filters++] = all_filters[i];
    } else if (strcmp(filters, "none") != 0) {
        char *buf = strdup(filters), *save = NULL;
        if (!buf) return -1;
        /* "-Name" removes one from the default set */
        int removing = buf[0] == '-';
        if (removing)
            for (size_t i = 0; i < nf; i++) p->filters[p->n_filters++] = all_filters[i];
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            trim(&t);
            if (!*t) continue;
            int neg = t[0] == '-';
            if (!neg && !removing && strcmp(t, "all") == 0) {
                /* "all,plugin/Step": the defaults and more */
                for (size_t i = 0; i < nf; i++) {
                    if (p->n_filters == MAX_STEPS) goto too_many_filters;
                    p->filters[p->n_filters++] = all_filters[i];
                }
                continue;
            }
            const skiff_sched_step_t *s = find_step(all_filters, nf, t + neg);
            if (!s && !neg && strchr(t, '/')) {
                s = plugin_step("filters", t, 0, resolve, resolve_data, err, errlen);
                if (!s) {
                    free(buf);
                    return -1;
                }
            }
            if (!s || neg != removing) {
                snprintf(err, errlen,
                         s ? "filters: mix of \"-Name\" and \"Name\" in \"%s\""
                           : "filters: no filter step named \"%s\"",
                         s ? filters : t + neg);
                free(buf);
                return -1;
            }
            if (neg) {
                for (size_t i = 0; i < p->n_filters; i++)
                    if (p->filters[i] == s) {
                        memmove(&p->filters[i], &p->filters[i + 1],
                                (p->n_filters - i - 1) * sizeof *p->filters);
                        p->n_filters--;
                        break;
                    }
            } else if (p->n_filters < MAX_STEPS) {
                p->filters[p->n_filters++] = s;
            } else {
            too_many_filters:
                snprintf(err, errlen, "filters: at most %zu steps, \"%s\" names more",
                         (size_t)MAX_STEPS, filters);
                free(buf);
                return -1;
            }
        }
        free(buf);
    }
    const char *sc = scores && *scores ? scores : DEFAULT_SCORES;
    if (strcmp(sc, "none") == 0) return 0;
    /* "default,plugin/Step:2": kube-scheduler's weights and more */
    char *buf = NULL, *save = NULL;
    if (strncmp(sc, "default", 7) == 0 && (sc[7] == ',' || !sc[7])) {
        if (asprintf(&buf, "%s%s", DEFAULT_SCORES, sc + 7) < 0) buf = NULL;
    } else {
        buf = strdup(sc);
    }
    if (!buf) return -1;
    size_t ns = sizeof all_scores / sizeof *all_scores;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        trim(&t);
        if (!*t) continue;
        char *colon = strchr(t, ':');
        long w = 1;
        if (colon) {
            *colon = '\0';
            char *end;
            w = strtol(colon + 1, &end, 10);
            if (*end || w < 0 || w > 100) {
                snprintf(err, errlen, "scores: weight of %s must be 0..100", t);
                free(buf);
                return -1;
            }
        }
        const skiff_sched_step_t *s;
        if (strcmp(t, "NodeResourcesFit") == 0) s = fit_score;
        else if (strcmp(t, "NodeResourcesBalancedAllocation") == 0) s = &step_balanced_allocation;
        else s = find_step(all_scores, ns, t);
        if (!s && strchr(t, '/')) {
            s = plugin_step("scores", t, 1, resolve, resolve_data, err, errlen);
            if (!s) {
                free(buf);
                return -1;
            }
        }
        if (!s) {
            snprintf(err, errlen, "scores: no score step named \"%s\"", t);
            free(buf);
            return -1;
        }
        if (w > 0 && p->n_scores == MAX_STEPS) {
            snprintf(err, errlen, "scores: at most %zu steps with a weight above 0",
                     (size_t)MAX_STEPS);
            free(buf);
            return -1;
        }
        if (w > 0) p->scores[p->n_scores++] = (weighted_step_t){s, w};
    }
    free(buf);
    return 0;
}

/* ---- a cycle -------------------------------------------------------------------------- */

static skiff_sched_node_t *const *cache_nodes(sched_cache_t *c)
{
    /* node_info_t starts with its skiff_sched_node_t */
    return (skiff_sched_node_t *const *)(void *)c->list;
}

void cycle_prepare(const sched_profile_t *prof, sched_cache_t *cache, pod_info_t *pod,
                   const cycle_opts_t *o, prepared_cycle_t *pc)
{
    memset(pc, 0, sizeof *pc);
    pc->prof = prof;
    pc->cy.pod = &pod->p;
    pc->cy.nodes = cache_nodes(cache);
    pc->cy.n_nodes = cache->n_nodes;
    pc->cy.n_pods_with_anti_affinity = cache->n_anti;
    pc->cy.n_pods_with_affinity = cache->n_aff;
    pc->cy.namespace_labels = o ? o->namespace_labels : NULL;
    pc->cy.namespace_data = o ? o->namespace_data : NULL;
    for (size_t i = 0; i < prof->n_filters; i++) {
        const skiff_sched_step_t *s = prof->filters[i];
        if (!s->pre_filter) continue;
        skiff_sched_reasons_t why = {0};
        int code = s->pre_filter(s->data, &pc->cy, &pc->state[i], &why);
        if (code == SKIFF_SCHED_SKIP) pc->skip[i] = 1;
        else if (code != SKIFF_SCHED_OK) {
            pc->rejected = code;
            pc->why = why;
            return;
        }
    }
}

int cycle_filter_node(prepared_cycle_t *pc, const skiff_sched_node_t *node,
                      skiff_sched_reasons_t *why)
{
    if (pc->rejected) {
        if (why) *why = pc->why;
        return pc->rejected;
    }
    for (size_t i = 0; i < pc->prof->n_filters; i++) {
        const skiff_sched_step_t *s = pc->prof->filters[i];
        if (pc->skip[i] || !s->filter) continue;
        int code = s->filter(s->data, &pc->cy, pc->state[i], node, why);
        if (code != SKIFF_SCHED_OK) return code;
    }
    return SKIFF_SCHED_OK;
}

void cycle_prepared_free(prepared_cycle_t *pc)
{
    for (size_t i = 0; i < pc->prof->n_filters; i++)
        if (pc->state[i] && pc->prof->filters[i]->free_state)
            pc->prof->filters[i]->free_state(pc->state[i]);
    memset(pc->state, 0, sizeof pc->state);
}

/* kube-scheduler's numFeasibleNodesToFind: all nodes below 100; else a
 * percentage that falls from 50% as the cluster grows (5% at the least),
 * and never fewer than 100. */
static size_t nodes_to_find(size_t n, int pct)
{
    if (n < 100 || pct >= 100) return n;
    long p = pct;
    if (p <= 0) {
        p = 50 - (long)n / 125;
        if (p < 5) p = 5;
    }
    size_t k = n * (size_t)p / 100;
    return k < 100 ? 100 : k;
}

/* Filters ni as kube-scheduler's RunFilterPluginsWithNominatedPods does:
 * pods nominated to ni with at least pod's priority count as placed. */
static int filter_with_nominated(prepared_cycle_t *pc, const cycle_opts_t *o, node_info_t *ni,
                                 pod_info_t *pod, skiff_sched_reasons_t *why)
{
    pod_info_t *add[16];
    size_t n = 0;
    for (pod_info_t *q = o ? o->nominated : NULL; q && n < 16; q = q->nnext)
        if (q != pod && q->nominated && q->p.priority >= pod->p.priority &&
            strcmp(q->nominated, ni->name) == 0)
            add[n++] = q;
    if (!n) return cycle_filter_node(pc, &ni->n, why);
    node_info_t *c = node_info_copy_with(ni, add, n);
    int code = c ? cycle_filter_node(pc, &c->n, why) : cycle_filter_node(pc, &ni->n, why);
    node_info_copy_free(c);
    return code;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

void cycle_run(const sched_profile_t *prof, sched_cache_t *cache, pod_info_t *pod,
               const cycle_opts_t *o, cycle_result_t *res)
{
    memset(res, 0, sizeof *res);
    size_t n = cache->n_nodes;
    if (n == 0) return;
    prepared_cycle_t pc;
    cycle_prepare(prof, cache, pod, o, &pc);
    if (pc.rejected) {
        snprintf(res->prefilter_msg, sizeof res->prefilter_msg, "%s",
                 pc.why.n ? pc.why.text[0] : "");
        res->verdicts = calloc(n, sizeof *res->verdicts);
        for (size_t i = 0; res->verdicts && i < n; i++)
            res->verdicts[i] = (node_verdict_t){pc.rejected, pc.why};
        res->n_evaluated = n;
        cycle_prepared_free(&pc);
        return;
    }
    size_t want = nodes_to_find(n, o ? o->percentage_of_nodes_to_score : 0);
    node_info_t **feasible = malloc(want * sizeof *feasible);
    if (!feasible) {
        cycle_prepared_free(&pc);
        return;
    }
    size_t start = o && o->next_start ? *o->next_start % n : 0, evaluated = 0, nf = 0;
    /* the filters read a node's view once per cycle, and with thousands
     * of nodes it is seldom in the CPU's cache: bring in the node four
     * ahead while one is filtered */
    size_t at = start, ahead = (start + 4) % n;
    for (; evaluated < n && nf < want; evaluated++) {
        node_info_t *ni = cache->list[at];
        const char *next = (const char *)&cache->list[ahead]->n;
        for (size_t l = 0; l < sizeof(skiff_sched_node_t); l += 64) __builtin_prefetch(next + l);
        if (++at == n) at = 0;
        if (++ahead == n) ahead = 0;
        skiff_sched_reasons_t why;
        why.n = 0;
        if (filter_with_nominated(&pc, o, ni, pod, &why) == SKIFF_SCHED_OK) feasible[nf++] = ni;
    }
    if (o && o->next_start) *o->next_start = (start + evaluated) % n;
    res->n_feasible = nf;
    res->n_evaluated = evaluated;
    if (nf == 0) {
        /* the rare path: evaluate again, keeping every node's reasons */
        res->verdicts = calloc(n, sizeof *res->verdicts);
        for (size_t i = 0; res->verdicts && i < n; i++)
            res->verdicts[i].code =
                filter_with_nominated(&pc, o, cache->list[i], pod, &res->verdicts[i].why);
        free(feasible);
        cycle_prepared_free(&pc);
        return;
    }
    if (nf == 1 || prof->n_scores == 0) {
        res->chosen = feasible[nf == 1 ? 0 : (o && o->rng ? next_rand(o->rng) % nf : 0)];
        free(feasible);
        cycle_prepared_free(&pc);
        return;
    }
    int64_t *total = calloc(nf, sizeof *total), *scores = malloc(nf * sizeof *scores);
    if (!total || !scores) {
        res->chosen = feasible[0];
        goto out;
    }
    for (size_t k = 0; k < prof->n_scores; k++) {
        const skiff_sched_step_t *s = prof->scores[k].step;
        /* a step both filtering and scoring keeps one state for the cycle */
        void *own = NULL, **state = &own;
        for (size_t i = 0; i < prof->n_filters; i++)
            if (prof->filters[i] == s) state = &pc.state[i];
        if (s->pre_score && s->pre_score(s->data, &pc.cy, state) == SKIFF_SCHED_SKIP) {
            if (own && s->free_state) s->free_state(own);
            continue;
        }
        for (size_t i = 0; i < nf; i++) scores[i] = s->score(s->data, &pc.cy, *state, &feasible[i]->n);
        if (s->normalize)
            s->normalize(s->data, &pc.cy, *state, (const skiff_sched_node_t *const *)(void *)feasible,
                         scores, nf);
        for (size_t i = 0; i < nf; i++) total[i] += scores[i] * prof->scores[k].weight;
        if (own && s->free_state) s->free_state(own);
    }
    /* the best; ties broken at random, as kube-scheduler's selectHost */
    size_t best = 0, ties = 1;
    for (size_t i = 1; i < nf; i++) {
        if (total[i] > total[best]) {
            best = i;
            ties = 1;
        } else if (total[i] == total[best]) {
            ties++;
            if (o && o->rng && next_rand(o->rng) % ties == 0) best = i;
        }
    }
    res->chosen = feasible[best];
out:
    free(total);
    free(scores);
    free(feasible);
    cycle_prepared_free(&pc);
}

void cycle_result_free(cycle_result_t *res)
{
    free(res->verdicts);
    res->verdicts = NULL;
}

/* ---- the message ------------------------------------------------------------------------ */

typedef struct reason_count {
    const char *text;
    size_t n;
} reason_count_t;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *histogram(const node_verdict_t *v, size_t n)
{
    reason_count_t *rc = calloc(n * SKIFF_SCHED_MAX_REASONS + 1, sizeof *rc);
    size_t nr = 0;
    if (!rc) return NULL;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < v[i].why.n; j++) {
            size_t k = 0;
            while (k < nr && strcmp(rc[k].text, v[i].why.text[j]) != 0) k++;
            if (k == nr) rc[nr++] = (reason_count_t){v[i].why.text[j], 0};
            rc[k].n++;
        }
    /* "N reason" strings sorted as strings, as kube-scheduler sorts them */
    char **parts = calloc(nr + 1, sizeof *parts);
    size_t len = 1;
    for (size_t k = 0; parts && k < nr; k++) {
        size_t l = strlen(rc[k].text) + 24;
        parts[k] = malloc(l);
        if (parts[k]) snprintf(parts[k], l, "%zu %s", rc[k].n, rc[k].text);
        else parts[k] = strdup("");
        len += strlen(parts[k]) + 2;
    }
    char *out = parts ? malloc(len) : NULL;
    if (out) {
        out[0] = '\0';
        qsort(parts, nr, sizeof *parts, cmp_str);
        for (size_t k = 0; k < nr; k++) {
            if (k) strcat(out, ", ");
            strcat(out, parts[k]);
        }
    }
    for (size_t k = 0; parts && k < nr; k++) free(parts[k]);
    free(parts);
    free(rc);
    return out;
}

char *fit_error_message(size_t n_nodes, const char *prefilter_msg,
                        const node_verdict_t *verdicts, size_t n, const char *postfilter)
{
    char *hist = NULL;
    if (!prefilter_msg || !*prefilter_msg) hist = histogram(verdicts, verdicts ? n : 0);
    size_t len = 64 + (hist ? strlen(hist) : 0) + (prefilter_msg ? strlen(prefilter_msg) : 0) +
                 (postfilter ? strlen(postfilter) : 0);
    char *out = malloc(len);
    if (!out) {
        free(hist);
        return NULL;
    }
    int w = snprintf(out, len, "0/%zu nodes are available:", n_nodes);
    if (prefilter_msg && *prefilter_msg) w += snprintf(out + w, len - (size_t)w, " %s.", prefilter_msg);
    else if (hist && *hist) w += snprintf(out + w, len - (size_t)w, " %s.", hist);
    /* kube-scheduler adds " %v." after the preemption message, which ends
     * with its own period: "... for incoming pod.." is what users see */
    if (postfilter && *postfilter) snprintf(out + w, len - (size_t)w, " %s.", postfilter);
    free(hist);
    return out;
}
