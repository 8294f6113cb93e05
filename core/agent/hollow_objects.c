/* core/agent/hollow_objects.c - Node, Lease and pod status objects as a
 * kubelet writes them (field names and condition reasons as in
 * k8s.io/api core/v1 and the kubelet's status manager). */
#include "agent/hollow_objects.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <skiff/objects.h>

#include "util/duration.h"
#include "util/hash.h"

static void set_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static void fmt_time(int64_t ms, char *buf, size_t len)
{
    skiff_time_format(ms, buf, len);
}

void hollow_micro_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000) * 1000);
}

/* Splits s at commas; calls fn on each non-empty trimmed item. */
static int each_item(const char *s, int (*fn)(void *, char *), void *data)
{
    char *copy = strdup(s ? s : "");
    if (!copy) return -1;
    char *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ') tok[--n] = '\0';
        if (*tok) rc = fn(data, tok);
    }
    free(copy);
    return rc;
}

typedef struct parse_ctx {
    json_t *out;
    char *err;
    size_t errlen;
} parse_ctx_t;

static int add_label(void *data, char *item)
{
    parse_ctx_t *p = data;
    char *eq = strchr(item, '=');
    if (!eq || eq == item) {
        set_err(p->err, p->errlen, "label \"%s\": expected key=value", item);
        return -1;
    }
    *eq = '\0';
    return json_object_set_new(p->out, item, json_string(eq + 1));
}

json_t *hollow_parse_labels(const char *s, char *err, size_t errlen)
{
    parse_ctx_t p = {json_object(), err, errlen};
    if (!p.out || each_item(s, add_label, &p) != 0) {
        json_decref(p.out);
        return NULL;
    }
    return p.out;
}

static int add_taint(void *data, char *item)
{
    parse_ctx_t *p = data;
    char *colon = strrchr(item, ':');
    if (!colon || colon == item) {
        set_err(p->err, p->errlen, "taint \"%s\": expected key[=value]:Effect", item);
        return -1;
    }
    *colon = '\0';
    const char *effect = colon + 1;
    if (strcmp(effect, "NoSchedule") && strcmp(effect, "PreferNoSchedule") &&
        strcmp(effect, "NoExecute")) {
        set_err(p->err, p->errlen,
                "taint \"%s\": the effect must be NoSchedule, PreferNoSchedule or NoExecute",
                item);
        return -1;
    }
    char *eq = strchr(item, '=');
    if (eq) *eq = '\0';
    if (!*item) {
        set_err(p->err, p->errlen, "taint \"%s\": empty key", item);
        return -1;
    }
    json_t *t = json_pack("{s:s, s:s}", "key", item, "effect", effect);
    if (!t) return -1;
    if (eq && eq[1]) json_object_set_new(t, "value", json_string(eq + 1));
    return json_array_append_new(p->out, t);
}

json_t *hollow_parse_taints(const char *s, char *err, size_t errlen)
{
    parse_ctx_t p = {json_array(), err, errlen};
    if (!p.out || each_item(s, add_taint, &p) != 0) {
        json_decref(p.out);
        return NULL;
    }
    return p.out;
}

json_t *hollow_node_labels(const hollow_node_shape_t *s, const char *name)
{
    json_t *l = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kubernetes.io/hostname", name,
                          "kubernetes.io/os", "linux", "kubernetes.io/arch", s->arch,
                          "beta.kubernetes.io/os", "linux", "beta.kubernetes.io/arch", s->arch,
                          "node.skiff.io/hollow", "true");
    if (l && s->labels) json_object_update(l, s->labels);
    return l;
}

static json_t *resources(const hollow_node_shape_t *s)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "cpu", s->cpu, "memory", s->memory, "pods",
                     s->pods, "ephemeral-storage", s->ephemeral_storage, "hugepages-1Gi", "0",
                     "hugepages-2Mi", "0");
}

static json_t *condition(const char *type, const char *status, const char *reason,
                         const char *message, const char *beat, const char *since)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "status", status, "reason",
                     reason, "message", message, "lastHeartbeatTime", beat, "lastTransitionTime",
                     since);
}

