/* core/util/base64.c - base64 encode/decode (standard and URL-safe). */
#include "util/base64.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

char *base64_encode(const void *in, size_t n, int url)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out) return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    if (url) {
        while (len > 0 && out[len - 1] == '=') len--;
        for (int i = 0; i < len; i++) {
            if (out[i] == '+') out[i] = '-';
            else if (out[i] == '/') out[i] = '_';
        }
    }
    out[len] = '\0';
    return out;
}

unsigned char *base64_decode(const char *in, size_t n, int url, size_t *outlen)
{
    while (n > 0 && in[n - 1] == '=') n--; /* padding is optional */
    if (n % 4 == 1) return NULL;
    size_t padded = (n + 3) / 4 * 4;
    char *tmp = malloc(padded + 1);
    unsigned char *out = malloc(padded / 4 * 3 + 1);
    if (!tmp || !out) goto fail;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (url) {
            if (ch == '+' || ch == '/') goto fail;
            if (ch == '-') ch = '+';
            else if (ch == '_') ch = '/';
        } else if (ch == '-' || ch == '_') {
            goto fail;
        }
        tmp[i] = ch;
    }
    for (size_t i = n; i < padded; i++) tmp[i] = '=';
    int len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded);
    if (len < 0) goto fail;
    len -= (int)(padded - n); /* EVP_DecodeBlock counts the padding as zero bytes */
    free(tmp);
    out[len] = '\0';
    *outlen = (size_t)len;
    return out;
fail:
    free(tmp);
    free(out);
    return NULL;
}
