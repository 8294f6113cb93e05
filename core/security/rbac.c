/* core/security/rbac.c - the RBAC authorizer, its index of RBAC objects,
 * the node authorizer and the Kubernetes denial message.
 *
 * The index keeps, per object, only what decisions read (rules as string
 * arrays, role references, subjects) and a map from subject ("u:<user>",
 * "g:<group>") to the bindings naming it, so a decision looks at the
 * caller's own bindings only. ServiceAccount subjects are stored as the
 * user name their tokens carry (system:serviceaccount:<ns>:<name>).
 * Aggregated ClusterRoles are resolved lazily: any ClusterRole change
 * bumps an epoch and each aggregated role recomputes its rule list the
 * next time it is used. This file decides; it never answers HTTP. */
#include "security/rbac.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>
#include <skiff/objects.h>

#include "api/selector.h"
#include "util/strmap.h"

/* ---- parsed objects ------------------------------------------------------- */

typedef struct rbac_rule {
    const char **verbs, **groups, **resources, **names, **urls; /* NULL-terminated */
    const json_t *json; /* the rule object inside its role's copy */
} rbac_rule_t;

typedef struct rbac_role {
    char *namespace; /* "" for ClusterRoles */
    char *name;
    json_t *copy;    /* deep copy of rules, labels and aggregationRule */
    rbac_rule_t *rules;
    size_t nrules;
    label_selector_t **agg; /* aggregationRule.clusterRoleSelectors */
    size_t nagg;
    int aggregated;
    /* Effective rules of an aggregated role, valid while eff_epoch equals
     * the index's epoch; they point into other roles' rules. */
    const rbac_rule_t **eff;
    size_t neff;
    unsigned long eff_epoch;
    int resolving; /* cycle guard while computing eff */
} rbac_role_t;

enum { SUBJ_USER = 0, SUBJ_GROUP = 1, SUBJ_SA = 2 };

typedef struct rbac_subject {
    int kind;
    char *key;      /* map key: "u:<user name>" or "g:<group>" */
    char *describe; /* 'User "alice"', 'ServiceAccount "ns/sa"' */
} rbac_subject_t;

typedef struct rbac_binding {
    char *namespace; /* "" for ClusterRoleBindings */
    char *name;
    int role_is_cluster;
    char *role_name;
    rbac_subject_t *subjects;
    size_t nsubjects;
} rbac_binding_t;

typedef struct binding_list {
    rbac_binding_t **v;
    size_t n, cap;
} binding_list_t;

struct rbac_index {
    strmap_t *roles;    /* "ns/name" -> rbac_role_t (Role) */
    strmap_t *croles;   /* name -> rbac_role_t (ClusterRole) */
    strmap_t *bindings; /* "ns/name" or "/name" -> rbac_binding_t */
    strmap_t *by_subject; /* subject key -> binding_list_t */
    unsigned long epoch;  /* bumped on every ClusterRole change */
    int cycle;            /* an aggregation cycle was met while resolving */
};

static const char *str_or(const char *s, const char *d)
{
    return s ? s : d;
}

static int empty(const char *s)
{
    return !s || !*s;
}

/* ---- roles ----------------------------------------------------------------- */

static void role_free(void *p)
{
    rbac_role_t *r = p;
    if (!r)
        return;
    for (size_t i = 0; i < r->nrules; i++) {
        free(r->rules[i].verbs);
        free(r->rules[i].groups);
        free(r->rules[i].resources);
        free(r->rules[i].names);
        free(r->rules[i].urls);
    }
    free(r->rules);
    for (size_t i = 0; i < r->nagg; i++)
        label_selector_free(r->agg[i]);
    free(r->agg);
    free(r->eff);
    json_decref(r->copy);
    free(r->namespace);
    free(r->name);
    free(r);
}

/* A NULL-terminated array of the strings of a JSON array (non-strings
 * skipped); the strings stay owned by the JSON. */
static const char **str_list(const json_t *arr, int *oom)
{
    size_t n = json_array_size(arr), k = 0;
    const char **out = calloc(n + 1, sizeof(*out));
    if (!out) {
        *oom = 1;
        return NULL;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v))
            out[k++] = json_string_value(v);
    }
    return out;
}

static int parse_rules(rbac_role_t *r, const json_t *rules)
{
    size_t n = json_array_size(rules);
    if (!n)
        return 0;
    r->rules = calloc(n, sizeof(*r->rules));
    if (!r->rules)
        return SKIFF_ENOMEM;
    size_t i;
    const json_t *rule;
    int oom = 0;
    json_array_foreach(rules, i, rule) {
        if (!json_is_object(rule))
            continue;
        rbac_rule_t *x = &r->rules[r->nrules++];
        x->json = rule;
        x->verbs = str_list(json_object_get(rule, "verbs"), &oom);
        x->groups = str_list(json_object_get(rule, "apiGroups"), &oom);
        x->resources = str_list(json_object_get(rule, "resources"), &oom);
        x->names = str_list(json_object_get(rule, "resourceNames"), &oom);
        x->urls = str_list(json_object_get(rule, "nonResourceURLs"), &oom);
    }
    return oom ? SKIFF_ENOMEM : 0;
}

