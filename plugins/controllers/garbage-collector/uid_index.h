/* plugins/controllers/garbage-collector/uid_index.h - the collector's index
 * of every object it watches by uid: which resource it is, its key
 * ("ns/name" or "name") and whether it is being deleted. Owner references
 * name uids; this answers "is the owner there, where, and is it going"
 * without holding the object (about 90 bytes an object). */
#ifndef GC_UID_INDEX_H
#define GC_UID_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define GC_NODE_DELETING 1            /* metadata.deletionTimestamp is set */
#define GC_NODE_DELETING_DEPENDENTS 2 /* ... with the foregroundDeletion finalizer */

typedef struct gc_node {
    uint64_t hash;
    uint32_t res; /* the collector's resource index */
    uint8_t flags;
    uint16_t key_at; /* offset of the key in text */
    char text[];     /* uid, NUL, key, NUL */
} gc_node_t;

typedef struct uid_index uid_index_t;

uid_index_t *uid_index_new(void);
void uid_index_free(uid_index_t *x);
size_t uid_index_size(const uid_index_t *x);
/* The node of uid (valid until the next put or del of that uid), or NULL. */
const gc_node_t *uid_index_get(const uid_index_t *x, const char *uid);
static inline const char *gc_node_key(const gc_node_t *n) { return n->text + n->key_at; }
/* Records uid; an existing node is replaced when it differs. -1 on ENOMEM
 * or a key too long. */
int uid_index_put(uid_index_t *x, const char *uid, uint32_t res, const char *key, int flags);
void uid_index_del(uid_index_t *x, const char *uid);

#endif
