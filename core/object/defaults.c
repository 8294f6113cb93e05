/* core/object/defaults.c - default values of the built-in kinds.
 *
 * Matches what the Kubernetes API server fills in on create and update
 * (the SetDefaults_* functions of the v1 API groups): only fields that are
 * absent are set, so a value the user wrote always wins. Runs on every
 * write: no allocation beyond the values it adds. Wired to kinds through
 * the kind table in kinds.c. */
#include <string.h>

#include <jansson.h>

/* Child object at key, created when absent; NULL if present but not an
 * object (validation reports that, defaulting leaves it alone). */
static json_t *child(json_t *obj, const char *key)
{
    json_t *c = json_object_get(obj, key);
    if (c)
        return json_is_object(c) ? c : NULL;
    c = json_object();
    if (!c || json_object_set_new(obj, key, c) < 0)
        return NULL;
    return c;
}

/* Set key when absent (or JSON null); steals v. */
static void def_new(json_t *obj, const char *key, json_t *v)
{
    json_t *cur = json_object_get(obj, key);
    if (!obj || (cur && !json_is_null(cur))) {
        json_decref(v);
        return;
    }
    json_object_set_new(obj, key, v);
}

static void def_str(json_t *obj, const char *key, const char *v) { def_new(obj, key, json_string(v)); }
static void def_int(json_t *obj, const char *key, long long v) { def_new(obj, key, json_integer(v)); }
static void def_bool(json_t *obj, const char *key, int v) { def_new(obj, key, json_boolean(v)); }

/* Kubernetes pulls images tagged :latest (or untagged) every time. */
static const char *pull_policy(const char *image)
{
    if (!image)
        return "IfNotPresent";
    if (strchr(image, '@'))
        return "IfNotPresent";
    const char *slash = strrchr(image, '/');
    const char *last = slash ? slash + 1 : image;
    const char *colon = strchr(last, ':');
    if (!colon || strcmp(colon + 1, "latest") == 0)
        return "Always";
    return "IfNotPresent";
}

static void defaults_probe(json_t *probe)
{
    if (!json_is_object(probe))
        return;
    def_int(probe, "timeoutSeconds", 1);
    def_int(probe, "periodSeconds", 10);
    def_int(probe, "successThreshold", 1);
    def_int(probe, "failureThreshold", 3);
    json_t *http = json_object_get(probe, "httpGet");
    if (json_is_object(http)) {
        def_str(http, "path", "/");
        def_str(http, "scheme", "HTTP");
    }
}

static void copy_missing(json_t *to, const json_t *from);

static void defaults_container(json_t *c)
{
    if (!json_is_object(c))
        return;
    def_str(c, "terminationMessagePath", "/dev/termination-log");
    def_str(c, "terminationMessagePolicy", "File");
    def_str(c, "imagePullPolicy", pull_policy(json_string_value(json_object_get(c, "image"))));
    def_new(c, "resources", json_object());
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(c, "ports"), i, p)
        if (json_is_object(p))
            def_str(p, "protocol", "TCP");
    defaults_probe(json_object_get(c, "livenessProbe"));
    defaults_probe(json_object_get(c, "readinessProbe"));
    defaults_probe(json_object_get(c, "startupProbe"));
}

/* The volume sources that carry a file mode default to 0644 (420). */
static void defaults_volume(json_t *v)
{
    if (!json_is_object(v))
        return;
    static const char *const moded[] = { "secret", "configMap", "downwardAPI", "projected" };
    int has_source = 0;
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val) {
        if (strcmp(k, "name") != 0)
            has_source = 1;
    }
    if (!has_source) {
        json_object_set_new(v, "emptyDir", json_object());
        return;
    }
    for (size_t i = 0; i < sizeof(moded) / sizeof(moded[0]); i++) {
        json_t *src = json_object_get(v, moded[i]);
        if (json_is_object(src))
            def_int(src, "defaultMode", 420);
    }
}

/* Every pod spec, Job templates included, defaults restartPolicy to
 * Always, as Kubernetes does: a Job that leaves it out is then refused
 * with "Unsupported value: \"Always\"" by validation. */
