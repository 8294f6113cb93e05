/* core/admission/pod_security.c - PodSecurity, as in kube-apiserver: a
 * namespace's labels pod-security.kubernetes.io/enforce, warn and audit
 * (each with an optional -version: "latest" or "v1.N") choose a Pod
 * Security Standard level (privileged, baseline, restricted) for its pods.
 *   - enforce: a new pod that violates the level is refused, 403
 *     `pods "x" is forbidden: violates PodSecurity "restricted:latest": ...`;
 *   - warn: the client gets a Warning `would violate PodSecurity ...`;
 *   - workloads with a pod template (Deployment, ReplicaSet, StatefulSet,
 *     DaemonSet, Job, CronJob, ReplicationController) are never refused,
 *     but get the warning for their enforce and warn levels;
 *   - a namespace with an invalid level or version label is refused (422);
 *     tightening a namespace's enforce level warns about the pods already
 *     in it that would violate it.
 * Namespaces without labels are privileged. Limits: every version label
 * evaluates the latest checks; the audit label is accepted but writes no
 * audit annotation; pod updates are not evaluated (their security fields
 * cannot change); there are no exemptions. The checks are in
 * pod_security_checks.c. */
#define _GNU_SOURCE
#include "admission/admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission/pod_security_checks.h"
#include "util/strbuf.h"

#define LABEL_PREFIX "pod-security.kubernetes.io/"

typedef struct mode_policy {
    int level;
    char version[32];
} mode_policy_t;

static int version_valid(const char *v)
{
    if (!strcmp(v, "latest")) return 1;
    if (strncmp(v, "v1.", 3) != 0 || !v[3]) return 0;
    for (const char *p = v + 3; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

/* The mode's level and version from labels; an invalid level is
 * restricted, as Kubernetes evaluates it. Returns 0, or -1 when a label
 * is invalid (what is wrong in err). */
static int mode_of(const json_t *labels, const char *mode, mode_policy_t *out, char *field,
                   size_t flen, char *err, size_t errlen)
{
    /* every pod create asks twice: the keys are pieced together, not printed */
    char key[96];
    size_t pl = sizeof LABEL_PREFIX - 1, ml = strlen(mode);
    const char *lv = NULL, *vv = NULL;
    if (json_object_size(labels) && pl + ml + sizeof "-version" <= sizeof key) {
        memcpy(key, LABEL_PREFIX, pl);
        memcpy(key + pl, mode, ml + 1);
        lv = json_string_value(json_object_get(labels, key));
        memcpy(key + pl + ml, "-version", sizeof "-version");
        vv = json_string_value(json_object_get(labels, key));
    }
    out->level = PSA_PRIVILEGED;
    memcpy(out->version, "latest", sizeof "latest");
    int rc = 0;
    if (lv) {
        out->level = psa_parse_level(lv);
        if (out->level < 0) {
            out->level = PSA_RESTRICTED;
            snprintf(field, flen, "metadata.labels[" LABEL_PREFIX "%s]", mode);
            snprintf(err, errlen,
                     "Invalid value: \"%s\": must be one of privileged, baseline, restricted", lv);
            rc = -1;
        }
    }
    if (vv) {
        if (version_valid(vv)) {
            snprintf(out->version, sizeof out->version, "%s", vv);
        } else if (rc == 0) {
            snprintf(field, flen, "metadata.labels[" LABEL_PREFIX "%s-version]", mode);
            snprintf(err, errlen, "Invalid value: \"%s\": must be \"latest\" or \"v1.x\"", vv);
            rc = -1;
        }
    }
    return rc;
}

static const json_t *labels_of(const json_t *obj)
{
    return json_object_get(json_object_get(obj, "metadata"), "labels");
}

/* the pod template's metadata and spec of a workload, or 0 */
static int template_of(const skiff_admission_request_t *req, const json_t **meta,
                       const json_t **spec)
{
    static const struct {
        const char *group, *resource;
    } workloads[] = {{"apps", "deployments"},  {"apps", "replicasets"}, {"apps", "statefulsets"},
                     {"apps", "daemonsets"},   {"batch", "jobs"},       {"batch", "cronjobs"},
                     {"", "replicationcontrollers"}};
    for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++) {
        if (!admission_is(req, workloads[i].group, workloads[i].resource)) continue;
        const json_t *spec_ = json_object_get(req->object, "spec");
        if (!strcmp(workloads[i].resource, "cronjobs"))
            spec_ = json_object_get(json_object_get(spec_, "jobTemplate"), "spec");
        const json_t *tmpl = json_object_get(spec_, "template");
        if (!json_is_object(tmpl)) return 0;
        *meta = json_object_get(tmpl, "metadata");
        *spec = json_object_get(tmpl, "spec");
        return 1;
    }
    return 0;
}

static void warn_level(const skiff_admission_request_t *req, const mode_policy_t *m,
                       const json_t *meta, const json_t *spec)
{
    char *v = psa_violations(m->level, meta, spec);
    if (!v) return;
    skiff_admission_warn(req, "would violate PodSecurity \"%s:%s\": %s", psa_level_name(m->level),
                         m->version, v);
    free(v);
}

/* A namespace's labels must be valid; a tighter enforce level warns
 * about the pods it already has. */
static int check_namespace(const skiff_admission_request_t *req)
{
    char err[512], field[128];
    mode_policy_t m;
    static const char *const modes[] = {"enforce", "warn", "audit"};
    for (int i = 0; i < 3; i++) {
        if (mode_of(labels_of(req->object), modes[i], &m, field, sizeof field, err, sizeof err) != 0)
            return admission_invalid(req, field, "FieldValueInvalid", err);
    }
    if (req->operation != SKIFF_ADMISSION_UPDATE || !req->old_object) return 0;
    mode_policy_t old;
    mode_of(labels_of(req->old_object), "enforce", &old, field, sizeof field, err, sizeof err);
    mode_of(labels_of(req->object), "enforce", &m, field, sizeof field, err, sizeof err);
    if (m.level <= old.level) return 0;
    json_t *pods = skiff_admission_list(req, "v1", "pods", req->name);
    size_t i, bad = 0;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        char *v = psa_violations(m.level, json_object_get(pod, "metadata"),
                                 json_object_get(pod, "spec"));
        if (!v) continue;
        if (bad++ == 0)
            skiff_admission_warn(req,
                                 "existing pods in namespace \"%s\" violate the new PodSecurity "
                                 "enforce level \"%s:%s\"",
                                 req->name, psa_level_name(m.level), m.version);
        if (bad <= 10) {
            const char *name =
                json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
            skiff_admission_warn(req, "%s: %s", name ? name : "", v);
        }
        free(v);
    }
    json_decref(pods);
    return 0;
}

