/* core/admission/service_account.c - ServiceAccount, as kube-apiserver's
 * plugin of that name does on pod create: spec.serviceAccountName
 * defaults to "default"; a pod naming a ServiceAccount that does not
 * exist is refused; unless the pod or its ServiceAccount sets
 * automountServiceAccountToken to false, a projected volume
 * kube-api-access-XXXXX (a bound token, the cluster CA from the
 * kube-root-ca.crt ConfigMap, the namespace) is added and mounted
 * read-only at /var/run/secrets/kubernetes.io/serviceaccount in every
 * container and init container that has no mount there yet; the
 * ServiceAccount's imagePullSecrets are copied when the pod has none.
 *
 * One difference: Kubernetes waits up to about a second for the
 * "default" ServiceAccount of a brand-new namespace (its controller makes
 * it) and then refuses. Admission here never blocks the event loop, so a
 * missing "default" ServiceAccount is not an error: the pod is admitted
 * and the token mounted as usual (the controller makes the account within
 * milliseconds). Mirror pods (kubernetes.io/config.mirror) are left alone. */
#include "admission/admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <skiff/objects.h>

#define TOKEN_PATH "/var/run/secrets/kubernetes.io/serviceaccount"
#define VOLUME_PREFIX "kube-api-access-"

/* Random bytes for volume names, drawn from OpenSSL a block at a time:
 * one RAND_bytes call (and its locks) per pod cost more than the rest of
 * this plugin. */
static void random_bytes(unsigned char *out, size_t n)
{
    static unsigned char pool[512];
    static size_t left;
    if (n > sizeof pool) n = sizeof pool;
    if (left < n) {
        if (RAND_bytes(pool, sizeof pool) != 1) memset(pool, 7, sizeof pool);
        left = sizeof pool;
    }
    memcpy(out, pool + sizeof pool - left, n);
    memset(pool + sizeof pool - left, 0, n);
    left -= n;
}

/* kube-apiserver's SimpleNameGenerator: 5 characters without vowels. */
static void volume_name(char *out, size_t len)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char r[5];
    random_bytes(r, sizeof r);
    char suffix[6];
    for (int i = 0; i < 5; i++) suffix[i] = alphabet[r[i] % (sizeof alphabet - 1)];
    suffix[5] = '\0';
    snprintf(out, len, VOLUME_PREFIX "%s", suffix);
}

/* The projected volume of every pod, built once; each pod gets a copy
 * with its name first (a copy: later steps may change a pod's tree). */
static json_t *token_volume(const char *name)
{
    static json_t *projected;
    if (!projected)
        projected = json_pack(
            "{s:[{s:{s:i, s:s}}, {s:{s:s, s:[{s:s, s:s}]}}, "
            "{s:{s:[{s:s, s:{s:s, s:s}}]}}], s:i}",
            "sources", "serviceAccountToken", "expirationSeconds", 3607, "path", "token",
            "configMap", "name", "kube-root-ca.crt", "items", "key", "ca.crt", "path", "ca.crt",
            "downwardAPI", "items", "path", "namespace", "fieldRef", "apiVersion", "v1",
            "fieldPath", "metadata.namespace", "defaultMode", 420);
    json_t *vol = json_object();
    json_object_set_new(vol, "name", json_string(name));
    json_object_set_new(vol, "projected", skiff_json_copy(projected));
    return vol;
}

/* Mount the volume in each container without a mount at TOKEN_PATH;
 * 1 when any container got it. */
