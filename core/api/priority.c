/* core/api/priority.c - pod priority, as Kubernetes' Priority admission
 * plugin does it: on pod create spec.priorityClassName (or the
 * globalDefault class) is resolved into spec.priority and
 * spec.preemptionPolicy; PriorityClass writes are checked (value range,
 * the reserved "system-" prefix, one global default); the two system
 * classes exist from the start. Scheduling itself is the scheduler's. */
#include "api/apiserver_int.h"

#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#include "api/object_meta.h"

/* scheduling.k8s.io's constants */
#define HIGHEST_USER_PRIORITY 1000000000LL
#define SYSTEM_PREFIX "system-"

static const struct {
    const char *name;
    long long value;
    const char *description;
} system_classes[] = {
    {"system-node-critical", 2000001000LL, "Used for system critical pods that must not be moved from their current node."},
    {"system-cluster-critical", 2000000000LL, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."},
};

static watch_cache_t *classes(api_server_t *s)
{
    const kind_def_t *k = registry_find_resource("scheduling.k8s.io", "v1", "priorityclasses");
    return k ? api_cache_for(s, k) : NULL;
}

json_t *api_system_priority_classes_new(void)
{
    json_t *out = json_array();
    for (size_t i = 0; i < sizeof system_classes / sizeof *system_classes; i++)
        json_array_append_new(
            out, json_pack("{s:s,s:s,s:{s:s},s:I,s:s,s:s}", "apiVersion", "scheduling.k8s.io/v1",
                           "kind", "PriorityClass", "metadata", "name", system_classes[i].name,
                           "value", (json_int_t)system_classes[i].value, "description",
                           system_classes[i].description, "preemptionPolicy",
                           "PreemptLowerPriority"));
    return out;
}

static int is_system_class(const char *name)
{
    for (size_t i = 0; i < sizeof system_classes / sizeof *system_classes; i++)
        if (strcmp(system_classes[i].name, name) == 0) return 1;
    return 0;
}

/* The class marked globalDefault (a new reference), or NULL. With
 * several, the one with the highest value, as Kubernetes picks. */
static json_t *global_default(api_server_t *s, const char *except)
{
    watch_cache_t *c = classes(s);
    cache_obj_t **objs = NULL;
    size_t n = c ? watch_cache_list(c, NULL, NULL, NULL, &objs) : 0;
    json_t *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const json_t *pc = cache_obj_parsed(objs[i]);
        if (!json_is_true(json_object_get(pc, "globalDefault"))) continue;
        if (except && strcmp(objs[i]->name, except) == 0) continue;
        if (!best || json_integer_value(json_object_get(pc, "value")) >
                         json_integer_value(json_object_get(best, "value"))) {
            json_decref(best);
            best = skiff_json_copy(pc);
        }
    }
    watch_cache_list_free(objs, n);
    return best;
}

int api_pod_resolve_priority(api_call_t *c, json_t *pod)
{
    json_t *spec = json_object_get(pod, "spec");
    if (!json_is_object(spec)) return 0;
    const char *pcname = json_string_value(json_object_get(spec, "priorityClassName"));
    const char *name = api_meta_str(pod, "name");
    json_t *pc = NULL;
    long long priority = 0;
    const char *policy = "PreemptLowerPriority";
    if (!pcname || !*pcname) {
        pc = global_default(c->srv, NULL);
        if (pc) {
            json_object_set_new(spec, "priorityClassName",
                                json_string(api_meta_str(pc, "name")));
        }
    } else {
        watch_cache_t *wc = classes(c->srv);
        cache_obj_t *o = wc ? watch_cache_get(wc, pcname) : NULL;
        if (!o) {
            status_reply(c->resp, 403, "Forbidden", status_details(c->kind, name),
                         "pods \"%s\" is forbidden: no PriorityClass with name %s was found",
                         name ? name : "", pcname);
            return -1;
        }
        pc = cache_obj_decode(o);
    }
    if (pc) {
        priority = json_integer_value(json_object_get(pc, "value"));
        const char *p = json_string_value(json_object_get(pc, "preemptionPolicy"));
        if (p && *p) policy = p;
    }
    json_t *given = json_object_get(spec, "priority");
    if (json_is_integer(given) && json_integer_value(given) != priority) {
        status_reply(c->resp, 403, "Forbidden", status_details(c->kind, name),
                     "pods \"%s\" is forbidden: the integer value of priority (%lld) must not be "
                     "provided in pod spec; priority admission controller computed %lld from the "
                     "given PriorityClass name",
                     name ? name : "", (long long)json_integer_value(given), priority);
        json_decref(pc);
        return -1;
    }
    const char *gp = json_string_value(json_object_get(spec, "preemptionPolicy"));
    if (pc && gp && strcmp(gp, policy) != 0) {
        status_reply(c->resp, 403, "Forbidden", status_details(c->kind, name),
                     "pods \"%s\" is forbidden: the string value of PreemptionPolicy (%s) must "
                     "not be provided in pod spec; priority admission controller computed %s "
                     "from the given PriorityClass name",
                     name ? name : "", gp, policy);
        json_decref(pc);
        return -1;
    }
    json_object_set_new(spec, "priority", json_integer(priority));
    json_object_set_new(spec, "preemptionPolicy", json_string(policy));
    json_decref(pc);
    return 0;
}

int api_priority_class_check(api_call_t *c, json_t *pc, int create)
{
    const char *name = api_meta_str(pc, "name");
    if (!name) return 0;
    if (create && strncmp(name, SYSTEM_PREFIX, strlen(SYSTEM_PREFIX)) == 0 && !is_system_class(name)) {
        status_reply(c->resp, 403, "Forbidden", status_details(c->kind, name),
                     "priorityclasses.scheduling.k8s.io \"%s\" is forbidden: priority class names "
                     "with '" SYSTEM_PREFIX "' prefix are reserved for system use only",
                     name);
        return -1;
    }
    json_int_t v = json_integer_value(json_object_get(pc, "value"));
    if (!is_system_class(name) && v > HIGHEST_USER_PRIORITY) {
        json_t *details = status_details(c->kind, name);
        json_object_set_new(details, "causes",
                            json_pack("[{s:s,s:s,s:s}]", "reason", "FieldValueForbidden",
                                      "message", "Forbidden: maximum allowed value of a user defined priority is 1000000000",
                                      "field", "value"));
        status_reply(c->resp, 422, "Invalid", details,
                     "PriorityClass.scheduling.k8s.io \"%s\" is invalid: value: Forbidden: "
                     "maximum allowed value of a user defined priority is 1000000000",
                     name);
        return -1;
    }
    if (json_is_true(json_object_get(pc, "globalDefault"))) {
        json_t *other = global_default(c->srv, name);
        if (other) {
            status_reply(c->resp, 403, "Forbidden", status_details(c->kind, name),
                         "priorityclasses.scheduling.k8s.io \"%s\" is forbidden: PriorityClass "
                         "%s is already marked as default. Only one default can exist",
                         name, api_meta_str(other, "name"));
            json_decref(other);
            return -1;
        }
    }
    return 0;
}
