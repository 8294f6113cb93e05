/* core/api/pipeline.c - limits and audit around every request.
 *
 * The handler answers through a proxy sink: the proxy sees the status code
 * and the end of the answer (whole or streamed) and then ends the audit
 * event and gives the limits ticket back. */
#include "api/pipeline.h"

#include <skiff/errors.h>
#include <skiff/objects.h>

#include "api/status.h"
#include "util/log.h"

#include <strings.h>
#include <arpa/inet.h>
#include <stdlib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct piped {
    api_response_t proxy; /* first: what the handler holds */
    api_response_t *real;
    const api_pipeline_t *pl;
    audit_event_t *ev;
    limits_ticket_t ticket;
    int code;
    /* a bearer token's identity, or NULL (allocated apart: it is most of
     * the size, and most requests have none) */
    token_identity_t *token;
    const char *user;                     /* whom the request acts as */
    const char *groups[API_MAX_GROUPS + 2];
    size_t ngroups;
} piped_t;

static void piped_finish(piped_t *p, const char *body, size_t len)
{
    if (p->ev) audit_event_end(p->pl->audit, p->ev, p->code, body, len);
    if (p->pl->limits) limits_release(p->pl->limits, &p->ticket);
    free(p->token);
    free(p);
}

static void px_send(api_response_t *r, int status, const char *ct, const char *body, size_t len)
{
    piped_t *p = (piped_t *)r;
    p->code = status;
    p->real->on_abort = NULL;
    p->real->extra_headers = r->extra_headers;
    p->real->ops->send(p->real, status, ct, body, len);
    piped_finish(p, body, len);
}

static void px_stream_begin(api_response_t *r, int status, const char *ct)
{
    piped_t *p = (piped_t *)r;
    p->code = status;
    p->real->extra_headers = r->extra_headers;
    if (p->ev) audit_event_response_started(p->pl->audit, p->ev, status);
    p->real->ops->stream_begin(p->real, status, ct);
}

static int px_stream_write(api_response_t *r, const char *data, size_t len)
{
    piped_t *p = (piped_t *)r;
    return p->real->ops->stream_write(p->real, data, len);
}

static int px_stream_write_event(api_response_t *r, const char *type, json_t *obj)
{
    piped_t *p = (piped_t *)r;
    if (!p->real->ops->stream_write_event) return SKIFF_ENOTSUP;
    return p->real->ops->stream_write_event(p->real, type, obj);
}

static void px_stream_end(api_response_t *r)
{
    piped_t *p = (piped_t *)r;
    p->real->on_abort = NULL;
    p->real->ops->stream_end(p->real);
    piped_finish(p, NULL, 0);
}

static void px_send_object(api_response_t *r, int status, json_t *obj)
{
    piped_t *p = (piped_t *)r;
    p->code = status;
    p->real->on_abort = NULL;
    p->real->extra_headers = r->extra_headers;
    p->real->ops->send_object(p->real, status, obj);
    piped_finish(p, NULL, 0);
}

static const api_response_ops_t proxy_ops = {
    .send = px_send,
    .stream_begin = px_stream_begin,
    .stream_write = px_stream_write,
    .stream_end = px_stream_end,
    .stream_write_event = px_stream_write_event,
};

/* For a sink that takes whole answers as objects (in process), when the
 * audit log does not need the answer's text. */
static const api_response_ops_t proxy_ops_objects = {
    .send = px_send,
    .stream_begin = px_stream_begin,
    .stream_write = px_stream_write,
    .stream_end = px_stream_end,
    .stream_write_event = px_stream_write_event,
    .send_object = px_send_object,
};

/* The peer went away: tell the handler through the proxy. */
static void on_real_abort(api_response_t *real, void *data)
{
    piped_t *p = data;
    if (p->proxy.on_abort) p->proxy.on_abort(&p->proxy, p->proxy.abort_data);
}

/* groups from `from` plus system:authenticated, NULL-terminated. */
static size_t with_authenticated(const char *const *from, const char **groups)
{
    size_t n = 0;
    for (size_t i = 0; from && from[i] && n < API_MAX_GROUPS; i++)
        if (strcmp(from[i], "system:authenticated") != 0) groups[n++] = from[i];
    /* every authenticated user is in system:authenticated, as in Kubernetes */
    groups[n++] = "system:authenticated";
    groups[n] = NULL;
    return n;
}

