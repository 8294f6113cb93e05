/* core/admission/quota_usage.c - ResourceQuota accounting, following
 * Kubernetes' quota evaluators: pods count while not finished (phase
 * Succeeded or Failed), with compute usage = the sum of the containers'
 * requests (or limits), at least the largest init container's, plus
 * overhead; services count, and so do their LoadBalancer types and node
 * ports; claims count with their requested storage; every other resource
 * counts with `count/<resource>.<group>`. */
#define _GNU_SOURCE
#include "admission/quota_usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "admission/quantity.h"
#include "util/strbuf.h"

static const char *const core_counted[] = {"pods", "services", "configmaps", "secrets",
                                           "persistentvolumeclaims", "replicationcontrollers",
                                           "resourcequotas", NULL};

/* compute keys of pods, with what they measure */
static const struct {
    const char *key;
    const char *which;    /* "requests" or "limits" */
    const char *resource; /* "cpu", "memory", "ephemeral-storage" */
} pod_compute[] = {
    {"cpu", "requests", "cpu"},
    {"memory", "requests", "memory"},
    {"ephemeral-storage", "requests", "ephemeral-storage"},
    {"requests.cpu", "requests", "cpu"},
    {"requests.memory", "requests", "memory"},
    {"requests.ephemeral-storage", "requests", "ephemeral-storage"},
    {"limits.cpu", "limits", "cpu"},
    {"limits.memory", "limits", "memory"},
    {"limits.ephemeral-storage", "limits", "ephemeral-storage"},
};
#define N_POD_COMPUTE (sizeof pod_compute / sizeof *pod_compute)

static void set2(char *g, size_t gl, const char *gv, char *r, size_t rl, const char *rv)
{
    snprintf(g, gl, "%s", gv);
    snprintf(r, rl, "%s", rv);
}

int quota_key_resource(const char *key, char *group, size_t glen, char *resource, size_t rlen)
{
    if (strncmp(key, "count/", 6) == 0) {
        const char *rest = key + 6;
        const char *dot = strchr(rest, '.');
        if (!*rest) return -1;
        if (dot) {
            snprintf(resource, rlen, "%.*s", (int)(dot - rest), rest);
            snprintf(group, glen, "%s", dot + 1);
        } else {
            set2(group, glen, "", resource, rlen, rest);
        }
        return 0;
    }
    for (size_t i = 0; core_counted[i]; i++)
        if (strcmp(key, core_counted[i]) == 0) {
            set2(group, glen, "", resource, rlen, key);
            return 0;
        }
    for (size_t i = 0; i < N_POD_COMPUTE; i++)
        if (strcmp(key, pod_compute[i].key) == 0) {
            set2(group, glen, "", resource, rlen, "pods");
            return 0;
        }
    if (!strcmp(key, "services.loadbalancers") || !strcmp(key, "services.nodeports")) {
        set2(group, glen, "", resource, rlen, "services");
        return 0;
    }
    if (!strcmp(key, "requests.storage") ||
        strstr(key, ".storageclass.storage.k8s.io/requests.storage") ||
        strstr(key, ".storageclass.storage.k8s.io/persistentvolumeclaims")) {
        set2(group, glen, "", resource, rlen, "persistentvolumeclaims");
        return 0;
    }
    return -1;
}

static int64_t q(const json_t *v)
{
    int64_t m = 0;
    if (v) skiff_quantity_milli_json(v, &m);
    return m;
}

/* a container's amount: the named list, or for requests the limit when
 * no request is given (pod defaulting makes them equal) */
static int64_t container_amount(const json_t *c, const char *which, const char *res)
{
    const json_t *r = json_object_get(c, "resources");
    const json_t *v = json_object_get(json_object_get(r, which), res);
    if (!v && strcmp(which, "requests") == 0) v = json_object_get(json_object_get(r, "limits"), res);
    return q(v);
}

static int64_t pod_amount(const json_t *pod, const char *which, const char *res)
{
    const json_t *spec = json_object_get(pod, "spec");
    int64_t sum = 0, init_max = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c) sum += container_amount(c, which, res);
    json_array_foreach(json_object_get(spec, "initContainers"), i, c)
    {
        int64_t v = container_amount(c, which, res);
        if (v > init_max) init_max = v;
    }
    if (init_max > sum) sum = init_max;
    if (sum > 0) sum += q(json_object_get(json_object_get(spec, "overhead"), res));
    return sum;
}

