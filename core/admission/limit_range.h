/* core/admission/limit_range.h - what LimitRanges mean for a pod or a
 * PersistentVolumeClaim, as pure functions on JSON (unit-tested in
 * tests/unit/test_admission_logic.c): defaults for containers, and the
 * min / max / maxLimitRequestRatio checks with Kubernetes' messages. */
#ifndef SKIFF_ADMISSION_LIMIT_RANGE_H
#define SKIFF_ADMISSION_LIMIT_RANGE_H

#include <jansson.h>

/* Fills missing container requests and limits from the Container items'
 * defaultRequest and default of every LimitRange in ranges (an array),
 * in containers and init containers, and records what it set in the
 * kubernetes.io/limit-ranger annotation. Returns 1 when it changed the pod. */
int limitrange_default_pod(const json_t *ranges, json_t *pod);
/* The first-to-last violations of every LimitRange (Container, Pod and
 * PersistentVolumeClaim items) as Kubernetes words them, joined as its
 * error aggregate prints them ("msg" or "[msg1, msg2]"): a new string the
 * caller frees, or NULL when nothing is violated. kind is "Pod" or
 * "PersistentVolumeClaim". */
char *limitrange_violations(const json_t *ranges, const char *kind, const json_t *obj);

#endif
