/* plugins/controllers/serviceaccount/serviceaccount.c - the ServiceAccount
 * controller: a ServiceAccount named "default" in every active namespace,
 * created when the namespace appears and again if someone deletes it, as
 * kube-controller-manager's serviceaccount controller does. Like current
 * Kubernetes it makes no token Secrets: pods get short-lived tokens from
 * the TokenRequest API. It never deletes anything. */
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>
#include <skiff/objects.h>
#include <skiff/plugin.h>

#define DEFAULT_SA "default"

static const skiff_resource_t res_namespaces = {"", "v1", "namespaces", NULL};
static const skiff_resource_t res_serviceaccounts = {"", "v1", "serviceaccounts", NULL};

typedef struct sa_state {
    skiff_controller_t *c;
    skiff_controller_watch_t watches[1];
    skiff_controller_desc_t desc;
} sa_state_t;

static int namespace_active(const json_t *ns)
{
    json_t *meta = json_object_get(ns, "metadata");
    if (json_object_get(meta, "deletionTimestamp")) return 0;
    const char *phase = json_string_value(json_object_get(json_object_get(ns, "status"), "phase"));
    return !phase || strcmp(phase, "Terminating") != 0;
}

static void on_created(void *data, int status, json_t *obj)
{
    skiff_reconcile_t *r = data;
    /* 409: it exists after all; 403/404: the namespace is going away */
    if ((status >= 200 && status < 300) || status == 409 || status == 403 || status == 404) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_EIO});
}

/* Keys are namespace names. */
static void sa_reconcile(skiff_reconcile_t *r)
{
    sa_state_t *s = r->data;
    json_t *ns = skiff_informer_get(skiff_controller_informer(s->c), r->name);
    char key[512];
    snprintf(key, sizeof key, "%s/%s", r->name, DEFAULT_SA);
    if (!ns || !namespace_active(ns) ||
        skiff_informer_get(skiff_controller_secondary_informer(s->c, 0), key)) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    json_t *sa = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                           "ServiceAccount", "metadata", "name", DEFAULT_SA, "namespace", r->name);
    int rc = skiff_client_create(r->ctx->client, &res_serviceaccounts, r->name, sa, NULL,
                                 on_created, r);
    json_decref(sa);
    if (rc != 0)
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, rc});
}

/* A default ServiceAccount that changed or went away: look at its namespace. */
static void map_sa(void *data, skiff_controller_t *c, json_t *sa)
{
    json_t *meta = json_object_get(sa, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (name && ns && strcmp(name, DEFAULT_SA) == 0) skiff_controller_enqueue(c, ns);
}

static int sa_start(skiff_plugin_ctx_t *ctx)
{
    sa_state_t *s = calloc(1, sizeof *s);
    if (!s) return SKIFF_ENOMEM;
    s->watches[0] = (skiff_controller_watch_t){.resource = res_serviceaccounts, .map = map_sa};
    s->desc = (skiff_controller_desc_t){
        .name = "serviceaccount",
        .primary = res_namespaces,
        .primary_kind = "Namespace",
        .primary_api_version = "v1",
        .primary_cluster_scoped = 1,
        .secondary = s->watches,
        .n_secondary = 1,
        .reconcile = sa_reconcile,
        .workers = 2,
        .data = s,
    };
    int rc = skiff_controller_new(ctx, ctx->informers, &s->desc, &s->c);
    if (rc == 0) rc = skiff_controller_start(s->c);
    if (rc != 0) {
        if (s->c) skiff_controller_free(s->c);
        free(s);
        return rc;
    }
    ctx->plugin_data = s;
    return 0;
}

static void sa_stop(skiff_plugin_ctx_t *ctx)
{
    sa_state_t *s = ctx->plugin_data;
    if (!s) return;
    ctx->plugin_data = NULL;
    /* reconciles in flight only touch r, which the runner keeps until done */
    skiff_controller_free(s->c);
    free(s);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-serviceaccount",
    .version = "1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "a default ServiceAccount in every namespace",
    .start = sa_start,
    .stop = sa_stop,
};