static rbac_role_t *role_new(const json_t *obj, const char *ns, const char *name, int *rc)
{
    rbac_role_t *r = calloc(1, sizeof(*r));
    if (!r)
        goto oom;
    r->namespace = strdup(ns);
    r->name = strdup(name);
    r->copy = json_object();
    if (!r->namespace || !r->name || !r->copy)
        goto oom;
    const json_t *rules = json_object_get(obj, "rules");
    const json_t *aggr = json_object_get(obj, "aggregationRule");
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    if (json_is_array(rules) && json_object_set_new(r->copy, "rules", skiff_json_copy(rules)) < 0)
        goto oom;
    if (json_is_object(labels) &&
        json_object_set_new(r->copy, "labels", skiff_json_copy(labels)) < 0)
        goto oom;
    if (parse_rules(r, json_object_get(r->copy, "rules")) < 0)
        goto oom;
    if (json_is_object(aggr) && *ns == '\0') {
        /* Kubernetes' aggregation controller overwrites rules with the
         * union, so an aggregated role's own rules never count. */
        r->aggregated = 1;
        const json_t *sels = json_object_get(aggr, "clusterRoleSelectors");
        size_t n = json_array_size(sels);
        r->agg = n ? calloc(n, sizeof(*r->agg)) : NULL;
        if (n && !r->agg)
            goto oom;
        size_t i;
        const json_t *sel;
        json_array_foreach(sels, i, sel) {
            char err[128];
            label_selector_t *ls = NULL;
            /* A selector that does not parse selects nothing. */
            if (label_selector_from_json(sel, &ls, err, sizeof(err)) == 0 && ls)
                r->agg[r->nagg++] = ls;
        }
    }
    return r;
oom:
    role_free(r);
    *rc = SKIFF_ENOMEM;
    return NULL;
}

/* ---- bindings ---------------------------------------------------------------- */

static void binding_free(void *p)
{
    rbac_binding_t *b = p;
    if (!b)
        return;
    for (size_t i = 0; i < b->nsubjects; i++) {
        free(b->subjects[i].key);
        free(b->subjects[i].describe);
    }
    free(b->subjects);
    free(b->namespace);
    free(b->name);
    free(b->role_name);
    free(b);
}

static char *printf_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *printf_new(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static rbac_binding_t *binding_new(const json_t *obj, const char *ns, const char *name, int *rc)
{
    rbac_binding_t *b = calloc(1, sizeof(*b));
    if (!b)
        goto oom;
    const json_t *ref = json_object_get(obj, "roleRef");
    const char *rkind = json_string_value(json_object_get(ref, "kind"));
    b->role_is_cluster = rkind && strcmp(rkind, "ClusterRole") == 0;
    /* A ClusterRoleBinding can only refer to a ClusterRole. */
    if (*ns == '\0')
        b->role_is_cluster = 1;
    b->namespace = strdup(ns);
    b->name = strdup(name);
    b->role_name = strdup(str_or(json_string_value(json_object_get(ref, "name")), ""));
    const json_t *subs = json_object_get(obj, "subjects");
    size_t n = json_array_size(subs);
    b->subjects = n ? calloc(n, sizeof(*b->subjects)) : NULL;
    if (!b->namespace || !b->name || !b->role_name || (n && !b->subjects))
        goto oom;
    size_t i;
    const json_t *s;
    json_array_foreach(subs, i, s) {
        const char *kind = json_string_value(json_object_get(s, "kind"));
        const char *sname = json_string_value(json_object_get(s, "name"));
        if (!kind || empty(sname))
            continue;
        rbac_subject_t *x = &b->subjects[b->nsubjects];
        if (strcmp(kind, "User") == 0) {
            x->kind = SUBJ_USER;
            x->key = printf_new("u:%s", sname);
            x->describe = printf_new("User \"%s\"", sname);
        } else if (strcmp(kind, "Group") == 0) {
            x->kind = SUBJ_GROUP;
            x->key = printf_new("g:%s", sname);
            x->describe = printf_new("Group \"%s\"", sname);
        } else if (strcmp(kind, "ServiceAccount") == 0) {
            /* An empty namespace means the binding's own (RoleBindings). */
            const char *sns = json_string_value(json_object_get(s, "namespace"));
            if (empty(sns))
                sns = ns;
            if (empty(sns))
                continue;
            x->kind = SUBJ_SA;
            x->key = printf_new("u:system:serviceaccount:%s:%s", sns, sname);
            x->describe = printf_new("ServiceAccount \"%s/%s\"", sns, sname);
        } else {
            continue;
        }
        if (!x->key || !x->describe) {
            free(x->key);
            free(x->describe);
            goto oom;
        }
        b->nsubjects++;
    }
    return b;
oom:
    binding_free(b);
    *rc = SKIFF_ENOMEM;
    return NULL;
}

static void list_free(void *p)
{
    binding_list_t *l = p;
    if (l)
        free(l->v);
    free(l);
}

static int subject_add(rbac_index_t *idx, const char *key, rbac_binding_t *b)
{
    binding_list_t *l = strmap_get(idx->by_subject, key);
    if (!l) {
        l = calloc(1, sizeof(*l));
        if (!l)
            return SKIFF_ENOMEM;
        strmap_put(idx->by_subject, key, l);
        if (strmap_get(idx->by_subject, key) != l) {
            free(l);
            return SKIFF_ENOMEM;
        }
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == b)
            return 0; /* the same subject listed twice */
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 4;
        rbac_binding_t **nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv)
            return SKIFF_ENOMEM;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = b;
    return 0;
}

