/* core/util/strbuf.c - growable string buffer. */
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

void strbuf_addn(strbuf_t *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->len + n + 1) c *= 2;
        char *p = realloc(b->p, c);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void strbuf_add(strbuf_t *b, const char *s) { strbuf_addn(b, s, strlen(s)); }

void strbuf_free(strbuf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