static int pod_finished(const json_t *pod)
{
    const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

int64_t quota_object_usage(const char *key, const char *group, const char *resource,
                           const json_t *obj)
{
    char kg[128], kr[128];
    if (quota_key_resource(key, kg, sizeof kg, kr, sizeof kr) != 0) return 0;
    if (strcmp(kg, group) != 0 || strcmp(kr, resource) != 0) return 0;
    int is_pod = !group[0] && !strcmp(resource, "pods");
    if (is_pod && pod_finished(obj)) return 0;
    if (!strncmp(key, "count/", 6) || !strcmp(key, resource)) return 1000;
    if (is_pod) {
        for (size_t i = 0; i < N_POD_COMPUTE; i++)
            if (!strcmp(key, pod_compute[i].key))
                return pod_amount(obj, pod_compute[i].which, pod_compute[i].resource);
        return 0;
    }
    const json_t *spec = json_object_get(obj, "spec");
    if (!strcmp(resource, "services")) {
        const char *type = json_string_value(json_object_get(spec, "type"));
        if (!strcmp(key, "services.loadbalancers"))
            return type && !strcmp(type, "LoadBalancer") ? 1000 : 0;
        if (!strcmp(key, "services.nodeports")) {
            if (!type || (strcmp(type, "NodePort") && strcmp(type, "LoadBalancer"))) return 0;
            return (int64_t)json_array_size(json_object_get(spec, "ports")) * 1000;
        }
        return 0;
    }
    if (!strcmp(resource, "persistentvolumeclaims")) {
        const json_t *storage =
            json_object_get(json_object_get(json_object_get(spec, "resources"), "requests"), "storage");
        const char *sc_suffix = strstr(key, ".storageclass.storage.k8s.io/");
        if (sc_suffix) {
            const char *cls = json_string_value(json_object_get(spec, "storageClassName"));
            size_t n = (size_t)(sc_suffix - key);
            if (!cls || strlen(cls) != n || strncmp(cls, key, n) != 0) return 0;
            return strstr(sc_suffix, "persistentvolumeclaims") ? 1000 : q(storage);
        }
        if (!strcmp(key, "requests.storage")) return q(storage);
    }
    return 0;
}

static int best_effort(const json_t *pod)
{
    const json_t *spec = json_object_get(pod, "spec");
    static const char *const lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
        {
            const json_t *r = json_object_get(c, "resources");
            if (json_object_size(json_object_get(r, "requests")) ||
                json_object_size(json_object_get(r, "limits")))
                return 0;
        }
    }
    return 1;
}

int quota_scopes_match(const json_t *quota, const char *group, const char *resource,
                       const json_t *obj)
{
    const json_t *scopes = json_object_get(json_object_get(quota, "spec"), "scopes");
    if (json_array_size(scopes) == 0) return 1;
    if (group[0] || strcmp(resource, "pods") != 0) return 0;
    const json_t *ads = json_object_get(json_object_get(obj, "spec"), "activeDeadlineSeconds");
    size_t i;
    json_t *s;
    json_array_foreach((json_t *)scopes, i, s)
    {
        const char *scope = json_string_value(s);
        if (!scope) continue;
        int ok = 1;
        if (!strcmp(scope, "Terminating")) ok = json_is_integer(ads);
        else if (!strcmp(scope, "NotTerminating")) ok = !json_is_integer(ads);
        else if (!strcmp(scope, "BestEffort")) ok = best_effort(obj);
        else if (!strcmp(scope, "NotBestEffort")) ok = !best_effort(obj);
        if (!ok) return 0;
    }
    return 1;
}

/* Kubernetes' validationSet: quotas on these make every container say them */
static const char *const must_specify[] = {"cpu", "limits.cpu", "limits.memory", "memory",
                                           "requests.cpu", "requests.memory", NULL};

/* the compute keys a container states */
static int container_states(const json_t *c, const char *key)
{
    const json_t *r = json_object_get(c, "resources");
    const json_t *req = json_object_get(r, "requests"), *lim = json_object_get(r, "limits");
    if (!strcmp(key, "cpu") || !strcmp(key, "requests.cpu")) return json_object_get(req, "cpu") != NULL;
    if (!strcmp(key, "memory") || !strcmp(key, "requests.memory"))
        return json_object_get(req, "memory") != NULL;
    if (!strcmp(key, "limits.cpu")) return json_object_get(lim, "cpu") != NULL;
    if (!strcmp(key, "limits.memory")) return json_object_get(lim, "memory") != NULL;
    return 1;
}

char *quota_pod_constraints(const json_t *hard, const json_t *pod)
{
    strbuf_t out = {0};
    const json_t *spec = json_object_get(pod, "spec");
    for (size_t k = 0; must_specify[k]; k++) {
        if (!json_object_get(hard, must_specify[k])) continue;
        strbuf_t names = {0};
        static const char *const lists[] = {"containers", "initContainers"};
        /* container names sorted, as Kubernetes lists a set */
        const char *missing[128];
        size_t n = 0;
        for (int l = 0; l < 2; l++) {
            size_t i;
            json_t *c;
            json_array_foreach(json_object_get(spec, lists[l]), i, c)
            {
                if (container_states(c, must_specify[k]) || n == 128) continue;
                const char *name = json_string_value(json_object_get(c, "name"));
                size_t j = n++;
                while (j > 0 && strcmp(missing[j - 1], name ? name : "") > 0) {
                    missing[j] = missing[j - 1];
                    j--;
                }
                missing[j] = name ? name : "";
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (i && !strcmp(missing[i], missing[i - 1])) continue;
            if (names.len) strbuf_add(&names, ",");
            strbuf_add(&names, missing[i]);
        }
        if (names.len) {
            if (out.len) strbuf_add(&out, "; ");
            strbuf_add(&out, "must specify ");
            strbuf_add(&out, must_specify[k]);
            strbuf_add(&out, " for: ");
            strbuf_add(&out, names.p);
        }
        strbuf_free(&names);
    }
    if (out.failed) {
        strbuf_free(&out);
        return NULL;
    }
    return out.p;
}

void quota_format(const char *key, int64_t milli, char *buf, size_t len)
{
    if (strstr(key, "cpu")) {
        quantity_format(milli, 1, buf, len);
    } else if (strstr(key, "memory") || strstr(key, "storage")) {
        quantity_format(milli, 0, buf, len);
    } else if (milli % 1000 == 0) {
        snprintf(buf, len, "%lld", (long long)(milli / 1000));
    } else {
        snprintf(buf, len, "%lldm", (long long)milli);
    }
}
