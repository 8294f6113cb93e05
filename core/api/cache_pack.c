/* core/api/cache_pack.c - zstd dictionaries for the watch cache's
 * snapshots (see cache_pack.h). A dictionary holds the digested forms
 * zstd needs to pack (shared by worker threads, which only read it) and to
 * unpack (with a decompression context, used by the loop alone). */
#include "api/cache_pack.h"

#include <stdlib.h>
#include <string.h>

#include <zdict.h>
#include <zstd.h>

/* Room for the dictionary: larger ones gained nothing on pods. */
#define DICT_BYTES (16u * 1024u)
/* zstd's default level: packing runs on worker threads, off the loop. */
#define PACK_LEVEL 3

struct cache_dict {
    int refs;
    ZSTD_CDict *cdict;
    ZSTD_DDict *ddict;
    ZSTD_DCtx *dctx;
};

struct cache_packer {
    ZSTD_CCtx *cctx;
};

cache_dict_t *cache_dict_train(const char *buf, const size_t *lens, size_t n)
{
    void *dict = malloc(DICT_BYTES);
    cache_dict_t *d = calloc(1, sizeof *d);
    if (!dict || !d || n > 0xffffffffu) goto fail;
    size_t got = ZDICT_trainFromBuffer(dict, DICT_BYTES, buf, lens, (unsigned)n);
    if (ZDICT_isError(got)) goto fail;
    d->refs = 1;
    d->cdict = ZSTD_createCDict(dict, got, PACK_LEVEL);
    d->ddict = ZSTD_createDDict(dict, got);
    d->dctx = ZSTD_createDCtx();
    free(dict);
    if (!d->cdict || !d->ddict || !d->dctx) {
        cache_dict_unref(d);
        return NULL;
    }
    return d;
fail:
    free(dict);
    free(d);
    return NULL;
}

void cache_dict_ref(cache_dict_t *d)
{
    if (d) d->refs++;
}

void cache_dict_unref(cache_dict_t *d)
{
    if (!d || --d->refs > 0) return;
    ZSTD_freeCDict(d->cdict);
    ZSTD_freeDDict(d->ddict);
    ZSTD_freeDCtx(d->dctx);
    free(d);
}

cache_packer_t *cache_packer_new(void)
{
    cache_packer_t *p = calloc(1, sizeof *p);
    if (p && !(p->cctx = ZSTD_createCCtx())) {
        free(p);
        return NULL;
    }
    return p;
}

void cache_packer_free(cache_packer_t *p)
{
    if (!p) return;
    ZSTD_freeCCtx(p->cctx);
    free(p);
}

char *cache_pack(cache_packer_t *p, const cache_dict_t *d, const char *text, size_t len,
                 size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    char *out = malloc(cap);
    if (!out) return NULL;
    /* the frame leaves out the dictionary's id and the size (the cache
     * keeps it): 4 to 8 bytes of an 80-byte pod */
    size_t n = ZSTD_CCtx_reset(p->cctx, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(n)) n = ZSTD_CCtx_refCDict(p->cctx, d->cdict);
    if (!ZSTD_isError(n)) n = ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_dictIDFlag, 0);
    if (!ZSTD_isError(n)) n = ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_contentSizeFlag, 0);
    if (!ZSTD_isError(n)) n = ZSTD_compress2(p->cctx, out, cap, text, len);
    if (ZSTD_isError(n) || n >= len) {
        free(out);
        return NULL;
    }
    char *fit = realloc(out, n);
    *out_len = n;
    return fit ? fit : out;
}

char *cache_unpack(cache_dict_t *d, const char *packed, size_t len, size_t text_len)
{
    char *out = malloc(text_len + 1);
    if (!out) return NULL;
    size_t n = ZSTD_decompress_usingDDict(d->dctx, out, text_len, packed, len, d->ddict);
    if (ZSTD_isError(n) || n != text_len) {
        free(out);
        return NULL;
    }
    out[text_len] = '\0';
    return out;
}
