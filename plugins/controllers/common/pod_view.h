/* plugins/controllers/common/pod_view.h - pods as the workload controllers
 * see them: the transform of the pods informer they share (see
 * pod_view.c for what it keeps). Compiled into every controller plugin
 * that watches pods; they all name the same transform id, so the factory
 * gives them one informer and one reduced copy of each pod. */
#ifndef SKIFF_CONTROLLERS_POD_VIEW_H
#define SKIFF_CONTROLLERS_POD_VIEW_H

#include <jansson.h>
#include <skiff/skiff.h>

/* The transform id of the controllers' pods informer. */
#define POD_VIEW_TRANSFORM_ID "controllers/pods"

/* The informer transform (skiff_informer_transform_fn): a new, reduced
 * tree for a Pod (obj itself, increfed, for anything else); obj is
 * shared and never changed. NULL when out of memory. */
json_t *pod_view(void *data, json_t *obj);

/* The transform for secondary watch i of a controller descriptor. */
skiff_controller_transform_t pod_view_for(size_t i);

#endif
