/* core/controller/view_intern.h - the values the informer views (pod_view.c,
 * node_view.c) share across objects: one interner for the life of the
 * process, and the helpers that set a shared value on a view. */
#ifndef SKIFF_CONTROLLER_VIEW_INTERN_H
#define SKIFF_CONTROLLER_VIEW_INTERN_H

#include <jansson.h>

/* A new reference to the shared value equal to v, which is only read: a
 * copy of v becomes the shared one when there is none yet. NULL when out
 * of memory. */
json_t *view_intern(const json_t *v);
/* The shared value equal to v, a new tree of ours whose reference this
 * takes (v itself becomes the shared one when there is none yet); NULL
 * when v is NULL or out of memory. */
json_t *view_intern_own(json_t *v);
/* Sets the shared value equal to v (only read; may be NULL or null: then
 * nothing is set) on to as key; 0, or -1 when out of memory. */
int view_set_interned(json_t *to, const char *key, const json_t *v);
/* The same for a value of ours, whose reference this takes (no copy). */
int view_set_interned_own(json_t *to, const char *key, json_t *v);
/* view_set_interned for each member of from named in keys (NULL-terminated). */
int view_copy_interned(json_t *to, const json_t *from, const char *const *keys);
/* Sets metadata.annotations ann on m, shared, without kubectl's
 * last-applied-configuration (a copy of the whole object that no
 * reader of a view needs); nothing when none are left. */
int view_set_annotations(json_t *m, const json_t *ann);

#endif
