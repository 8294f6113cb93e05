/* core/util/base64.h - base64 (standard and URL-safe, RFC 4648) on top of
 * OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, with padding handled. */
#ifndef SKIFF_BASE64_H
#define SKIFF_BASE64_H

#include <stddef.h>

/* New NUL-terminated encoding of n bytes; url: URL-safe alphabet, no
 * padding (JWT). NULL when out of memory. */
char *base64_encode(const void *in, size_t n, int url);
/* New NUL-terminated decoding of the n characters at in (padding optional);
 * *outlen gets the byte count. NULL when malformed or out of memory. */
unsigned char *base64_decode(const char *in, size_t n, int url, size_t *outlen);

#endif