json_t *hollow_node_status(const hollow_node_shape_t *s, const char *name,
                           const char *internal_ip, int64_t now_ms, int64_t since_ms)
{
    char now[32], since[32];
    fmt_time(now_ms, now, sizeof now);
    fmt_time(since_ms, since, sizeof since);
    /* stable per node, so a restart of the agent reports the same machine */
    char id[40];
    uint64_t h = fnv1a_str(name);
    snprintf(id, sizeof id, "%016llx%016llx", (unsigned long long)h,
             (unsigned long long)(h * 0x9E3779B97F4A7C15ull));
    json_t *conds = json_pack(
        "[o, o, o, o]",
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                  "kubelet has sufficient memory available", now, since),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                  "kubelet has no disk pressure", now, since),
        condition("PIDPressure", "False", "KubeletHasSufficientPID",
                  "kubelet has sufficient PID available", now, since),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", now, since));
    return json_pack(
        "{s:o, s:o, s:o, s:[{s:s, s:s}, {s:s, s:s}], s:{s:{s:i}}, "
        "s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, s:[]}",
        "capacity", resources(s), "allocatable", resources(s), "conditions", conds, "addresses",
        "type", "InternalIP", "address", internal_ip, "type", "Hostname", "address", name,
        "daemonEndpoints", "kubeletEndpoint", "Port", 10250, "nodeInfo", "machineID", id,
        "systemUUID", id, "bootID", id, "kernelVersion", s->kernel, "osImage",
        "Skiff hollow node", "containerRuntimeVersion", HOLLOW_RUNTIME, "kubeletVersion",
        HOLLOW_KUBELET_VERSION, "kubeProxyVersion", HOLLOW_KUBELET_VERSION, "operatingSystem",
        "linux", "architecture", s->arch, "images");
}

json_t *hollow_node_new(const hollow_node_shape_t *s, const char *name, const char *internal_ip,
                        const char *pod_cidr, int64_t now_ms)
{
    json_t *taints = s->taints ? skiff_json_copy(s->taints) : json_array();
    char now[32];
    fmt_time(now_ms, now, sizeof now);
    size_t i;
    json_t *t;
    json_array_foreach(taints, i, t) {
        const char *effect = json_string_value(json_object_get(t, "effect"));
        if (effect && strcmp(effect, "NoExecute") == 0)
            json_object_set_new(t, "timeAdded", json_string(now));
    }
    json_t *spec = json_pack("{s:s, s:[s]}", "podCIDR", pod_cidr, "podCIDRs", pod_cidr);
    if (spec && json_array_size(taints) > 0) json_object_set(spec, "taints", taints);
    json_decref(taints);
    return json_pack("{s:s, s:s, s:{s:s, s:o, s:{s:s, s:s}}, s:o, s:o}", "apiVersion", "v1",
                     "kind", "Node", "metadata", "name", name, "labels",
                     hollow_node_labels(s, name), "annotations", "node.alpha.kubernetes.io/ttl",
                     "0", "volumes.kubernetes.io/controller-managed-attach-detach", "true",
                     "spec", spec, "status", hollow_node_status(s, name, internal_ip, now_ms, now_ms));
}

json_t *hollow_lease_new(const char *node, const char *node_uid, int64_t now_ms)
{
    char now[40];
    hollow_micro_time(now_ms, now, sizeof now);
    json_t *lease = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s}}", "apiVersion",
                              "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", node,
                              "namespace", HOLLOW_LEASE_NS, "spec", "holderIdentity", node,
                              "leaseDurationSeconds", HOLLOW_LEASE_SECONDS, "renewTime", now);
    /* as the kubelet does: the Lease goes when its Node goes */
    if (lease && node_uid && *node_uid)
        json_object_set_new(json_object_get(lease, "metadata"), "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:s}]", "apiVersion", "v1", "kind",
                                      "Node", "name", node, "uid", node_uid));
    return lease;
}

