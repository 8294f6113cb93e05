/* core/security/rbac.h - authorization: RBAC, the node authorizer, the
 * Kubernetes denial message and the default roles.
 *
 * The API server owns the RBAC objects (it feeds them from its watch
 * caches) and asks for decisions here; this module never reads the store
 * nor answers HTTP. Rule semantics are those of Kubernetes'
 * rbac.authorization.k8s.io/v1: apiGroups, resources ("res",
 * "res/sub", "*\/sub", "*"), verbs, resourceNames and nonResourceURLs
 * (exact, "*" or a trailing "*" prefix), aggregated ClusterRoles, and
 * subjects User, Group and ServiceAccount. */
#ifndef SKIFF_RBAC_H
#define SKIFF_RBAC_H

#include <stddef.h>

#include <jansson.h>

/* Who is asking, as authentication found them. */
typedef struct rbac_user {
    const char *name;           /* "alice", "system:serviceaccount:ns:sa", "system:node:n1" */
    const char *const *groups;  /* ngroups names: "system:authenticated", ... */
    size_t ngroups;
    const json_t *extra;        /* user.extra (object of string arrays) or NULL; unused by RBAC */
} rbac_user_t;

/* What is asked: a resource request (resource != NULL) or a non-resource
 * one (path != NULL, resource NULL). Strings may be NULL where empty. */
typedef struct rbac_attrs {
    const char *verb;        /* "get", "list", "watch", "create", "update", "patch", "delete",
                                "deletecollection", "impersonate", ...; for paths the
                                lower-case HTTP method ("get", "post", ...) */
    const char *api_group;   /* "" for core */
    const char *resource;    /* "pods" */
    const char *subresource; /* "status", "log", or NULL */
    const char *namespace;   /* NULL or "" for cluster-scoped requests */
    const char *name;        /* object name, NULL for list/watch/create without a name */
    const char *path;        /* non-resource URL path: "/metrics", "/healthz" */
} rbac_attrs_t;

typedef enum {
    RBAC_NO_OPINION = 0, /* this authorizer does not decide; the next one does */
    RBAC_ALLOW = 1,
    RBAC_DENY = 2,
} rbac_verdict_t;

typedef struct rbac_decision {
    rbac_verdict_t verdict;
    /* Allow: which binding allowed it ('RBAC: allowed by ClusterRoleBinding
     * "x" of ClusterRole "y" to User "z"'). Deny: why, or "" when there is
     * nothing to add to the standard message. */
    char reason[512];
} rbac_decision_t;

/* ---- the RBAC index -------------------------------------------------------
 * Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, indexed by
 * subject. One object changes in O(its size) (plus the bindings of one
 * subject for a removal); aggregated ClusterRoles are recomputed lazily,
 * once after any ClusterRole changed. Not thread-safe: one writer, and no
 * decision while it writes. */
typedef struct rbac_index rbac_index_t;

rbac_index_t *rbac_index_new(void);
void rbac_index_free(rbac_index_t *idx);

/* Add or replace one object (kind read from obj's "kind": Role,
 * ClusterRole, RoleBinding or ClusterRoleBinding). obj stays the
 * caller's; what is needed is copied. 0, SKIFF_EINVAL (not an RBAC
 * object, no name) or SKIFF_ENOMEM. */
int rbac_index_put(rbac_index_t *idx, const json_t *obj);
/* Remove one object; kind as above, namespace NULL for cluster kinds.
 * 0 or SKIFF_ENOENT. */
int rbac_index_remove(rbac_index_t *idx, const char *kind, const char *namespace,
                      const char *name);
/* A watch event: type "ADDED", "MODIFIED" or "DELETED". */
int rbac_index_apply_event(rbac_index_t *idx, const char *type, const json_t *obj);
/* Number of objects held (all four kinds). */
size_t rbac_index_size(const rbac_index_t *idx);

/* Decide by RBAC alone: RBAC_ALLOW with the granting binding in reason,
 * or RBAC_NO_OPINION (reason ""). 0 or SKIFF_EINVAL (no verb, or
 * neither resource nor path). */
int rbac_authorize(rbac_index_t *idx, const rbac_user_t *user, const rbac_attrs_t *attrs,
                   rbac_decision_t *out);

