/* core/util/strbuf.h - a growable NUL-terminated string buffer.
 *
 * Appends never fail loudly: after an allocation failure `failed` is set,
 * further appends do nothing, and the owner checks it once at the end. */
#ifndef SKIFF_STRBUF_H
#define SKIFF_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *p;      /* NUL-terminated once anything was added; NULL before */
    size_t len, cap;
    int failed;
} strbuf_t;

void strbuf_addn(strbuf_t *b, const char *s, size_t n);
void strbuf_add(strbuf_t *b, const char *s);
void strbuf_free(strbuf_t *b);

#endif