/* ---- pods ------------------------------------------------------------------------- */

static json_t *pod_condition(const char *type, int ok, const char *reason, const char *message,
                             const char *since)
{
    json_t *c = json_pack("{s:s, s:s, s:n, s:s}", "type", type, "status", ok ? "True" : "False",
                          "lastProbeTime", "lastTransitionTime", since);
    if (c && reason) json_object_set_new(c, "reason", json_string(reason));
    if (c && message) json_object_set_new(c, "message", json_string(message));
    return c;
}

static void image_id(const char *image, char *buf, size_t len)
{
    uint64_t h = fnv1a_str(image);
    snprintf(buf, len, "%s@sha256:%016llx%016llx%016llx%016llx", image, (unsigned long long)h,
             (unsigned long long)(h * 3), (unsigned long long)(h * 5), (unsigned long long)(h * 7));
}

/* One containerStatuses entry. */
static json_t *container_status(const json_t *c, const char *uid, int running, int ready,
                                int exit_code, const char *reason, const char *started,
                                const char *finished)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *image = json_string_value(json_object_get(c, "image"));
    if (!name) name = "";
    if (!image) image = "";
    char id[600], cid[300];
    image_id(image, id, sizeof id);
    snprintf(cid, sizeof cid, HOLLOW_RUNTIME "%s/%s", uid, name);
    json_t *state = running
        ? json_pack("{s:{s:s}}", "running", "startedAt", started)
        : json_pack("{s:{s:i, s:s, s:s, s:s, s:s}}", "terminated", "exitCode", exit_code,
                    "reason", reason, "startedAt", started, "finishedAt", finished,
                    "containerID", cid);
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:i, s:o, s:{}}", "name", name, "image",
                     image, "imageID", id, "containerID", cid, "ready", ready, "started",
                     running, "restartCount", 0, "state", state, "lastState");
}

/* "containers with unready status: [a b]" */
static void unready_message(const json_t *containers, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "containers with unready status: [");
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        const char *n = json_string_value(json_object_get(c, "name"));
        if (off < len)
            off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? " " : "", n ? n : "");
    }
    if (off < len) snprintf(buf + off, len - off, "]");
}

static json_t *names_and_images(const json_t *containers)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        json_t *e = json_object();
        json_t *n = json_object_get(c, "name"), *img = json_object_get(c, "image");
        if (n) json_object_set(e, "name", n);
        if (img) json_object_set(e, "image", img);
        json_array_append_new(out, e);
    }
    return out;
}

json_t *hollow_pod_skeleton(const json_t *pod)
{
    const json_t *spec = json_object_get(pod, "spec");
    json_t *sk = json_pack("{s:{}, s:{s:o}, s:{}}", "metadata", "spec", "containers",
                           names_and_images(json_object_get(spec, "containers")), "status");
    if (!sk) return NULL;
    json_t *uid = json_object_get(json_object_get(pod, "metadata"), "uid");
    if (uid) json_object_set(json_object_get(sk, "metadata"), "uid", uid);
    if (json_array_size(json_object_get(spec, "initContainers")) > 0)
        json_object_set_new(json_object_get(sk, "spec"), "initContainers",
                            names_and_images(json_object_get(spec, "initContainers")));
    json_t *qos = json_object_get(json_object_get(pod, "status"), "qosClass");
    if (qos) json_object_set(json_object_get(sk, "status"), "qosClass", qos);
    json_t *sched = skiff_condition_get(pod, "PodScheduled");
    if (sched)
        json_object_set_new(json_object_get(sk, "status"), "conditions", json_pack("[O]", sched));
    return sk;
}

