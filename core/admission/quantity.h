/* core/admission/quantity.h - quantities in milli-units back to the
 * strings Kubernetes prints ("500m", "2", "128Mi", "1G"), for the sums
 * and totals admission reports (quota usage, pod totals), and the
 * resource names of a resource list in the order messages show them. */
#ifndef SKIFF_ADMISSION_QUANTITY_H
#define SKIFF_ADMISSION_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Whole numbers divisible by 1024 take a binary suffix (Ki..Pi) unless
 * decimal is set, else those divisible by 1000 a decimal one (k..P);
 * fractions print as milli-units ("250m"). */
void quantity_format(int64_t milli, int decimal, char *buf, size_t len);

/* The keys of a resource list ({"cpu": ..., "memory": ...}) sorted, at most
 * max of them, borrowed from o: Kubernetes' messages list resources sorted,
 * and a stable order keeps them the same from run to run. */
size_t resource_names_sorted(const json_t *o, const char **keys, size_t max);

#endif
