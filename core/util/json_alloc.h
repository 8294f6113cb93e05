/* core/util/json_alloc.h - free lists for jansson's small blocks in
 * `skiff server`. A JSON tree is a hundred or more blocks of under 512
 * bytes, made and freed together on every request; glibc's thread cache
 * keeps seven blocks a size, so most of them went through its slower bins.
 * These keep freed blocks by size, per thread, up to 4 MB, and give them
 * back to the next tree. Blocks stay ordinary malloc blocks: a string
 * jansson made (json_dumps) is still freed with free(). */
#ifndef SKIFF_JSON_ALLOC_H
#define SKIFF_JSON_ALLOC_H

#include <stddef.h>

/* Makes jansson allocate through the free lists (values made before are
 * freed correctly all the same). A build with AddressSanitizer keeps
 * jansson on malloc and free, so that a use after free is still caught. */
void json_alloc_install(void);

/* The allocator itself (what json_alloc_install hands to jansson). */
void *json_alloc_malloc(size_t n);
void json_alloc_free(void *p);

#endif
