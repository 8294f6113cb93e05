/* core/api/csr.c - CertificateSigningRequests in the API server: who asks
 * (spec.username, groups and uid come from the requester, never from the
 * body), what may be written through the approval and status
 * subresources, automatic approval of kubelet client certificates (the
 * csrapproving controller of kube-controller-manager) and signing approved
 * requests for the two client signers with the cluster CA (its csrsigning
 * controller).
 *
 * Approval and signing run inside the write that makes them due (the
 * create of an auto-approvable request, the approval of any other), not
 * in a controller afterwards: the CA key lives in this process, the
 * approval check is a SubjectAccessReview against the RBAC index this
 * process holds, and a joining agent gets its certificate in the answer
 * to its create or on its next watch event. The outcome a client observes
 * (conditions, reasons, status.certificate) is the one Kubernetes'
 * controllers produce. */
#include "api/apiserver_int.h"

#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#include "api/object_meta.h"
#include "security/csr.h"
#include "security/pki.h"
#include "util/base64.h"
#include "util/log.h"

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A 422 with the field as its one cause, which kubectl prints. */
static void invalid(api_call_t *c, const char *name, const char *field, const char *msg)
{
    const char *reason = !strncmp(msg, "Required", 8)    ? "FieldValueRequired"
                         : !strncmp(msg, "Forbidden", 9) ? "FieldValueForbidden"
                                                         : "FieldValueInvalid";
    status_reply_invalid_field(c->resp, c->kind, name, field, reason, msg);
}

static json_t *condition_of(const json_t *obj, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c) {
        const char *t = jstr(c, "type");
        if (t && !strcmp(t, type)) return c;
    }
    return NULL;
}

static json_t *status_of(json_t *obj)
{
    json_t *st = json_object_get(obj, "status");
    if (!json_is_object(st)) {
        st = json_object();
        json_object_set_new(obj, "status", st);
    }
    return st;
}

static void add_condition(json_t *obj, const char *type, const char *reason, const char *message)
{
    json_t *st = status_of(obj);
    json_t *conds = json_object_get(st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(st, "conditions", conds);
    }
    char now[32];
    api_now_rfc3339(now, sizeof now);
    json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type,
                                           "status", "True", "reason", reason, "message", message,
                                           "lastUpdateTime", now, "lastTransitionTime", now));
}

/* Signs obj when it is approved, not denied, has no certificate yet and
 * names a signer this server runs; a failure becomes a Failed condition,
 * as the csrsigning controller reports it. */
static void sign_if_due(api_server_t *s, json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    const char *cert = jstr(json_object_get(obj, "status"), "certificate");
    if (!condition_of(obj, "Approved") || condition_of(obj, "Denied") ||
        condition_of(obj, "Failed") || (cert && *cert) ||
        !csr_signer_is_ours(jstr(spec, "signerName")))
        return;
    if (!s->pki) {
        /* plain HTTP development server: no CA to sign with; the request
         * stays approved and unsigned, as with a missing signer */
        return;
    }
    char *pem = NULL, err[256];
    if (csr_sign(pki_ca_cert(s->pki), pki_ca_key(s->pki), spec, &pem, err, sizeof err) != 0) {
        add_condition(obj, "Failed", "SignerValidationFailure", err);
        return;
    }
    char *b64 = base64_encode(pem, strlen(pem), 0);
    free(pem);
    if (b64) json_object_set_new(status_of(obj), "certificate", json_string(b64));
    free(b64);
    log_info("csr", "signed %s for %s (signer %s)", api_meta_str(obj, "name"),
             jstr(spec, "username"), jstr(spec, "signerName"));
}

/* May the requester the CSR names create certificatesigningrequests/<sub>
 * (the SubjectAccessReview csrapproving makes)? */