static void subject_remove(rbac_index_t *idx, const char *key, rbac_binding_t *b)
{
    binding_list_t *l = strmap_get(idx->by_subject, key);
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] == b) {
            l->v[i] = l->v[--l->n];
            break;
        }
    }
    if (!l->n)
        list_free(strmap_remove(idx->by_subject, key));
}

static void binding_unlink(rbac_index_t *idx, rbac_binding_t *b)
{
    for (size_t i = 0; i < b->nsubjects; i++)
        subject_remove(idx, b->subjects[i].key, b);
}

/* ---- the index ------------------------------------------------------------- */

rbac_index_t *rbac_index_new(void)
{
    rbac_index_t *idx = calloc(1, sizeof(*idx));
    if (!idx)
        return NULL;
    idx->roles = strmap_new();
    idx->croles = strmap_new();
    idx->bindings = strmap_new();
    idx->by_subject = strmap_new();
    idx->epoch = 1;
    if (!idx->roles || !idx->croles || !idx->bindings || !idx->by_subject) {
        rbac_index_free(idx);
        return NULL;
    }
    return idx;
}

void rbac_index_free(rbac_index_t *idx)
{
    if (!idx)
        return;
    if (idx->roles)
        strmap_free(idx->roles, role_free);
    if (idx->croles)
        strmap_free(idx->croles, role_free);
    if (idx->bindings)
        strmap_free(idx->bindings, binding_free);
    if (idx->by_subject)
        strmap_free(idx->by_subject, list_free);
    free(idx);
}

size_t rbac_index_size(const rbac_index_t *idx)
{
    return idx ? strmap_size(idx->roles) + strmap_size(idx->croles) +
                     strmap_size(idx->bindings)
               : 0;
}

enum { K_ROLE, K_CLUSTERROLE, K_ROLEBINDING, K_CLUSTERROLEBINDING, K_OTHER };

static int kind_of(const char *kind)
{
    if (!kind)
        return K_OTHER;
    if (strcmp(kind, "Role") == 0)
        return K_ROLE;
    if (strcmp(kind, "ClusterRole") == 0)
        return K_CLUSTERROLE;
    if (strcmp(kind, "RoleBinding") == 0)
        return K_ROLEBINDING;
    if (strcmp(kind, "ClusterRoleBinding") == 0)
        return K_CLUSTERROLEBINDING;
    return K_OTHER;
}

static void obj_key(char *buf, size_t n, const char *ns, const char *name)
{
    snprintf(buf, n, "%s/%s", ns, name);
}