static void defaults_pod_spec(json_t *spec)
{
    if (!json_is_object(spec))
        return;
    def_str(spec, "restartPolicy", "Always");
    def_str(spec, "dnsPolicy", "ClusterFirst");
    def_str(spec, "schedulerName", "default-scheduler");
    def_int(spec, "terminationGracePeriodSeconds", 30);
    def_new(spec, "securityContext", json_object());
    def_bool(spec, "enableServiceLinks", 1);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
        defaults_container(c);
    json_array_foreach(json_object_get(spec, "initContainers"), i, c)
        defaults_container(c);
    json_array_foreach(json_object_get(spec, "volumes"), i, c)
        defaults_volume(c);
}

static void defaults_template(json_t *tmpl)
{
    if (!json_is_object(tmpl))
        return;
    defaults_pod_spec(json_object_get(tmpl, "spec"));
}

/* A pod's container with a limit but no request for a resource requests
 * its limit (SetDefaults_Pod; not for templates). */
static void requests_from_limits(json_t *containers)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        json_t *res = json_object_get(c, "resources");
        json_t *lim = json_object_get(res, "limits");
        if (!json_is_object(lim) || !json_object_size(lim))
            continue;
        json_t *req = json_object_get(res, "requests");
        if (!json_is_object(req)) {
            req = json_object();
            json_object_set_new(res, "requests", req);
        }
        copy_missing(req, lim);
    }
}

void defaults_pod(json_t *obj)
{
    defaults_pod_spec(json_object_get(obj, "spec"));
    requests_from_limits(json_object_get(json_object_get(obj, "spec"), "containers"));
    requests_from_limits(json_object_get(json_object_get(obj, "spec"), "initContainers"));
}

void defaults_service(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    def_str(spec, "type", "ClusterIP");
    def_str(spec, "sessionAffinity", "None");
    const char *type = json_string_value(json_object_get(spec, "type"));
    int external_name = type && strcmp(type, "ExternalName") == 0;
    if (!external_name)
        def_str(spec, "internalTrafficPolicy", "Cluster");
    if (type && (strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0))
        def_str(spec, "externalTrafficPolicy", "Cluster");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        if (!json_is_object(p))
            continue;
        def_str(p, "protocol", "TCP");
        json_t *port = json_object_get(p, "port");
        if (json_is_integer(port))
            def_int(p, "targetPort", json_integer_value(port));
    }
}

void defaults_deployment(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    def_int(spec, "replicas", 1);
    json_t *strategy = child(spec, "strategy");
    if (strategy) {
        def_str(strategy, "type", "RollingUpdate");
        const char *t = json_string_value(json_object_get(strategy, "type"));
        if (t && strcmp(t, "RollingUpdate") == 0) {
            json_t *ru = child(strategy, "rollingUpdate");
            if (ru) {
                def_str(ru, "maxUnavailable", "25%");
                def_str(ru, "maxSurge", "25%");
            }
        }
    }
    def_int(spec, "revisionHistoryLimit", 10);
    def_int(spec, "progressDeadlineSeconds", 600);
    defaults_template(json_object_get(spec, "template"));
}

void defaults_replicaset(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    def_int(spec, "replicas", 1);
    defaults_template(json_object_get(spec, "template"));
}

void defaults_daemonset(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    json_t *us = child(spec, "updateStrategy");
    if (us) {
        def_str(us, "type", "RollingUpdate");
        const char *t = json_string_value(json_object_get(us, "type"));
        if (t && strcmp(t, "RollingUpdate") == 0) {
            json_t *ru = child(us, "rollingUpdate");
            if (ru) {
                def_int(ru, "maxUnavailable", 1);
                def_int(ru, "maxSurge", 0);
            }
        }
    }
    def_int(spec, "revisionHistoryLimit", 10);
    defaults_template(json_object_get(spec, "template"));
}

void defaults_pvc(json_t *obj);