static int mount_in(json_t *containers, const char *vol)
{
    int added = 0;
    size_t i;
    json_t *ctr;
    json_array_foreach(containers, i, ctr)
    {
        if (!json_is_object(ctr)) continue;
        json_t *mounts = json_object_get(ctr, "volumeMounts");
        size_t j;
        json_t *m;
        int has = 0;
        json_array_foreach(mounts, j, m)
        {
            const char *path = json_string_value(json_object_get(m, "mountPath"));
            if (path && strcmp(path, TOKEN_PATH) == 0) has = 1;
        }
        if (has) continue;
        if (!json_is_array(mounts)) {
            mounts = json_array();
            json_object_set_new(ctr, "volumeMounts", mounts);
        }
        json_t *mount = json_object();
        json_object_set_new(mount, "name", json_string(vol));
        json_object_set_new(mount, "readOnly", json_true());
        json_object_set_new(mount, "mountPath", json_string(TOKEN_PATH));
        json_array_append_new(mounts, mount);
        added = 1;
    }
    return added;
}

static void mount_token(json_t *spec)
{
    json_t *volumes = json_object_get(spec, "volumes");
    char vol[64] = "";
    int have_volume = 0;
    size_t i;
    json_t *v;
    json_array_foreach(volumes, i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && strncmp(n, VOLUME_PREFIX, strlen(VOLUME_PREFIX)) == 0) {
            snprintf(vol, sizeof vol, "%s", n);
            have_volume = 1;
            break;
        }
    }
    if (!have_volume) volume_name(vol, sizeof vol);
    int needed = mount_in(json_object_get(spec, "initContainers"), vol);
    needed |= mount_in(json_object_get(spec, "containers"), vol);
    if (have_volume || !needed) return;
    if (!json_is_array(volumes)) {
        volumes = json_array();
        json_object_set_new(spec, "volumes", volumes);
    }
    json_array_append_new(volumes, token_volume(vol));
}

static int admit(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req)
{
    if (req->operation != SKIFF_ADMISSION_CREATE || !admission_is(req, "", "pods")) return 0;
    json_t *pod = req->object;
    json_t *spec = json_object_get(pod, "spec");
    if (!json_is_object(spec)) return 0; /* validation reports it */
    const json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
    if (json_object_get(ann, "kubernetes.io/config.mirror")) return 0;
    const char *sa_name = json_string_value(json_object_get(spec, "serviceAccountName"));
    if (!sa_name || !*sa_name) {
        /* the deprecated spec.serviceAccount still names it */
        sa_name = json_string_value(json_object_get(spec, "serviceAccount"));
        if (!sa_name || !*sa_name) sa_name = "default";
        json_object_set_new(spec, "serviceAccountName", json_string(sa_name));
        sa_name = json_string_value(json_object_get(spec, "serviceAccountName"));
    }
    /* the deprecated field mirrors it, as the v1 API shows it */
    const char *dep = json_string_value(json_object_get(spec, "serviceAccount"));
    if (!dep || !*dep) json_object_set_new(spec, "serviceAccount", json_string(sa_name));
    const json_t *sa = admission_peek(req, "serviceaccounts", req->ns, sa_name);
    if (!sa && strcmp(sa_name, "default") != 0)
        return admission_forbid(req,
                                "error looking up service account %s/%s: serviceaccount \"%s\" "
                                "not found",
                                req->ns, sa_name, sa_name);
    /* the pod's own setting wins over its ServiceAccount's */
    const json_t *pod_auto = json_object_get(spec, "automountServiceAccountToken");
    const json_t *sa_auto = json_object_get(sa, "automountServiceAccountToken");
    int automount = json_is_boolean(pod_auto)  ? json_is_true(pod_auto)
                    : json_is_boolean(sa_auto) ? json_is_true(sa_auto)
                                               : 1;
    if (automount) mount_token(spec);
    const json_t *pull = json_object_get(sa, "imagePullSecrets");
    if (json_array_size(pull) > 0 && json_array_size(json_object_get(spec, "imagePullSecrets")) == 0)
        json_object_set_new(spec, "imagePullSecrets", skiff_json_copy(pull));
    return 0;
}

static const skiff_admission_vtable_t vt = {.mutate = admit};

const admission_builtin_t admission_service_account = {
    .name = "ServiceAccount",
    .default_on = 1,
    .vt = &vt,
};
