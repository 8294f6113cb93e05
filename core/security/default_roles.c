/* core/security/default_roles.c - the ClusterRoles and ClusterRoleBindings
 * a new cluster starts with, in one table to review.
 *
 * The user-facing roles follow Kubernetes' defaults: cluster-admin
 * (everything), admin, edit and view (aggregated: their rules are the
 * union of the ClusterRoles carrying the matching aggregate-to-* label,
 * so they grow when a CRD's author adds a labelled role), basic-user,
 * discovery and public-info-viewer. The system roles of Skiff's own
 * components are ours: each lists only the resources that component
 * touches. Nodes get little here because the node authorizer
 * (rbac_node_authorize) decides about their own Node, Lease, pods,
 * Secrets and ConfigMaps. This file only builds objects; the API server
 * creates the missing ones at start. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "security/rbac.h"

#define RBAC_API "rbac.authorization.k8s.io/v1"
#define RBAC_GROUP "rbac.authorization.k8s.io"
#define AGG_PREFIX "rbac.authorization.k8s.io/aggregate-to-"

typedef struct role_row {
    const char *name;
    const char *labels;    /* extra labels, "key=value" separated by spaces */
    const char *aggregate; /* aggregationRule: matchLabels {<this>: "true"}; NULL if none */
} role_row_t;

static const role_row_t roles[] = {
    { "cluster-admin", NULL, NULL },
    { "admin", NULL, AGG_PREFIX "admin" },
    { "edit", AGG_PREFIX "admin=true", AGG_PREFIX "edit" },
    { "view", AGG_PREFIX "edit=true", AGG_PREFIX "view" },
    { "system:aggregate-to-admin", AGG_PREFIX "admin=true", NULL },
    { "system:aggregate-to-edit", AGG_PREFIX "edit=true", NULL },
    { "system:aggregate-to-view", AGG_PREFIX "view=true", NULL },
    { "system:basic-user", NULL, NULL },
    { "system:discovery", NULL, NULL },
    { "system:public-info-viewer", NULL, NULL },
    { "system:kube-scheduler", NULL, NULL },
    { "system:kube-controller-manager", NULL, NULL },
    { "system:node", NULL, NULL },
    /* joining nodes (TLS bootstrapping, as kubeadm sets it up) */
    { "system:node-bootstrapper", NULL, NULL },
    { "system:certificates.k8s.io:certificatesigningrequests:nodeclient", NULL, NULL },
    { "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", NULL, NULL },
};

/* One PolicyRule. group: one API group ("" core, "*" all); resources,
 * verbs and urls: space-separated. A row with urls is a non-resource
 * rule. */
typedef struct rule_row {
    const char *role;
    const char *group;
    const char *resources;
    const char *verbs;
    const char *urls;
} rule_row_t;

#define READ "get list watch"
#define WRITE "create delete deletecollection patch update"
#define ALL_VERBS "create delete deletecollection get list patch update watch"

