/* core/admission/builtins.c - the built-in admission modules in chain
 * order, which is kube-apiserver's order for the same plugins (the chain
 * itself moves ResourceQuota after loaded plugins, see chain.c). */
#include "admission/admission.h"

#include <stddef.h>

extern const admission_builtin_t admission_namespace_lifecycle;
extern const admission_builtin_t admission_limit_ranger;
extern const admission_builtin_t admission_service_account;
extern const admission_builtin_t admission_pod_security;
extern const admission_builtin_t admission_priority;
extern const admission_builtin_t admission_default_storage_class;
extern const admission_builtin_t admission_resource_quota;

const admission_builtin_t *const admission_builtin_list[] = {
    &admission_namespace_lifecycle,
    &admission_limit_ranger,
    &admission_service_account,
    &admission_pod_security,
    &admission_priority,
    &admission_default_storage_class,
    &admission_resource_quota,
    NULL,
};
