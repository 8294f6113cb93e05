/* skiff/cron.h - the CronJob schedule language as Kubernetes accepts it (robfig/cron's standard parser): five fields
 * (minute hour day-of-month month day-of-week) with lists, ranges, steps,
 * "*" and "?", month and weekday names, the @yearly/@annually, @monthly,
 * @weekly, @daily/@midnight and @hourly descriptors, and "@every <Go
 * duration>". Next-time computation runs in the process's local time zone
 * or in a named IANA zone from the system tz database. The API server
 * validates CronJobs with it and the CronJob controller schedules with it,
 * as Kubernetes uses one parser for both. */
#ifndef SKIFF_CRON_H
#define SKIFF_CRON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skiff_cron_schedule {
    uint64_t minute; /* bit n: minute n (0-59) */
    uint32_t hour;   /* 0-23 */
    uint32_t dom;    /* 1-31 */
    uint32_t month;  /* 1-12 */
    uint32_t dow;    /* 0-6, Sunday = 0 */
    int dom_star, dow_star; /* the field was "*" or "?": days match on the other alone */
    int64_t every_s;        /* "@every": fixed delay in whole seconds (> 0), else 0 */
} skiff_cron_schedule_t;

/* Parses a schedule. 0, or -1 with a message in err (as Kubernetes words
 * it, e.g. "expected exactly 5 fields, found 6: ..."). */
int skiff_cron_parse(const char *spec, skiff_cron_schedule_t *out, char *err, size_t errlen);

/* The first activation strictly after `after` (seconds since the epoch),
 * in the process's local time zone; -1 when none comes within five years
 * (for example "0 0 30 2 *"). */
int64_t skiff_cron_next(const skiff_cron_schedule_t *s, int64_t after);

/* 1 when zone names a zone in the system tz database ("Europe/Paris",
 * "UTC"); relative paths only, no "..". */
int skiff_cron_zone_valid(const char *zone);

/* skiff_cron_next in the named zone (NULL or "": local time). The zone is
 * applied through TZ for the duration of the call and restored after. */
int64_t skiff_cron_next_in_zone(const skiff_cron_schedule_t *s, int64_t after, const char *zone);

/* Seconds east of UTC of the zone at time t (for formatting times in the
 * CronJob's zone); 0 on error. */
long skiff_cron_zone_offset(const char *zone, int64_t t);

/* A Go duration ("1h30m", "90s", "1.5h") in milliseconds, or -1. */
int64_t skiff_cron_parse_duration(const char *s);

#ifdef __cplusplus
}
#endif
#endif
