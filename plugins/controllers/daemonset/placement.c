/* plugins/controllers/daemonset/placement.c - node eligibility for
 * DaemonSet pods (see placement.h). Matches Kubernetes' DaemonSet rules:
 * nodeSelector and required node affinity decide where a pod may go at
 * all; an untolerated NoSchedule taint keeps new pods off a node; an
 * untolerated NoExecute taint also removes pods already there. */
#include "placement.h"

#include <stdlib.h>
#include <string.h>

static json_t *obj_child(json_t *parent, const char *key)
{
    json_t *c = json_object_get(parent, key);
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(parent, key, c);
    }
    return c;
}

static int streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

void ds_add_daemon_tolerations(json_t *spec)
{
    static const char *const add[][2] = {
        {"node.kubernetes.io/not-ready", "NoExecute"},
        {"node.kubernetes.io/unreachable", "NoExecute"},
        {"node.kubernetes.io/disk-pressure", "NoSchedule"},
        {"node.kubernetes.io/memory-pressure", "NoSchedule"},
        {"node.kubernetes.io/pid-pressure", "NoSchedule"},
        {"node.kubernetes.io/unschedulable", "NoSchedule"},
        {"node.kubernetes.io/network-unavailable", "NoSchedule"},
    };
    json_t *tols = json_object_get(spec, "tolerations");
    if (!json_is_array(tols)) {
        tols = json_array();
        json_object_set_new(spec, "tolerations", tols);
    }
    int host_network = json_is_true(json_object_get(spec, "hostNetwork"));
    for (size_t k = 0; k < sizeof add / sizeof *add; k++) {
        if (k == 6 && !host_network) continue;
        /* AddOrUpdateTolerationInPodSpec: one with the same key and effect
         * is replaced */
        size_t i;
        json_t *t;
        int found = -1;
        json_array_foreach(tols, i, t)
        {
            if (streq(json_string_value(json_object_get(t, "key")), add[k][0]) &&
                streq(json_string_value(json_object_get(t, "effect")), add[k][1]))
                found = (int)i;
        }
        json_t *nt = json_pack("{s:s, s:s, s:s}", "key", add[k][0], "operator", "Exists", "effect",
                               add[k][1]);
        if (found >= 0) json_array_set_new(tols, (size_t)found, nt);
        else json_array_append_new(tols, nt);
    }
}

void ds_set_node_affinity(json_t *spec, const char *node)
{
    json_t *na = obj_child(obj_child(spec, "affinity"), "nodeAffinity");
    json_t *req = obj_child(na, "requiredDuringSchedulingIgnoredDuringExecution");
    json_object_set_new(req, "nodeSelectorTerms",
                        json_pack("[{s:[{s:s, s:s, s:[s]}]}]", "matchFields", "key",
                                  "metadata.name", "operator", "In", "values", node));
}

const char *ds_target_node(const json_t *pod)
{
    const json_t *spec = json_object_get(pod, "spec");
    const char *n = json_string_value(json_object_get(spec, "nodeName"));
    if (n && *n) return n;
    json_t *terms = json_object_get(
        json_object_get(json_object_get(json_object_get(spec, "affinity"), "nodeAffinity"),
                        "requiredDuringSchedulingIgnoredDuringExecution"),
        "nodeSelectorTerms");
    size_t i, j;
    json_t *term, *req;
    json_array_foreach(terms, i, term)
    {
        json_array_foreach(json_object_get(term, "matchFields"), j, req)
        {
            json_t *vals = json_object_get(req, "values");
            if (streq(json_string_value(json_object_get(req, "key")), "metadata.name") &&
                streq(json_string_value(json_object_get(req, "operator")), "In") &&
                json_array_size(vals) == 1)
                return json_string_value(json_array_get(vals, 0));
        }
    }
    return NULL;
}

static int in_values(const json_t *vals, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(vals, i, x)
        if (streq(json_string_value(x), v)) return 1;
    return 0;
}

/* One NodeSelectorRequirement against a value (NULL: key absent). */
static int requirement_matches(const json_t *req, const char *value)
{
    const char *op = json_string_value(json_object_get(req, "operator"));
    const json_t *vals = json_object_get(req, "values");
    if (streq(op, "In")) return value && in_values(vals, value);
    if (streq(op, "NotIn")) return !value || !in_values(vals, value);
    if (streq(op, "Exists")) return value != NULL;
    if (streq(op, "DoesNotExist")) return value == NULL;
    if (streq(op, "Gt") || streq(op, "Lt")) {
        const char *want = json_string_value(json_array_get(vals, 0));
        if (!value || !want || json_array_size(vals) != 1) return 0;
        char *e1, *e2;
        long long have = strtoll(value, &e1, 10), lim = strtoll(want, &e2, 10);
        if (*e1 || *e2 || e1 == value || e2 == want) return 0;
        return streq(op, "Gt") ? have > lim : have < lim;
    }
    return 0;
}

