/* plugins/controllers/job/job_util.c - completed-index sets, back-off and
 * duration parsing for the Job controller (pure functions, unit-tested). */
#include "job_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int job_index_set_init(job_index_set_t *s, int64_t n)
{
    s->n = n > 0 ? n : 0;
    s->has = calloc((size_t)s->n + 1, 1);
    return s->has ? 0 : -1;
}

void job_index_set_free(job_index_set_t *s)
{
    free(s->has);
    s->has = NULL;
    s->n = 0;
}

static int parse_num(const char **p, int64_t *out)
{
    if (!isdigit((unsigned char)**p)) return -1;
    int64_t v = 0;
    while (isdigit((unsigned char)**p)) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int job_index_set_parse(job_index_set_t *s, const char *text)
{
    if (!text || !*text) return 0;
    const char *p = text;
    for (;;) {
        int64_t lo, hi;
        if (parse_num(&p, &lo) != 0) return -1;
        hi = lo;
        if (*p == '-') {
            p++;
            if (parse_num(&p, &hi) != 0 || hi < lo) return -1;
        }
        for (int64_t i = lo; i <= hi && i < s->n; i++) s->has[i] = 1;
        if (*p == '\0') return 0;
        if (*p != ',') return -1;
        p++;
    }
}

int64_t job_index_set_count(const job_index_set_t *s)
{
    int64_t c = 0;
    for (int64_t i = 0; i < s->n; i++) c += s->has[i] != 0;
    return c;
}

char *job_index_set_format(const job_index_set_t *s)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = '\0';
    for (int64_t i = 0; i < s->n;) {
        if (!s->has[i]) {
            i++;
            continue;
        }
        int64_t j = i;
        while (j + 1 < s->n && s->has[j + 1]) j++;
        char part[48];
        if (j == i) snprintf(part, sizeof part, "%s%lld", len ? "," : "", (long long)i);
        else if (j == i + 1)
            snprintf(part, sizeof part, "%s%lld,%lld", len ? "," : "", (long long)i,
                     (long long)j);
        else snprintf(part, sizeof part, "%s%lld-%lld", len ? "," : "", (long long)i, (long long)j);
        size_t pl = strlen(part);
        if (len + pl + 1 > cap) {
            while (len + pl + 1 > cap) cap *= 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        memcpy(out + len, part, pl + 1);
        len += pl;
        i = j + 1;
    }
    return out;
}

int64_t job_parse_index(const char *text)
{
    if (!text || !*text) return -1;
    const char *p = text;
    int64_t v;
    if (parse_num(&p, &v) != 0 || *p) return -1;
    /* "007" is not how the controller writes an index */
    if (text[0] == '0' && text[1]) return -1;
    return v;
}

int64_t job_backoff_delay_ms(int64_t failures, int64_t base_ms, int64_t max_ms)
{
    if (failures <= 0 || base_ms <= 0) return 0;
    int64_t d = base_ms;
    for (int64_t i = 1; i < failures; i++) {
        if (d >= max_ms / 2) return max_ms;
        d *= 2;
    }
    return d < max_ms ? d : max_ms;
}

int64_t job_parse_duration_ms(const char *text)
{
    if (!text || !*text) return -1;
    const char *p = text;
    int64_t total = 0;
    if (strcmp(text, "0") == 0) return 0;
    while (*p) {
        int64_t v;
        if (parse_num(&p, &v) != 0) return -1;
        int64_t mul;
        if (strncmp(p, "ms", 2) == 0) mul = 1, p += 2;
        else if (*p == 's') mul = 1000, p++;
        else if (*p == 'm') mul = 60000, p++;
        else if (*p == 'h') mul = 3600000, p++;
        else return -1;
        if (v > INT64_MAX / mul || total > INT64_MAX - v * mul) return -1;
        total += v * mul;
    }
    return total;
}
