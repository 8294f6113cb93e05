/* core/admission/pod_security_checks.h - the Pod Security Standards
 * (privileged, baseline, restricted) as pure checks on a pod's metadata
 * and spec, with the reasons and details Kubernetes' PodSecurity
 * admission prints. Unit-tested in tests/unit/test_admission_logic.c. */
#ifndef SKIFF_ADMISSION_POD_SECURITY_CHECKS_H
#define SKIFF_ADMISSION_POD_SECURITY_CHECKS_H

#include <jansson.h>

enum { PSA_PRIVILEGED = 0, PSA_BASELINE = 1, PSA_RESTRICTED = 2 };

/* "privileged", "baseline", "restricted" -> PSA_*, else -1 */
int psa_parse_level(const char *s);
const char *psa_level_name(int level);
/* The violations of level by a pod (metadata and spec) as Kubernetes
 * aggregates them, "reason (detail), reason (detail)" in check order: a
 * new string, or NULL when the pod meets the level. */
char *psa_violations(int level, const json_t *meta, const json_t *spec);

#endif
