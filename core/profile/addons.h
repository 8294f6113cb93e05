/* core/profile/addons.h - applies a profile's addon manifests (files and
 * folders of YAML or JSON objects) into the cluster at start, and again
 * when a file changes, the way k3s deploys its manifests folder.
 *
 * Objects go into kube-system unless they name a namespace. Each is
 * created, or merge-patched when it exists (field manager skiff-addons):
 * fields the file sets win, fields others set stay. An object removed from
 * its file (or a file deleted) is left in the cluster. Errors are logged
 * with the file and document number, kept in the ConfigMap
 * kube-system/skiff-addons (one entry per file) and recorded as Warning
 * Events on it; they never stop the server. A file that failed is tried
 * again at every periodic rescan. */
#ifndef SKIFF_ADDONS_H
#define SKIFF_ADDONS_H

#include <jansson.h>
#include <uv.h>

#include "api/apiserver.h"

typedef struct addons addons_t;

typedef struct addons_opts {
    uv_loop_t *loop;
    api_server_t *api;
    const json_t *paths; /* strings: files, folders, or "builtin:NAME" */
    /* %{NAME}% in a file is replaced by vars' string NAME (copied) */
    const json_t *vars;
    int rescan_ms;       /* periodic rescan besides file-change events; 0: 10000 */
} addons_opts_t;

/* Starts the first apply at once. 0, or -1 when out of memory. With no
 * paths, *out is NULL and nothing runs. */
int addons_start(const addons_opts_t *o, addons_t **out);
/* Stops watching; requests in flight are dropped. done runs from the loop
 * once every handle is closed (at once when a is NULL). */
void addons_stop(addons_t *a, void (*done)(void *data), void *data);

/* %{NAME}% replaced by vars; a new string (NULL on ENOMEM). Unknown names
 * are left as they are. */
char *addons_substitute(const char *text, const json_t *vars);

#endif
