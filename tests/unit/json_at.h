/* tests/unit/json_at.h - json_at(o, "a.b.0.c"): the member of a jansson
 * tree at a dotted path (numbers index arrays), or NULL; for tests that
 * check many members of an object. Header only. */
#ifndef SKIFF_TESTS_JSON_AT_H
#define SKIFF_TESTS_JSON_AT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static inline json_t *json_at(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = json_is_array(o) ? json_array_get(o, (size_t)atoi(k)) : json_object_get(o, k);
    return o;
}

#endif
