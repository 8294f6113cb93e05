/* core/util/log.c - log lines on stderr with a timestamp and component. */
#include "util/log.h"

#include <stdio.h>
#include <time.h>

static int current_level = LOG_INFO;
static const char *const level_names[] = {"E", "W", "I", "D"};

void log_set_level(int level) { current_level = level; }
int log_get_level(void) { return current_level; }

void log_vmsg(int level, const char *component, const char *fmt, va_list ap)
{
    if (level > current_level) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%s %02d:%02d:%02d.%03ld %s: ",
                     level_names[level < 0 ? 0 : level > 3 ? 3 : level], tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, component ? component : "skiff");
    if (n < 0) return;
    if ((size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", line);
}

void log_msg(int level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}
