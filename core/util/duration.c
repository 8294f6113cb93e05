/* core/util/duration.c - Go-style durations into milliseconds. */
#include "util/duration.h"

#include <ctype.h>
#include <string.h>

int duration_parse_ms(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    if (!s || !*s) return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    double total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.') return -1;
        double v = 0, scale = 0;
        int digits = 0;
        for (; isdigit((unsigned char)*p) || *p == '.'; p++) {
            if (*p == '.') {
                if (scale) return -1;
                scale = 1;
                continue;
            }
            v = v * 10 + (*p - '0');
            if (scale) scale *= 10;
            digits++;
        }
        if (!digits) return -1;
        if (scale) v /= scale;
        /* the longest unit that matches: "ms" is not "m" then "s" */
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0 && n > best_len) {
                best = i;
                best_len = n;
            }
        }
        if (!best_len) return -1;
        total += v * units[best].ms;
        p += best_len;
    }
    if (total > 9e15) return -1;
    *ms = (int64_t)total;
    return 0;
}