/* A NodeSelectorTerm: its requirements ANDed; an empty term matches no
 * node, as in Kubernetes. */
static int term_matches(const json_t *term, const json_t *node)
{
    const json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
    const char *name = json_string_value(json_object_get(json_object_get(node, "metadata"), "name"));
    const json_t *exprs = json_object_get(term, "matchExpressions");
    const json_t *fields = json_object_get(term, "matchFields");
    if (json_array_size(exprs) == 0 && json_array_size(fields) == 0) return 0;
    size_t i;
    json_t *req;
    json_array_foreach(exprs, i, req)
    {
        const char *key = json_string_value(json_object_get(req, "key"));
        if (!key || !requirement_matches(req, json_string_value(json_object_get(labels, key))))
            return 0;
    }
    json_array_foreach(fields, i, req)
    {
        const char *key = json_string_value(json_object_get(req, "key"));
        /* metadata.name is the one field node selectors may name */
        if (!streq(key, "metadata.name") || !requirement_matches(req, name)) return 0;
    }
    return 1;
}

int ds_node_fits(const json_t *spec, const json_t *node)
{
    const json_t *meta = json_object_get(node, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *want = json_string_value(json_object_get(spec, "nodeName"));
    if (want && *want && !streq(want, name)) return 0;
    const json_t *labels = json_object_get(meta, "labels");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(spec, "nodeSelector"), k, v)
    {
        if (!streq(json_string_value(json_object_get(labels, k)), json_string_value(v))) return 0;
    }
    const json_t *req = json_object_get(
        json_object_get(json_object_get(spec, "affinity"), "nodeAffinity"),
        "requiredDuringSchedulingIgnoredDuringExecution");
    if (!req) return 1;
    size_t i;
    json_t *term;
    json_array_foreach(json_object_get(req, "nodeSelectorTerms"), i, term)
        if (term_matches(term, node)) return 1;
    return 0;
}

static int tolerates(const json_t *tol, const json_t *taint)
{
    const char *te = json_string_value(json_object_get(tol, "effect"));
    const char *ae = json_string_value(json_object_get(taint, "effect"));
    if (te && *te && !streq(te, ae)) return 0;
    const char *tk = json_string_value(json_object_get(tol, "key"));
    const char *ak = json_string_value(json_object_get(taint, "key"));
    const char *op = json_string_value(json_object_get(tol, "operator"));
    if (tk && *tk && !streq(tk, ak)) return 0;
    if (streq(op, "Exists")) return 1;
    /* Equal (the default): an empty key only goes with Exists */
    if (!tk || !*tk) return 0;
    const char *tv = json_string_value(json_object_get(tol, "value"));
    const char *av = json_string_value(json_object_get(taint, "value"));
    return streq(tv ? tv : "", av ? av : "");
}

json_t *ds_untolerated_taint(const json_t *taints, const json_t *tolerations, int noexecute_only)
{
    size_t i, j;
    json_t *taint, *tol;
    json_array_foreach(taints, i, taint)
    {
        const char *eff = json_string_value(json_object_get(taint, "effect"));
        if (!streq(eff, "NoExecute") && (noexecute_only || !streq(eff, "NoSchedule"))) continue;
        int ok = 0;
        json_array_foreach(tolerations, j, tol)
            if (tolerates(tol, taint)) {
                ok = 1;
                break;
            }
        if (!ok) return taint;
    }
    return NULL;
}

void ds_node_should_run(const json_t *spec, const json_t *node, int *should_run,
                        int *should_continue)
{
    *should_run = *should_continue = 0;
    if (!ds_node_fits(spec, node)) return;
    const json_t *taints = json_object_get(json_object_get(node, "spec"), "taints");
    const json_t *tols = json_object_get(spec, "tolerations");
    if (ds_untolerated_taint(taints, tols, 0)) {
        *should_continue = ds_untolerated_taint(taints, tols, 1) == NULL;
        return;
    }
    *should_run = *should_continue = 1;
}