static const rule_row_t rules[] = {
    /* Everything, including non-resource URLs (system:masters). */
    { "cluster-admin", "*", "*", "*", NULL },
    { "cluster-admin", NULL, NULL, "*", "*" },

    /* admin: edit, plus managing access within the namespace. */
    { "system:aggregate-to-admin", RBAC_GROUP, "roles rolebindings", ALL_VERBS, NULL },
    { "system:aggregate-to-admin", "authorization.k8s.io", "localsubjectaccessreviews",
      "create", NULL },

    /* edit: view, plus writing workloads, their configuration and secrets;
     * no roles or bindings, and no Endpoints writes (they would let a user
     * send a Service's traffic anywhere). */
    { "system:aggregate-to-edit", "", "pods/attach pods/exec pods/portforward pods/proxy "
      "secrets services/proxy", READ, NULL },
    { "system:aggregate-to-edit", "", "serviceaccounts", "impersonate", NULL },
    { "system:aggregate-to-edit", "", "pods pods/attach pods/exec pods/portforward pods/proxy",
      WRITE, NULL },
    { "system:aggregate-to-edit", "", "pods/eviction serviceaccounts/token", "create", NULL },
    { "system:aggregate-to-edit", "", "configmaps events persistentvolumeclaims "
      "replicationcontrollers replicationcontrollers/scale secrets serviceaccounts services "
      "services/proxy", WRITE, NULL },
    { "system:aggregate-to-edit", "apps", "daemonsets deployments deployments/rollback "
      "deployments/scale replicasets replicasets/scale statefulsets statefulsets/scale",
      WRITE, NULL },
    { "system:aggregate-to-edit", "autoscaling", "horizontalpodautoscalers", WRITE, NULL },
    { "system:aggregate-to-edit", "batch", "cronjobs jobs", WRITE, NULL },
    { "system:aggregate-to-edit", "policy", "poddisruptionbudgets", WRITE, NULL },
    { "system:aggregate-to-edit", "networking.k8s.io", "ingresses networkpolicies", WRITE, NULL },
    { "system:aggregate-to-edit", "coordination.k8s.io", "leases", ALL_VERBS, NULL },

    /* view: read the namespace's objects except Secrets (and so anything
     * that would reveal them: no exec, attach or proxy). */
    { "system:aggregate-to-view", "", "bindings configmaps endpoints events limitranges "
      "namespaces/status persistentvolumeclaims persistentvolumeclaims/status pods pods/log "
      "pods/status replicationcontrollers replicationcontrollers/scale "
      "replicationcontrollers/status resourcequotas resourcequotas/status serviceaccounts "
      "services services/status", READ, NULL },
    { "system:aggregate-to-view", "", "namespaces", READ, NULL },
    { "system:aggregate-to-view", "discovery.k8s.io", "endpointslices", READ, NULL },
    { "system:aggregate-to-view", "apps", "controllerrevisions daemonsets daemonsets/status "
      "deployments deployments/scale deployments/status replicasets replicasets/scale "
      "replicasets/status statefulsets statefulsets/scale statefulsets/status", READ, NULL },
    { "system:aggregate-to-view", "autoscaling", "horizontalpodautoscalers "
      "horizontalpodautoscalers/status", READ, NULL },
    { "system:aggregate-to-view", "batch", "cronjobs cronjobs/status jobs jobs/status", READ,
      NULL },
    { "system:aggregate-to-view", "policy", "poddisruptionbudgets poddisruptionbudgets/status",
      READ, NULL },
    { "system:aggregate-to-view", "networking.k8s.io", "ingresses ingresses/status "
      "networkpolicies", READ, NULL },

    /* Every authenticated user may ask what they may do and who they are. */
    { "system:basic-user", "authorization.k8s.io", "selfsubjectaccessreviews "
      "selfsubjectrulesreviews", "create", NULL },
    { "system:basic-user", "authentication.k8s.io", "selfsubjectreviews", "create", NULL },

    /* What kubectl reads before anything else. */
    { "system:discovery", NULL, NULL, "get", "/api /api/* /apis /apis/* /healthz /livez "
      "/openapi /openapi/* /readyz /version /version/" },
    { "system:public-info-viewer", NULL, NULL, "get", "/healthz /livez /readyz /version "
      "/version/" },

    /* The scheduler watches pods and nodes, binds pods, reports why a pod
     * does not fit (status conditions, events) and holds its leader
     * Lease. */
    { "system:kube-scheduler", "", "pods nodes", READ, NULL },
    { "system:kube-scheduler", "", "bindings pods/binding", "create", NULL },
    { "system:kube-scheduler", "", "pods/status", "patch update", NULL },
    { "system:kube-scheduler", "", "events", "create patch update", NULL },
    { "system:kube-scheduler", "events.k8s.io", "events", "create patch update", NULL },
    { "system:kube-scheduler", "coordination.k8s.io", "leases", "create get update", NULL },

    /* The controller manager watches every kind (the garbage collector
     * follows owner references across all of them, the namespace
     * controller empties terminating namespaces), so it reads, changes and
     * deletes everywhere; it creates only what its controllers make. */
    { "system:kube-controller-manager", "*", "*", READ, NULL },
    { "system:kube-controller-manager", "*", "*", "delete deletecollection patch update", NULL },
    { "system:kube-controller-manager", "", "pods events endpoints serviceaccounts configmaps",
      "create", NULL },
    { "system:kube-controller-manager", "apps", "replicasets controllerrevisions", "create",
      NULL },
    { "system:kube-controller-manager", "batch", "jobs", "create", NULL },
    { "system:kube-controller-manager", "discovery.k8s.io", "endpointslices", "create", NULL },
    { "system:kube-controller-manager", "events.k8s.io", "events", "create", NULL },
    { "system:kube-controller-manager", "coordination.k8s.io", "leases", "create", NULL },

    /* Nodes (beyond what the node authorizer grants): the proxy watches
     * Services and their endpoints; the agent checks the tokens and
     * permissions of requests made to its own API. */
    { "system:node", "", "services endpoints", READ, NULL },
    { "system:node", "discovery.k8s.io", "endpointslices", READ, NULL },
    { "system:node", "authentication.k8s.io", "tokenreviews", "create", NULL },
    { "system:node", "authorization.k8s.io", "subjectaccessreviews", "create", NULL },
    /* a node renews its client certificate with a new CSR */
    { "system:node", "certificates.k8s.io", "certificatesigningrequests", "create get list watch",
      NULL },
    /* A bootstrap token asks for a node's client certificate and waits for
     * it; the two approval roles are what csrapproving checks (create on
     * the nodeclient / selfnodeclient subresources). */
    { "system:node-bootstrapper", "certificates.k8s.io", "certificatesigningrequests",
      "create get list watch", NULL },
    { "system:certificates.k8s.io:certificatesigningrequests:nodeclient", "certificates.k8s.io",
      "certificatesigningrequests/nodeclient", "create", NULL },
    { "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
      "certificates.k8s.io", "certificatesigningrequests/selfnodeclient", "create", NULL },
};