const char *api_requester(const api_request_t *req, const token_identity_t *token,
                          const char **groups, size_t *ngroups)
{
    /* Who is asking: a bearer token, else the verified client certificate;
     * over the plain-HTTP development listener and from the in-process
     * client there is no identity and every request acts as the cluster
     * administrator. */
    static const char *const admin_groups[] = {"system:masters", NULL};
    if (token && strcmp(token->user, "system:anonymous") == 0) {
        /* the anonymous user is not in system:authenticated */
        size_t n = 0;
        for (; token->groups[n] && n < API_MAX_GROUPS; n++) groups[n] = token->groups[n];
        groups[n] = NULL;
        *ngroups = n;
        return token->user;
    }
    if (token) {
        *ngroups = with_authenticated(token->groups, groups);
        return token->user;
    }
    *ngroups = with_authenticated(req->tls_user ? req->tls_groups : admin_groups, groups);
    return req->tls_user ? req->tls_user : "system:admin";
}

static const char *impersonated(const api_request_t *req, const char **groups,
                                size_t *ngroups)
{
    if (strcmp(req->impersonate_user, "system:anonymous") == 0) {
        /* the anonymous user is in system:unauthenticated, not authenticated */
        size_t n = 0;
        for (size_t i = 0; req->impersonate_groups && req->impersonate_groups[i] &&
                           n < API_MAX_GROUPS;
             i++)
            if (strcmp(req->impersonate_groups[i], "system:authenticated") != 0)
                groups[n++] = req->impersonate_groups[i];
        groups[n++] = "system:unauthenticated";
        groups[n] = NULL;
        *ngroups = n;
        return req->impersonate_user;
    }
    *ngroups = with_authenticated(req->impersonate_groups, groups);
    return req->impersonate_user;
}

const char *api_identity(const api_request_t *req, api_response_t *resp, const char **groups,
                         size_t *ngroups)
{
    if (resp && resp->ops == &proxy_ops) {
        /* resolved once by the pipeline */
        piped_t *p = (piped_t *)resp;
        memcpy(groups, p->groups, (p->ngroups + 1) * sizeof *groups);
        *ngroups = p->ngroups;
        return p->user;
    }
    if (req->impersonate_user && *req->impersonate_user) return impersonated(req, groups, ngroups);
    return api_requester(req, NULL, groups, ngroups);
}