int rbac_index_put(rbac_index_t *idx, const json_t *obj)
{
    if (!idx || !json_is_object(obj))
        return SKIFF_EINVAL;
    int k = kind_of(json_string_value(json_object_get(obj, "kind")));
    const json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (k == K_OTHER || empty(name))
        return SKIFF_EINVAL;
    int namespaced = k == K_ROLE || k == K_ROLEBINDING;
    if (namespaced && empty(ns))
        return SKIFF_EINVAL;
    if (!namespaced)
        ns = "";
    char key[512];
    obj_key(key, sizeof(key), ns, name);
    int rc = 0;
    if (k == K_ROLE || k == K_CLUSTERROLE) {
        rbac_role_t *r = role_new(obj, ns, name, &rc);
        if (!r)
            return rc;
        strmap_t *m = k == K_ROLE ? idx->roles : idx->croles;
        rbac_role_t *old = strmap_put(m, k == K_ROLE ? key : name, r);
        if (strmap_get(m, k == K_ROLE ? key : name) != r) {
            role_free(r);
            return SKIFF_ENOMEM;
        }
        role_free(old);
        if (k == K_CLUSTERROLE)
            idx->epoch++;
        return 0;
    }
    rbac_binding_t *b = binding_new(obj, ns, name, &rc);
    if (!b)
        return rc;
    rbac_binding_t *old = strmap_get(idx->bindings, key);
    if (old) {
        binding_unlink(idx, old);
        binding_free(strmap_remove(idx->bindings, key));
    }
    strmap_put(idx->bindings, key, b);
    if (strmap_get(idx->bindings, key) != b) {
        binding_free(b);
        return SKIFF_ENOMEM;
    }
    for (size_t i = 0; i < b->nsubjects; i++) {
        rc = subject_add(idx, b->subjects[i].key, b);
        if (rc < 0) {
            binding_unlink(idx, b);
            binding_free(strmap_remove(idx->bindings, key));
            return rc;
        }
    }
    return 0;
}

int rbac_index_remove(rbac_index_t *idx, const char *kind, const char *namespace,
                      const char *name)
{
    int k = kind_of(kind);
    if (!idx || k == K_OTHER || empty(name))
        return SKIFF_EINVAL;
    int namespaced = k == K_ROLE || k == K_ROLEBINDING;
    const char *ns = namespaced ? str_or(namespace, "") : "";
    char key[512];
    obj_key(key, sizeof(key), ns, name);
    if (k == K_ROLE || k == K_CLUSTERROLE) {
        rbac_role_t *r = strmap_remove(k == K_ROLE ? idx->roles : idx->croles,
                                       k == K_ROLE ? key : name);
        if (!r)
            return SKIFF_ENOENT;
        role_free(r);
        if (k == K_CLUSTERROLE)
            idx->epoch++;
        return 0;
    }
    rbac_binding_t *b = strmap_get(idx->bindings, key);
    if (!b)
        return SKIFF_ENOENT;
    binding_unlink(idx, b);
    binding_free(strmap_remove(idx->bindings, key));
    return 0;
}

int rbac_index_apply_event(rbac_index_t *idx, const char *type, const json_t *obj)
{
    if (!type)
        return SKIFF_EINVAL;
    if (strcmp(type, "DELETED") == 0) {
        const json_t *meta = json_object_get(obj, "metadata");
        return rbac_index_remove(idx, json_string_value(json_object_get(obj, "kind")),
                                 json_string_value(json_object_get(meta, "namespace")),
                                 json_string_value(json_object_get(meta, "name")));
    }
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0)
        return rbac_index_put(idx, obj);
    return 0; /* BOOKMARK and the like change nothing */
}

/* ---- aggregation ------------------------------------------------------------ */

typedef struct rule_vec {
    const rbac_rule_t **v;
    size_t n, cap;
    int oom;
} rule_vec_t;

static void vec_push(rule_vec_t *rv, const rbac_rule_t *r)
{
    for (size_t i = 0; i < rv->n; i++)
        if (rv->v[i] == r)
            return;
    if (rv->n == rv->cap) {
        size_t ncap = rv->cap ? rv->cap * 2 : 16;
        const rbac_rule_t **nv = realloc(rv->v, ncap * sizeof(*nv));
        if (!nv) {
            rv->oom = 1;
            return;
        }
        rv->v = nv;
        rv->cap = ncap;
    }
    rv->v[rv->n++] = r;
}

typedef struct agg_scan {
    rbac_index_t *idx;
    rbac_role_t *self;
    rule_vec_t *out;
} agg_scan_t;

static void effective_rules(rbac_index_t *idx, rbac_role_t *r, const rbac_rule_t ***rules,
                            size_t *n);

static void agg_one(const char *key, void *value, void *data)
{
    (void)key;
    agg_scan_t *a = data;
    rbac_role_t *m = value;
    if (m == a->self)
        return;
    const json_t *labels = json_object_get(m->copy, "labels");
    int match = 0;
    for (size_t i = 0; i < a->self->nagg && !match; i++)
        match = label_selector_matches(a->self->agg[i], labels);
    if (!match)
        return;
    const rbac_rule_t **rules;
    size_t n;
    effective_rules(a->idx, m, &rules, &n);
    for (size_t i = 0; i < n; i++)
        vec_push(a->out, rules[i]);
}

