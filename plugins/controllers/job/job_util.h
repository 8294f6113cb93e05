/* plugins/controllers/job/job_util.h - the Job controller's pure helpers:
 * completed-index sets and their compressed range strings, pod creation
 * back-off, and duration settings. No I/O, so unit tests link them alone. */
#ifndef SKIFF_JOB_UTIL_H
#define SKIFF_JOB_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A set of completion indexes [0, n): one byte per index. */
typedef struct job_index_set {
    uint8_t *has;
    int64_t n;
} job_index_set_t;

/* 0 or -1 (out of memory). n may be 0. */
int job_index_set_init(job_index_set_t *s, int64_t n);
void job_index_set_free(job_index_set_t *s);
/* Marks the indexes of a status.completedIndexes string ("0-2,4,7-9");
 * indexes at or above n are ignored, as Kubernetes ignores them once
 * completions shrink. 0, or -1 for a malformed string (what parsed before
 * the error stays marked). NULL or "" marks nothing. */
int job_index_set_parse(job_index_set_t *s, const char *text);
/* Number of indexes marked. */
int64_t job_index_set_count(const job_index_set_t *s);
/* The compressed form, ascending ("0-2,4"; "" when empty), as a new string
 * the caller frees; NULL when out of memory. Runs of two are written as a
 * list ("3,4"), as Kubernetes writes them. */
char *job_index_set_format(const job_index_set_t *s);

/* A pod's completion index from its annotation text, or -1 when absent or
 * not a plain decimal number. */
int64_t job_parse_index(const char *text);

/* Delay before the next pod may be created after `failures` consecutive
 * pod failures: 0 for none, else base doubling per failure, capped at max
 * (Kubernetes: 10 s doubling up to 6 min). */
int64_t job_backoff_delay_ms(int64_t failures, int64_t base_ms, int64_t max_ms);

/* A duration such as "10s", "250ms", "6m", "1h30m" in milliseconds, or -1. */
int64_t job_parse_duration_ms(const char *text);

#endif