/* "localhost", "127.x.y.z", "[::1]", with or without ":port" */
static int loopback_host(const char *host)
{
    if (!host || !*host) return 0; /* fail closed: HTTP/1.1 clients always send one */
    char h[300];
    snprintf(h, sizeof h, "%s", host);
    if (h[0] == '[') {
        char *end = strchr(h, ']');
        if (!end || (end[1] && end[1] != ':')) return 0;
        *end = '\0';
        return strcmp(h + 1, "::1") == 0;
    }
    char *colon = strchr(h, ':');
    if (colon) *colon = '\0';
    if (strcasecmp(h, "localhost") == 0) return 1;
    /* a real IPv4 literal in 127/8, not a name that starts with "127." */
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static int master_of(const char *const *groups)
{
    for (size_t i = 0; groups && groups[i]; i++)
        if (strcmp(groups[i], "system:masters") == 0) return 1;
    return 0;
}

/* true/1, read exactly as the router reads it (see api_query_value) */
static int query_flag(const char *query, const char *name)
{
    char *v = api_query_value(query, name);
    int on = v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
    free(v);
    return on;
}

/* Answer through the proxy (so the audit event records it) and finish. */
static void refuse(piped_t *p, int code, const char *ct, const char *body, size_t len)
{
    px_send(&p->proxy, code, ct, body, len);
}

/* Begins the audit event of a request made by user (and groups), acting as
 * iuser (and igroups) when impersonating; NULL when the policy says None. */
static audit_event_t *audit_begin(const api_pipeline_t *pl, const api_request_t *req,
                                  const api_path_t *path, const char *verb, const char *user,
                                  const char *const *groups, size_t ngroups, const char *iuser,
                                  const char *const *igroups, size_t n_igroups)
{
    audit_attrs_t attrs = {
        .username = user,
        .groups = groups,
        .n_groups = ngroups,
        .verb = verb,
        .resource_request = path->resource_request,
        .path = req->path,
        .api_group = path->group,
        .api_version = path->version,
        .resource = path->resource,
        .subresource = path->sub,
        .namespace_ = path->ns,
        .name = path->name,
    };
    char uri[2300];
    snprintf(uri, sizeof uri, "%s%s%s", req->path, req->query ? "?" : "",
             req->query ? req->query : "");
    const char *ips[1] = {req->remote_addr};
    audit_request_info_t info = {.attrs = &attrs, .request_uri = uri,
                                 .source_ips = ips,
                                 .n_source_ips = req->remote_addr && *req->remote_addr ? 1 : 0,
                                 .user_agent = req->user_agent,
                                 .impersonated_username = iuser,
                                 .impersonated_groups = iuser ? igroups : NULL,
                                 .n_impersonated_groups = iuser ? n_igroups : 0};
    return audit_event_begin(pl->audit, &info);
}

/* Refuses a request that failed authentication with 401, and records it in
 * the audit log as Kubernetes does for failed authentication: an event
 * without a user, its responseStatus the 401. */
static void unauthorized(const api_pipeline_t *pl, const api_request_t *req,
                         const api_path_t *path, api_response_t *resp, const char *message)
{
    json_t *st = status_new(401, "Unauthorized", NULL, "%s", message);
    if (pl && pl->audit && st) {
        const char *verb = api_path_verb(path, req->method, query_flag(req->query, "watch"));
        audit_event_t *ev = audit_begin(pl, req, path, verb, "", NULL, 0, NULL, NULL, 0);
        if (ev) {
            char *body = json_dumps(st, JSON_COMPACT);
            audit_event_annotate(ev, "authentication.k8s.io/failed", "true");
            audit_event_end(pl->audit, ev, 401, body, body ? strlen(body) : 0);
            free(body);
        }
    }
    if (st) status_send(resp, st);
    else status_reply(resp, 401, "Unauthorized", NULL, "%s", message);
}

api_response_t *api_pipeline_enter(const api_pipeline_t *pl, const api_request_t *req,
                                   const api_path_t *path, api_response_t *resp)
{
    /* The plain-HTTP development listener trusts whoever connects over
     * loopback; a web page could reach it through a DNS name that points at
     * 127.0.0.1 (DNS rebinding), so its requests must name a loopback host. */
    if (!req->secure && req->remote_addr && !(pl && pl->any_host) &&
        !loopback_host(req->host)) {
        status_reply(resp, 403, "Forbidden", NULL,
                     "the development listener answers only requests for localhost, "
                     "127.0.0.1 or [::1] (Host: %s)",
                     req->host ? req->host : "(none)");
        return NULL;
    }
    /* authentication: a bearer token, else the client certificate */
    token_identity_t token;
    int have_token = 0;
    if (pl && pl->tokens && !req->tls_user && req->authorization &&
        strncasecmp(req->authorization, "Bearer ", 7) == 0) {
        char why[256];
        const char *bearer = req->authorization + 7;
        int brc = pl->bootstrap ? pl->bootstrap(pl->sa_data, bearer, &token, why, sizeof why) : 1;
        if (brc == 1 && tokens_authenticate(pl->tokens, bearer, pl->sa_exists, pl->sa_data, &token,
                                            why, sizeof why) != 0)
            brc = -1;
        else if (brc == 1)
            brc = 0;
        if (brc != 0) {
            /* the reason stays in the server's log: telling the client which
             * check failed would help it probe for valid tokens */
            log_info("authn", "bearer token refused (%s): %s",
                     req->remote_addr && *req->remote_addr ? req->remote_addr : "in-process", why);
            unauthorized(pl, req, path, resp, "Unauthorized");
            return NULL;
        }
        have_token = 1;
    }
    if (req->secure && !req->tls_user && !have_token && pl && pl->anonymous) {
        /* anonymous access enabled: system:anonymous, and RBAC decides */
        memset(&token, 0, sizeof token);
        snprintf(token.user, sizeof token.user, "system:anonymous");
        snprintf(token.groups_buf, sizeof token.groups_buf, "system:unauthenticated");
        token.groups[0] = token.groups_buf;
        token.groups[1] = NULL;
        token.ngroups = 1;
        have_token = 2;
    }
    if (req->secure && !req->tls_user && !have_token) {
        /* anonymous requests are not accepted (health checks are answered
         * before this point) */
        unauthorized(pl, req, path, resp,
                     "Unauthorized: present a client certificate signed by the cluster CA "
                     "(see `skiff user create`) or a bearer token");
        return NULL;
    }
    if (!pl || (!pl->audit && !pl->limits && !pl->rbac)) return resp;
    const char *groups[API_MAX_GROUPS + 2];
    size_t ngroups;
    const char *user = api_requester(req, have_token ? &token : NULL, groups, &ngroups);
    /* kubectl --as: the request acts as that user once the requester is
     * allowed to impersonate it (checked below, after the audit begins) */
    const char *igroups[API_MAX_GROUPS + 2];
    size_t n_igroups = 0;
    const char *iuser = NULL;
    if (req->impersonate_groups && !(req->impersonate_user && *req->impersonate_user)) {
        status_reply(resp, 400, "BadRequest", NULL,
                     "requested impersonation of groups without a user: add Impersonate-User "
                     "(kubectl --as)");
        return NULL;
    }
    if (req->impersonate_user && *req->impersonate_user)
        iuser = impersonated(req, igroups, &n_igroups);
    int master = master_of(groups);
    int watch = query_flag(req->query, "watch");
    const char *verb = api_path_verb(path, req->method, watch);

    piped_t *p = calloc(1, sizeof *p);
    if (!p) {
        status_reply(resp, 500, "InternalError", NULL, "out of memory");
        return NULL;
    }
    p->pl = pl;
    p->real = resp;
    p->proxy.ops = &proxy_ops;

    /* 1. audit: every request from here on is recorded, refusals included */
    if (pl->audit) {
        p->ev = audit_begin(pl, req, path, verb, user, groups, ngroups, iuser, igroups, n_igroups);
        /* levels Request and RequestResponse record the request body (the
         * audit module leaves Secrets and tokens out whatever the level) */
        if (p->ev && audit_event_level(p->ev) >= AUDIT_LEVEL_REQUEST && req->body &&
            req->content_type && strstr(req->content_type, "json")) {
            json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
            if (body) audit_event_set_request_object(p->ev, body);
            json_decref(body);
        } else if (p->ev && audit_event_level(p->ev) >= AUDIT_LEVEL_REQUEST && req->body_obj) {
            /* a copy: the handler changes the object it is handed */
            json_t *body = skiff_json_copy(req->body_obj);
            if (body) audit_event_set_request_object(p->ev, body);
            json_decref(body);
        }
    }
    if (resp->ops->send_object &&
        (!p->ev || audit_event_level(p->ev) < AUDIT_LEVEL_REQUEST_RESPONSE))
        p->proxy.ops = &proxy_ops_objects;

    /* impersonation: the requester needs the impersonate verb on the user
     * and on each group */
    if (iuser && pl->rbac && !master) {
        rbac_user_t u = {.name = user, .groups = groups, .ngroups = ngroups};
        const char *checks[API_MAX_GROUPS + 1][2];
        size_t nc = 0;
        checks[nc][0] = "users";
        checks[nc++][1] = iuser;
        for (size_t i = 0;
             req->impersonate_groups && req->impersonate_groups[i] && nc < API_MAX_GROUPS; i++) {
            checks[nc][0] = "groups";
            checks[nc++][1] = req->impersonate_groups[i];
        }
        for (size_t i = 0; i < nc; i++) {
            rbac_attrs_t a = {.verb = "impersonate", .api_group = "", .resource = checks[i][0],
                              .name = checks[i][1]};
            rbac_decision_t d;
            memset(&d, 0, sizeof d);
            if (rbac_authorize_request(pl->rbac, &u, &a, NULL, &d) != 0 ||
                d.verdict != RBAC_ALLOW) {
                char msg[1024];
                rbac_forbidden_message(&u, &a, d.reason, msg, sizeof msg);
                json_t *st = status_new(403, "Forbidden",
                                        json_pack("{s:s, s:s}", "name", checks[i][1], "kind",
                                                  checks[i][0]),
                                        "%s", msg);
                char *body = json_dumps(st, JSON_COMPACT);
                json_decref(st);
                refuse(p, 403, "application/json", body ? body : "", body ? strlen(body) : 0);
                free(body);
                return NULL;
            }
        }
    }

    /* from here on the request acts as the impersonated user, if any */
    if (iuser) {
        user = iuser;
        memcpy(groups, igroups, (n_igroups + 1) * sizeof *groups);
        ngroups = n_igroups;
        master = master_of(groups);
    }
    /* kept with the request for handlers that answer about the caller */
    if (have_token && !(p->token = malloc(sizeof *p->token))) {
        static const char oom[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                  "\"status\":\"Failure\",\"message\":\"out of memory\","
                                  "\"reason\":\"InternalError\",\"code\":500}";
        refuse(p, 500, "application/json", oom, sizeof oom - 1);
        return NULL;
    }
    if (have_token) *p->token = token;
    p->user = user == token.user && have_token ? p->token->user : user;
    for (size_t i = 0; i <= ngroups; i++) {
        const char *g = groups[i];
        if (have_token && g && g >= token.groups_buf &&
            g < token.groups_buf + sizeof token.groups_buf)
            g = p->token->groups_buf + (g - token.groups_buf);
        p->groups[i] = g;
    }
    p->ngroups = ngroups;

    /* 2. authorization (RBAC; system:masters may do everything) */
    if (pl->rbac && !master) {
        rbac_user_t u = {.name = user, .groups = groups, .ngroups = ngroups};
        rbac_attrs_t a = {.verb = verb,
                          .api_group = path->group,
                          .resource = path->resource,
                          .subresource = path->sub,
                          .namespace = path->ns,
                          .name = path->name,
                          .path = path->resource_request ? NULL : req->path};
        rbac_decision_t d;
        memset(&d, 0, sizeof d);
        /* nodes (system:node:NAME) get what the node authorizer allows */
        rbac_node_inputs_t ni;
        json_t *pod = NULL;
        const rbac_node_inputs_t *nip = NULL;
        char *fs = NULL;
        json_t *created = NULL;
        if (pl->node_inputs && rbac_node_name(&u)) {
            pod = pl->node_inputs(pl->node_inputs_data, path, &ni);
            nip = &ni;
            /* a kubelet lists and watches one Secret or ConfigMap with
             * fieldSelector=metadata.name=X: that names the object */
            fs = api_query_value(req->query, "fieldSelector");
            if (!a.name && fs && strncmp(fs, "metadata.name=", 14) == 0 && !strchr(fs, ','))
                a.name = fs + 14;
            /* a create names its object in the body: a node registers its
             * own Node and Lease (what NodeRestriction checks) */
            if (!a.name && !strcmp(verb, "create") && req->body && req->content_type &&
                strstr(req->content_type, "json")) {
                created = json_loadb(req->body, req->body_len, 0, NULL);
                const char *n = json_string_value(
                    json_object_get(json_object_get(created, "metadata"), "name"));
                if (n && *n) a.name = n;
            }
        }
        int rc = rbac_authorize_request(pl->rbac, &u, &a, nip, &d);
        char msg[1024] = "";
        if (rc != 0 || d.verdict != RBAC_ALLOW)
            rbac_forbidden_message(&u, &a, d.reason, msg, sizeof msg);
        json_decref(created);
        json_decref(pod);
        free(fs);
        if (rc != 0 || d.verdict != RBAC_ALLOW) {
            json_t *details = json_object();
            if (path->name) json_object_set_new(details, "name", json_string(path->name));
            if (path->resource_request) {
                if (path->group && *path->group)
                    json_object_set_new(details, "group", json_string(path->group));
                json_object_set_new(details, "kind", json_string(path->resource));
            }
            json_t *st = status_new(403, "Forbidden", details, "%s", msg);
            char *body = json_dumps(st, JSON_COMPACT);
            json_decref(st);
            refuse(p, 403, "application/json", body ? body : "", body ? strlen(body) : 0);
            free(body);
            return NULL;
        }
    }

    /* 3. limits (as in Kubernetes, system:masters is exempt: it must be
     * able to repair a cluster under load) */
    if (pl->limits && !master) {
        limits_kind_t kind = watch ? LIMITS_LONG_RUNNING
                             : (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
                                 ? LIMITS_READONLY
                                 : LIMITS_MUTATING;
        char key[300];
        /* the anonymous user shares nothing: its bucket is per address */
        int anon = strcmp(user, "system:anonymous") == 0;
        limits_client_key(anon ? NULL : user, anon ? req->remote_addr : NULL, key, sizeof key);
        limits_refusal_t why;
        if (limits_admit(pl->limits, key, kind, &p->ticket, &why) != 0) {
            char body[512], hdr[64];
            size_t n = limits_status_json(&why, body, sizeof body);
            snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", why.retry_after);
            p->proxy.extra_headers = hdr;
            refuse(p, 429, "application/json", body, n);
            return NULL;
        }
    }
    resp->on_abort = on_real_abort;
    resp->abort_data = p;
    return &p->proxy;
}
