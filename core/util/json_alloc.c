/* core/util/json_alloc.c - per-thread free lists of small blocks for
 * jansson (see json_alloc.h). A block's size class is read back with
 * malloc_usable_size, so a block needs no header and any malloc block,
 * wherever it came from, can be given to json_alloc_free. */
#include "util/json_alloc.h"

#include <malloc.h>
#include <stdlib.h>

#include <jansson.h>

/* Class k holds blocks of at least 16 k + 8 usable bytes: glibc's own
 * steps on 64-bit systems (a chunk of 16 k + 16 bytes less its 8-byte
 * header), so a block costs what malloc would have made it cost. */
#define CLASS_BYTES 16
#define CLASS_EXTRA 8
#define CLASSES 32 /* blocks up to 520 bytes */
/* Bytes kept a thread: the blocks of a few hundred requests' trees in
 * flight at once (a pod's is about 150 blocks, 10 KB). */
#define KEEP_BYTES ((size_t)4 << 20)

typedef struct block {
    struct block *next;
} block_t;

static __thread block_t *lists[CLASSES + 1];
static __thread size_t kept_bytes;

void *json_alloc_malloc(size_t n)
{
    size_t cls = n <= CLASS_BYTES + CLASS_EXTRA ? 1 : (n - CLASS_EXTRA + CLASS_BYTES - 1) / CLASS_BYTES;
    if (cls > CLASSES) return malloc(n);
    /* glibc hands out a block up to 16 bytes larger than asked when the
     * rest would be too small to keep: such a block is kept a class up, so
     * look there too */
    for (size_t k = cls; k <= cls + 2 && k <= CLASSES; k++) {
        block_t *b = lists[k];
        if (b) {
            lists[k] = b->next;
            /* the next one taken from this list is read then: a freed
             * block is often out of the CPU's cache by the time it is
             * reused, so start bringing it in now */
            __builtin_prefetch(b->next, 1);
            kept_bytes -= k * CLASS_BYTES;
            return b;
        }
    }
    /* the whole class, so that the block comes back to it when freed */
    return malloc(cls * CLASS_BYTES + CLASS_EXTRA);
}

void json_alloc_free(void *p)
{
    if (!p) return;
    size_t usable = malloc_usable_size(p);
    size_t cls = usable < CLASS_BYTES + CLASS_EXTRA ? 0 : (usable - CLASS_EXTRA) / CLASS_BYTES;
    if (cls < 1 || cls > CLASSES || kept_bytes + cls * CLASS_BYTES > KEEP_BYTES) {
        free(p);
        return;
    }
    block_t *b = p;
    b->next = lists[cls];
    lists[cls] = b;
    kept_bytes += cls * CLASS_BYTES;
}

void json_alloc_install(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return;
#endif
#endif
    json_set_alloc_funcs(json_alloc_malloc, json_alloc_free);
}
