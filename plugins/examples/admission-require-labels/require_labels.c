/* plugins/examples/admission-require-labels/require_labels.c - an
 * admission plugin that refuses to create namespaces (or whatever
 * resources it is set to watch) without the labels a cluster's policy
 * requires, for example an "owner" to call when something goes wrong.
 *
 * The worked example of docs/plugins.md ("Writing an admission plugin"):
 * one descriptor, two settings, one validate hook. Enable it with
 *   skiff server --enable-admission-plugins admission-require-labels \
 *     --admission-plugin-settings "admission-require-labels.labels=owner,team"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/admission.h>
#include <skiff/errors.h>

static const skiff_setting_t settings[] = {
    {"labels", SKIFF_SETTING_STRING, "owner", "labels every new object must carry, comma-separated"},
    {"resources", SKIFF_SETTING_STRING, "namespaces",
     "resources whose new objects are checked, comma-separated (\"pods,namespaces\")"},
    {NULL},
};

/* Is word one of the comma-separated items of list? */
static int in_list(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static int validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req)
{
    if (req->operation != SKIFF_ADMISSION_CREATE || req->subresource[0]) return SKIFF_ADMISSION_ALLOW;
    if (!in_list(ctx->setting(ctx, "resources"), req->resource)) return SKIFF_ADMISSION_ALLOW;
    const json_t *labels = json_object_get(json_object_get(req->object, "metadata"), "labels");
    const char *want = ctx->setting(ctx, "labels");
    char missing[512] = "";
    for (const char *p = want; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)len, p);
        if (key[0] && !json_object_get(labels, key)) {
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "", key);
        }
        p = end ? end + 1 : NULL;
    }
    if (!missing[0]) return SKIFF_ADMISSION_ALLOW;
    return skiff_admission_deny(req, 403, "missing required label(s): %s (add them under metadata.labels)",
                                missing);
}

static const skiff_admission_vtable_t vtable = {.validate = validate};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "admission-require-labels",
    .version = "1.0.0",
    .kind = SKIFF_PLUGIN_ADMISSION,
    .description = "refuses new objects without the labels the cluster requires",
    .settings = settings,
    .vtable = &vtable,
};
