/* core/util/percent.h - URL percent-decoding, shared by the HTTP server, the
 * query parser and the in-process client. */
#ifndef SKIFF_PERCENT_H
#define SKIFF_PERCENT_H

#include <stddef.h>

/* Decode %XX escapes in place (a malformed escape is kept literally); with
 * plus_is_space, '+' becomes ' ' (query strings). Returns the new length. */
size_t percent_decode_inplace(char *s, int plus_is_space);
/* A new NUL-terminated decoded copy of s[0..n), or NULL when out of memory. */
char *percent_decode_dup(const char *s, size_t n, int plus_is_space);

#endif
