/* core/controller/cron.c - the schedule language of skiff/cron.h: parses
 * CronJob schedules and finds their next activation, with the semantics of
 * the parser Kubernetes uses (robfig/cron v3, standard five-field form with
 * descriptors). The search walks month, day, hour and minute the way that
 * library does, so daylight saving transitions behave the same (a skipped
 * hour is skipped, a repeated one runs once). */
#define _GNU_SOURCE
#include <skiff/cron.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

static int fail(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

typedef struct bounds {
    int min, max;
    const char *const *names; /* index = value, or NULL */
} bounds_t;

static const char *const month_names[] = {"",    "jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const bounds_t b_minute = {0, 59, NULL}, b_hour = {0, 23, NULL}, b_dom = {1, 31, NULL},
                      b_month = {1, 12, month_names}, b_dow = {0, 6, dow_names};

/* A number or (for months and weekdays) a name. */
static int parse_value(const char *s, size_t n, const bounds_t *b, int *out, char *err,
                       size_t errlen)
{
    if (b->names)
        for (int i = 0; b->names[i]; i++)
            if (b->names[i][0] && strlen(b->names[i]) == n && strncasecmp(s, b->names[i], n) == 0) {
                *out = i;
                return 0;
            }
    if (n == 0 || n > 9) return fail(err, errlen, "failed to parse int from %.*s", (int)n, s);
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return fail(err, errlen, "failed to parse int from %.*s", (int)n, s);
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* One comma-separated part: "*", "?", "N", "N-M", each with an optional
 * "/step" ("N/step" runs from N to the maximum). */
static int parse_range(const char *s, size_t n, const bounds_t *b, uint64_t *bits, int *star,
                       char *err, size_t errlen)
{
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    int start, end, step = 1, is_star = 0;
    if (rn == 1 && (s[0] == '*' || s[0] == '?')) {
        start = b->min;
        end = b->max;
        is_star = 1;
    } else {
        const char *dash = memchr(s, '-', rn);
        if (dash && memchr(dash + 1, '-', rn - (size_t)(dash + 1 - s)))
            return fail(err, errlen, "too many hyphens: %.*s", (int)n, s);
        if (parse_value(s, dash ? (size_t)(dash - s) : rn, b, &start, err, errlen) != 0) return -1;
        if (dash) {
            if (parse_value(dash + 1, rn - (size_t)(dash + 1 - s), b, &end, err, errlen) != 0)
                return -1;
        } else {
            end = start;
        }
    }
    if (slash) {
        const char *st = slash + 1;
        size_t sn = n - (size_t)(st - s);
        if (memchr(st, '/', sn)) return fail(err, errlen, "too many slashes: %.*s", (int)n, s);
        if (parse_value(st, sn, &(bounds_t){0, 0, NULL}, &step, err, errlen) != 0) return -1;
        if (step <= 0) return fail(err, errlen, "step of range should be a positive number: %.*s",
                                   (int)n, s);
        if (!is_star && !memchr(s, '-', rn)) end = b->max; /* "N/step" */
        if (step > 1) is_star = 0;
    }
    if (start < b->min)
        return fail(err, errlen, "beginning of range (%d) below minimum (%d): %.*s", start, b->min,
                    (int)n, s);
    if (end > b->max)
        return fail(err, errlen, "end of range (%d) above maximum (%d): %.*s", end, b->max, (int)n,
                    s);
    if (start > end)
        return fail(err, errlen, "beginning of range (%d) beyond end of range (%d): %.*s", start,
                    end, (int)n, s);
    for (int v = start; v <= end; v += step) *bits |= (uint64_t)1 << v;
    if (is_star) *star = 1;
    return 0;
}

static int parse_field(const char *s, size_t n, const bounds_t *b, uint64_t *bits, int *star,
                       char *err, size_t errlen)
{
    *bits = 0;
    *star = 0;
    const char *p = s, *end = s + n;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t pn = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (parse_range(p, pn, b, bits, star, err, errlen) != 0) return -1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

int64_t skiff_cron_parse_duration(const char *s)
{
    if (!s || !*s) return -1;
    if (strcmp(s, "0") == 0) return 0;
    double total = 0;
    const char *p = s;
    while (*p) {
        char *e;
        if (!isdigit((unsigned char)*p) && *p != '.') return -1;
        double v = strtod(p, &e);
        if (e == p) return -1;
        p = e;
        double mul;
        if (strncmp(p, "ns", 2) == 0) mul = 1e-6, p += 2;
        else if (strncmp(p, "us", 2) == 0) mul = 1e-3, p += 2;
        else if (strncmp(p, "\xc2\xb5s", 3) == 0) mul = 1e-3, p += 3;
        else if (strncmp(p, "ms", 2) == 0) mul = 1, p += 2;
        else if (*p == 's') mul = 1000, p++;
        else if (*p == 'm') mul = 60000, p++;
        else if (*p == 'h') mul = 3600000, p++;
        else return -1;
        total += v * mul;
        if (total > 9.2e15) return -1;
    }
    return (int64_t)total;
}

int skiff_cron_parse(const char *spec, skiff_cron_schedule_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!spec) return fail(err, errlen, "empty spec string");
    while (isspace((unsigned char)*spec)) spec++;
    size_t len = strlen(spec);
    while (len && isspace((unsigned char)spec[len - 1])) len--;
    if (len == 0) return fail(err, errlen, "empty spec string");
    if (strncmp(spec, "TZ=", 3) == 0 || strncmp(spec, "CRON_TZ=", 8) == 0)
        return fail(err, errlen, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    char buf[512];
    if (len >= sizeof buf) return fail(err, errlen, "schedule too long");
    memcpy(buf, spec, len);
    buf[len] = '\0';
    const char *fields_text = buf;
    if (buf[0] == '@') {
        static const struct {
            const char *name, *fields;
        } desc[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
                    {"@hourly", "0 * * * *"}};
        fields_text = NULL;
        for (size_t i = 0; i < sizeof desc / sizeof *desc; i++)
            if (strcmp(buf, desc[i].name) == 0) fields_text = desc[i].fields;
        if (!fields_text && strncmp(buf, "@every ", 7) == 0) {
            const char *d = buf + 7;
            while (*d == ' ') d++;
            int64_t ms = skiff_cron_parse_duration(d);
            if (ms < 0) return fail(err, errlen, "failed to parse duration %s", buf);
            /* whole seconds, at least one, as robfig/cron's Every */
            out->every_s = ms < 1000 ? 1 : ms / 1000;
            return 0;
        }
        if (!fields_text) return fail(err, errlen, "unrecognized descriptor: %s", buf);
    }
    const char *f[6];
    size_t fl[6];
    int nf = 0;
    for (const char *p = fields_text; *p;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *st = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (nf < 6) {
            f[nf] = st;
            fl[nf] = (size_t)(p - st);
        }
        nf++;
    }
    if (nf != 5) return fail(err, errlen, "expected exactly 5 fields, found %d: %s", nf, buf);
    uint64_t bits;
    int star;
    if (parse_field(f[0], fl[0], &b_minute, &bits, &star, err, errlen) != 0) return -1;
    out->minute = bits;
    if (parse_field(f[1], fl[1], &b_hour, &bits, &star, err, errlen) != 0) return -1;
    out->hour = (uint32_t)bits;
    if (parse_field(f[2], fl[2], &b_dom, &bits, &out->dom_star, err, errlen) != 0) return -1;
    out->dom = (uint32_t)bits;
    if (parse_field(f[3], fl[3], &b_month, &bits, &star, err, errlen) != 0) return -1;
    out->month = (uint32_t)bits;
    if (parse_field(f[4], fl[4], &b_dow, &bits, &out->dow_star, err, errlen) != 0) return -1;
    out->dow = (uint32_t)bits;
    return 0;
}

/* ---- next activation ------------------------------------------------------------ */

static time_t mk(int year, int mon, int mday, int hour, int min, int sec)
{
    struct tm tm = {0};
    tm.tm_year = year;
    tm.tm_mon = mon;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

/* Day of month and day of week: both must match when either field is
 * "*", otherwise either may (as in every cron). */
static int day_matches(const skiff_cron_schedule_t *s, const struct tm *tm)
{
    int dom = (s->dom >> tm->tm_mday) & 1, dow = (s->dow >> tm->tm_wday) & 1;
    if (s->dom_star || s->dow_star) return dom && dow;
    return dom || dow;
}

int64_t skiff_cron_next(const skiff_cron_schedule_t *s, int64_t after)
{
    if (s->every_s > 0) return after + s->every_s;
    time_t t = (time_t)after + 1;
    struct tm tm;
    localtime_r(&t, &tm);
    int year_limit = tm.tm_year + 5, added = 0;
wrap:
    localtime_r(&t, &tm);
    if (tm.tm_year > year_limit) return -1;
    while (!((s->month >> (tm.tm_mon + 1)) & 1)) {
        if (!added) {
            added = 1;
            t = mk(tm.tm_year, tm.tm_mon, 1, 0, 0, 0);
            localtime_r(&t, &tm);
        }
        t = mk(tm.tm_year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        localtime_r(&t, &tm);
        if (tm.tm_mon == 0) goto wrap;
    }
    while (!day_matches(s, &tm)) {
        if (!added) {
            added = 1;
            t = mk(tm.tm_year, tm.tm_mon, tm.tm_mday, 0, 0, 0);
            localtime_r(&t, &tm);
        }
        t = mk(tm.tm_year, tm.tm_mon, tm.tm_mday + 1, tm.tm_hour, tm.tm_min, tm.tm_sec);
        localtime_r(&t, &tm);
        /* back to midnight when a DST change moved the clock */
        if (tm.tm_hour != 0) {
            if (tm.tm_hour > 12) t += (time_t)(24 - tm.tm_hour) * 3600;
            else t -= (time_t)tm.tm_hour * 3600;
            localtime_r(&t, &tm);
        }
        if (tm.tm_mday == 1) goto wrap;
    }
    while (!((s->hour >> tm.tm_hour) & 1)) {
        if (!added) {
            added = 1;
            t = mk(tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, 0, 0);
        }
        t += 3600;
        localtime_r(&t, &tm);
        if (tm.tm_hour == 0) goto wrap;
    }
    while (!((s->minute >> tm.tm_min) & 1)) {
        if (!added) {
            added = 1;
            t -= tm.tm_sec;
        }
        t += 60;
        localtime_r(&t, &tm);
        if (tm.tm_min == 0) goto wrap;
    }
    if (tm.tm_sec != 0) {
        added = 1;
        t += 60 - tm.tm_sec;
        goto wrap;
    }
    return (int64_t)t;
}

int skiff_cron_zone_valid(const char *zone)
{
    if (!zone || !*zone || zone[0] == '/' || strstr(zone, "..") || strlen(zone) > 200) return 0;
    for (const char *p = zone; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) return 0;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", zone);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Runs with TZ set to zone; the previous TZ comes back afterwards. The
 * server's loop is single-threaded and its logs are in UTC. */
typedef struct tz_saved {
    char *old;
    int had;
    int switched;
} tz_saved_t;

static void tz_enter(const char *zone, tz_saved_t *sv)
{
    memset(sv, 0, sizeof *sv);
    if (!zone || !*zone) return;
    const char *o = getenv("TZ");
    sv->had = o != NULL;
    sv->old = o ? strdup(o) : NULL;
    setenv("TZ", zone, 1);
    tzset();
    sv->switched = 1;
}

static void tz_leave(tz_saved_t *sv)
{
    if (!sv->switched) return;
    if (sv->had && sv->old) setenv("TZ", sv->old, 1);
    else unsetenv("TZ");
    tzset();
    free(sv->old);
}

int64_t skiff_cron_next_in_zone(const skiff_cron_schedule_t *s, int64_t after, const char *zone)
{
    tz_saved_t sv;
    tz_enter(zone, &sv);
    int64_t r = skiff_cron_next(s, after);
    tz_leave(&sv);
    return r;
}

long skiff_cron_zone_offset(const char *zone, int64_t t)
{
    tz_saved_t sv;
    tz_enter(zone, &sv);
    time_t tt = (time_t)t;
    struct tm tm;
    long off = localtime_r(&tt, &tm) ? tm.tm_gmtoff : 0;
    tz_leave(&sv);
    return off;
}
