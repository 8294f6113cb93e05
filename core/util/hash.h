/* core/util/hash.h - FNV-1a, the 64-bit string hash the core's tables,
 * ETags and stable ids use. */
#ifndef SKIFF_HASH_H
#define SKIFF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT 1469598103934665603ull

/* h carried on over n bytes at p (start from FNV1A_INIT). */
static inline uint64_t fnv1a_add(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* h carried on over the NUL-terminated s. */
static inline uint64_t fnv1a_add_str(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static inline uint64_t fnv1a(const void *p, size_t n) { return fnv1a_add(FNV1A_INIT, p, n); }
static inline uint64_t fnv1a_str(const char *s) { return fnv1a_add_str(FNV1A_INIT, s); }

#endif