static int validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req)
{
    if (!req->object) return 0;
    if (admission_is(req, "", "namespaces") &&
        (req->operation == SKIFF_ADMISSION_CREATE || req->operation == SKIFF_ADMISSION_UPDATE))
        return check_namespace(req);
    if (req->operation != SKIFF_ADMISSION_CREATE && req->operation != SKIFF_ADMISSION_UPDATE)
        return 0;
    int is_pod = admission_is(req, "", "pods");
    const json_t *meta = NULL, *spec = NULL;
    if (is_pod) {
        if (req->operation != SKIFF_ADMISSION_CREATE) return 0;
        meta = json_object_get(req->object, "metadata");
        spec = json_object_get(req->object, "spec");
    } else if (!template_of(req, &meta, &spec)) {
        return 0;
    }
    const json_t *ns = admission_peek(req, "namespaces", NULL, req->ns);
    if (!ns) return 0;
    char err[512], field[128];
    mode_policy_t enforce, warn;
    mode_of(labels_of(ns), "enforce", &enforce, field, sizeof field, err, sizeof err);
    mode_of(labels_of(ns), "warn", &warn, field, sizeof field, err, sizeof err);
    if (!is_pod) {
        /* workloads: warnings only, for the enforce level and a different warn level */
        warn_level(req, &enforce, meta, spec);
        if (warn.level != enforce.level || strcmp(warn.version, enforce.version) != 0)
            warn_level(req, &warn, meta, spec);
        return 0;
    }
    char *v = psa_violations(enforce.level, meta, spec);
    if (v) {
        int rc = admission_forbid(req, "violates PodSecurity \"%s:%s\": %s",
                                  psa_level_name(enforce.level), enforce.version, v);
        free(v);
        return rc;
    }
    warn_level(req, &warn, meta, spec);
    return 0;
}

static const skiff_admission_vtable_t vt = {.validate = validate};

const admission_builtin_t admission_pod_security = {
    .name = "PodSecurity",
    .default_on = 1,
    .vt = &vt,
};
