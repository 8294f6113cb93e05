/* core/api/pod_update.c - what an update of a Pod may change of its spec,
 * as Kubernetes' pod update validation allows: the images of containers
 * and init containers, activeDeadlineSeconds (set, or lowered),
 * tolerations (additions; an existing one only in its tolerationSeconds),
 * terminationGracePeriodSeconds (to 1 from a negative value) and the
 * removal of scheduling gates. Any other change is refused with 422, the
 * way kube-apiserver words it. The binding, status and other subresources
 * are not updates of the spec and are not checked here. */
#include "api/pod_update.h"

#include <stdio.h>
#include <string.h>

#include <skiff/objects.h>

#include "api/apiserver_int.h"
#include "api/object_meta.h"
#include "api/status.h"
#include "object/crd_schema.h"

#define SPEC_FORBIDDEN                                                                             \
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"          \
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "        \
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set " \
    "to 1 if it was previously negative)"

/* Sets key of spec to old's value (or removes it when old has none). */
static void take_old(json_t *spec, const json_t *old_spec, const char *key)
{
    json_t *v = json_object_get(old_spec, key);
    if (v) json_object_set_new(spec, key, skiff_json_copy(v));
    else json_object_del(spec, key);
}

/* The images may change: the new containers get the old ones' images. */
static void take_old_images(json_t *spec, const json_t *old_spec, const char *list)
{
    json_t *now = json_object_get(spec, list);
    const json_t *before = json_object_get(old_spec, list);
    if (json_array_size(now) != json_array_size(before)) return;
    for (size_t i = 0; i < json_array_size(now); i++) {
        json_t *c = json_array_get(now, i);
        if (json_is_object(c)) take_old(c, json_array_get(before, i), "image");
    }
}

/* A toleration equal to t but for tolerationSeconds. */
static int same_toleration(const json_t *a, const json_t *b)
{
    static const char *const keys[] = {"key", "operator", "value", "effect", NULL};
    for (const char *const *k = keys; *k; k++) {
        const json_t *x = json_object_get(a, *k), *y = json_object_get(b, *k);
        if (!skiff_json_same(x, y)) return 0;
    }
    return 1;
}

static void check_tolerations(validation_result_t *res, const json_t *now, const json_t *before)
{
    size_t i, j;
    const json_t *t, *u;
    json_array_foreach(before, i, t) {
        int kept = 0;
        json_array_foreach(now, j, u) kept |= same_toleration(t, u);
        if (!kept) {
            crd_result_add(res, "spec.tolerations", "FieldValueForbidden",
                           "Forbidden: existing toleration can not be modified except its "
                           "tolerationSeconds");
            return;
        }
    }
}

static void check_deadline(validation_result_t *res, const json_t *now, const json_t *before)
{
    if (!before || json_is_null(before) || json_equal(now, before)) return;
    if (!now || json_is_null(now)) {
        crd_result_add(res, "spec.activeDeadlineSeconds", "FieldValueInvalid",
                       "Invalid value: \"null\": must not update from a positive integer to nil "
                       "value");
    } else if (json_integer_value(now) > json_integer_value(before)) {
        crd_result_add(res, "spec.activeDeadlineSeconds", "FieldValueInvalid",
                       "Invalid value: %lld: must be less than or equal to previous value",
                       (long long)json_integer_value(now));
    }
}

static void check_gates(validation_result_t *res, const json_t *now, const json_t *before)
{
    size_t i, j;
    const json_t *g, *h;
    json_array_foreach(now, i, g) {
        const char *name = json_string_value(json_object_get(g, "name"));
        int had = 0;
        json_array_foreach(before, j, h) had |= json_equal(json_object_get(g, "name"),
                                                           json_object_get(h, "name"));
        if (!had)
            crd_result_add(res, "spec.schedulingGates", "FieldValueForbidden",
                           "Forbidden: only deletion is allowed, but found new scheduling gate "
                           "'%s'",
                           name ? name : "");
    }
}

int pod_admit_update(api_call_t *c, const json_t *obj, const json_t *old)
{
    if (!api_kind_is_core(c->kind, "Pod") || c->sub) return 0;
    const json_t *spec = json_object_get(obj, "spec"), *old_spec = json_object_get(old, "spec");
    if (!json_is_object(spec) || !json_is_object(old_spec) || json_equal(spec, old_spec)) return 0;
    validation_result_t res;
    memset(&res, 0, sizeof res);
    check_tolerations(&res, json_object_get(spec, "tolerations"),
                      json_object_get(old_spec, "tolerations"));
    check_deadline(&res, json_object_get(spec, "activeDeadlineSeconds"),
                   json_object_get(old_spec, "activeDeadlineSeconds"));
    check_gates(&res, json_object_get(spec, "schedulingGates"),
                json_object_get(old_spec, "schedulingGates"));
    /* what may change, changed back: the rest must be as it was */
    json_t *munged = skiff_json_copy(spec);
    if (!munged) {
        validation_result_free(&res);
        status_send(c->resp, status_new(500, "InternalError", NULL, "out of memory"));
        return -1;
    }
    take_old_images(munged, old_spec, "containers");
    take_old_images(munged, old_spec, "initContainers");
    take_old(munged, old_spec, "activeDeadlineSeconds");
    take_old(munged, old_spec, "tolerations");
    take_old(munged, old_spec, "schedulingGates");
    const json_t *grace = json_object_get(spec, "terminationGracePeriodSeconds");
    const json_t *old_grace = json_object_get(old_spec, "terminationGracePeriodSeconds");
    if (json_integer_value(old_grace) < 0 && json_integer_value(grace) == 1)
        take_old(munged, old_spec, "terminationGracePeriodSeconds");
    if (!json_equal(munged, old_spec)) {
        /* name the first member that differs, where kube-apiserver prints a diff */
        const char *key;
        json_t *v;
        const char *which = NULL;
        json_object_foreach(munged, key, v) {
            if (!json_equal(v, json_object_get(old_spec, key))) {
                which = key;
                break;
            }
        }
        if (!which) {
            json_object_foreach((json_t *)old_spec, key, v) {
                if (!json_object_get(munged, key)) {
                    which = key;
                    break;
                }
            }
        }
        if (which)
            crd_result_add(&res, "spec", "FieldValueForbidden", SPEC_FORBIDDEN " (spec.%s differs)",
                           which);
        else
            crd_result_add(&res, "spec", "FieldValueForbidden", SPEC_FORBIDDEN);
    }
    json_decref(munged);
    if (res.count == 0) return 0;
    status_send(c->resp, status_invalid(c->kind, api_meta_str(obj, "name"), &res));
    validation_result_free(&res);
    return -1;
}