typedef struct binding_row {
    const char *name; /* also the ClusterRole it grants, unless role is set */
    const char *kind; /* subject kind: "User" or "Group" */
    const char *subject;
    const char *role; /* the ClusterRole, when it is not named like the binding */
} binding_row_t;

static const binding_row_t bindings[] = {
    { "cluster-admin", "Group", "system:masters" },
    { "system:basic-user", "Group", "system:authenticated" },
    { "system:discovery", "Group", "system:authenticated" },
    { "system:public-info-viewer", "Group", "system:authenticated" },
    { "system:public-info-viewer", "Group", "system:unauthenticated" },
    { "system:kube-scheduler", "User", "system:kube-scheduler" },
    { "system:kube-controller-manager", "User", "system:kube-controller-manager" },
    { "system:node", "Group", "system:nodes" },
    /* the bindings kubeadm makes for TLS bootstrapping */
    { "skiff:kubelet-bootstrap", "Group", "system:bootstrappers", "system:node-bootstrapper" },
    { "skiff:node-autoapprove-bootstrap", "Group", "system:bootstrappers",
      "system:certificates.k8s.io:certificatesigningrequests:nodeclient" },
    { "skiff:node-autoapprove-certificate-rotation", "Group", "system:nodes",
      "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient" },
};

/* ---- building the objects ----------------------------------------------------- */

static json_t *words(const char *s)
{
    json_t *a = json_array();
    while (a && s && *s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n && json_array_append_new(a, json_stringn(s, n)) < 0) {
            json_decref(a);
            return NULL;
        }
        s += n;
    }
    return a;
}

static json_t *metadata(const char *name, const char *extra_labels)
{
    json_t *labels = json_pack("{s:s}", "kubernetes.io/bootstrapping", "rbac-defaults");
    json_t *extra = words(extra_labels);
    size_t i;
    json_t *w;
    json_array_foreach(extra, i, w) {
        const char *kv = json_string_value(w);
        const char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        char key[256];
        size_t kl = (size_t)(eq - kv);
        if (kl >= sizeof(key))
            continue;
        memcpy(key, kv, kl);
        key[kl] = '\0';
        json_object_set_new(labels, key, json_string(eq + 1));
    }
    json_decref(extra);
    return json_pack("{s:s, s:o, s:{s:s}}", "name", name, "labels", labels, "annotations",
                     "rbac.authorization.kubernetes.io/autoupdate", "true");
}