void defaults_statefulset(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    def_int(spec, "replicas", 1);
    def_str(spec, "podManagementPolicy", "OrderedReady");
    json_t *us = child(spec, "updateStrategy");
    if (us) {
        def_str(us, "type", "RollingUpdate");
        const char *t = json_string_value(json_object_get(us, "type"));
        if (t && strcmp(t, "RollingUpdate") == 0) {
            json_t *ru = child(us, "rollingUpdate");
            if (ru)
                def_int(ru, "partition", 0);
        }
    }
    def_int(spec, "revisionHistoryLimit", 10);
    json_t *ret = child(spec, "persistentVolumeClaimRetentionPolicy");
    if (ret) {
        def_str(ret, "whenDeleted", "Retain");
        def_str(ret, "whenScaled", "Retain");
    }
    size_t i;
    json_t *pvc;
    json_array_foreach(json_object_get(spec, "volumeClaimTemplates"), i, pvc)
        defaults_pvc(pvc);
    defaults_template(json_object_get(spec, "template"));
}

void defaults_job(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    json_t *completions = json_object_get(spec, "completions");
    json_t *parallelism = json_object_get(spec, "parallelism");
    int no_completions = !completions || json_is_null(completions);
    int no_parallelism = !parallelism || json_is_null(parallelism);
    /* Neither set: a single pod run to completion. Only completions set:
     * one pod at a time. Only parallelism set: a work queue (completions
     * stays unset). */
    if (no_completions && no_parallelism)
        def_int(spec, "completions", 1);
    if (no_parallelism)
        def_int(spec, "parallelism", 1);
    if (!json_object_get(spec, "backoffLimitPerIndex"))
        def_int(spec, "backoffLimit", 6);
    def_str(spec, "completionMode", "NonIndexed");
    def_bool(spec, "suspend", 0);
    if (!json_object_get(spec, "podFailurePolicy"))
        def_str(spec, "podReplacementPolicy", "TerminatingOrFailed");
    defaults_template(json_object_get(spec, "template"));
}

void defaults_cronjob(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    def_str(spec, "concurrencyPolicy", "Allow");
    def_bool(spec, "suspend", 0);
    def_int(spec, "successfulJobsHistoryLimit", 3);
    def_int(spec, "failedJobsHistoryLimit", 1);
    json_t *jt = json_object_get(spec, "jobTemplate");
    if (json_is_object(jt) && json_is_object(json_object_get(jt, "spec")))
        defaults_template(json_object_get(json_object_get(jt, "spec"), "template"));
}

void defaults_secret(json_t *obj)
{
    def_str(obj, "type", "Opaque");
}

void defaults_namespace(json_t *obj)
{
    json_t *spec = child(obj, "spec");
    if (spec) {
        json_t *fin = json_array();
        json_array_append_new(fin, json_string("kubernetes"));
        def_new(spec, "finalizers", fin);
    }
    json_t *status = child(obj, "status");
    if (status)
        def_str(status, "phase", "Active");
}

void defaults_pv(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (json_is_object(spec)) {
        def_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        def_str(spec, "volumeMode", "Filesystem");
    }
    json_t *status = child(obj, "status");
    if (status)
        def_str(status, "phase", "Pending");
}

void defaults_pvc(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (json_is_object(spec))
        def_str(spec, "volumeMode", "Filesystem");
    json_t *status = child(obj, "status");
    if (status)
        def_str(status, "phase", "Pending");
}

void defaults_hpa(json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (json_is_object(spec))
        def_int(spec, "minReplicas", 1);
}

/* A Container limit's default limit comes from its max, its default
 * request from the default limit, then from its min
 * (SetDefaults_LimitRangeItem). */
static void copy_missing(json_t *to, const json_t *from)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v)
        if (!json_object_get(to, k))
            json_object_set(to, k, v);
}

void defaults_limitrange(json_t *obj)
{
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(json_object_get(obj, "spec"), "limits"), i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));
        if (!json_is_object(item) || !type || strcmp(type, "Container") != 0)
            continue;
        json_t *def = child(item, "default");
        json_t *req = child(item, "defaultRequest");
        if (!def || !req)
            continue;
        copy_missing(def, json_object_get(item, "max"));
        copy_missing(req, def);
        copy_missing(req, json_object_get(item, "min"));
        /* Kubernetes omits the maps that stay empty. */
        if (!json_object_size(def))
            json_object_del(item, "default");
        if (!json_object_size(req))
            json_object_del(item, "defaultRequest");
    }
}

void defaults_storageclass(json_t *obj)
{
    def_str(obj, "reclaimPolicy", "Delete");
    def_str(obj, "volumeBindingMode", "Immediate");
}
