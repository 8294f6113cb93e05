/* core/api/reviews.c - the review kinds: asked, answered, never stored.
 *
 * SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview
 * (`kubectl auth can-i --list`) and SelfSubjectReview (`kubectl auth
 * whoami`) are created and answered at once from the caller's identity and
 * the RBAC index, as Kubernetes does. */
#include "api/apiserver_int.h"

#include <string.h>

#include "api/pipeline.h"

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

void api_handle_review(api_call_t *c, json_t *obj)
{
    const char *groups[API_MAX_GROUPS + 2];
    size_t ngroups;
    const char *user = api_identity(c->req, c->resp, groups, &ngroups);
    rbac_user_t u = {.name = user, .groups = groups, .ngroups = ngroups};
    const char *kind = c->kind->kind;
    json_t *spec = json_object_get(obj, "spec");
    json_t *status = NULL;
    if (strcmp(kind, "SelfSubjectReview") == 0) {
        json_t *g = json_array();
        for (size_t i = 0; i < ngroups; i++) json_array_append_new(g, json_string(groups[i]));
        status = json_pack("{s:{s:s, s:o}}", "userInfo", "username", user, "groups", g);
    } else if (strcmp(kind, "SelfSubjectRulesReview") == 0) {
        status = rbac_rules_for(c->srv->rbac, &u, jstr(spec, "namespace"));
    } else if (strcmp(kind, "SelfSubjectAccessReview") == 0) {
        const json_t *ra = json_object_get(spec, "resourceAttributes");
        const json_t *na = json_object_get(spec, "nonResourceAttributes");
        if (!ra && !na) {
            status_reply(c->resp, 422, "Invalid", status_details(c->kind, ""),
                         "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: "
                         "spec.resourceAttributes: Invalid value: null: exactly one of "
                         "nonResourceAttributes or resourceAttributes must be specified");
            return;
        }
        rbac_attrs_t a = {0};
        if (ra) {
            a.verb = jstr(ra, "verb");
            a.api_group = jstr(ra, "group") ? jstr(ra, "group") : "";
            a.resource = jstr(ra, "resource");
            a.subresource = jstr(ra, "subresource");
            a.namespace = jstr(ra, "namespace");
            a.name = jstr(ra, "name");
        } else {
            a.verb = jstr(na, "verb");
            a.path = jstr(na, "path");
        }
        rbac_decision_t d;
        memset(&d, 0, sizeof d);
        int allowed = rbac_authorize_request(c->srv->rbac, &u, &a, NULL, &d) == 0 &&
                      d.verdict == RBAC_ALLOW;
        status = json_pack("{s:b}", "allowed", allowed);
        if (d.reason[0]) json_object_set_new(status, "reason", json_string(d.reason));
    } else {
        status_reply(c->resp, 405, "MethodNotAllowed", NULL,
                     "%s are answered only for the user asking (Self* reviews)", c->kind->resource);
        return;
    }
    if (!status) {
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
        return;
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) json_object_set_new(obj, "metadata", json_object());
    json_object_set_new(json_object_get(obj, "metadata"), "creationTimestamp", json_null());
    json_object_set_new(obj, "status", status);
    reply_json(c->resp, 201, obj);
}
