/* core/util/duration.h - Go-style durations ("200ms", "1s", "1m30s",
 * "1.5h"), as kubectl and Kubernetes annotations write them. */
#ifndef SKIFF_DURATION_H
#define SKIFF_DURATION_H

#include <stdint.h>

/* Parses s into milliseconds (rounded down). Units: ns, us, ms, s, m, h;
 * "0" alone needs none. 0, or -1 when malformed, negative or too large. */
int duration_parse_ms(const char *s, int64_t *ms);

#endif