static void effective_rules(rbac_index_t *idx, rbac_role_t *r, const rbac_rule_t ***rules,
                            size_t *n)
{
    static const rbac_rule_t *none[1];
    if (!r->aggregated) {
        /* A plain role's rules as pointers: built once, they never move. */
        if (!r->eff && r->nrules) {
            r->eff = calloc(r->nrules, sizeof(*r->eff));
            if (r->eff)
                for (size_t i = 0; i < r->nrules; i++)
                    r->eff[i] = &r->rules[i];
            r->neff = r->eff ? r->nrules : 0;
        }
        *rules = r->eff ? r->eff : none;
        *n = r->neff;
        return;
    }
    if (r->resolving) {
        /* A cycle (A selects B selects A): A's rules are being computed
         * and its old list may point to freed rules. */
        idx->cycle = 1;
        *rules = none;
        *n = 0;
        return;
    }
    if (r->eff_epoch != idx->epoch) {
        int outer_cycle = idx->cycle;
        idx->cycle = 0;
        r->resolving = 1;
        rule_vec_t out = { 0 };
        agg_scan_t a = { idx, r, &out };
        strmap_each(idx->croles, agg_one, &a);
        free(r->eff);
        r->eff = out.v;
        r->neff = out.n;
        /* Out of memory or part of a cycle: keep what was found but
         * compute again next time. */
        r->eff_epoch = out.oom || idx->cycle ? 0 : idx->epoch;
        r->resolving = 0;
        idx->cycle |= outer_cycle;
    }
    *rules = r->eff ? r->eff : none;
    *n = r->eff ? r->neff : 0;
}

static json_t *rules_json(const rbac_rule_t *const *rules, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, skiff_json_copy(rules[i]->json)) < 0) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

json_t *rbac_cluster_role_rules(rbac_index_t *idx, const char *name)
{
    rbac_role_t *r = idx && name ? strmap_get(idx->croles, name) : NULL;
    if (!r)
        return NULL;
    const rbac_rule_t **rules;
    size_t n;
    effective_rules(idx, r, &rules, &n);
    return rules_json(rules, n);
}

/* ---- matching ------------------------------------------------------------------ */

static int has(const char *const *list, const char *want)
{
    for (; list && *list; list++)
        if (strcmp(*list, "*") == 0 || strcmp(*list, want) == 0)
            return 1;
    return 0;
}

/* "res", "res/sub", "*\/sub" and "*", as Kubernetes' ResourceMatches. */
static int resource_matches(const char *const *list, const char *resource, const char *sub)
{
    for (; list && *list; list++) {
        const char *r = *list;
        if (strcmp(r, "*") == 0)
            return 1;
        size_t rl = strlen(resource);
        if (empty(sub)) {
            if (strcmp(r, resource) == 0)
                return 1;
            continue;
        }
        if (strncmp(r, resource, rl) == 0 && r[rl] == '/' && strcmp(r + rl + 1, sub) == 0)
            return 1;
        if (r[0] == '*' && r[1] == '/' && strcmp(r + 2, sub) == 0)
            return 1;
    }
    return 0;
}

