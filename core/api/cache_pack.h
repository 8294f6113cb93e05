/* core/api/cache_pack.h - zstd dictionaries that shrink the watch cache's
 * snapshots. Objects of one resource repeat one another almost entirely
 * (a pod of 1.7 KB differs from its siblings in a name, a uid and a few
 * timestamps), so a dictionary trained on a sample of them lets each be
 * kept in about a twentieth of its size. Training and packing run on
 * worker threads; unpacking (a list, a watch replaying history) runs on
 * the loop. See watch_cache.c for when snapshots are packed. */
#ifndef SKIFF_API_CACHE_PACK_H
#define SKIFF_API_CACHE_PACK_H

#include <stddef.h>

typedef struct cache_dict cache_dict_t;

/* A dictionary trained on n samples laid end to end in buf (lens[i]
 * bytes each), or NULL when zstd cannot make one of them (too few or too
 * unlike samples) or memory runs out. Any thread. */
cache_dict_t *cache_dict_train(const char *buf, const size_t *lens, size_t n);
/* References are taken and dropped on the loop's thread only. */
void cache_dict_ref(cache_dict_t *d);
void cache_dict_unref(cache_dict_t *d);

/* A packer for one worker thread's batch (any thread, one at a time). */
typedef struct cache_packer cache_packer_t;
cache_packer_t *cache_packer_new(void);
void cache_packer_free(cache_packer_t *p);
/* text (len bytes) packed with d into a new buffer of *out_len bytes, or
 * NULL (out of memory, or packing would not make it smaller). */
char *cache_pack(cache_packer_t *p, const cache_dict_t *d, const char *text, size_t len,
                 size_t *out_len);

/* packed (len bytes, text_len once unpacked) unpacked with d into a new
 * NUL-terminated buffer, or NULL (out of memory, corrupt). Loop thread. */
char *cache_unpack(cache_dict_t *d, const char *packed, size_t len, size_t text_len);

#endif
