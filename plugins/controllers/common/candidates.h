/* plugins/controllers/common/candidates.h - the objects a workload
 * controller may own or adopt (candidates.c). */
#ifndef SKIFF_CONTROLLERS_CANDIDATES_H
#define SKIFF_CONTROLLERS_CANDIDATES_H

#include <jansson.h>
#include <skiff/controller.h>

/* A new array of the cached objects of inf that concern an owner in
 * namespace ns with uid owner_uid and label selector selector: every object
 * whose ownerReferences name the uid, then those of the namespace that
 * carry the selector's first matchLabels pair (every object of the
 * namespace when it has no matchLabels), each once. The caller still
 * matches the selector and reads the controller reference. */
json_t *wl_candidates(skiff_informer_t *inf, const char *ns, const char *owner_uid,
                      const json_t *selector);

#endif