static int names_match(const char *const *list, const char *name)
{
    if (!list || !*list)
        return 1; /* no resourceNames: every name, and requests without one */
    if (empty(name))
        return 0;
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

static int url_matches(const char *const *list, const char *path)
{
    for (; list && *list; list++) {
        const char *u = *list;
        size_t ul = strlen(u);
        if (strcmp(u, "*") == 0 || strcmp(u, path) == 0)
            return 1;
        if (ul && u[ul - 1] == '*' && strncmp(u, path, ul - 1) == 0)
            return 1;
    }
    return 0;
}

static int is_resource_request(const rbac_attrs_t *a)
{
    return a->resource != NULL;
}

static int rule_allows(const rbac_rule_t *r, const rbac_attrs_t *a)
{
    if (!has(r->verbs, a->verb))
        return 0;
    if (!is_resource_request(a))
        return url_matches(r->urls, a->path);
    return has(r->groups, str_or(a->api_group, "")) &&
           resource_matches(r->resources, a->resource, a->subresource) &&
           names_match(r->names, a->name);
}

int rbac_rule_allows(const json_t *rule, const rbac_attrs_t *attrs)
{
    if (!json_is_object(rule) || !attrs || empty(attrs->verb) ||
        (!attrs->resource && !attrs->path))
        return 0;
    int oom = 0;
    rbac_rule_t r = {
        str_list(json_object_get(rule, "verbs"), &oom),
        str_list(json_object_get(rule, "apiGroups"), &oom),
        str_list(json_object_get(rule, "resources"), &oom),
        str_list(json_object_get(rule, "resourceNames"), &oom),
        str_list(json_object_get(rule, "nonResourceURLs"), &oom),
        rule,
    };
    int ok = !oom && rule_allows(&r, attrs);
    free(r.verbs);
    free(r.groups);
    free(r.resources);
    free(r.names);
    free(r.urls);
    return ok;
}

/* ---- visiting the caller's bindings ------------------------------------------------ */

/* Called with each rule that applies to the user in the namespace; returns
 * 1 to stop. */
typedef int (*rule_visitor_t)(const rbac_binding_t *b, const rbac_subject_t *s,
                              const rbac_rule_t *r, void *data);

static rbac_role_t *binding_role(rbac_index_t *idx, const rbac_binding_t *b)
{
    if (b->role_is_cluster)
        return strmap_get(idx->croles, b->role_name);
    char key[512];
    obj_key(key, sizeof(key), b->namespace, b->role_name);
    return strmap_get(idx->roles, key);
}

static const rbac_subject_t *subject_for(const rbac_binding_t *b, const char *key)
{
    for (size_t i = 0; i < b->nsubjects; i++)
        if (strcmp(b->subjects[i].key, key) == 0)
            return &b->subjects[i];
    return NULL;
}

/* Cluster bindings first, then the namespace's, as Kubernetes visits them. */
static int visit_rules(rbac_index_t *idx, const rbac_user_t *u, const char *ns,
                       rule_visitor_t fn, void *data)
{
    size_t nkeys = 1 + u->ngroups;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && empty(ns))
            break;
        for (size_t k = 0; k < nkeys; k++) {
            const char *id = k == 0 ? u->name : u->groups[k - 1];
            if (empty(id))
                continue;
            char key[512];
            snprintf(key, sizeof(key), "%s:%s", k == 0 ? "u" : "g", id);
            binding_list_t *l = strmap_get(idx->by_subject, key);
            for (size_t i = 0; l && i < l->n; i++) {
                const rbac_binding_t *b = l->v[i];
                if (pass == 0 ? b->namespace[0] != '\0' : strcmp(b->namespace, ns) != 0)
                    continue;
                rbac_role_t *role = binding_role(idx, b);
                if (!role)
                    continue;
                const rbac_rule_t **rules;
                size_t n;
                effective_rules(idx, role, &rules, &n);
                const rbac_subject_t *s = subject_for(b, key);
                for (size_t j = 0; j < n; j++)
                    if (fn(b, s, rules[j], data))
                        return 1;
            }
        }
    }
    return 0;
}

typedef struct allow_scan {
    const rbac_attrs_t *attrs;
    rbac_decision_t *out;
} allow_scan_t;

static int allow_visit(const rbac_binding_t *b, const rbac_subject_t *s, const rbac_rule_t *r,
                       void *data)
{
    allow_scan_t *a = data;
    if (!rule_allows(r, a->attrs))
        return 0;
    a->out->verdict = RBAC_ALLOW;
    const char *subj = s ? s->describe : "";
    if (b->namespace[0])
        snprintf(a->out->reason, sizeof(a->out->reason),
                 "RBAC: allowed by RoleBinding \"%s/%s\" of %s \"%s\" to %s", b->name,
                 b->namespace, b->role_is_cluster ? "ClusterRole" : "Role", b->role_name, subj);
    else
        snprintf(a->out->reason, sizeof(a->out->reason),
                 "RBAC: allowed by ClusterRoleBinding \"%s\" of ClusterRole \"%s\" to %s",
                 b->name, b->role_name, subj);
    return 1;
}

int rbac_authorize(rbac_index_t *idx, const rbac_user_t *user, const rbac_attrs_t *attrs,
                   rbac_decision_t *out)
{
    if (!out || !attrs || !user || empty(attrs->verb) || (!attrs->resource && !attrs->path))
        return SKIFF_EINVAL;
    out->verdict = RBAC_NO_OPINION;
    out->reason[0] = '\0';
    if (!idx)
        return 0;
    /* Non-resource requests and cluster-scoped resources: only
     * ClusterRoleBindings apply. */
    const char *ns = is_resource_request(attrs) ? str_or(attrs->namespace, "") : "";
    allow_scan_t a = { attrs, out };
    visit_rules(idx, user, ns, allow_visit, &a);
    return 0;
}

/* ---- rules for `kubectl auth can-i --list` ---------------------------------------- */

typedef struct list_scan {
    json_t *res, *nonres;
    strmap_t *seen;
    int oom;
} list_scan_t;

static json_t *array_or_empty(const json_t *rule, const char *field)
{
    const json_t *v = json_object_get(rule, field);
    return json_is_array(v) ? skiff_json_copy(v) : json_array();
}

