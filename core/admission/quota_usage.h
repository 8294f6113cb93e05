/* core/admission/quota_usage.h - what an object costs against a
 * ResourceQuota, as pure functions on JSON (unit-tested in
 * tests/unit/test_admission_logic.c): which resource a `hard` key counts,
 * how much one object uses of it, whether the quota's scopes select it,
 * and the "must specify" rule for pods under a compute quota.
 * Amounts are in milli-units (a count of 1 is 1000). */
#ifndef SKIFF_ADMISSION_QUOTA_USAGE_H
#define SKIFF_ADMISSION_QUOTA_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The group and resource whose objects a hard key ("pods",
 * "requests.cpu", "count/deployments.apps", "services.nodeports", ...)
 * counts. 0, or -1 for a key this server does not track. */
int quota_key_resource(const char *key, char *group, size_t glen, char *resource, size_t rlen);
/* What obj (of group/resource) uses of key, in milli-units. */
int64_t quota_object_usage(const char *key, const char *group, const char *resource,
                           const json_t *obj);
/* Does the quota's spec.scopes select obj? Objects other than pods are
 * selected only by a quota without scopes. */
int quota_scopes_match(const json_t *quota, const char *group, const char *resource,
                       const json_t *obj);
/* For a pod under a quota with hard limits on cpu or memory: every
 * container must say its request (or limit) for each of them. NULL, or a
 * new string "must specify limits.cpu for: a,b; must specify ..." */
char *quota_pod_constraints(const json_t *hard, const json_t *pod);
/* A quantity for a quota key as Kubernetes prints it into buf. */
void quota_format(const char *key, int64_t milli, char *buf, size_t len);

#endif