static int requester_may(api_server_t *s, const json_t *spec, const char *sub)
{
    const char *groups[API_MAX_GROUPS + 1];
    size_t n = 0, i;
    json_t *g;
    json_array_foreach(json_object_get(spec, "groups"), i, g) if (n < API_MAX_GROUPS && json_string_value(g)) groups[n++] = json_string_value(g);
    groups[n] = NULL;
    rbac_user_t u = {.name = jstr(spec, "username") ? jstr(spec, "username") : "",
                     .groups = groups,
                     .ngroups = n};
    rbac_attrs_t a = {.verb = "create",
                      .api_group = "certificates.k8s.io",
                      .resource = "certificatesigningrequests",
                      .subresource = sub};
    rbac_decision_t d;
    memset(&d, 0, sizeof d);
    return rbac_authorize_request(s->rbac, &u, &a, NULL, &d) == 0 && d.verdict == RBAC_ALLOW;
}

/* csrapproving's recognizers: a node renewing its own client certificate
 * (selfnodeclient), or anyone allowed to ask for a node's (nodeclient). */
static void auto_approve(api_server_t *s, json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    csr_subject_t subj;
    if (!csr_is_node_client(spec, &subj)) return;
    const char *user = jstr(spec, "username");
    int self = user && !strcmp(user, subj.cn);
    if ((self && requester_may(s, spec, "selfnodeclient")) || requester_may(s, spec, "nodeclient"))
        add_condition(obj, "Approved", "AutoApproved",
                      "Auto approving kubelet client certificate after SubjectAccessReview.");
}

int api_csr_admit_create(api_call_t *c, json_t *obj)
{
    const char *name = api_meta_str(obj, "name");
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        invalid(c, name, "spec", "Required value");
        return -1;
    }
    /* who asks is the requester, whatever the body says */
    const char *groups[API_MAX_GROUPS + 2];
    size_t ngroups;
    const char *user = api_identity(c->req, c->resp, groups, &ngroups);
    json_t *ga = json_array();
    for (size_t i = 0; i < ngroups; i++) json_array_append_new(ga, json_string(groups[i]));
    json_object_set_new(spec, "username", json_string(user));
    json_object_set_new(spec, "groups", ga);
    json_object_del(spec, "uid");
    json_object_del(spec, "extra");
    char field[64], msg[700];
    if (csr_validate_spec(spec, field, sizeof field, msg, sizeof msg) != 0) {
        invalid(c, name, field, msg);
        return -1;
    }
    json_object_del(obj, "status");
    auto_approve(c->srv, obj);
    sign_if_due(c->srv, obj);
    return 0;
}

/* The approval subresource writes status.conditions only: the rest is
 * the stored object, as Kubernetes' approval strategy keeps it. */
int api_csr_merge_approval(api_call_t *c)
{
    json_t *whole = skiff_json_copy(c->old);
    json_t *conds = json_object_get(json_object_get(c->obj, "status"), "conditions");
    json_t *st = status_of(whole);
    if (conds) json_object_set(st, "conditions", conds);
    else json_object_del(st, "conditions");
    json_decref(c->obj);
    c->obj = whole;
    return 0;
}

static int same_condition(const json_t *a, const json_t *b)
{
    if (!a || !b) return a == b;
    const char *sa = jstr(a, "status"), *sb = jstr(b, "status");
    return sa && sb && !strcmp(sa, sb);
}

/* Fills the times of conditions the request added without them. */
static void stamp_conditions(json_t *obj)
{
    char now[32];
    api_now_rfc3339(now, sizeof now);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c) {
        if (!json_is_object(c)) continue;
        if (!jstr(c, "status")) json_object_set_new(c, "status", json_string("True"));
        if (!jstr(c, "lastUpdateTime")) json_object_set_new(c, "lastUpdateTime", json_string(now));
        if (!jstr(c, "lastTransitionTime"))
            json_object_set_new(c, "lastTransitionTime", json_string(now));
    }
}

