/* core/api/pod_update.h - the spec fields an update of a Pod may change
 * (core/api/pod_update.c). Not for use outside core/api. */
#ifndef SKIFF_API_POD_UPDATE_H
#define SKIFF_API_POD_UPDATE_H

#include <jansson.h>

struct api_call;

/* An update of a Pod (not of a subresource): 0 when its spec changes only
 * what Kubernetes lets an update change (also for other kinds), or -1
 * after answering 422 saying what may not change. obj and old are in
 * their defaulted, stored form. */
int pod_admit_update(struct api_call *c, const json_t *obj, const json_t *old);

#endif