json_t *hollow_pod_status(const json_t *pod, const hollow_pod_view_t *v)
{
    const json_t *spec = json_object_get(pod, "spec");
    const json_t *containers = json_object_get(spec, "containers");
    const json_t *inits = json_object_get(spec, "initContainers");
    const char *uid = json_string_value(json_object_get(json_object_get(pod, "metadata"), "uid"));
    if (!uid) uid = "";
    char accepted[32], started[32], finished[32], msg[1024];
    fmt_time(v->accepted_ms, accepted, sizeof accepted);
    fmt_time(v->started_ms, started, sizeof started);
    fmt_time(v->finished_ms, finished, sizeof finished);
    int running = v->stage == HOLLOW_POD_RUNNING;
    int ready = running && v->ready;
    const char *phase = running ? "Running" : v->exit_code == 0 ? "Succeeded" : "Failed";
    const char *since = running ? started : finished;
    const char *why = NULL, *what = NULL;
    if (!ready) {
        unready_message(containers, msg, sizeof msg);
        why = running ? "ContainersNotReady" : "PodCompleted";
        what = running ? msg : NULL;
    }
    json_t *conds = json_array();
    json_array_append_new(conds, pod_condition("PodReadyToStartContainers", running, NULL, NULL,
                                               running ? accepted : finished));
    json_array_append_new(conds, pod_condition("Initialized", 1,
                                               running ? NULL : "PodCompleted", NULL, accepted));
    json_array_append_new(conds, pod_condition("Ready", ready, why, what, since));
    json_array_append_new(conds, pod_condition("ContainersReady", ready, why, what, since));
    /* the scheduler's condition is kept as it wrote it */
    json_t *sched = skiff_condition_get(pod, "PodScheduled");
    if (sched) json_array_append(conds, sched);
    else json_array_append_new(conds, pod_condition("PodScheduled", 1, NULL, NULL, accepted));

    json_t *cs = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        json_array_append_new(cs, container_status(c, uid, running, ready, v->exit_code,
                                                   v->exit_code ? "Error" : "Completed",
                                                   started, finished));
    }
    json_t *st = json_pack("{s:s, s:s, s:[{s:s}], s:s, s:[{s:s}], s:s, s:o}", "phase", phase,
                           "hostIP", v->host_ip, "hostIPs", "ip", v->host_ip, "podIP", v->pod_ip,
                           "podIPs", "ip", v->pod_ip, "startTime", accepted, "conditions", conds);
    if (!st) {
        json_decref(cs);
        return NULL;
    }
    json_object_set_new(st, "containerStatuses", cs);
    if (json_array_size(inits) > 0) {
        json_t *is = json_array();
        json_array_foreach(inits, i, c) {
            json_t *e = container_status(c, uid, 0, 0, 0, "Completed", accepted, started);
            json_object_set_new(e, "ready", json_true());
            json_array_append_new(is, e);
        }
        json_object_set_new(st, "initContainerStatuses", is);
    }
    const char *qos = json_string_value(json_object_get(json_object_get(pod, "status"), "qosClass"));
    if (qos) json_object_set_new(st, "qosClass", json_string(qos));
    return st;
}

int hollow_pod_behaviour(const json_t *pod, int *never_ready, int64_t *run_for_ms,
                         int *exit_code)
{
    const json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
    const char *policy =
        json_string_value(json_object_get(json_object_get(pod, "spec"), "restartPolicy"));
    const char *ready = json_string_value(json_object_get(ann, HOLLOW_ANN_READY));
    const char *run_for = json_string_value(json_object_get(ann, HOLLOW_ANN_RUN_FOR));
    const char *code = json_string_value(json_object_get(ann, HOLLOW_ANN_EXIT_CODE));
    int rc = 0;
    *never_ready = ready && strcmp(ready, "false") == 0;
    *exit_code = 0;
    *run_for_ms = -1;
    if (policy && (strcmp(policy, "Never") == 0 || strcmp(policy, "OnFailure") == 0)) {
        *run_for_ms = 1000;
        if (run_for && duration_parse_ms(run_for, run_for_ms) != 0) {
            *run_for_ms = 1000;
            rc = -1;
        }
    }
    if (code) {
        char *end;
        long v = strtol(code, &end, 10);
        if (*end || end == code || v < 0 || v > 255) rc = -1;
        else *exit_code = (int)v;
    }
    return rc;
}