static int list_visit(const rbac_binding_t *b, const rbac_subject_t *s, const rbac_rule_t *r,
                      void *data)
{
    (void)b;
    (void)s;
    list_scan_t *l = data;
    char *key = json_dumps(r->json, JSON_SORT_KEYS | JSON_COMPACT);
    if (!key) {
        l->oom = 1;
        return 1;
    }
    if (strmap_get(l->seen, key)) {
        free(key);
        return 0;
    }
    strmap_put(l->seen, key, (void *)1);
    free(key);
    json_t *item;
    if (r->urls && *r->urls)
        item = json_pack("{s:o, s:o}", "verbs", array_or_empty(r->json, "verbs"),
                         "nonResourceURLs", array_or_empty(r->json, "nonResourceURLs"));
    else
        item = json_pack("{s:o, s:o, s:o, s:o}", "verbs", array_or_empty(r->json, "verbs"),
                         "apiGroups", array_or_empty(r->json, "apiGroups"), "resources",
                         array_or_empty(r->json, "resources"), "resourceNames",
                         array_or_empty(r->json, "resourceNames"));
    if (!item || json_array_append_new(r->urls && *r->urls ? l->nonres : l->res, item) < 0) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

json_t *rbac_rules_for(rbac_index_t *idx, const rbac_user_t *user, const char *namespace)
{
    if (!user)
        return NULL;
    list_scan_t l = { json_array(), json_array(), strmap_new(), 0 };
    if (!l.res || !l.nonres || !l.seen)
        goto oom;
    if (idx)
        visit_rules(idx, user, str_or(namespace, ""), list_visit, &l);
    if (l.oom)
        goto oom;
    strmap_free(l.seen, NULL);
    return json_pack("{s:o, s:o, s:b}", "resourceRules", l.res, "nonResourceRules", l.nonres,
                     "incomplete", 0);
oom:
    json_decref(l.res);
    json_decref(l.nonres);
    if (l.seen)
        strmap_free(l.seen, NULL);
    return NULL;
}

/* ---- node authorizer ---------------------------------------------------------------- */

#define NODE_PREFIX "system:node:"
#define NODE_GROUP "system:nodes"
#define NODE_LEASE_NS "kube-node-lease"

const char *rbac_node_name(const rbac_user_t *user)
{
    if (!user || !user->name || strncmp(user->name, NODE_PREFIX, strlen(NODE_PREFIX)) != 0)
        return NULL;
    const char *node = user->name + strlen(NODE_PREFIX);
    if (!*node)
        return NULL;
    for (size_t i = 0; i < user->ngroups; i++)
        if (user->groups[i] && strcmp(user->groups[i], NODE_GROUP) == 0)
            return node;
    return NULL;
}

static int verb_in(const char *verb, const char *const *verbs)
{
    for (; *verbs; verbs++)
        if (strcmp(verb, *verbs) == 0)
            return 1;
    return 0;
}

static void decide(rbac_decision_t *out, rbac_verdict_t v, const char *fmt, const char *node)
{
    out->verdict = v;
    if (fmt)
        snprintf(out->reason, sizeof(out->reason), fmt, node);
    else
        out->reason[0] = '\0';
}

static const char *const READS[] = { "get", "list", "watch", NULL };
static const char *const OWN_WRITES[] = { "get", "create", "update", "patch", NULL };

#define NO_RELATION "no relationship found between node '%s' and this object"

int rbac_node_authorize(const rbac_user_t *user, const rbac_attrs_t *a,
                        const rbac_node_inputs_t *in, rbac_decision_t *out)
{
    if (!out || !a || empty(a->verb))
        return SKIFF_EINVAL;
    decide(out, RBAC_NO_OPINION, NULL, NULL);
    const char *node = rbac_node_name(user);
    if (!node || !is_resource_request(a))
        return 0;
    const char *group = str_or(a->api_group, "");
    const char *sub = str_or(a->subresource, "");
    const char *res = a->resource;
    int core = group[0] == '\0';

    if (core && strcmp(res, "nodes") == 0 && (!*sub || strcmp(sub, "status") == 0)) {
        if (verb_in(a->verb, READS))
            decide(out, RBAC_ALLOW, "node '%s' may read nodes", node);
        else if (!empty(a->name) && strcmp(a->name, node) == 0 &&
                 (verb_in(a->verb, OWN_WRITES) || (!*sub && strcmp(a->verb, "delete") == 0)))
            decide(out, RBAC_ALLOW, "node '%s' may change its own Node", node);
        else
            decide(out, RBAC_DENY, NULL, node); /* the standard message says it all */
        return 0;
    }
    if (strcmp(group, "coordination.k8s.io") == 0 && strcmp(res, "leases") == 0) {
        int own = !empty(a->name) && strcmp(a->name, node) == 0 &&
                  strcmp(str_or(a->namespace, ""), NODE_LEASE_NS) == 0 && !*sub;
        if (own && (verb_in(a->verb, OWN_WRITES) || strcmp(a->verb, "delete") == 0))
            decide(out, RBAC_ALLOW, "node '%s' may renew its own Lease", node);
        else
            decide(out, RBAC_DENY, NULL, node);
        return 0;
    }
    if (core && strcmp(res, "pods") == 0) {
        const char *bound = json_string_value(
            json_object_get(json_object_get(in ? in->pod : NULL, "spec"), "nodeName"));
        int mine = bound && strcmp(bound, node) == 0;
        if (!*sub && verb_in(a->verb, READS))
            decide(out, RBAC_ALLOW, "node '%s' may read pods", node);
        else if (!*sub && strcmp(a->verb, "delete") == 0 && mine)
            decide(out, RBAC_ALLOW, "node '%s' may delete pods bound to it", node);
        else if (strcmp(sub, "status") == 0 &&
                 (strcmp(a->verb, "update") == 0 || strcmp(a->verb, "patch") == 0 ||
                  strcmp(a->verb, "get") == 0) &&
                 mine)
            decide(out, RBAC_ALLOW, "node '%s' may update the status of pods bound to it",
                   node);
        else
            decide(out, RBAC_DENY, NO_RELATION, node);
        return 0;
    }
    if (core && (strcmp(res, "secrets") == 0 || strcmp(res, "configmaps") == 0) && !*sub) {
        const char *kind = res[0] == 's' ? "Secret" : "ConfigMap";
        /* list and watch only for one named object (a field selector on
         * metadata.name, which the caller turns into attrs->name). */
        if (verb_in(a->verb, READS) && !empty(a->name) && in && in->pod_uses &&
            in->pod_uses(in->data, node, kind, str_or(a->namespace, ""), a->name))
            decide(out, RBAC_ALLOW, "node '%s' runs a pod that uses this object", node);
        else
            decide(out, RBAC_DENY, NO_RELATION, node);
        return 0;
    }
    if ((core || strcmp(group, "events.k8s.io") == 0) && strcmp(res, "events") == 0 && !*sub) {
        static const char *const EVENT_WRITES[] = { "create", "update", "patch", NULL };
        if (verb_in(a->verb, EVENT_WRITES))
            decide(out, RBAC_ALLOW, "node '%s' may record events", node);
        return 0; /* reading events: RBAC decides */
    }
    return 0;
}

int rbac_authorize_request(rbac_index_t *idx, const rbac_user_t *user,
                           const rbac_attrs_t *attrs, const rbac_node_inputs_t *node,
                           rbac_decision_t *out)
{
    int rc = rbac_node_authorize(user, attrs, node, out);
    if (rc < 0 || out->verdict != RBAC_NO_OPINION)
        return rc;
    rc = rbac_authorize(idx, user, attrs, out);
    if (rc < 0)
        return rc;
    if (out->verdict == RBAC_NO_OPINION)
        out->verdict = RBAC_DENY;
    return 0;
}

/* ---- the denial message ------------------------------------------------------------ */

size_t rbac_forbidden_message(const rbac_user_t *user, const rbac_attrs_t *a,
                              const char *reason, char *buf, size_t n)
{
    const char *uname = user && user->name ? user->name : "";
    const char *verb = a ? str_or(a->verb, "") : "";
    const char *sep = empty(reason) ? "" : ": ";
    const char *why = empty(reason) ? "" : reason;
    int len;
    if (!a || !a->resource) {
        len = snprintf(buf, n, "forbidden: User \"%s\" cannot %s path \"%s\"%s%s", uname, verb,
                       a ? str_or(a->path, "") : "", sep, why);
        return len < 0 ? 0 : (size_t)len;
    }
    /* The qualified resource names the group ("deployments.apps") but not
     * the subresource; the sentence names the subresource but not the group. */
    const char *group = str_or(a->api_group, "");
    char qres[320], res[320], obj[640];
    snprintf(qres, sizeof(qres), "%s%s%s", a->resource, group[0] ? "." : "", group);
    snprintf(res, sizeof(res), "%s%s%s", a->resource, empty(a->subresource) ? "" : "/",
             str_or(a->subresource, ""));
    if (empty(a->name))
        snprintf(obj, sizeof(obj), "%s", qres);
    else
        snprintf(obj, sizeof(obj), "%s \"%s\"", qres, a->name);
    if (!empty(a->namespace))
        len = snprintf(buf, n,
                       "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group "
                       "\"%s\" in the namespace \"%s\"%s%s",
                       obj, uname, verb, res, group, a->namespace, sep, why);
    else
        len = snprintf(buf, n,
                       "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group "
                       "\"%s\" at the cluster scope%s%s",
                       obj, uname, verb, res, group, sep, why);
    return len < 0 ? 0 : (size_t)len;
}
