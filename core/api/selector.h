/* core/api/selector.h - label and field selectors, as list and watch take them.
 *
 * Label selectors use the Kubernetes string syntax (`a=b`, `a==b`, `a!=b`,
 * `a in (x,y)`, `a notin (x)`, `a`, `!a`) or the metav1.LabelSelector JSON
 * form (matchLabels, matchExpressions). Field selectors are `path=value`,
 * `path==value` and `path!=value` on dotted paths (`metadata.name`,
 * `spec.nodeName`, `involvedObject.uid`, ...). */
#ifndef SKIFF_SELECTOR_H
#define SKIFF_SELECTOR_H

#include <stddef.h>

#include <jansson.h>

typedef struct label_selector label_selector_t;
typedef struct field_selector field_selector_t;

/* Parse a string selector; NULL or "" selects everything.
 * 0, or SKIFF_EINVAL with a message in err naming the bad part. */
int label_selector_parse(const char *s, label_selector_t **out, char *err, size_t errlen);
/* From a metav1.LabelSelector object (NULL or {} selects everything). */
int label_selector_from_json(const json_t *sel, label_selector_t **out, char *err, size_t errlen);
/* labels: the object's metadata.labels (may be NULL). */
int label_selector_matches(const label_selector_t *sel, const json_t *labels);
int label_selector_empty(const label_selector_t *sel);
/* String form ("app=web,tier in (a,b)"), newly allocated; free(). */
char *label_selector_string(const label_selector_t *sel);
void label_selector_free(label_selector_t *sel);

int field_selector_parse(const char *s, field_selector_t **out, char *err, size_t errlen);
/* Matches obj (a whole object); a missing field compares as "". */
int field_selector_matches(const field_selector_t *sel, const json_t *obj);
int field_selector_empty(const field_selector_t *sel);
/* The value required for `path` with `=`, if the selector has such a term (for indexes). */
const char *field_selector_require(const field_selector_t *sel, const char *path);
void field_selector_free(field_selector_t *sel);

/* The terms of a field selector, for the API server to check that every
 * path is one the resource supports ("field label not supported"). */
size_t field_selector_count(const field_selector_t *sel);
const char *field_selector_path(const field_selector_t *sel, size_t i);

#endif
