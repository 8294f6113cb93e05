/* plugins/controllers/replicaset/rank.c - the deletion order of a
 * ReplicaSet's pods on scale-down (see rank.h). It only compares pods; it
 * never decides how many to delete. */
#include "rank.h"

#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

static const char *str2(const json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

static int assigned(const json_t *pod)
{
    const char *n = str2(pod, "spec", "nodeName");
    return n && *n;
}

/* Pending < Unknown < Running (anything else counts as Running) */
static int phase_ordinal(const json_t *pod)
{
    const char *p = str2(pod, "status", "phase");
    if (!p || strcmp(p, "Pending") == 0) return 0;
    if (strcmp(p, "Unknown") == 0) return 1;
    return 2;
}

static int64_t deletion_cost(const json_t *pod)
{
    json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
    const char *v = json_string_value(json_object_get(ann, "controller.kubernetes.io/pod-deletion-cost"));
    if (!v || !*v) return 0;
    char *end;
    long long c = strtoll(v, &end, 10);
    return *end ? 0 : (int64_t)c;
}

/* When the pod became Ready (ms), or -1. */
static int64_t ready_since(const json_t *pod)
{
    json_t *c = skiff_condition_get(pod, "Ready");
    return skiff_time_parse(json_string_value(json_object_get(c, "lastTransitionTime")));
}

static int64_t max_restarts(const json_t *pod)
{
    int64_t m = 0;
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, cs)
    {
        int64_t r = json_integer_value(json_object_get(cs, "restartCount"));
        if (r > m) m = r;
    }
    return m;
}

static int64_t created(const json_t *pod)
{
    return skiff_time_parse(str2(pod, "metadata", "creationTimestamp"));
}

#define ORDER(cond_a_first, cond_b_first)                                                      \
    do {                                                                                       \
        if (cond_a_first) return -1;                                                           \
        if (cond_b_first) return 1;                                                            \
    } while (0)

int rs_delete_order(const json_t *a, int same_node_a, const json_t *b, int same_node_b)
{
    int aa = assigned(a), ab = assigned(b);
    ORDER(!aa && ab, aa && !ab);
    int pa = phase_ordinal(a), pb = phase_ordinal(b);
    ORDER(pa < pb, pa > pb);
    int ra = skiff_pod_is_ready(a), rb = skiff_pod_is_ready(b);
    ORDER(!ra && rb, ra && !rb);
    int64_t ca = deletion_cost(a), cb = deletion_cost(b);
    ORDER(ca < cb, ca > cb);
    ORDER(same_node_a > same_node_b, same_node_a < same_node_b);
    if (ra && rb) {
        /* ready for less time first; an unknown time counts as newest */
        int64_t ta = ready_since(a), tb = ready_since(b);
        if (ta != tb) ORDER(ta < 0 || (tb >= 0 && ta > tb), tb < 0 || ta < tb);
    }
    int64_t xa = max_restarts(a), xb = max_restarts(b);
    ORDER(xa > xb, xa < xb);
    /* newer first; no creation time counts as newest */
    int64_t ta = created(a), tb = created(b);
    if (ta != tb) ORDER(ta < 0 || (tb >= 0 && ta > tb), tb < 0 || ta < tb);
    return 0;
}

typedef struct ranked {
    json_t *pod;
    int same_node;
    size_t index; /* stable tie-break */
} ranked_t;

static int cmp_ranked(const void *x, const void *y)
{
    const ranked_t *a = x, *b = y;
    int c = rs_delete_order(a->pod, a->same_node, b->pod, b->same_node);
    if (c) return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

void rs_rank_for_deletion(json_t **pods, size_t n, const json_t *related)
{
    if (n < 2) return;
    ranked_t *r = calloc(n, sizeof *r);
    if (!r) return;
    for (size_t i = 0; i < n; i++) {
        r[i].pod = pods[i];
        r[i].index = i;
        const char *node = str2(pods[i], "spec", "nodeName");
        if (!node || !*node) continue;
        size_t m = related ? json_array_size(related) : n;
        for (size_t j = 0; j < m; j++) {
            const json_t *p = related ? json_array_get(related, j) : pods[j];
            const char *other = str2(p, "spec", "nodeName");
            if (other && strcmp(node, other) == 0) r[i].same_node++;
        }
    }
    qsort(r, n, sizeof *r, cmp_ranked);
    for (size_t i = 0; i < n; i++) pods[i] = r[i].pod;
    free(r);
}
