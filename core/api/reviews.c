/* core/api/reviews.c - the review kinds: asked, answered, never stored.
 *
 * SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview
 * (`kubectl auth can-i --list`) and SelfSubjectReview (`kubectl auth
 * whoami`) are created and answered at once from the caller's identity and
 * the RBAC index, as Kubernetes does. */
#include "api/apiserver_int.h"

#include <string.h>

#include "api/pipeline.h"
#include "security/tokens.h"

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
    const char *sgroups[API_MAX_GROUPS + 1]; /* a SubjectAccessReview's groups */
    const char *kind = c->kind->kind;
    json_t *spec = json_object_get(obj, "spec");
    json_t *status = NULL;
    if (strcmp(kind, "SelfSubjectReview") == 0) {
        json_t *g = json_array();
        for (size_t i = 0; i < ngroups; i++) json_array_append_new(g, json_string(groups[i]));
        status = json_pack("{s:{s:s, s:o}}", "userInfo", "username", user, "groups", g);
    } else if (strcmp(kind, "SelfSubjectRulesReview") == 0) {
        status = rbac_rules_for(c->srv->rbac, &u, jstr(spec, "namespace"));
    } else if (strcmp(kind, "TokenReview") == 0) {
        /* another component asks who a bearer token is */
        const char *tok = json_string_value(json_object_get(spec, "token"));
        token_identity_t id;
        char why[256];
        int ok = 0;
        if (tok && c->srv->pipeline.tokens) {
            int brc = c->srv->pipeline.bootstrap
                          ? c->srv->pipeline.bootstrap(c->srv, tok, &id, why, sizeof why)
                          : 1;
            if (brc == 1)
                brc = tokens_authenticate(c->srv->pipeline.tokens, tok, c->srv->pipeline.sa_exists,
                                          c->srv, &id, why, sizeof why);
            ok = brc == 0;
        }
        if (ok) {
            json_t *g = json_array();
            for (size_t i = 0; i < id.ngroups; i++) json_array_append_new(g, json_string(id.groups[i]));
            json_array_append_new(g, json_string("system:authenticated"));
            status = json_pack("{s:b, s:{s:s, s:s, s:o}, s:[]}", "authenticated", 1, "user",
                               "username", id.user, "uid", id.uid, "groups", g, "audiences");
        } else {
            status = json_pack("{s:b, s:{}, s:s}", "authenticated", 0, "user", "error",
                               "the token could not be authenticated");
        }
    } else if (strcmp(kind, "SubjectAccessReview") == 0 ||
               strcmp(kind, "SelfSubjectAccessReview") == 0) {
        if (strcmp(kind, "SubjectAccessReview") == 0) {
            /* another component asks about a user it names */
            size_t n = 0;
            size_t gi;
            json_t *gv;
            json_array_foreach(json_object_get(spec, "groups"), gi, gv) if (n < API_MAX_GROUPS && json_string_value(gv)) sgroups[n++] = json_string_value(gv);
            sgroups[n] = NULL;
            u.name = jstr(spec, "user") ? jstr(spec, "user") : "";
            u.groups = sgroups;
            u.ngroups = n;
        }
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
        status_reply(c->resp, 405, "MethodNotAllowed", NULL, "%s are not answered here",
                     c->kind->resource);
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
