/* core/object/patch.h - the three patch formats the API accepts.
 *
 * JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes
 * strategic merge patch, whose list handling (merge by key, retainKeys,
 * $patch directives, $setElementOrder, $deleteFromPrimitiveList) follows
 * the patchStrategy/patchMergeKey of each field in the kind's schema.
 * Each returns a new document (the input is not modified) or NULL with a
 * message in err saying what is wrong with the patch. */
#ifndef SKIFF_PATCH_H
#define SKIFF_PATCH_H

#include <stddef.h>

#include <jansson.h>

#include "object/schema.h"

json_t *patch_json_apply(const json_t *doc, const json_t *patch, char *err, size_t errlen);
json_t *patch_merge_apply(const json_t *doc, const json_t *patch, char *err, size_t errlen);
/* type: schema of doc's top level (NULL: behave like a merge patch, but
 * still honour $patch directives). */
json_t *patch_strategic_apply(const json_t *doc, const json_t *patch, const schema_type_t *type,
                              char *err, size_t errlen);

/* After one of the functions above returned NULL on this thread: 1 when the
 * patch document itself is malformed (not the shape the format requires,
 * an unknown op, a missing merge key: Kubernetes answers 400 BadRequest),
 * 0 when the patch is well formed but cannot be applied to this document
 * (a failing "test", a path that does not exist, content that contradicts
 * $retainKeys: Kubernetes answers 422 Invalid). */
int patch_last_error_is_invalid_patch(void);

/* For the patch_*.c files only: record why the current call failed and
 * format the message into err. Returns NULL so callers can `return` it. */
json_t *patch_fail_(int invalid_patch, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
