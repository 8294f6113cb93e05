/* plugins/controllers/deployment/rollout.c - rollout arithmetic (see
 * rollout.h). It decides numbers only; deployment.c turns them into
 * writes. */
#include "rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int dep_int_or_percent(const json_t *v, int total, int round_up, int *out)
{
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *out = (int)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    size_t len = s ? strlen(s) : 0;
    if (len < 2 || s[len - 1] != '%') return -1;
    char *end;
    long pct = strtol(s, &end, 10);
    if (end != s + len - 1) return -1;
    double scaled = (double)pct * (double)total / 100.0;
    *out = (int)(round_up ? ceil(scaled) : floor(scaled));
    return 0;
}

void dep_fenceposts(const json_t *max_surge, const json_t *max_unavailable, int desired,
                    int *surge, int *unavailable)
{
    if (dep_int_or_percent(max_surge, desired, 1, surge) != 0) *surge = 0;
    if (dep_int_or_percent(max_unavailable, desired, 0, unavailable) != 0) *unavailable = 0;
    /* both zero would never make progress: Kubernetes allows one down */
    if (*surge == 0 && *unavailable == 0) *unavailable = 1;
}

int dep_max_surge(int rolling, const json_t *max_surge, const json_t *max_unavailable,
                  int replicas)
{
    if (!rolling) return 0;
    int s, u;
    dep_fenceposts(max_surge, max_unavailable, replicas, &s, &u);
    return s;
}

int dep_max_unavailable(int rolling, const json_t *max_surge, const json_t *max_unavailable,
                        int replicas)
{
    if (!rolling || replicas == 0) return 0;
    int s, u;
    dep_fenceposts(max_surge, max_unavailable, replicas, &s, &u);
    return u > replicas ? replicas : u;
}

int dep_new_rs_replicas(int rolling, int replicas, int max_surge, int total, int new_spec)
{
    if (!rolling) return replicas;
    int max_total = replicas + max_surge;
    if (total >= max_total) return new_spec; /* no room to surge */
    int up = max_total - total;
    if (up > replicas - new_spec) up = replicas - new_spec;
    if (up < 0) up = 0;
    return new_spec + up;
}

int dep_cleanup_unhealthy(dep_rs_t *old, size_t n, int max_cleanup)
{
    int total = 0;
    for (size_t i = 0; i < n && total < max_cleanup; i++) {
        if (old[i].spec == 0 || old[i].spec <= old[i].available) continue;
        int down = old[i].spec - old[i].available;
        if (down > max_cleanup - total) down = max_cleanup - total;
        old[i].spec -= down;
        total += down;
    }
    return total;
}

int dep_scale_down_old(dep_rs_t *old, size_t n, int available_all, int min_available)
{
    if (available_all <= min_available) return 0;
    int budget = available_all - min_available, total = 0;
    for (size_t i = 0; i < n && total < budget; i++) {
        if (old[i].spec == 0) continue;
        int down = old[i].spec < budget - total ? old[i].spec : budget - total;
        old[i].spec -= down;
        total += down;
    }
    return total;
}

/* larger first; on a tie newer first (growing) or older first (shrinking) */
static int by_size_newer(const void *x, const void *y)
{
    const dep_rs_t *a = x, *b = y;
    if (a->spec != b->spec) return a->spec > b->spec ? -1 : 1;
    if (a->created_ms != b->created_ms) return a->created_ms > b->created_ms ? -1 : 1;
    return strcmp(b->name ? b->name : "", a->name ? a->name : "");
}

static int by_size_older(const void *x, const void *y)
{
    const dep_rs_t *a = x, *b = y;
    if (a->spec != b->spec) return a->spec > b->spec ? -1 : 1;
    if (a->created_ms != b->created_ms) return a->created_ms < b->created_ms ? -1 : 1;
    return strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

/* How many replicas this ReplicaSet gains (or loses) for its share. */
static int fraction(const dep_rs_t *rs, int replicas, int max_surge, int status_replicas)
{
    if (replicas == 0) return -rs->spec;
    int target = replicas + max_surge;
    int annotated = rs->max_replicas >= 0 ? rs->max_replicas : status_replicas;
    if (annotated <= 0) return 0;
    double size = (double)rs->spec * (double)target / (double)annotated;
    return (int)round(size) - rs->spec;
}

void dep_proportional_scale(dep_rs_t *rs, size_t n, int replicas, int max_surge,
                            int status_replicas)
{
    if (n == 0) return;
    int current = 0;
    for (size_t i = 0; i < n; i++) current += rs[i].spec;
    int allowed = replicas > 0 ? replicas + max_surge : 0;
    int to_add = allowed - current;
    qsort(rs, n, sizeof *rs, to_add > 0 ? by_size_newer : by_size_older);
    int added = 0;
    int *sizes = calloc(n, sizeof *sizes);
    if (!sizes) return;
    for (size_t i = 0; i < n; i++) {
        int p = 0;
        if (to_add != 0 && rs[i].spec != 0 && to_add != added) {
            int f = fraction(&rs[i], replicas, max_surge, status_replicas);
            int left = to_add - added;
            p = to_add > 0 ? (f < left ? f : left) : (f > left ? f : left);
        }
        sizes[i] = rs[i].spec + p;
        added += p;
    }
    /* what rounding left over goes to the largest */
    sizes[0] += to_add - added;
    if (sizes[0] < 0) sizes[0] = 0;
    for (size_t i = 0; i < n; i++) rs[i].spec = sizes[i];
    free(sizes);
}