/* The CertificateApproval admission check: approving or denying needs the
 * approve verb on the signer (certificates.k8s.io signers, named by the
 * signerName or "<domain>/" followed by a star). 0, or -1 after answering 403. */
static int may_approve(api_call_t *c, const char *signer)
{
    if (!c->srv->rbac || !signer) return 0;
    const char *groups[API_MAX_GROUPS + 2];
    size_t ngroups;
    const char *user = api_identity(c->req, c->resp, groups, &ngroups);
    for (size_t i = 0; i < ngroups; i++)
        if (!strcmp(groups[i], "system:masters")) return 0;
    rbac_user_t u = {.name = user, .groups = groups, .ngroups = ngroups};
    char wildcard[600];
    const char *slash = strchr(signer, '/');
    snprintf(wildcard, sizeof wildcard, "%.*s/*", slash ? (int)(slash - signer) : 0, signer);
    const char *names[] = {signer, wildcard};
    for (int i = 0; i < 2; i++) {
        rbac_attrs_t a = {.verb = "approve",
                          .api_group = "certificates.k8s.io",
                          .resource = "signers",
                          .name = names[i]};
        rbac_decision_t d;
        memset(&d, 0, sizeof d);
        if (rbac_authorize_request(c->srv->rbac, &u, &a, NULL, &d) == 0 && d.verdict == RBAC_ALLOW)
            return 0;
    }
    status_reply(c->resp, 403, "Forbidden", status_details(c->kind, c->name),
                 "certificatesigningrequests.certificates.k8s.io \"%s\" is forbidden: user not "
                 "permitted to approve requests with signerName \"%s\"",
                 c->name, signer);
    return -1;
}

int api_csr_admit_update(api_call_t *c, json_t *obj, const json_t *old)
{
    const char *name = c->name;
    /* Spec and (outside the subresources) status never change through an
     * update: they are taken back from the stored object, as Kubernetes'
     * update strategy does silently. */
    json_t *ospec = json_object_get(old, "spec");
    if (ospec) json_object_set(obj, "spec", ospec);
    if (!c->sub) return 0;
    int approval = !strcmp(c->sub, "approval");
    static const char *const decisions[] = {"Approved", "Denied"};
    for (int i = 0; i < 2; i++) {
        json_t *was = condition_of(old, decisions[i]), *now = condition_of(obj, decisions[i]);
        if (approval ? (was && !same_condition(was, now)) : !same_condition(was, now)) {
            char msg[200];
            snprintf(msg, sizeof msg, "Forbidden: updates may not %s a condition of type \"%s\"",
                     was ? (now ? "modify" : "remove") : "add", decisions[i]);
            invalid(c, name, "status.conditions", msg);
            return -1;
        }
    }
    json_t *appr = condition_of(obj, "Approved"), *deny = condition_of(obj, "Denied");
    if (approval && ((appr && !condition_of(old, "Approved")) ||
                     (deny && !condition_of(old, "Denied"))) &&
        may_approve(c, jstr(json_object_get(old, "spec"), "signerName")) != 0)
        return -1;
    if (appr && deny) {
        invalid(c, name, "status.conditions",
                "Invalid value: \"Approved\": Approved and Denied conditions are mutually "
                "exclusive");
        return -1;
    }
    const char *ocert = jstr(json_object_get(old, "status"), "certificate");
    const char *ncert = jstr(json_object_get(obj, "status"), "certificate");
    if (ocert && *ocert && (!ncert || strcmp(ocert, ncert) != 0)) {
        invalid(c, name, "status.certificate", "Forbidden: updates may not modify existing certificate content");
        return -1;
    }
    if (ncert && *ncert && !(ocert && *ocert) && (!appr || deny)) {
        invalid(c, name, "status.certificate",
                "Forbidden: certificate may only be set if the request is Approved and not "
                "Denied");
        return -1;
    }
    stamp_conditions(obj);
    if (approval && appr && !condition_of(old, "Approved")) sign_if_due(c->srv, obj);
    return 0;
}
