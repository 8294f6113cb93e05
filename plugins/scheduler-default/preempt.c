/* plugins/scheduler-default/preempt.c - choosing preemption victims: for
 * a pod that fits nowhere, the node where evicting the fewest and
 * lowest-priority pods makes it fit, as kube-scheduler's
 * DefaultPreemption chooses. Deleting the victims is the caller's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

void preempt_result_free(preempt_result_t *r)
{
    free(r->victims);
    memset(r, 0, sizeof *r);
}

static int more_important(const void *a, const void *b)
{
    const pod_info_t *x = *(pod_info_t *const *)a, *y = *(pod_info_t *const *)b;
    if (x->p.priority != y->p.priority) return x->p.priority > y->p.priority ? -1 : 1;
    /* older first: they have run longer */
    return x->created_ms < y->created_ms ? -1 : x->created_ms > y->created_ms;
}

/* Victims on one node: every lower-priority pod removed, then each put
 * back (most important first) while the pod still fits. Returns the
 * SKIFF_SCHED_* code and, when OK, the victims (malloc'd). */
static int victims_on_node(prepared_cycle_t *pc, node_info_t *ni, const pod_info_t *pod,
                           pod_info_t ***out, size_t *n_out, skiff_sched_reasons_t *why)
{
    pod_info_t **cand = malloc((ni->n.n_pods + 1) * sizeof *cand);
    size_t nc = 0;
    if (!cand) return SKIFF_SCHED_UNRESOLVABLE;
    for (size_t i = 0; i < ni->n.n_pods; i++) {
        pod_info_t *p = ni->pods[i];
        if (p != pod && p->p.priority < pod->p.priority && !p->p.terminating) cand[nc++] = p;
    }
    if (!nc) {
        free(cand);
        skiff_sched_reason(why, "No preemption victims found for incoming pod");
        return SKIFF_SCHED_UNRESOLVABLE;
    }
    node_info_t *copy = node_info_copy_without(ni, cand, nc);
    int code = copy ? cycle_filter_node(pc, &copy->n, why) : SKIFF_SCHED_UNRESOLVABLE;
    node_info_copy_free(copy);
    if (code != SKIFF_SCHED_OK) {
        free(cand);
        return code;
    }
    qsort(cand, nc, sizeof *cand, more_important);
    /* reprieve: try to keep each candidate, most important first */
    pod_info_t **victims = malloc(nc * sizeof *victims);
    size_t nv = 0;
    if (!victims) {
        free(cand);
        return SKIFF_SCHED_UNRESOLVABLE;
    }
    for (size_t i = 0; i < nc; i++) {
        /* removed so far: the later candidates plus the victims chosen */
        size_t nskip = 0;
        pod_info_t **skip = malloc(nc * sizeof *skip);
        if (!skip) break;
        for (size_t j = i + 1; j < nc; j++) skip[nskip++] = cand[j];
        for (size_t j = 0; j < nv; j++) skip[nskip++] = victims[j];
        node_info_t *c = node_info_copy_without(ni, skip, nskip);
        skiff_sched_reasons_t w = {0};
        int fits = c && cycle_filter_node(pc, &c->n, &w) == SKIFF_SCHED_OK;
        node_info_copy_free(c);
        free(skip);
        if (!fits) victims[nv++] = cand[i];
    }
    free(cand);
    *out = victims;
    *n_out = nv;
    return SKIFF_SCHED_OK;
}

int preempt_find(const sched_profile_t *prof, sched_cache_t *cache, pod_info_t *pod,
                 const cycle_opts_t *o, const cycle_result_t *res, preempt_result_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = cache->n_nodes;
    if (pod->preempt_never) {
        snprintf(out->message, sizeof out->message,
                 "preemption: not eligible due to preemptionPolicy=Never.");
        return -1;
    }
    /* a pod already waiting for its victims to go does not preempt again */
    node_info_t *nom = pod->nominated ? cache_node_get(cache, pod->nominated) : NULL;
    for (size_t i = 0; nom && i < nom->n.n_pods; i++)
        if (nom->pods[i]->p.terminating && nom->pods[i]->p.priority < pod->p.priority) {
            snprintf(out->message, sizeof out->message,
                     "preemption: not eligible due to a terminating pod on the nominated node.");
            return -1;
        }
    if (!res->verdicts || n == 0) return -1;
    node_verdict_t *st = calloc(n, sizeof *st);
    if (!st) return -1;
    prepared_cycle_t pc;
    cycle_prepare(prof, cache, pod, o, &pc);
    size_t best = n;
    pod_info_t **best_v = NULL;
    size_t best_nv = 0;
    int64_t best_high = 0, best_sum = 0;
    for (size_t i = 0; i < n; i++) {
        node_info_t *ni = cache->list[i];
        if (res->verdicts[i].code != SKIFF_SCHED_UNSCHEDULABLE) {
            st[i].code = SKIFF_SCHED_UNRESOLVABLE;
            skiff_sched_reason(&st[i].why, "Preemption is not helpful for scheduling");
            continue;
        }
        pod_info_t **v = NULL;
        size_t nv = 0;
        st[i].code = victims_on_node(&pc, ni, pod, &v, &nv, &st[i].why);
        if (st[i].code != SKIFF_SCHED_OK) continue;
        int64_t high = INT64_MIN, sum = 0;
        for (size_t j = 0; j < nv; j++) {
            if (v[j]->p.priority > high) high = v[j]->p.priority;
            sum += v[j]->p.priority;
        }
        if (!nv) high = INT64_MIN;
        /* lowest highest-priority victim, then lowest sum, then fewest */
        int better = best == n || high < best_high || (high == best_high && sum < best_sum) ||
                     (high == best_high && sum == best_sum && nv < best_nv);
        if (better) {
            free(best_v);
            best = i;
            best_v = v;
            best_nv = nv;
            best_high = high;
            best_sum = sum;
        } else {
            free(v);
        }
    }
    cycle_prepared_free(&pc);
    if (best == n) {
        char *m = fit_error_message(n, NULL, st, n, NULL);
        snprintf(out->message, sizeof out->message, "preemption: %s", m ? m : "");
        free(m);
        free(st);
        return -1;
    }
    free(st);
    out->node = cache->list[best];
    out->victims = best_v;
    out->n_victims = best_nv;
    return 0;
}