/* What user may do in namespace (NULL or "": cluster-wide bindings
 * only), as a SelfSubjectRulesReview's status: a new object
 * {"resourceRules":[...],"nonResourceRules":[...],"incomplete":false}
 * (what `kubectl auth can-i --list` prints). NULL on allocation failure. */
json_t *rbac_rules_for(rbac_index_t *idx, const rbac_user_t *user, const char *namespace);

/* The effective rules of ClusterRole name (its own, or for an aggregated
 * role the union of the rules of the ClusterRoles its selectors match),
 * as a new JSON array of PolicyRules, for writing back into the object
 * the way Kubernetes' aggregation controller does. NULL if unknown. */
json_t *rbac_cluster_role_rules(rbac_index_t *idx, const char *name);

/* ---- matching one rule ------------------------------------------------------ */

/* 1 if the PolicyRule object rule allows attrs, else 0. */
int rbac_rule_allows(const json_t *rule, const rbac_attrs_t *attrs);

/* ---- the node authorizer ----------------------------------------------------
 * For users "system:node:<name>" in group "system:nodes". The caller
 * supplies what the decision needs to know about other objects, so no
 * server is required. */
typedef struct rbac_node_inputs {
    /* The pod a pods request is about (the stored one), or NULL. Its
     * spec.nodeName says whether it is bound to the node. */
    const json_t *pod;
    /* 1 if a pod bound to node uses the object (kind "Secret" or
     * "ConfigMap", namespace, name) through a volume, env or envFrom,
     * image pull secret or projection; 0 otherwise. NULL: nothing used. */
    int (*pod_uses)(void *data, const char *node, const char *kind, const char *namespace,
                    const char *name);
    void *data;
} rbac_node_inputs_t;

/* The node name if user is a node identity, else NULL (points into
 * user->name). */
const char *rbac_node_name(const rbac_user_t *user);

/* RBAC_NO_OPINION for users that are not nodes and for requests this
 * authorizer leaves to RBAC; RBAC_ALLOW or RBAC_DENY otherwise. A node
 * may read nodes and pods, get/create/update/patch its own Node (and
 * its status) and its Lease (namespace kube-node-lease, named like the
 * node), update the status of and delete pods bound to it, get the
 * Secrets and ConfigMaps those pods use, and write events. in may be
 * NULL. 0 or SKIFF_EINVAL. */
int rbac_node_authorize(const rbac_user_t *user, const rbac_attrs_t *attrs,
                        const rbac_node_inputs_t *in, rbac_decision_t *out);

/* The whole chain the API server runs: the node authorizer, then RBAC;
 * no opinion from both is a denial. out->verdict is RBAC_ALLOW or
 * RBAC_DENY. idx may be NULL (no RBAC objects yet). */
int rbac_authorize_request(rbac_index_t *idx, const rbac_user_t *user,
                           const rbac_attrs_t *attrs, const rbac_node_inputs_t *node,
                           rbac_decision_t *out);

/* ---- messages ----------------------------------------------------------------- */

/* The Status message of a 403, worded as Kubernetes words it:
 *   pods is forbidden: User "alice" cannot list resource "pods" in API
 *     group "" in the namespace "default"
 *   nodes "n1" is forbidden: User "u" cannot patch resource "nodes" in API
 *     group "" at the cluster scope
 *   forbidden: User "bob" cannot get path "/metrics"
 * reason (may be NULL or "") is appended after ": ". Writes at most n
 * bytes; returns the length the whole message needs (like snprintf). */
size_t rbac_forbidden_message(const rbac_user_t *user, const rbac_attrs_t *attrs,
                              const char *reason, char *buf, size_t n);

/* ---- default roles -------------------------------------------------------------
 * The ClusterRoles and ClusterRoleBindings every cluster starts with
 * (core/security/default_roles.c): cluster-admin, admin, edit, view,
 * system:basic-user, system:discovery, system:public-info-viewer and the
 * roles of Skiff's own components, each labelled
 * kubernetes.io/bootstrapping=rbac-defaults. The server creates the
 * missing ones at start. */

/* A new JSON array of the default objects, ClusterRoles first;
 * aggregated roles carry their aggregated rules. NULL on allocation
 * failure. */
json_t *rbac_default_objects_new(void);

#endif
