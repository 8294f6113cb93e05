/* core/admission/quantity.c - formats milli-unit quantities the way
 * Kubernetes' canonical form does for the common cases. */
#include "admission/quantity.h"

#include <string.h>

#include <stdio.h>

/* v with the largest suffix whose base divides it; 0 when none does */
static int with_suffix(long long v, long long base, const char *const *sfx, char *buf, size_t len)
{
    int i = -1;
    while (i < 4 && v % base == 0) {
        v /= base;
        i++;
    }
    if (i < 0) return 0;
    snprintf(buf, len, "%lld%s", v, sfx[i]);
    return 1;
}

void quantity_format(int64_t milli, int decimal, char *buf, size_t len)
{
    static const char *const bin[] = {"Ki", "Mi", "Gi", "Ti", "Pi"};
    static const char *const dec[] = {"k", "M", "G", "T", "P"};
    if (milli % 1000 != 0) {
        snprintf(buf, len, "%lldm", (long long)milli);
        return;
    }
    long long v = (long long)(milli / 1000);
    if (v != 0 && !decimal && with_suffix(v, 1024, bin, buf, len)) return;
    if (v != 0 && with_suffix(v, 1000, dec, buf, len)) return;
    snprintf(buf, len, "%lld", v);
}

size_t resource_names_sorted(const json_t *o, const char **keys, size_t max)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (n == max) break;
        size_t i = n++;
        while (i > 0 && strcmp(keys[i - 1], k) > 0) {
            keys[i] = keys[i - 1];
            i--;
        }
        keys[i] = k;
    }
    return n;
}
