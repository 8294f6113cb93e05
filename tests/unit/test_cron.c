/* tests/unit/test_cron.c - CronJob schedules: what the parser accepts and
 * refuses (as Kubernetes' parser does), and the next activation for
 * steps, ranges, lists, names, descriptors, @every, day-of-month versus
 * day-of-week, impossible dates, time zones and a daylight saving
 * change. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <skiff/cron.h>

/* Seconds since the epoch of a UTC time "YYYY-MM-DDTHH:MM:SS". */
static int64_t utc(const char *s)
{
    struct tm tm = {0};
    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%S", &tm));
    return (int64_t)timegm(&tm);
}

static void show(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
}

/* The next activation after `after` (UTC text) in zone, as UTC text. */
static void expect_next(const char *spec, const char *zone, const char *after, const char *want)
{
    skiff_cron_schedule_t s;
    char err[256] = "";
    if (skiff_cron_parse(spec, &s, err, sizeof err) != 0) fail_msg("%s: %s", spec, err);
    int64_t n = skiff_cron_next_in_zone(&s, utc(after), zone ? zone : "UTC");
    char got[64] = "never";
    if (n >= 0) show(n, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("%s (zone %s) after %s: want %s, got %s", spec, zone ? zone : "UTC", after, want,
                 got);
}

static void expect_error(const char *spec, const char *text)
{
    skiff_cron_schedule_t s;
    char err[256] = "";
    if (skiff_cron_parse(spec, &s, err, sizeof err) == 0) fail_msg("\"%s\" was accepted", spec);
    if (!strstr(err, text)) fail_msg("\"%s\": error \"%s\" lacks \"%s\"", spec, err, text);
}

static void test_refused(void **state)
{
    expect_error("", "empty spec string");
    expect_error("* * * *", "expected exactly 5 fields, found 4");
    expect_error("0 0 * * * *", "expected exactly 5 fields, found 6");
    expect_error("60 * * * *", "end of range (60) above maximum (59)");
    expect_error("* 24 * * *", "above maximum (23)");
    expect_error("* * 0 * *", "beginning of range (0) below minimum (1)");
    expect_error("* * * 13 *", "above maximum (12)");
    expect_error("* * * * 7", "end of range (7) above maximum (6)"); /* 0-6 only */
    expect_error("*/0 * * * *", "step of range should be a positive number");
    expect_error("5-1 * * * *", "beginning of range (5) beyond end of range (1)");
    expect_error("1-2-3 * * * *", "too many hyphens");
    expect_error("a * * * *", "failed to parse int from a");
    expect_error("* * * FOO *", "failed to parse int from FOO");
    expect_error("1,,2 * * * *", "failed to parse int");
    expect_error("@fortnightly", "unrecognized descriptor: @fortnightly");
    expect_error("@every soon", "failed to parse duration");
    expect_error("TZ=UTC * * * * *", "use timeZone field instead");
    expect_error("CRON_TZ=UTC * * * * *", "use timeZone field instead");
}

static void test_fields(void **state)
{
    expect_next("* * * * *", NULL, "2026-01-01T00:00:00", "2026-01-01T00:01:00");
    expect_next("* * * * *", NULL, "2026-01-01T00:00:30", "2026-01-01T00:01:00");
    expect_next("*/15 * * * *", NULL, "2026-01-01T00:07:00", "2026-01-01T00:15:00");
    expect_next("*/15 * * * *", NULL, "2026-01-01T00:45:00", "2026-01-01T01:00:00");
    expect_next("5/20 * * * *", NULL, "2026-01-01T00:06:00", "2026-01-01T00:25:00");
    expect_next("10-20/5 * * * *", NULL, "2026-01-01T00:16:00", "2026-01-01T00:20:00");
    expect_next("10-20/5 * * * *", NULL, "2026-01-01T00:20:00", "2026-01-01T01:10:00");
    expect_next("0,30 9,17 * * *", NULL, "2026-01-01T09:10:00", "2026-01-01T09:30:00");
    expect_next("0,30 9,17 * * *", NULL, "2026-01-01T09:30:00", "2026-01-01T17:00:00");
    expect_next("0 0 1 */3 *", NULL, "2026-02-10T00:00:00", "2026-04-01T00:00:00");
    expect_next("0 12 * JAN-mar mon-FRI", NULL, "2026-03-31T12:00:00", "2027-01-01T12:00:00");
    expect_next("0 12 ? * SUN", NULL, "2026-01-01T00:00:00", "2026-01-04T12:00:00");
    expect_next("59 23 31 12 *", NULL, "2026-06-01T00:00:00", "2026-12-31T23:59:00");
}

static void test_days(void **state)
{
    /* both restricted: the 13th OR a Friday (1 Feb 2026 is a Sunday) */
    expect_next("0 0 13 * 5", NULL, "2026-02-01T00:00:00", "2026-02-06T00:00:00");
    /* day-of-week "*": the 13th only */
    expect_next("0 0 13 * *", NULL, "2026-02-01T00:00:00", "2026-02-13T00:00:00");
    /* a day-of-week step is no longer "*": still OR */
    expect_next("0 0 1 * */2", NULL, "2026-02-01T00:00:00", "2026-02-03T00:00:00");
    /* leap day */
    expect_next("0 0 29 2 *", NULL, "2026-03-01T00:00:00", "2028-02-29T00:00:00");
    /* never: 30 February */
    expect_next("0 0 30 2 *", NULL, "2026-01-01T00:00:00", "never");
}

static void test_descriptors(void **state)
{
    expect_next("@hourly", NULL, "2026-01-01T10:20:00", "2026-01-01T11:00:00");
    expect_next("@daily", NULL, "2026-01-01T10:20:00", "2026-01-02T00:00:00");
    expect_next("@midnight", NULL, "2026-01-01T10:20:00", "2026-01-02T00:00:00");
    expect_next("@weekly", NULL, "2026-01-01T10:20:00", "2026-01-04T00:00:00");
    expect_next("@monthly", NULL, "2026-01-01T10:20:00", "2026-02-01T00:00:00");
    expect_next("@yearly", NULL, "2026-01-01T10:20:00", "2027-01-01T00:00:00");
    expect_next("@annually", NULL, "2026-01-01T10:20:00", "2027-01-01T00:00:00");
    expect_next("@every 90s", NULL, "2026-01-01T10:20:00", "2026-01-01T10:21:30");
    expect_next("@every 1h30m", NULL, "2026-01-01T10:20:00", "2026-01-01T11:50:00");
    expect_next("@every 100ms", NULL, "2026-01-01T10:20:00", "2026-01-01T10:20:01");
}

static void test_zones(void **state)
{
    assert_true(skiff_cron_zone_valid("Europe/Paris"));
    assert_true(skiff_cron_zone_valid("UTC"));
    assert_false(skiff_cron_zone_valid("Mars/Olympus"));
    assert_false(skiff_cron_zone_valid("../etc/passwd"));
    assert_false(skiff_cron_zone_valid("/usr/share/zoneinfo/UTC"));
    assert_false(skiff_cron_zone_valid(""));
    /* 09:00 in Paris is 07:00 UTC in summer, 08:00 in winter */
    expect_next("0 9 * * *", "Europe/Paris", "2026-07-01T00:00:00", "2026-07-01T07:00:00");
    expect_next("0 9 * * *", "Europe/Paris", "2026-12-01T00:00:00", "2026-12-01T08:00:00");
    expect_next("0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00:00", "2026-01-01T18:30:00");
    /* 02:30 does not exist in New York on 8 March 2026: that day is skipped */
    expect_next("30 2 * * *", "America/New_York", "2026-03-07T08:00:00", "2026-03-09T06:30:00");
    /* the zone is restored afterwards */
    const char *tz = getenv("TZ");
    expect_next("0 0 * * *", "Asia/Tokyo", "2026-01-01T00:00:00", "2026-01-01T15:00:00");
    const char *after = getenv("TZ");
    if (tz) assert_string_equal(tz, after);
    else assert_null(after);
    assert_int_equal(skiff_cron_zone_offset("Asia/Kolkata", utc("2026-01-01T00:00:00")), 19800);
    assert_int_equal(skiff_cron_zone_offset("UTC", utc("2026-01-01T00:00:00")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),     cmocka_unit_test(test_fields),
        cmocka_unit_test(test_days),        cmocka_unit_test(test_descriptors),
        cmocka_unit_test(test_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