static json_t *rule_json(const rule_row_t *r)
{
    if (r->urls)
        return json_pack("{s:o, s:o}", "verbs", words(r->verbs), "nonResourceURLs",
                         words(r->urls));
    return json_pack("{s:[s], s:o, s:o}", "apiGroups", r->group, "resources",
                     words(r->resources), "verbs", words(r->verbs));
}

static json_t *cluster_role(const role_row_t *row)
{
    json_t *role = json_pack("{s:s, s:s, s:o, s:[]}", "apiVersion", RBAC_API, "kind",
                             "ClusterRole", "metadata", metadata(row->name, row->labels),
                             "rules");
    if (!role)
        return NULL;
    json_t *list = json_object_get(role, "rules");
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (strcmp(rules[i].role, row->name) != 0)
            continue;
        if (json_array_append_new(list, rule_json(&rules[i])) < 0) {
            json_decref(role);
            return NULL;
        }
    }
    if (row->aggregate &&
        json_object_set_new(role, "aggregationRule",
                            json_pack("{s:[{s:{s:s}}]}", "clusterRoleSelectors", "matchLabels",
                                      row->aggregate, "true")) < 0) {
        json_decref(role);
        return NULL;
    }
    return role;
}

static json_t *cluster_role_binding(const char *name)
{
    const char *role = name;
    json_t *subjects = json_array();
    for (size_t i = 0; subjects && i < sizeof(bindings) / sizeof(bindings[0]); i++) {
        if (strcmp(bindings[i].name, name) != 0)
            continue;
        if (bindings[i].role) role = bindings[i].role;
        if (json_array_append_new(subjects,
                                  json_pack("{s:s, s:s, s:s}", "apiGroup", RBAC_GROUP, "kind",
                                            bindings[i].kind, "name", bindings[i].subject)) < 0) {
            json_decref(subjects);
            return NULL;
        }
    }
    return json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:s}, s:o}", "apiVersion", RBAC_API, "kind",
                     "ClusterRoleBinding", "metadata", metadata(name, NULL), "roleRef",
                     "apiGroup", RBAC_GROUP, "kind", "ClusterRole", "name", role, "subjects",
                     subjects);
}

/* Aggregated roles carry the union of their members' rules, as
 * Kubernetes' aggregation controller writes it. */
static int fill_aggregated(json_t *out, size_t nroles)
{
    rbac_index_t *idx = rbac_index_new();
    if (!idx)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < nroles && rc == 0; i++)
        rc = rbac_index_put(idx, json_array_get(out, i));
    for (size_t i = 0; i < nroles && rc == 0; i++) {
        json_t *role = json_array_get(out, i);
        if (!json_object_get(role, "aggregationRule"))
            continue;
        const char *name =
            json_string_value(json_object_get(json_object_get(role, "metadata"), "name"));
        json_t *agg = rbac_cluster_role_rules(idx, name);
        if (!agg || json_object_set_new(role, "rules", agg) < 0)
            rc = -1;
    }
    rbac_index_free(idx);
    return rc;
}

json_t *rbac_default_objects_new(void)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    size_t nroles = sizeof(roles) / sizeof(roles[0]);
    for (size_t i = 0; i < nroles; i++)
        if (json_array_append_new(out, cluster_role(&roles[i])) < 0)
            goto fail;
    for (size_t i = 0; i < sizeof(bindings) / sizeof(bindings[0]); i++) {
        /* One binding per role; its rows are merged into one subject list. */
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(bindings[j].name, bindings[i].name) == 0)
                first = 0;
        if (first && json_array_append_new(out, cluster_role_binding(bindings[i].name)) < 0)
            goto fail;
    }
    if (fill_aggregated(out, nroles) < 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}
